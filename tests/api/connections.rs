//! Connections cannot exhaust the service: idle floods under a low
//! open-files limit, slow request heads and bodies, bodies declared too
//! large, keep-alive, and the refusals hyper answers itself. Raw TCP, so
//! that a client can be as slow or as careless as an attacker.

use std::{
    net::SocketAddr,
    os::unix::process::CommandExt,
    time::{Duration, Instant},
};

use serde_json::Value;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::helpers::{fresh_database, run_cli, spawn_app, ServiceProcess, TestDatabase, BIN};

/// The real binary, started with `env` and, when given, a hard and soft
/// open-files limit of `open_files` (as `ulimit -n` would set).
struct Service {
    process: ServiceProcess,
    addr: SocketAddr,
    token: String,
    _database: TestDatabase,
}

impl Service {
    async fn start(env: &[(&str, &str)], open_files: Option<u64>) -> Service {
        let database = fresh_database().await;
        run_cli(&database.url, &["org", "create", "acme", "Acme Corp"]);
        let token = run_cli(
            &database.url,
            &["key", "create", "--org", "acme", "--role", "admin"],
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut command = std::process::Command::new(BIN);
        command
            .arg("serve")
            .env("DATABASE_URL", &database.url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(if std::env::var_os("TEST_LOG").is_some() {
                std::process::Stdio::inherit()
            } else {
                std::process::Stdio::null()
            });
        if let Some(limit) = open_files {
            // SAFETY: between fork and exec, only the async-signal-safe
            // setrlimit runs.
            unsafe {
                command.pre_exec(move || {
                    let files = libc::rlimit {
                        rlim_cur: limit,
                        rlim_max: limit,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &files) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        }
        let child = command.spawn().expect("service starts");
        let process = ServiceProcess {
            api: format!("http://127.0.0.1:{port}"),
            child,
        };
        process.wait_for_health(200).await;
        Service {
            process,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            token,
            _database: database,
        }
    }

    /// CPU seconds the process has used so far (user and system).
    fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.process.child.id()))
            .expect("the service's /proc/<pid>/stat");
        // Fields after the command name, which is in parentheses.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .unwrap()
            .1
            .split_whitespace()
            .collect();
        let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
        // SAFETY: sysconf has no preconditions.
        ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
    }
}

/// This test process holds more than 1,100 sockets: lift its own soft
/// open-files limit towards its hard one.
fn raise_own_open_files_limit(wanted: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only touch the struct they are given.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit), 0);
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted.min(limit.rlim_max);
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &limit), 0);
        }
    }
    assert!(
        limit.rlim_cur >= wanted,
        "the test needs {wanted} open files; the hard limit is {}",
        limit.rlim_max
    );
}

/// Reads until the server closes the connection (end of file or reset) and
/// returns what it sent; `None` if it is still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let reading = async {
        let mut buf = [0u8; 8192];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, reading).await.ok()?;
    Some(received)
}

/// One HTTP/1.1 answer: status, headers (lowercase names) and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|err| panic!("a JSON body ({err}): {self:?}"))
    }

    /// Asserts the documented error shape with this status and code.
    fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{self:?}");
        assert!(
            self.header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{self:?}"
        );
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].is_string(), "{body}");
        assert!(body["error"].get("field").is_some(), "{body}");
    }
}

/// Reads one answer framed by `Content-Length` (as every answer of the
/// service is), leaving the connection open.
async fn read_answer(stream: &mut TcpStream) -> Answer {
    read_answers(stream, 1).await.remove(0)
}

