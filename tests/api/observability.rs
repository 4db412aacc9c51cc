//! Observability: the request id (in the answer and in every log line of
//! the request), `/metrics` in the OpenMetrics text format with counts that
//! match the requests made, and `/healthz` answering 503 once the encounter
//! writer has stopped. The service runs as its own process, so that its log
//! and its metrics are its own.

use std::collections::{BTreeMap, HashMap};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use touchpoint_tracker::config::{BodyLimits, Limits, RateLimit};

use super::helpers::{fresh_database, run_cli, spawn_app_with, ServiceProcess, TestDatabase};

const REQUEST_ID: &str = "x-request-id";

/// A generated request id: 128 bits in hex.
fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The service as a process, with an organization, its keys, a touchpoint
/// and a candidate; its log (JSON) in a file and its metrics on a listener
/// of their own.
struct Observed {
    service: ServiceProcess,
    metrics_url: String,
    admin: String,
    recruiter: String,
    organization_id: i64,
    touchpoint: i64,
    candidate: i64,
    client: reqwest::Client,
    log_path: std::path::PathBuf,
    _log_dir: TempDir,
    _database: TestDatabase,
}

impl Observed {
    async fn start(extra_env: &[(&str, &str)]) -> Self {
        let database = fresh_database().await;
        run_cli(&database.url, &["org", "create", "acme", "Acme Corp"]);
        let admin = run_cli(
            &database.url,
            &["key", "create", "--org", "acme", "--role", "admin"],
        );
        let recruiter = run_cli(
            &database.url,
            &["key", "create", "--org", "acme", "--role", "recruiter"],
        );
        let log_dir = tempfile::tempdir().unwrap();
        let log_path = log_dir.path().join("service.log");
        let metrics_bind = format!("127.0.0.1:{}", free_port());
        let mut env = vec![
            ("LOG_FORMAT", "json"),
            // The writer's per-group line is at debug.
            ("RUST_LOG", "info,touchpoint_tracker=debug"),
            ("METRICS_BIND_ADDR", metrics_bind.as_str()),
        ];
        env.extend_from_slice(extra_env);
        let service = ServiceProcess::start_logging_to(
            &database.url,
            &env,
            std::fs::File::create(&log_path).unwrap(),
        );
        service.wait_for_health(200).await;
        let mut observed = Observed {
            service,
            metrics_url: format!("http://{metrics_bind}/metrics"),
            admin,
            recruiter,
            organization_id: 0,
            touchpoint: 0,
            candidate: 0,
            client: reqwest::Client::new(),
            log_path,
            _log_dir: log_dir,
            _database: database,
        };
        let admin = observed.admin.clone();
        let recruiter = observed.recruiter.clone();
        let (status, organization) = observed
            .send(Method::GET, "/api/v1/organization", Some(&admin), None)
            .await;
        assert_eq!(status, 200);
        observed.organization_id = organization["id"].as_i64().unwrap();
        let (status, touchpoint) = observed
            .send(
                Method::POST,
                "/api/v1/touchpoints",
                Some(&admin),
                Some(
                    json!({"name": "Onsite interview", "kind": "employer_created",
                            "channel": "interview", "stage": "interview"}),
                ),
            )
            .await;
        assert_eq!(status, 201, "{touchpoint}");
        observed.touchpoint = touchpoint["id"].as_i64().unwrap();
        let (status, candidate) = observed
            .send(
                Method::POST,
                "/api/v1/candidates",
                Some(&recruiter),
                Some(json!({"external_ref": "ATS-1"})),
            )
            .await;
        assert_eq!(status, 201, "{candidate}");
        observed.candidate = candidate["id"].as_i64().unwrap();
        observed
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.service.api)
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let (status, _, body) = self.send_with_id(method, path, token, body, None).await;
        (status, body)
    }

    /// Sends a request, with `X-Request-Id: request_id` when given; returns
    /// the status, the answer's `X-Request-Id` and the body.
    async fn send_with_id(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        request_id: Option<&str>,
    ) -> (u16, String, Value) {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        if let Some(id) = request_id {
            request = request.header(REQUEST_ID, id);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let id = answer_id(&response);
        let text = response.text().await.unwrap();
        (
            status,
            id,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    fn encounter(&self, occurred_at: &str) -> Value {
        json!({"candidate_id": self.candidate, "touchpoint_id": self.touchpoint,
               "occurred_at": occurred_at, "score": 7})
    }

    /// Stops the service and returns its log, one JSON object a line.
    async fn log(&mut self) -> Vec<Value> {
        assert!(self.service.terminate().await.success());
        std::fs::read_to_string(&self.log_path)
            .unwrap()
            .lines()
            .filter(|line| line.starts_with('{'))
            .map(|line| serde_json::from_str(line).expect("a JSON log line"))
            .collect()
    }
}

fn answer_id(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(REQUEST_ID)
        .expect("every answer has an X-Request-Id")
        .to_str()
        .unwrap()
        .to_owned()
}

/// The log lines logged in the span of the request with this id.
fn lines_of<'a>(log: &'a [Value], request_id: &str) -> Vec<&'a Value> {
    log.iter()
        .filter(|line| {
            line["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|span| span["name"] == "request" && span["request_id"] == request_id)
            })
        })
        .collect()
}

