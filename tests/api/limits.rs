//! No single request can take the memory, and an import never leaves its
//! client guessing: the trend's cap on points, the import's chunks bounded
//! by bytes, `lines_committed` on every answer of the import, a resumable
//! import under an `Idempotency-Key` after a real fault, and the service's
//! peak memory (VmHWM of the real binary) under hostile requests.

use std::time::Duration;

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::helpers::{
    fresh_database, run_cli, spawn_app, ApiClient, Reply, ServiceProcess, TestApp,
};

const IMPORT: &str = "/api/v1/encounters/import";
const TREND: &str = "/api/v1/reports/perception-trend";

/// One import line: a survey answer, with a note that names the line.
fn line(n: usize, touchpoint: &str) -> String {
    json!({
        "candidate_external_ref": format!("R-{}", n % 100),
        "touchpoint_name": touchpoint,
        "occurred_at": format!("2026-02-{:02}T10:00:00Z", 1 + n % 28),
        "score": (n % 11) as i32,
        "note": format!("line {n}"),
    })
    .to_string()
}

async fn import_with(
    app: &TestApp,
    token: &str,
    content_type: &str,
    key: Option<&str>,
    body: String,
) -> Reply {
    let mut request = app
        .client
        .post(app.url(IMPORT))
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, content_type);
    if let Some(key) = key {
        request = request.header("Idempotency-Key", key);
    }
    TestApp::reply(request.body(body).send().await.expect("request sent")).await
}

async fn import(app: &TestApp, key: Option<&str>, body: String) -> Reply {
    import_with(app, &app.recruiter, "application/x-ndjson", key, body).await
}

async fn execute(app: &TestApp, sql: &str) {
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    let row = app
        .db
        .query_one_raw(Statement::from_string(
            app.db.get_database_backend(),
            sql.to_owned(),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap()
}

/// A real fault under the service: every insert into `encounters` fails.
async fn break_encounter_inserts(app: &TestApp) {
    if app.database.url.starts_with("postgres") {
        execute(
            app,
            "CREATE FUNCTION tt_fault() RETURNS trigger AS $$ \
             BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
        )
        .await;
        execute(
            app,
            "CREATE TRIGGER tt_fault BEFORE INSERT ON encounters \
             FOR EACH STATEMENT EXECUTE FUNCTION tt_fault()",
        )
        .await;
    } else {
        execute(
            app,
            "CREATE TRIGGER tt_fault BEFORE INSERT ON encounters \
             BEGIN SELECT RAISE(ABORT, 'injected fault'); END",
        )
        .await;
    }
}

async fn repair_encounter_inserts(app: &TestApp) {
    if app.database.url.starts_with("postgres") {
        execute(app, "DROP TRIGGER tt_fault ON encounters").await;
    } else {
        execute(app, "DROP TRIGGER tt_fault").await;
    }
}

/// The encounters recorded, as the trend report counts them (February 2026).
async fn encounters_reported(app: &TestApp) -> i64 {
    let reply = app
        .get(
            &format!("{TREND}?from=2026-02-01&to=2026-03-01&bucket=month"),
            &app.reporter,
        )
        .await;
    reply.assert_status(200)["series"][0]["points"][0]["encounters"]
        .as_i64()
        .unwrap()
}

/// Item 4: a chunk fails with a server error after the first one committed.
/// The answer says how many lines are recorded, and the retry with the same
/// key records the rest: every line exactly once.
#[tokio::test]
async fn a_failed_chunk_answers_lines_committed_and_a_keyed_retry_records_each_line_once() {
    let app = spawn_app().await;
    app.touchpoint("Exit survey", "employer_created", "email", "alumni")
        .await;
    let lines: Vec<String> = (0..8000).map(|n| line(n, "Exit survey")).collect();
    let first: String = lines[..5000].iter().map(|l| format!("{l}\n")).collect();
    let rest: String = lines[5000..].iter().map(|l| format!("{l}\n")).collect();

    // The stream is sent in two parts: the fault is set between them, once
    // the first chunk of 5,000 lines has committed.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|part| (part, receiver))
    });
    let request = app
        .client
        .post(app.url(IMPORT))
        .bearer_auth(&app.recruiter)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .header("Idempotency-Key", "survey-2026-02")
        .body(reqwest::Body::wrap_stream(stream))
        .send();
    let answer = tokio::spawn(request);
    sender.send(Ok(first)).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while app.count("encounters").await < 5000 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first chunk never committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    break_encounter_inserts(&app).await;
    sender.send(Ok(rest)).await.unwrap();
    drop(sender);
    let reply = TestApp::reply(answer.await.unwrap().expect("an answer")).await;
    reply.assert_error(500, "internal", None);
    assert_eq!(reply.body["lines_committed"], 5000, "{reply:?}");
    assert_eq!(app.count("encounters").await, 5000);

    // Once repaired, the whole stream again with the same key.
    repair_encounter_inserts(&app).await;
    let all: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let reply = import(&app, Some("survey-2026-02"), all.clone()).await;
    let report = reply.assert_status(200);
    assert_eq!(report["lines_committed"], 8000);
    assert_eq!(report["encounters_created"], 8000);
    assert_eq!(report["candidates_created"], 100);
    // Each line once: through the API, and recounted from the rows.
    assert_eq!(encounters_reported(&app).await, 8000);
    assert_eq!(app.count("encounters").await, 8000);
    assert_eq!(
        scalar(&app, "SELECT COUNT(DISTINCT note) AS n FROM encounters").await,
        8000
    );
    assert_eq!(app.count("candidates").await, 100);

    // A retry of the complete import answers the same and records nothing.
    let again = import(&app, Some("survey-2026-02"), all).await;
    assert_eq!(again.assert_status(200), report);
    assert_eq!(app.count("encounters").await, 8000);
}