/// Reads `count` answers in a row: pipelined answers may arrive in one read,
/// so the bytes after one answer are the start of the next.
async fn read_answers(stream: &mut TcpStream, count: usize) -> Vec<Answer> {
    let mut received = Vec::new();
    let mut buf = [0u8; 8192];
    let mut answers = Vec::with_capacity(count);
    while answers.len() < count {
        let head_end = loop {
            if let Some(end) = received.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = stream.read(&mut buf).await.expect("reading an answer");
            assert!(n > 0, "closed before an answer: {received:?}");
            received.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8(received[..head_end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line.split_once(':').unwrap();
                (name.trim().to_ascii_lowercase(), value.trim().to_owned())
            })
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .expect("a Content-Length");
        while received.len() < head_end + 4 + length {
            let n = stream.read(&mut buf).await.expect("reading a body");
            assert!(n > 0, "closed in the middle of a body");
            received.extend_from_slice(&buf[..n]);
        }
        let rest = received.split_off(head_end + 4 + length);
        let body = received[head_end + 4..].to_vec();
        received = rest;
        answers.push(Answer {
            status,
            headers,
            body,
        });
    }
    answers
}

/// Parses a whole answer out of what a closed connection sent.
fn parse_answer(received: &[u8]) -> Option<u16> {
    let text = String::from_utf8_lossy(received);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

async fn healthz_on_a_new_connection(addr: SocketAddr) -> Answer {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    read_answer(&mut stream).await
}

/// The issue's acceptance test, run with the default cap (the open-files
/// limit less a reserve) and with a cap above what the process can open,
/// where `accept` itself fails (EMFILE).
async fn idle_flood_leaves_the_service_answering(max_connections: Option<&str>) {
    const IDLE: u64 = 3;
    // The floods take turns with each other and with the heaviest loads:
    // each opens 1,100 sockets and then times an answer, and run at once on
    // a 2-core machine each one's flood competes with the other's timed
    // request (the second was missed twice in about ten runs of the whole
    // suite; with the 64 writers beside it, once in CI).
    let _alone = super::helpers::MACHINE_LOAD.lock().await;
    raise_own_open_files_limit(4096);
    let idle = IDLE.to_string();
    let mut env = vec![("KEEP_ALIVE_IDLE_SECONDS", idle.as_str())];
    if let Some(cap) = max_connections {
        env.push(("MAX_CONNECTIONS", cap));
    }
    let mut service = Service::start(&env, Some(1024)).await;
    let cpu_before = service.cpu_seconds();
    let started = Instant::now();

    let mut idle_sockets = Vec::with_capacity(1100);
    for _ in 0..1100 {
        idle_sockets.push(TcpStream::connect(service.addr).await.expect("connects"));
    }

    // A client arriving after the flood is served, within a second.
    let answer = tokio::time::timeout(
        Duration::from_secs(1),
        healthz_on_a_new_connection(service.addr),
    )
    .await
    .expect("/healthz answers within a second while 1,100 idle connections are held");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["status"], "ok");

    // Every idle socket is closed: the oldest to make room, the others by
    // the idle timeout (generous bound on a loaded machine).
    let deadline = started + Duration::from_secs(IDLE + 15);
    for (index, socket) in idle_sockets.iter_mut().enumerate() {
        let left = deadline.saturating_duration_since(Instant::now());
        let received = read_until_closed(socket, left).await;
        assert_eq!(
            received.as_deref(),
            Some(&b""[..]),
            "idle connection {index} still open {:?} after the flood began",
            started.elapsed()
        );
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = service.cpu_seconds() - cpu_before;
    // Retrying `accept` in a hot loop used a whole core.
    assert!(
        cpu < wall * 0.5,
        "the service used {cpu:.2} s of CPU in {wall:.2} s"
    );
    assert!(service.process.is_running());
    drop(idle_sockets);
    let answer = healthz_on_a_new_connection(service.addr).await;
    assert_eq!(answer.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_cannot_starve_the_service_under_1024_open_files() {
    idle_flood_leaves_the_service_answering(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_closes_idle_connections_and_backs_off() {
    // A cap the process cannot reach: `accept` fails with EMFILE first.
    idle_flood_leaves_the_service_answering(Some("5000")).await;
}

/// Sends `bytes` one at a time, 100 ms apart, then keeps trickling `then`
/// forever; stops at the first write error.
async fn trickle(mut writer: tokio::net::tcp::OwnedWriteHalf, bytes: Vec<u8>, then: u8) {
    for byte in bytes.into_iter().chain(std::iter::repeat(then)) {
        if writer.write_all(&[byte]).await.is_err() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn slow_request_heads_are_cut_off_after_the_header_read_timeout() {
    // The idle timeout is long: only the header timeout can close these.
    let service = Service::start(
        &[
            ("HEADER_READ_TIMEOUT_SECONDS", "1"),
            ("KEEP_ALIVE_IDLE_SECONDS", "60"),
        ],
        None,
    )
    .await;
    let heads: [&[u8]; 3] = [
        // A byte at a time from the first one: the protocol (HTTP/1 or 2)
        // is not even known yet.
        b"GET /healthz HTTP/1.1\r\nX-Slow: ",
        // The request line at once, then an endless header.
        b"",
        // A keep-alive connection whose second request is slow.
        b"",
    ];
    for (case, slow_part) in heads.into_iter().enumerate() {
        let mut stream = TcpStream::connect(service.addr).await.unwrap();
        match case {
            1 => stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nX-Slow: ")
                .await
                .unwrap(),
            2 => {
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
                    .await
                    .unwrap();
                assert_eq!(read_answer(&mut stream).await.status, 200);
                stream
                    .write_all(b"GET /healthz HTTP/1.1\r\nX-Slow: ")
                    .await
                    .unwrap();
            }
            _ => {}
        }
        let (mut reader, writer) = stream.into_split();
        let sender = tokio::spawn(trickle(writer, slow_part.to_vec(), b'a'));
        let mut received = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), async {
            let mut buf = [0u8; 1024];
            loop {
                match reader.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => received.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        sender.abort();
        assert!(
            closed.is_ok(),
            "case {case}: a head trickling in stayed open past the header timeout"
        );
        assert!(
            received.is_empty(),
            "case {case}: the slow request was answered: {:?}",
            String::from_utf8_lossy(&received)
        );
    }
    // The service itself is fine.
    assert_eq!(healthz_on_a_new_connection(service.addr).await.status, 200);
}

#[tokio::test]
async fn a_stalled_body_is_cut_off_after_the_body_read_timeout() {
    let service = Service::start(
        &[
            ("BODY_READ_TIMEOUT_SECONDS", "1"),
            ("HEADER_READ_TIMEOUT_SECONDS", "60"),
            ("KEEP_ALIVE_IDLE_SECONDS", "60"),
        ],
        None,
    )
    .await;
    let token = &service.token;
    let requests = [
        // A JSON body that stops halfway.
        format!(
            "POST /api/v1/encounters HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{{\"candidate_id\": "
        ),
        // A batch, chunked, that stops after its first chunk.
        format!(
            "POST /api/v1/encounters/batch HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n[{{\r\n"
        ),
        // The NDJSON import, whose stream is unbounded: a stall still ends it.
        format!(
            "POST /api/v1/encounters/import HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{{\"c\r\n"
        ),
    ];
    for request in requests {
        let mut stream = TcpStream::connect(service.addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let received = read_until_closed(&mut stream, Duration::from_secs(10)).await;
        let path = request.split(' ').nth(1).unwrap();
        let received =
            received.unwrap_or_else(|| panic!("{path}: a stalled body kept its connection open"));
        // Each answers 408 in the error shape, then closes.
        let text = String::from_utf8_lossy(&received);
        assert_eq!(parse_answer(&received), Some(408), "{path}: {text}");
        assert!(
            text.contains(r#""code":"request_timeout""#),
            "{path}: {text}"
        );
        assert!(
            text.contains("no byte of the request body"),
            "{path}: {text}"
        );
    }
    assert_eq!(healthz_on_a_new_connection(service.addr).await.status, 200);
}

#[tokio::test]
async fn a_body_declared_larger_than_the_limit_gets_413_at_once() {
    let app = spawn_app().await;
    let addr: SocketAddr = app.base_url.trim_start_matches("http://").parse().unwrap();
    let json_limit = 1024 * 1024;
    let cases = [
        ("/api/v1/encounters", "10000000000", ""),
        ("/api/v1/encounters/batch", "10000000000", ""),
        // One byte over each route's own limit.
        ("/api/v1/encounters", &(json_limit + 1).to_string(), ""),
        ("/api/v1/touchpoints", &(json_limit + 1).to_string(), ""),
        (
            "/api/v1/encounters/batch",
            &(16 * json_limit + 1).to_string(),
            "",
        ),
        // A client that waits for `100 Continue` before sending is told at once.
        (
            "/api/v1/encounters",
            "10000000000",
            "Expect: 100-continue\r\n",
        ),
    ];
    for (path, length, extra) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n",
            app.admin
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // No byte of the body is sent: the answer must not wait for one.
        let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut stream))
            .await
            .unwrap_or_else(|_| panic!("{path} with Content-Length {length}: no answer"));
        answer.assert_error(413, "payload_too_large");
        // hyper does not read the unwanted body: the connection closes.
        let rest = read_until_closed(&mut stream, Duration::from_secs(5)).await;
        assert_eq!(
            rest.as_deref(),
            Some(&b""[..]),
            "{path}: the connection stayed open"
        );
    }

    // A body within the limit is still read (and judged on its content).
    let body = r#"{"name": ""}"#;
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "POST /api/v1/touchpoints HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        app.admin,
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    answer.assert_error(422, "validation_failed");
}

#[tokio::test]
async fn keep_alive_serves_several_requests_on_one_connection() {
    // Long enough that a test starved of CPU (the suite runs in parallel,
    // beside a database) still sends its next request in time.
    let service = Service::start(&[("KEEP_ALIVE_IDLE_SECONDS", "4")], None).await;
    let mut stream = TcpStream::connect(service.addr).await.unwrap();
    for _ in 0..3 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
            .await
            .unwrap();
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.json()["status"], "ok");
    }
    let request = format!(
        "GET /api/v1/touchpoints HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\r\n",
        service.token
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.json()["items"].is_array(), "{answer:?}");
    // Two requests sent back to back (pipelined) are both answered.
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\nGET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
        .await
        .unwrap();
    let answers = read_answers(&mut stream, 2).await;
    assert_eq!(answers[0].status, 200);
    assert_eq!(answers[1].status, 200);

    // Then, idle, the connection is closed by the keep-alive timeout.
    let rest = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(rest.as_deref(), Some(&b""[..]));
}

/// Requests hyper refuses before the service sees them. Its answers have
/// no body (README, "Limits"); they must still be 4xx, never a hang or a 500.
#[tokio::test]
async fn malformed_requests_get_a_4xx_and_a_closed_connection() {
    let app = spawn_app().await;
    let addr: SocketAddr = app.base_url.trim_start_matches("http://").parse().unwrap();
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    let long_path = format!("/healthz?{}", "a".repeat(70_000));
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "a control byte in a header name",
            b"GET /healthz HTTP/1.1\r\nHost: test\r\nBad\x01Name: v\r\n\r\n".to_vec(),
            400,
        ),
        (
            "conflicting Content-Length",
            b"POST /api/v1/touchpoints HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n{}"
                .to_vec(),
            400,
        ),
        (
            "a Content-Length that is not a number",
            b"POST /api/v1/touchpoints HTTP/1.1\r\nHost: test\r\nContent-Length: 5x\r\n\r\n".to_vec(),
            400,
        ),
        (
            "more than 100 headers",
            format!("GET /healthz HTTP/1.1\r\nHost: test\r\n{many_headers}\r\n").into_bytes(),
            431,
        ),
        (
            "a URI of 70,000 bytes",
            format!("GET {long_path} HTTP/1.1\r\nHost: test\r\n\r\n").into_bytes(),
            414,
        ),
    ];
    for (case, request, status) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&request).await.unwrap();
        let received = read_until_closed(&mut stream, Duration::from_secs(5))
            .await
            .unwrap_or_else(|| panic!("{case}: the connection stayed open"));
        assert_eq!(
            parse_answer(&received),
            Some(status),
            "{case}: {}",
            String::from_utf8_lossy(&received)
        );
    }
    // None of it hurt the service.
    assert_eq!(healthz_on_a_new_connection(addr).await.status, 200);
}

#[tokio::test]
async fn sigterm_closes_idle_connections_and_lets_a_request_in_progress_finish() {
    let mut service = Service::start(&[("KEEP_ALIVE_IDLE_SECONDS", "60")], None).await;
    let mut idle = TcpStream::connect(service.addr).await.unwrap();
    // A request whose body is half sent when the signal comes.
    let body = r#"{"name": "Careers page", "kind": "employer_created", "channel": "careers_site", "stage": "awareness"}"#;
    let (first, second) = body.split_at(20);
    let mut busy = TcpStream::connect(service.addr).await.unwrap();
    let head = format!(
        "POST /api/v1/touchpoints HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{first}",
        service.token,
        body.len()
    );
    busy.write_all(head.as_bytes()).await.unwrap();
    // Let the service start reading the body.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let pid = service.process.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let closed = read_until_closed(&mut idle, Duration::from_secs(5)).await;
    assert_eq!(
        closed.as_deref(),
        Some(&b""[..]),
        "an idle connection outlived SIGTERM"
    );
    // No new connection is taken.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(TcpStream::connect(service.addr).await.is_err());

    busy.write_all(second.as_bytes()).await.unwrap();
    let answer = read_answer(&mut busy).await;
    assert_eq!(answer.status, 201, "{answer:?}");
    assert_eq!(answer.json()["name"], "Careers page");
    // Then that connection closes too, and the process exits cleanly.
    let rest = read_until_closed(&mut busy, Duration::from_secs(5)).await;
    assert_eq!(rest.as_deref(), Some(&b""[..]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = service.process.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status:?}");
}