/// The request span's fields on a line.
fn request_span(line: &Value) -> &Value {
    line["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|span| span["name"] == "request")
        .unwrap()
}

#[tokio::test]
async fn a_request_is_named_by_its_id_in_its_answer_and_in_its_log_lines() {
    let mut observed = Observed::start(&[]).await;
    let recruiter = observed.recruiter.clone();
    let admin = observed.admin.clone();

    // The caller's id is kept: its answer and its lines, down to the
    // encounter writer's, carry it.
    let given = "obs-test.encounter:1";
    let (status, echoed, _) = observed
        .send_with_id(
            Method::POST,
            "/api/v1/encounters",
            Some(&recruiter),
            Some(observed.encounter("2026-03-02T10:00:00Z")),
            Some(given),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(echoed, given);

    // An insane id (a space, a quote) is replaced, not refused.
    let insane = "no \"spaces\" here";
    let (status, replaced, _) = observed
        .send_with_id(
            Method::GET,
            "/api/v1/touchpoints",
            Some(&admin),
            None,
            Some(insane),
        )
        .await;
    assert_eq!(status, 200);
    assert!(is_generated(&replaced), "{replaced}");
    let too_long = "a".repeat(129);
    let (_, replaced_long, _) = observed
        .send_with_id(
            Method::GET,
            "/api/v1/touchpoints",
            Some(&admin),
            None,
            Some(&too_long),
        )
        .await;
    assert!(is_generated(&replaced_long), "{replaced_long}");
    let longest = "b".repeat(128);
    let (_, kept, _) = observed
        .send_with_id(
            Method::GET,
            "/api/v1/touchpoints",
            Some(&admin),
            None,
            Some(&longest),
        )
        .await;
    assert_eq!(kept, longest);

    // Without one, the service makes one; a refusal has one too.
    let (status, generated, _) = observed
        .send_with_id(
            Method::GET,
            "/api/v1/candidates/999999",
            Some(&admin),
            None,
            None,
        )
        .await;
    assert_eq!(status, 404);
    assert!(is_generated(&generated), "{generated}");
    assert_ne!(generated, replaced);
    let (status, unauthenticated, _) = observed
        .send_with_id(
            Method::GET,
            "/api/v1/touchpoints",
            Some("tpt_not-a-key"),
            None,
            Some("obs-test-401"),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(unauthenticated, "obs-test-401");

    let log = observed.log().await;
    let organization_id = observed.organization_id;

    let lines = lines_of(&log, given);
    let summary = lines
        .iter()
        .find(|line| line["fields"]["message"] == "request")
        .unwrap_or_else(|| panic!("no request line for {given}: {lines:#?}"));
    assert_eq!(summary["fields"]["status"], 201);
    assert_eq!(summary["fields"]["path"], "/api/v1/encounters");
    let span = request_span(summary);
    assert_eq!(span["operation"], "create_encounter");
    assert_eq!(span["organization_id"], organization_id);
    // The encounter writer committed it on its own thread or task: its line
    // for this write is in the request's span.
    assert!(
        lines
            .iter()
            .any(|line| line["fields"]["message"] == "group commit"
                && line["fields"]["requests"] == 1),
        "the writer's line does not name the request: {lines:#?}"
    );

    // The replaced id is the one logged; the insane one is nowhere.
    let lines = lines_of(&log, &replaced);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["fields"]["status"], 200);
    assert_eq!(request_span(lines[0])["operation"], "list_touchpoints");
    assert_eq!(request_span(lines[0])["organization_id"], organization_id);
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("spaces"), "an insane id reached the log");
    assert_eq!(lines_of(&log, &longest).len(), 1);

    let lines = lines_of(&log, &generated);
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["fields"]["status"], 404);
    assert_eq!(request_span(lines[0])["operation"], "get_candidate");

    // A caller that is not authenticated has no organization.
    let lines = lines_of(&log, "obs-test-401");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert_eq!(lines[0]["fields"]["status"], 401);
    assert_eq!(request_span(lines[0])["operation"], "list_touchpoints");
    assert!(request_span(lines[0]).get("organization_id").is_none());

    // Every request line names its request; no line names a token.
    for line in log.iter().filter(|l| l["fields"]["message"] == "request") {
        let id = request_span(line)["request_id"].as_str().unwrap();
        assert!(!id.is_empty());
    }
    assert!(!text.contains(&admin) && !text.contains(&recruiter));
}