/// Item 4: a refused chunk, then the whole stream again, fixed, with the
/// same key; another stream under that key is refused; every answer of the
/// import has `lines_committed`, even those given before it reads a line.
#[tokio::test]
async fn every_import_answer_says_what_is_committed_and_a_key_resumes_only_its_own_stream() {
    let app = spawn_app().await;
    app.touchpoint("Exit survey", "employer_created", "email", "alumni")
        .await;
    let mut lines: Vec<String> = (0..6000).map(|n| line(n, "Exit survey")).collect();
    lines[5500] = line(5500, "No such touchpoint");
    let reply = import(&app, Some("k-1"), lines.join("\n")).await;
    reply.assert_error(422, "invalid_items", None);
    assert_eq!(reply.body["lines_committed"], 5000);
    assert_eq!(reply.body["items"][0]["index"], 5500);
    assert_eq!(reply.body["items"][0]["error"]["code"], "unknown_reference");

    // Another stream under the key: refused, nothing recorded.
    let other: Vec<String> = (1..6000).map(|n| line(n, "Exit survey")).collect();
    let reply = import(&app, Some("k-1"), other.join("\n")).await;
    reply.assert_error(422, "validation_failed", Some("Idempotency-Key"));
    assert_eq!(reply.body["lines_committed"], 0);
    // A prefix of it is another stream too.
    let reply = import(&app, Some("k-1"), lines[..4000].join("\n")).await;
    reply.assert_error(422, "validation_failed", Some("Idempotency-Key"));
    assert_eq!(app.count("encounters").await, 5000);

    // The whole stream, fixed after the recorded lines: only the rest is new.
    lines[5500] = line(5500, "Exit survey");
    let reply = import(&app, Some("k-1"), lines.join("\n")).await;
    let report = reply.assert_status(200);
    assert_eq!(report["lines_committed"], 6000);
    assert_eq!(report["encounters_created"], 6000);
    assert_eq!(app.count("encounters").await, 6000);
    assert_eq!(
        scalar(&app, "SELECT COUNT(DISTINCT note) AS n FROM encounters").await,
        6000
    );

    // A key of another operation is not an import's.
    let single = json!({"candidate_external_ref": "X", "touchpoint_name": "Exit survey",
                        "occurred_at": "2026-02-01T00:00:00Z"});
    let response = app
        .client
        .post(app.url("/api/v1/encounters/batch"))
        .bearer_auth(&app.recruiter)
        .header("Idempotency-Key", "k-2")
        .json(&json!([single]))
        .send()
        .await
        .unwrap();
    TestApp::reply(response).await.assert_status(201);
    let reply = import(&app, Some("k-2"), line(1, "Exit survey")).await;
    reply.assert_error(422, "validation_failed", Some("Idempotency-Key"));
    assert_eq!(reply.body["lines_committed"], 0);

    // Answers given before a line is read.
    let body = line(1, "Exit survey");
    let cases = [
        (
            import_with(
                &app,
                "not-a-key",
                "application/x-ndjson",
                None,
                body.clone(),
            )
            .await,
            401,
        ),
        (
            import_with(
                &app,
                &app.reporter,
                "application/x-ndjson",
                None,
                body.clone(),
            )
            .await,
            403,
        ),
        (
            import_with(&app, &app.recruiter, "application/json", None, body.clone()).await,
            415,
        ),
        (
            import_with(
                &app,
                &app.recruiter,
                "application/x-ndjson",
                Some("has space"),
                body.clone(),
            )
            .await,
            422,
        ),
    ];
    for (reply, status) in cases {
        assert_eq!(reply.status.as_u16(), status, "{reply:?}");
        assert!(reply.body["error"]["code"].is_string(), "{reply:?}");
        assert_eq!(reply.body["lines_committed"], 0, "{reply:?}");
    }
    assert_eq!(app.count("encounters").await, 6001);
}

