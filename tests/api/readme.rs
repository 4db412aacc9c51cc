//! Runs the README's curl tour, as written, against the real binary.

use std::{
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_touchpoint-tracker");
const README: &str = include_str!("../../README.md");

/// The shell block between the tour markers.
fn tour_script() -> String {
    let start = README
        .find("<!-- tour:start -->")
        .expect("tour start marker");
    let end = README.find("<!-- tour:end -->").expect("tour end marker");
    let block = &README[start..end];
    let body_start = block.find("```sh\n").expect("sh fence") + "```sh\n".len();
    let body_end = block.rfind("```").expect("closing fence");
    block[body_start..body_end].to_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_until_healthy(api: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(response) = reqwest::get(format!("{api}/healthz")).await {
            if response.status() == 200 {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the service did not become healthy");
}

#[tokio::test]
async fn readme_tour_works_as_written_and_sigterm_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let database_url = format!("sqlite://{}/readme.db", dir.path().display());
    let api = format!("http://127.0.0.1:{}", free_port());
    let mut server = Server(
        Command::new(BIN)
            .env("DATABASE_URL", &database_url)
            .env("BIND_ADDR", api.trim_start_matches("http://"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("service starts"),
    );
    wait_until_healthy(&api).await;

    // `cargo run --release -q -- <args>` in the README runs this test's
    // build of the same binary.
    let preamble = r#"
set -euo pipefail
cargo() {
    [ "$1 $2 $3 $4" = "run --release -q --" ] || { echo "unexpected cargo call: $*" >&2; exit 1; }
    shift 4
    "$BIN" "$@"
}
"#;
    let output = Command::new("bash")
        .arg("-c")
        .arg(format!("{preamble}\n{}", tour_script()))
        .env("API", &api)
        .env("BIN", BIN)
        .env("DATABASE_URL", &database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "tour failed:\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );

    let journey: Value =
        serde_json::from_str(&stdout[stdout.rfind("{\"candidate_id\"").unwrap()..]).unwrap();
    assert_eq!(journey["first_score"], 7);
    assert_eq!(journey["latest_score"], 3);
    assert_eq!(journey["overall_shift"], -4);
    let steps = journey["steps"].as_array().unwrap();
    assert_eq!(steps[0]["touchpoint_name"], "Careers site");
    assert_eq!(steps[1]["touchpoint_name"], "Interviewer no-show");
    assert_eq!(steps[1]["kind"], "unexpected");
    assert_eq!(steps[1]["shift"], -4);

    // SIGTERM: a graceful exit with status 0.
    let pid = server.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = server.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}