#[tokio::test]
async fn every_answer_carries_a_request_id() {
    let app = spawn_app_with(Limits {
        body: BodyLimits {
            json_bytes: 512,
            batch_bytes: 1024,
            import_line_bytes: 256,
        },
        rate: Some(RateLimit {
            per_second: 0.01,
            burst: 4.0,
        }),
        ..Default::default()
    })
    .await;
    let send = |method: Method, path: &str, token: Option<&str>| {
        let mut request = app.client.request(method, app.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request
    };
    let big = json!({"name": "n".repeat(600), "kind": "true", "channel": "press",
                     "stage": "awareness"});
    let long_line = format!("{}\n", json!({"note": "x".repeat(300)}));
    let mut requests = vec![
        (send(Method::GET, "/healthz", None), 200),
        (send(Method::GET, "/api/v1/touchpoints", None), 401),
        (send(Method::GET, "/no/such/path", None), 404),
        (
            send(Method::GET, "/api/v1/encounters/+1", Some(&app.admin)),
            404,
        ),
        (send(Method::DELETE, "/healthz", None), 405),
        (
            send(Method::POST, "/api/v1/touchpoints", Some(&app.admin)).json(&big),
            413,
        ),
        (
            send(Method::POST, "/api/v1/touchpoints", Some(&app.admin))
                .header("content-type", "application/json")
                .body("{"),
            400,
        ),
        (
            send(
                Method::POST,
                "/api/v1/encounters/batch",
                Some(&app.recruiter),
            )
            .json(&vec![big.clone(); 3]),
            413,
        ),
        (
            send(
                Method::POST,
                "/api/v1/encounters/import",
                Some(&app.recruiter),
            )
            .header("content-type", "application/x-ndjson")
            .body(long_line),
            422,
        ),
    ];
    for _ in 0..4 {
        requests.push((send(Method::GET, "/api/v1/keys", Some(&app.reporter)), 403));
    }
    requests.push((send(Method::GET, "/api/v1/keys", Some(&app.reporter)), 429));
    let mut seen = Vec::new();
    for (request, status) in requests {
        let response = request.send().await.unwrap();
        let description = format!("{} {}", response.status(), response.url());
        assert_eq!(response.status().as_u16(), status, "{description}");
        let id = answer_id(&response);
        assert!(is_generated(&id), "{description}: {id}");
        assert!(!seen.contains(&id), "{description}: {id} again");
        seen.push(id);
    }
    // A caller's id comes back on a refusal too.
    let response = send(Method::POST, "/api/v1/touchpoints", Some(&app.admin))
        .header(REQUEST_ID, "client-413")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(answer_id(&response), "client-413");
}

/// One sample of an OpenMetrics text exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// An exposition read strictly: every line is a `# HELP`, `# TYPE`,
/// `# UNIT` or a sample of the family declared before it, with the
/// suffixes its type allows; it ends with `# EOF`; histogram buckets are
/// cumulative and their `+Inf` bucket is the count.
struct Exposition {
    types: HashMap<String, String>,
    units: HashMap<String, String>,
    samples: Vec<Sample>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut types = HashMap::new();
        let mut units = HashMap::new();
        let mut samples = Vec::new();
        let mut family: Option<(String, String)> = None;
        let body = text
            .strip_suffix("# EOF\n")
            .expect("the exposition ends with # EOF");
        for line in body.lines() {
            if let Some(comment) = line.strip_prefix("# ") {
                let mut parts = comment.splitn(3, ' ');
                let (kind, name, rest) = (
                    parts.next().unwrap(),
                    parts.next().expect("a metric name").to_owned(),
                    parts.next().expect("a value").to_owned(),
                );
                assert!(is_metric_name(&name), "{line}");
                match kind {
                    "HELP" => assert!(!rest.is_empty(), "{line}"),
                    "TYPE" => {
                        assert!(
                            ["counter", "gauge", "histogram"].contains(&rest.as_str()),
                            "{line}"
                        );
                        assert!(types.insert(name.clone(), rest.clone()).is_none(), "{line}");
                        family = Some((name, rest));
                    }
                    "UNIT" => {
                        assert!(name.ends_with(&format!("_{rest}")), "{line}");
                        units.insert(name, rest);
                    }
                    _ => panic!("unknown comment: {line}"),
                }
                continue;
            }
            let sample = parse_sample(line);
            let (family_name, family_type) = family.as_ref().expect("a sample after its TYPE");
            let suffix = sample
                .name
                .strip_prefix(family_name.as_str())
                .unwrap_or_else(|| panic!("{line} outside family {family_name}"));
            let allowed: &[&str] = match family_type.as_str() {
                "counter" => &["_total", "_created"],
                "gauge" => &[""],
                _ => &["_bucket", "_sum", "_count", "_created"],
            };
            assert!(allowed.contains(&suffix), "{line}: {family_type}");
            samples.push(sample);
        }
        let exposition = Exposition {
            types,
            units,
            samples,
        };
        exposition.check_histograms();
        exposition
    }

    fn check_histograms(&self) {
        for (family, kind) in &self.types {
            if kind != "histogram" {
                continue;
            }
            let mut series: BTreeMap<BTreeMap<String, String>, Vec<(f64, f64)>> = BTreeMap::new();
            for sample in self
                .samples
                .iter()
                .filter(|s| s.name == format!("{family}_bucket"))
            {
                let mut labels = sample.labels.clone();
                let le = labels.remove("le").expect("a bucket has le");
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                series.entry(labels).or_default().push((le, sample.value));
            }
            for (labels, buckets) in series {
                assert!(
                    buckets.windows(2).all(|w| w[0].0 < w[1].0),
                    "{family} {labels:?}"
                );
                assert!(
                    buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                    "{family} {labels:?}"
                );
                let (last_le, last) = *buckets.last().unwrap();
                assert_eq!(last_le, f64::INFINITY, "{family} has no +Inf bucket");
                let pairs: Vec<(&str, &str)> = labels
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                assert_eq!(Some(last), self.value(&format!("{family}_count"), &pairs));
            }
        }
    }

    /// The value of the sample with exactly these labels.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|s| s.name == name && s.labels == labels)
            .map(|s| s.value)
    }
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Sample {
    let name_end = line
        .find(['{', ' '])
        .unwrap_or_else(|| panic!("not a sample: {line}"));
    let name = &line[..name_end];
    assert!(is_metric_name(name), "{line}");
    let mut rest = &line[name_end..];
    let mut labels = BTreeMap::new();
    if let Some(mut inner) = rest.strip_prefix('{') {
        loop {
            let (key, after) = inner
                .split_once("=\"")
                .unwrap_or_else(|| panic!("label=\"value\" expected: {line}"));
            assert!(is_metric_name(key), "{line}");
            let mut value = String::new();
            let mut escaped = false;
            let mut end = None;
            for (i, c) in after.char_indices() {
                match (escaped, c) {
                    (true, 'n') => value.push('\n'),
                    (true, '\\' | '"') => value.push(c),
                    (true, _) => panic!("bad escape in {line}"),
                    (false, '\\') => {}
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    (false, _) => value.push(c),
                }
                escaped = !escaped && c == '\\';
            }
            let end = end.unwrap_or_else(|| panic!("an open label value: {line}"));
            assert!(labels.insert(key.to_owned(), value).is_none(), "{line}");
            let after = &after[end + 1..];
            if let Some(next) = after.strip_prefix(',') {
                inner = next;
            } else if let Some(next) = after.strip_prefix('}') {
                rest = next;
                break;
            } else {
                panic!("unexpected {after:?} in {line}");
            }
        }
    }
    let value = rest
        .strip_prefix(' ')
        .unwrap_or_else(|| panic!("no value: {line}"));
    assert!(!value.contains(' '), "a timestamp or junk: {line}");
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().unwrap_or_else(|_| panic!("not a number: {line}")),
    };
    Sample {
        name: name.to_owned(),
        labels,
        value,
    }
}