/// Item 6: the same stream as `application/octet-stream`.
#[tokio::test]
async fn an_import_is_accepted_as_an_octet_stream() {
    let app = spawn_app().await;
    app.touchpoint("Exit survey", "employer_created", "email", "alumni")
        .await;
    let body: String = (0..3).map(|n| line(n, "Exit survey") + "\n").collect();
    let reply = import_with(
        &app,
        &app.recruiter,
        "application/octet-stream",
        Some("octets"),
        body.clone(),
    )
    .await;
    assert_eq!(
        reply.assert_status(200),
        &json!({"lines_committed": 3, "encounters_created": 3, "candidates_created": 3})
    );
    let again = import_with(
        &app,
        &app.recruiter,
        "application/x-ndjson",
        Some("octets"),
        body,
    )
    .await;
    again.assert_status(200);
    assert_eq!(app.count("encounters").await, 3);
}

/// Item 3: a chunk closes at 4 MiB of lines as well as at 5,000 lines, so
/// what an import holds does not grow with its lines' length.
#[tokio::test]
async fn import_chunks_are_bounded_by_bytes() {
    let app = spawn_app().await;
    app.touchpoint("Exit survey", "employer_created", "email", "alumni")
        .await;
    let long = |n: usize| {
        json!({
            "candidate_external_ref": format!("R-{}", n % 100),
            "touchpoint_name": "Exit survey",
            "occurred_at": "2026-02-03T10:00:00Z",
            "note": format!("{n:05}{}", "n".repeat(3995)),
        })
        .to_string()
    };
    let mut lines: Vec<String> = (0..3000).map(long).collect();
    let bytes = lines[0].len();
    lines[2500] = "{broken".to_owned();
    let reply = import(&app, None, lines.join("\n")).await;
    reply.assert_error(422, "invalid_items", None);
    // A chunk ends at the line that reaches 4 MiB.
    let per_chunk = (4 * 1024 * 1024usize).div_ceil(bytes);
    assert!(per_chunk < 2500, "lines of {bytes} bytes");
    let committed = 2500 / per_chunk * per_chunk;
    assert_eq!(
        reply.body["lines_committed"], committed as u64,
        "{per_chunk} a chunk"
    );
    assert_eq!(app.count("encounters").await, committed as i64);
    assert_eq!(reply.body["items"][0]["index"], 2500);
}

/// Item 3: a trend is capped at 20,000 points (series x buckets), refused
/// with a 422 that says how to narrow it, before anything is read.
#[tokio::test]
async fn a_trend_over_the_cap_of_points_is_refused_naming_what_narrows_it() {
    let app = spawn_app().await;
    let mut items = Vec::new();
    for n in 0..30 {
        let channel = if n < 20 { "press" } else { "event" };
        let id = app
            .touchpoint(&format!("T{n}"), "true", channel, "awareness")
            .await;
        items.push(
            json!({"candidate_external_ref": format!("C{n}"), "touchpoint_id": id,
                          "occurred_at": "2025-06-01T10:00:00Z", "score": 7}),
        );
    }
    app.post(
        "/api/v1/encounters/batch",
        &app.recruiter,
        Value::Array(items),
    )
    .await
    .assert_status(201);
    // 30 touchpoints by day over 1,000 days: 30,000 points.
    let window = "from=2023-01-01&to=2025-09-27";
    let reply = app
        .get(
            &format!("{TREND}?{window}&bucket=day&group_by=touchpoint"),
            &app.reporter,
        )
        .await;
    reply.assert_error(422, "validation_failed", Some("bucket"));
    let message = reply.body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("30000 points") && message.contains("20000"),
        "{message}"
    );
    // By month, the larger bucket is not the way out: a shorter window is.
    let reply = app
        .get(
            "/api/v1/reports/perception-trend?from=1943-01-01&to=2026-01-01&bucket=month&group_by=touchpoint",
            &app.reporter,
        )
        .await;
    reply.assert_error(422, "validation_failed", Some("from"));
    // The widest trends allowed: 20 touchpoints by day over 1,000 days, and
    // every channel by day.
    for query in [
        format!("{window}&bucket=day&group_by=touchpoint&channel=press"),
        format!("{window}&bucket=day&group_by=channel"),
    ] {
        let reply = app.get(&format!("{TREND}?{query}"), &app.reporter).await;
        let trend = reply.assert_status(200);
        let series = trend["series"].as_array().unwrap();
        assert!(series.len() >= 14, "{query}");
        assert!(series
            .iter()
            .all(|s| s["points"].as_array().unwrap().len() == 1000));
    }
    // Narrowed by a filter, by week, or to one touchpoint: answered.
    app.get(
        &format!("{TREND}?{window}&bucket=week&group_by=touchpoint"),
        &app.reporter,
    )
    .await
    .assert_status(200);
}

// ---------------------------------------------------------------------------
// Peak memory of the real service
// ---------------------------------------------------------------------------

/// The peak resident set (VmHWM) of a process, in MiB.
fn peak_mib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM");
    kib / 1024
}

/// The peak memory of the service process stays bounded: an import of long
/// refused lines (the filed 300 MB case: every line held until its chunk
/// was checked), the refused over-wide trend of the filing (1,000
/// touchpoints by day over 1,000 days), and the widest trend allowed.
#[tokio::test]
async fn the_service_memory_stays_bounded_under_hostile_imports_and_reports() {
    let database = fresh_database().await;
    let url = database.url.clone();
    run_cli(&url, &["org", "create", "acme", "Acme"]);
    let token = run_cli(&url, &["key", "create", "--org", "acme", "--role", "admin"]);
    let process = ServiceProcess::start_healthy(&url).await;
    let pid = process.child.id();
    let api = ApiClient {
        base_url: process.api.clone(),
        token,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .unwrap(),
    };
    let started = peak_mib(pid);

    // 1,000 touchpoints, the first 20 on one channel, each met once.
    let mut items = Vec::new();
    for n in 0..1000 {
        let channel = if n < 20 { "press" } else { "event" };
        let reply = api
            .request(
                reqwest::Method::POST,
                "/api/v1/touchpoints",
                Some(
                    json!({"name": format!("T{n}"), "kind": "true", "channel": channel,
                            "stage": "awareness"}),
                ),
            )
            .await;
        let id = reply.assert_status(201)["id"].as_i64().unwrap();
        items.push(
            json!({"candidate_external_ref": format!("C{}", n % 50), "touchpoint_id": id,
                          "occurred_at": format!("2025-{:02}-01T10:00:00Z", 1 + n % 9),
                          "score": n % 11}),
        );
    }
    api.request(
        reqwest::Method::POST,
        "/api/v1/encounters/batch",
        Some(Value::Array(items)),
    )
    .await
    .assert_status(201);

    // 3,000 lines of 60 KB, each refused (a note too long): 180 MB held
    // at once before; a line at a time now.
    let note = "x".repeat(60_000);
    let body: String = (0..3000)
        .map(|n| {
            json!({"candidate_external_ref": format!("R-{n}"), "touchpoint_name": "T1",
                   "occurred_at": "2025-02-01T00:00:00Z", "note": note})
            .to_string()
                + "\n"
        })
        .collect();
    let line_bytes = body.find('\n').unwrap();
    let response = api
        .client
        .post(api.url(IMPORT))
        .bearer_auth(&api.token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .body(body)
        .send()
        .await
        .unwrap();
    let reply = TestApp::reply(response).await;
    reply.assert_error(422, "invalid_items", None);
    // The import stops at the first chunk, of 4 MiB of lines.
    assert_eq!(
        reply.body["items"].as_array().unwrap().len(),
        (4 * 1024 * 1024usize).div_ceil(line_bytes)
    );
    assert_eq!(reply.body["lines_committed"], 0);
    let after_import = peak_mib(pid);
    assert!(
        after_import < started + 100,
        "the import raised the peak from {started} to {after_import} MiB"
    );

    // The filed report: 1,000 touchpoints by day over 1,000 days (a million
    // points, 1.3 GB before). Refused before anything of its size is read.
    let reply = api
        .get(&format!(
            "{TREND}?from=2024-06-01&to=2027-02-26&bucket=day&group_by=touchpoint"
        ))
        .await;
    reply.assert_error(422, "validation_failed", Some("bucket"));
    let after_refusal = peak_mib(pid);
    assert!(
        after_refusal < after_import + 20,
        "the refused report raised the peak from {after_import} to {after_refusal} MiB"
    );
    // Four of them at once.
    let path = format!("{TREND}?from=2024-06-01&to=2027-02-26&bucket=day&group_by=touchpoint");
    let replies = futures_util::future::join_all((0..4).map(|_| api.get(&path))).await;
    assert!(replies
        .iter()
        .all(|r| r.status == StatusCode::UNPROCESSABLE_ENTITY));

    // The widest trend allowed: 20 touchpoints by day over 1,000 days.
    let reply = api
        .get(&format!(
            "{TREND}?from=2024-06-01&to=2027-02-26&bucket=day&group_by=touchpoint&channel=press"
        ))
        .await;
    let series = reply.assert_status(200)["series"].as_array().unwrap().len();
    assert_eq!(series, 20);
    let after_widest = peak_mib(pid);
    assert!(
        after_widest < started + 150,
        "the widest trend raised the peak from {started} to {after_widest} MiB"
    );
    // And the impact report of all 1,000 touchpoints.
    let reply = api
        .get("/api/v1/reports/touchpoint-impact?from=2024-06-01&to=2027-02-26")
        .await;
    assert_eq!(
        reply.assert_status(200)["touchpoints"]
            .as_array()
            .unwrap()
            .len(),
        1000
    );
    let after_impact = peak_mib(pid);
    assert!(
        after_impact < started + 150,
        "the impact report raised the peak from {started} to {after_impact} MiB"
    );
    // The largest batch: 5,000 items in almost 16 MiB.
    let note = "b".repeat(3000);
    let items: Vec<Value> = (0..5000)
        .map(|n| {
            json!({"candidate_external_ref": format!("B-{}", n % 100), "touchpoint_name": "T2",
                   "occurred_at": "2025-03-01T00:00:00Z", "note": note})
        })
        .collect();
    api.request(
        reqwest::Method::POST,
        "/api/v1/encounters/batch",
        Some(Value::Array(items)),
    )
    .await
    .assert_status(201);
    let after_batch = peak_mib(pid);
    assert!(
        after_batch < started + 250,
        "the batch raised the peak from {started} to {after_batch} MiB"
    );
    eprintln!(
        "service peak RSS (MiB): started {started}, import {after_import}, refused trend \
         {after_refusal}, widest trend {after_widest}, impact {after_impact}, batch {after_batch}"
    );

    // One candidate with 30,000 encounters of 4,000-character notes (120 MB
    // of notes), through batches of 3,000 (12 MB each).
    let candidate = api
        .request(
            reqwest::Method::POST,
            "/api/v1/candidates",
            Some(json!({"external_ref": "LONG-1", "stage": "interview"})),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    let note = "j".repeat(4000);
    for part in 0..10 {
        let items: Vec<Value> = (0..3000)
            .map(|n| {
                let n = part * 3000 + n;
                json!({"candidate_id": candidate, "touchpoint_name": "T3",
                       "occurred_at": format!("2025-04-{:02}T{:02}:{:02}:00Z",
                                              1 + n / 1440, n / 60 % 24, n % 60),
                       "score": n % 11, "note": note})
            })
            .collect();
        api.request(
            reqwest::Method::POST,
            "/api/v1/encounters/batch",
            Some(Value::Array(items)),
        )
        .await
        .assert_status(201);
    }
    // Each read starts from the resident set of the moment (the batches'
    // peak is theirs): writing 5 to clear_refs resets VmHWM to VmRSS.
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
    let before_reads = peak_mib(pid);
    for (path, array) in [
        (format!("/api/v1/candidates/{candidate}/journey"), "steps"),
        (
            format!("/api/v1/candidates/{candidate}/export"),
            "encounters",
        ),
    ] {
        std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("clear_refs");
        let before = peak_mib(pid);
        let response = api
            .client
            .get(api.url(&path))
            .bearer_auth(&api.token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let body = response.bytes().await.expect("the whole answer");
        let after = peak_mib(pid);
        assert!(body.len() > 120_000_000, "{path}: {} bytes", body.len());
        assert!(
            after < before + 60,
            "{path} ({} MB) raised the peak from {before} to {after} MiB",
            body.len() / 1_000_000
        );
        let answer: Value = serde_json::from_slice(&body).expect("valid JSON");
        let answer_mb = body.len() / 1_000_000;
        drop(body);
        let items = answer[array].as_array().unwrap();
        assert_eq!(items.len(), 30_000, "{path}");
        assert!(items.iter().all(|item| item["note"] == note.as_str()));
        assert_eq!(answer["first_score"], 0);
        assert_eq!(answer["latest_score"], 29_999 % 11);
        eprintln!("{path}: {answer_mb} MB answer, service peak RSS {before} -> {after} MiB");
    }
    let after_reads = peak_mib(pid);
    assert!(
        after_reads < before_reads + 60,
        "the reads raised the peak from {before_reads} to {after_reads} MiB"
    );
}