#[tokio::test]
async fn metrics_count_the_requests_made_in_the_openmetrics_text_format() {
    let observed = Observed::start(&[("DB_MAX_CONNECTIONS", "7")]).await;
    let admin = observed.admin.clone();
    let recruiter = observed.recruiter.clone();
    for _ in 0..3 {
        let (status, _) = observed
            .send(Method::GET, "/api/v1/touchpoints", Some(&admin), None)
            .await;
        assert_eq!(status, 200);
    }
    let (status, _) = observed
        .send(Method::GET, "/api/v1/touchpoints", None, None)
        .await;
    assert_eq!(status, 401);
    for path in ["/no/such/path", "/api/v1/encounters/+1"] {
        let (status, _) = observed.send(Method::GET, path, Some(&admin), None).await;
        assert_eq!(status, 404);
    }
    // One at a time: each is a group of one.
    for day in ["2026-03-02T10:00:00Z", "2026-03-03T10:00:00Z"] {
        let (status, _) = observed
            .send(
                Method::POST,
                "/api/v1/encounters",
                Some(&recruiter),
                Some(observed.encounter(day)),
            )
            .await;
        assert_eq!(status, 201);
    }
    // The main listener does not serve the metrics.
    let (status, body) = observed
        .send(Method::GET, "/metrics", Some(&admin), None)
        .await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["code"], "not_found");

    let response = observed
        .client
        .get(&observed.metrics_url)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    let text = response.text().await.unwrap();
    let metrics = Exposition::parse(&text);

    for (family, kind) in [
        ("http_requests", "counter"),
        ("http_request_duration_seconds", "histogram"),
        ("encounter_writer_queue_depth", "gauge"),
        ("encounter_writer_group_size", "histogram"),
        ("db_pool_connections", "gauge"),
        ("db_pool_max_connections", "gauge"),
    ] {
        assert_eq!(
            metrics.types.get(family).map(String::as_str),
            Some(kind),
            "{family}\n{text}"
        );
    }
    assert_eq!(
        metrics
            .units
            .get("http_request_duration_seconds")
            .map(String::as_str),
        Some("seconds")
    );

    let count = |operation: &str, status: &str| {
        metrics.value(
            "http_requests_total",
            &[("operation", operation), ("status", status)],
        )
    };
    assert_eq!(count("list_touchpoints", "200"), Some(3.0), "{text}");
    assert_eq!(count("list_touchpoints", "401"), Some(1.0), "{text}");
    assert_eq!(count("create_touchpoint", "201"), Some(1.0), "{text}");
    assert_eq!(count("create_candidate", "201"), Some(1.0), "{text}");
    assert_eq!(count("get_organization", "200"), Some(1.0), "{text}");
    assert_eq!(count("create_encounter", "201"), Some(2.0), "{text}");
    // Unknown paths, refused id spellings and the main listener's /metrics:
    // one label, never the path.
    assert_eq!(count("other", "404"), Some(3.0), "{text}");
    assert!(count("get_health", "200").is_some_and(|n| n >= 1.0));
    assert!(!text.contains("/no/such/path"));
    let latency = |suffix: &str, extra: &[(&'static str, &'static str)]| {
        let mut labels = vec![("operation", "list_touchpoints"), ("status", "200")];
        labels.extend_from_slice(extra);
        metrics.value(&format!("http_request_duration_seconds{suffix}"), &labels)
    };
    assert_eq!(latency("_count", &[]), Some(3.0));
    assert_eq!(latency("_bucket", &[("le", "+Inf")]), Some(3.0));
    assert!(latency("_sum", &[]).is_some_and(|sum| sum > 0.0 && sum < 30.0));

    assert_eq!(
        metrics.value("encounter_writer_group_size_count", &[]),
        Some(2.0)
    );
    assert_eq!(
        metrics.value("encounter_writer_group_size_sum", &[]),
        Some(2.0)
    );
    assert_eq!(
        metrics.value("encounter_writer_group_size_bucket", &[("le", "1.0")]),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metrics.value("encounter_writer_queue_depth", &[]),
        Some(0.0)
    );

    assert_eq!(metrics.value("db_pool_max_connections", &[]), Some(7.0));
    let idle = metrics
        .value("db_pool_connections", &[("state", "idle")])
        .unwrap();
    let in_use = metrics
        .value("db_pool_connections", &[("state", "in_use")])
        .unwrap();
    assert!(
        idle >= 0.0 && in_use >= 0.0 && idle + in_use <= 7.0,
        "{text}"
    );
    assert!(idle + in_use >= 1.0, "the pool has served requests: {text}");

    // The metrics listener serves nothing else.
    let other = observed
        .client
        .get(observed.metrics_url.replace("/metrics", "/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let post = observed
        .client
        .post(&observed.metrics_url)
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 405);
}

#[tokio::test]
async fn healthz_answers_503_once_the_encounter_writer_has_stopped() {
    // A fault compiled into debug builds only: the writer panics after its
    // first round of work, as a bug in it would.
    let mut observed = Observed::start(&[("TT_TEST_STOP_WRITER_AFTER", "1")]).await;
    let recruiter = observed.recruiter.clone();
    let (status, _) = observed
        .send(
            Method::POST,
            "/api/v1/encounters",
            Some(&recruiter),
            Some(observed.encounter("2026-03-02T10:00:00Z")),
        )
        .await;
    assert_eq!(status, 201, "the writer's first round commits");

    observed.service.wait_for_health(503).await;
    let (status, id, body) = observed
        .send_with_id(Method::GET, "/healthz", None, None, None)
        .await;
    assert_eq!(status, 503);
    assert!(is_generated(&id));
    assert_eq!(body["error"]["code"], "unavailable");
    assert_eq!(body["error"]["message"], "the encounter writer has stopped");
    // Writes fail now, as unavailable (and the instance says so above).
    let (status, body) = observed
        .send(
            Method::POST,
            "/api/v1/encounters",
            Some(&recruiter),
            Some(observed.encounter("2026-03-03T10:00:00Z")),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "unavailable");
    // The process itself still runs, and reads still work.
    assert!(observed.service.is_running());
    let admin = observed.admin.clone();
    let (status, _) = observed
        .send(Method::GET, "/api/v1/touchpoints", Some(&admin), None)
        .await;
    assert_eq!(status, 200);
    let log = observed.log().await;
    assert!(log.iter().any(|line| line["fields"]["message"]
        == "the encounter writer panicked; writes fail until a restart"));
}

#[tokio::test]
async fn a_streamed_answer_is_read_in_its_request_span() {
    // The driver's statement lines are at debug (the later RUST_LOG wins).
    let mut observed = Observed::start(&[("RUST_LOG", "info,sqlx=debug")]).await;
    let recruiter = observed.recruiter.clone();
    let admin = observed.admin.clone();
    // More than one chunk (64 KiB) of export, so that the body goes on
    // being read from the database after the answer's head is sent.
    let mut item = observed.encounter("2026-03-02T10:00:00Z");
    item["note"] = json!("n".repeat(900));
    let (status, _) = observed
        .send(
            Method::POST,
            "/api/v1/encounters/batch",
            Some(&recruiter),
            Some(Value::Array(vec![item; 150])),
        )
        .await;
    assert_eq!(status, 201);
    let (status, echoed, body) = observed
        .send_with_id(
            Method::GET,
            "/api/v1/exports/encounters",
            Some(&admin),
            None,
            Some("obs-export-1"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(echoed, "obs-export-1");
    let text = body.as_str().expect("NDJSON");
    assert_eq!(text.lines().count(), 151, "150 encounters and the end");

    let log = observed.log().await;
    let lines = lines_of(&log, "obs-export-1");
    let head = lines
        .iter()
        .position(|line| line["fields"]["message"] == "request")
        .expect("the request line");
    // The export's query is logged when its rows have all been read: after
    // the head, while the body streamed, and in the request's span.
    assert!(
        lines[head + 1..]
            .iter()
            .any(|line| line["target"] == "sqlx::query"
                && line["fields"]["db.statement"]
                    .as_str()
                    .is_some_and(|sql| sql.contains("FROM encounters"))),
        "{lines:#?}"
    );
}
