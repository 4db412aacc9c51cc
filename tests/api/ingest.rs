//! Reliable ingest: idempotency keys, the batch and NDJSON imports, request
//! limits and the per-key rate limit.

use reqwest::Method;
use serde_json::{json, Value};
use touchpoint_tracker::{
    config::{Limits, RateLimit},
    domain::idempotency,
};

use crate::helpers::{spawn_app, spawn_app_with, Reply, TestApp};

const ENCOUNTERS: &str = "/api/v1/encounters";
const BATCH: &str = "/api/v1/encounters/batch";
const IMPORT: &str = "/api/v1/encounters/import";

async fn post_with_key(app: &TestApp, path: &str, key: &str, body: &Value) -> Reply {
    let response = app
        .client
        .post(app.url(path))
        .bearer_auth(&app.recruiter)
        .header("Idempotency-Key", key)
        .json(body)
        .send()
        .await
        .unwrap();
    TestApp::reply(response).await
}

async fn import(app: &TestApp, ndjson: String) -> Reply {
    app.post_raw(IMPORT, &app.recruiter, "application/x-ndjson", &ndjson)
        .await
}

struct Catalog {
    interview: i64,
    review_site: i64,
    candidate: i64,
}

async fn catalog(app: &TestApp) -> Catalog {
    Catalog {
        interview: app
            .touchpoint(
                "Onsite interview",
                "employer_created",
                "interview",
                "interview",
            )
            .await,
        review_site: app
            .touchpoint("Glassdoor", "true", "review_site", "consideration")
            .await,
        candidate: app.candidate("ATS-1").await,
    }
}

#[tokio::test]
async fn a_retried_encounter_is_recorded_once_and_answered_the_same() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let body = json!({
        "candidate_id": c.candidate,
        "touchpoint_id": c.interview,
        "occurred_at": "2026-03-02T10:00:00Z",
        "score": 8,
    });
    let first = post_with_key(&app, ENCOUNTERS, "retry-abc", &body).await;
    let first = first.assert_status(201).clone();
    // The same body, keys reordered and spaced differently, is the same request.
    let reordered = json!({
        "score": 8,
        "occurred_at": "2026-03-02T10:00:00Z",
        "touchpoint_id": c.interview,
        "candidate_id": c.candidate,
    });
    for _ in 0..3 {
        let again = post_with_key(&app, ENCOUNTERS, "retry-abc", &reordered).await;
        assert_eq!(again.assert_status(201), &first);
    }
    assert_eq!(app.count("encounters").await, 1);

    // The same key with another body is refused and writes nothing.
    let other = json!({
        "candidate_id": c.candidate,
        "touchpoint_id": c.interview,
        "occurred_at": "2026-03-02T10:00:00Z",
        "score": 3,
    });
    post_with_key(&app, ENCOUNTERS, "retry-abc", &other)
        .await
        .assert_error(422, "validation_failed", Some("Idempotency-Key"));
    assert_eq!(app.count("encounters").await, 1);

    // Another key is another encounter.
    let second = post_with_key(&app, ENCOUNTERS, "retry-def", &body).await;
    assert_ne!(second.assert_status(201)["id"], first["id"]);
    assert_eq!(app.count("encounters").await, 2);

    // A refused request leaves its key unused: a corrected retry succeeds.
    let bad = json!({
        "candidate_id": 999_999,
        "touchpoint_id": c.interview,
        "occurred_at": "2026-03-02T10:00:00Z",
    });
    post_with_key(&app, ENCOUNTERS, "retry-ghi", &bad)
        .await
        .assert_error(422, "unknown_reference", Some("candidate_id"));
    let fixed = json!({
        "candidate_id": c.candidate,
        "touchpoint_id": c.interview,
        "occurred_at": "2026-03-02T10:00:00Z",
    });
    post_with_key(&app, ENCOUNTERS, "retry-ghi", &fixed)
        .await
        .assert_status(201);
    assert_eq!(app.count("encounters").await, 3);

    // Keys that are not 1 to 255 visible ASCII characters.
    for key in ["", "with space", &"k".repeat(256)] {
        post_with_key(&app, ENCOUNTERS, key, &body)
            .await
            .assert_error(422, "validation_failed", Some("Idempotency-Key"));
    }
    // Not even text: refused, not ignored.
    let response = app
        .client
        .post(app.url(ENCOUNTERS))
        .bearer_auth(&app.recruiter)
        .header(
            "Idempotency-Key",
            reqwest::header::HeaderValue::from_bytes(b"\xd7\xf8\x9b").unwrap(),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    TestApp::reply(response)
        .await
        .assert_error(422, "validation_failed", Some("Idempotency-Key"));
    assert_eq!(app.count("encounters").await, 3);
}

#[tokio::test]
async fn keys_expire_after_a_day() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let body = json!({"candidate_id": c.candidate, "touchpoint_id": c.interview,
                      "occurred_at": "2026-03-02T10:00:00Z"});
    let first = post_with_key(&app, ENCOUNTERS, "old-key", &body).await;
    let first_id = first.assert_status(201)["id"].clone();
    let now = touchpoint_tracker::domain::now();
    // Nothing is a day old yet.
    let purged = idempotency::purge_expired(&app.db, now).await.unwrap();
    assert_eq!(purged, 0);
    let a_day_earlier = if touchpoint_tracker::db::is_postgres(&app.db) {
        "created_at - INTERVAL '25 hours'"
    } else {
        "strftime('%Y-%m-%dT%H:%M:%f+00:00', created_at, '-25 hours')"
    };
    app.db
        .execute_raw(Statement::from_string(
            app.db.get_database_backend(),
            format!("UPDATE idempotency_keys SET created_at = {a_day_earlier}"),
        ))
        .await
        .unwrap();
    let purged = idempotency::purge_expired(&app.db, now).await.unwrap();
    assert_eq!(purged, 1);
    // The key is free again: the same request records a new encounter.
    let again = post_with_key(&app, ENCOUNTERS, "old-key", &body).await;
    assert_ne!(again.assert_status(201)["id"], first_id);
    assert_eq!(app.count("encounters").await, 2);
}

#[tokio::test]
async fn keys_belong_to_one_organization() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let body = json!({"external_ref": "ATS-77"});
    post_with_key(&app, "/api/v1/candidates", "shared-key", &body)
        .await
        .assert_status(201);
    // Another organization using the same key string writes its own row.
    let response = app
        .client
        .post(app.url("/api/v1/candidates"))
        .bearer_auth(&app.other_admin)
        .header("Idempotency-Key", "shared-key")
        .json(&body)
        .send()
        .await
        .unwrap();
    TestApp::reply(response).await.assert_status(201);
    let _ = c;
    assert_eq!(app.count("candidates").await, 3);
}

#[tokio::test]
async fn racing_identical_requests_write_one_row() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let encounter = json!({
        "candidate_id": c.candidate,
        "touchpoint_id": c.review_site,
        "occurred_at": "2026-03-02T10:00:00Z",
        "score": 4,
    });
    let candidate = json!({"external_ref": "ATS-race", "display_name": "Ada"});
    let mut tasks = Vec::new();
    for _ in 0..16 {
        for (path, key, body) in [
            (ENCOUNTERS, "same-encounter", &encounter),
            ("/api/v1/candidates", "same-candidate", &candidate),
        ] {
            let client = app.client.clone();
            let url = app.url(path);
            let token = app.recruiter.clone();
            let body = body.clone();
            tasks.push(tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("Idempotency-Key", key)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                (path, TestApp::reply(response).await)
            }));
        }
    }
    let mut ids = std::collections::HashMap::new();
    for task in tasks {
        let (path, reply) = task.await.unwrap();
        let id = reply.assert_status(201)["id"].as_i64().unwrap();
        ids.entry(path).or_insert_with(Vec::new).push(id);
    }
    for (path, ids) in ids {
        assert_eq!(ids.len(), 16);
        assert!(ids.iter().all(|id| *id == ids[0]), "{path}: {ids:?}");
    }
    assert_eq!(app.count("encounters").await, 1);
    assert_eq!(app.count("candidates").await, 2);
}

#[tokio::test]
async fn a_batch_records_everything_or_nothing() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let batch = json!([
        {"candidate_id": c.candidate, "touchpoint_id": c.interview,
         "occurred_at": "2026-03-02T10:00:00Z", "score": 9, "source": "recruiter_observation"},
        {"candidate_external_ref": "SURVEY-1", "touchpoint_name": "Glassdoor",
         "occurred_at": "2026-03-03T10:00:00Z", "score": 4},
        {"candidate_external_ref": "SURVEY-1", "touchpoint_id": c.interview,
         "occurred_at": "2026-03-04T10:00:00Z"},
        {"candidate_external_ref": "ATS-1", "touchpoint_name": "Onsite interview",
         "occurred_at": "2026-03-05T10:00:00Z", "score": 7, "note": "second round"},
    ]);
    let reply = app.post(BATCH, &app.recruiter, batch).await;
    let body = reply.assert_status(201);
    assert_eq!(body["candidates_created"], 1);
    let ids: Vec<i64> = body["encounter_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in batch order");
    // Items named by reference landed on the right rows.
    let survey = app
        .get("/api/v1/candidates?external_ref=SURVEY-1", &app.reporter)
        .await;
    let survey_id = survey.assert_status(200)["items"][0]["id"]
        .as_i64()
        .unwrap();
    let second = app
        .get(&format!("{ENCOUNTERS}/{}", ids[1]), &app.reporter)
        .await;
    let second = second.assert_status(200);
    assert_eq!(second["candidate_id"], survey_id);
    assert_eq!(second["touchpoint_id"], c.review_site);
    assert_eq!(second["source"], "candidate_survey");
    assert_eq!(second["score"], 4);
    let fourth = app
        .get(&format!("{ENCOUNTERS}/{}", ids[3]), &app.reporter)
        .await;
    assert_eq!(fourth.assert_status(200)["candidate_id"], c.candidate);
    assert_eq!(app.count("encounters").await, 4);
    assert_eq!(app.count("candidates").await, 2);

    // One batch with many faults: each is reported by index; nothing is written.
    let bad = json!([
        {"candidate_id": c.candidate, "touchpoint_id": c.interview,
         "occurred_at": "2026-03-02T10:00:00Z", "score": 11},
        {"candidate_external_ref": "NEW-1", "touchpoint_name": "Glassdoor",
         "occurred_at": "2026-03-03T10:00:00Z"},
        {"candidate_id": 424242, "touchpoint_id": c.interview,
         "occurred_at": "2026-03-02T10:00:00Z"},
        {"candidate_id": c.candidate, "touchpoint_name": "No such touchpoint",
         "occurred_at": "2026-03-02T10:00:00Z"},
        {"candidate_id": c.candidate, "candidate_external_ref": "X", "touchpoint_id": c.interview,
         "occurred_at": "2026-03-02T10:00:00Z"},
        {"candidate_id": c.candidate, "touchpoint_id": c.interview, "kind": "true",
         "occurred_at": "2026-03-02T10:00:00Z"},
        {"candidate_id": c.candidate, "touchpoint_id": c.interview},
        "not an object",
    ]);
    let reply = app.post(BATCH, &app.recruiter, bad).await;
    reply.assert_error(422, "invalid_items", None);
    let items: Vec<(i64, String, Value)> = reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            (
                item["index"].as_i64().unwrap(),
                item["error"]["code"].as_str().unwrap().to_owned(),
                item["error"]["field"].clone(),
            )
        })
        .collect();
    // Every refused item at once: the checks of the request and those of
    // the references (which read the database) are reported together.
    assert_eq!(
        items,
        vec![
            (0, "validation_failed".into(), json!("score")),
            (2, "unknown_reference".into(), json!("candidate_id")),
            (3, "unknown_reference".into(), json!("touchpoint_name")),
            (4, "validation_failed".into(), json!("candidate_id")),
            (5, "validation_failed".into(), json!("kind")),
            (6, "validation_failed".into(), json!("occurred_at")),
            (7, "validation_failed".into(), json!("body")),
        ]
    );
    let unresolved = json!([
        {"candidate_external_ref": "NEW-1", "touchpoint_name": "Glassdoor",
         "occurred_at": "2026-03-03T10:00:00Z"},
        {"candidate_id": 424242, "touchpoint_id": c.interview,
         "occurred_at": "2026-03-02T10:00:00Z"},
        {"candidate_id": c.candidate, "touchpoint_name": "No such touchpoint",
         "occurred_at": "2026-03-02T10:00:00Z"},
    ]);
    let reply = app.post(BATCH, &app.recruiter, unresolved).await;
    reply.assert_error(422, "invalid_items", None);
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["index"], 1);
    assert_eq!(items[0]["error"]["code"], "unknown_reference");
    assert_eq!(items[0]["error"]["field"], "candidate_id");
    assert_eq!(items[1]["index"], 2);
    assert_eq!(items[1]["error"]["field"], "touchpoint_name");
    // Not even the candidate the first item would have created.
    assert_eq!(app.count("encounters").await, 4);
    assert_eq!(app.count("candidates").await, 2);
}

/// A batch large enough to go in with `COPY` on PostgreSQL (see
/// `db::postgres_txn`) reads back exactly as sent: text with the characters
/// `COPY` escapes, times to the microsecond, absent scores and notes.
#[tokio::test]
async fn a_large_batch_reads_back_exactly_as_sent() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let notes = [
        "tab\there",
        "line\nbreak",
        "crlf\r\nend",
        "back\\slash",
        "\\N",
        "\\t, not a tab",
        "trailing backslash \\",
        "quotes \" ' and , ; |",
        "ünïcødé ✓ 🙂",
    ];
    let items: Vec<Value> = (0..200)
        .map(|n| {
            let mut item = json!({
                "candidate_external_ref": format!("COPY\\{}", n % 30),
                "touchpoint_id": if n % 2 == 0 { c.interview } else { c.review_site },
                "occurred_at": format!("2025-{:02}-{:02}T{:02}:{:02}:07.{:06}Z",
                    1 + n % 12, 1 + n % 28, n % 24, n % 60, n * 4_999 % 1_000_000),
            });
            if n % 3 != 0 {
                item["score"] = json!(n % 11);
            }
            if n % 4 != 0 {
                item["note"] = json!(notes[n % notes.len()]);
            }
            item
        })
        .collect();
    let reply = app.post(BATCH, &app.recruiter, json!(items)).await;
    let body = reply.assert_status(201);
    assert_eq!(body["candidates_created"], 30);
    let ids = body["encounter_ids"].as_array().unwrap();
    assert_eq!(ids.len(), items.len());
    let time = |v: &Value| chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap()).unwrap();
    for (id, sent) in ids.iter().zip(&items) {
        let stored = app.get(&format!("{ENCOUNTERS}/{id}"), &app.reporter).await;
        let stored = stored.assert_status(200);
        assert_eq!(
            stored["note"],
            sent.get("note").cloned().unwrap_or(Value::Null)
        );
        assert_eq!(
            stored["score"],
            sent.get("score").cloned().unwrap_or(Value::Null)
        );
        assert_eq!(stored["touchpoint_id"], sent["touchpoint_id"]);
        assert_eq!(time(&stored["occurred_at"]), time(&sent["occurred_at"]));
        let candidate = app
            .get(
                &format!("/api/v1/candidates/{}", stored["candidate_id"]),
                &app.reporter,
            )
            .await;
        assert_eq!(
            candidate.assert_status(200)["external_ref"],
            sent["candidate_external_ref"]
        );
    }
    assert_eq!(app.count("encounters").await, items.len() as i64);
}

#[tokio::test]
async fn batch_shape_and_size_are_checked() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let item = json!({"candidate_id": c.candidate, "touchpoint_id": c.interview,
                      "occurred_at": "2026-03-02T10:00:00Z"});
    app.post(BATCH, &app.recruiter, json!([]))
        .await
        .assert_error(422, "validation_failed", Some("body"));
    app.post(BATCH, &app.recruiter, item.clone())
        .await
        .assert_error(422, "validation_failed", Some("body"));
    let too_many = Value::Array(vec![item.clone(); 5001]);
    app.post(BATCH, &app.recruiter, too_many)
        .await
        .assert_error(422, "validation_failed", Some("body"));
    app.post(BATCH, &app.reporter, json!([item.clone()]))
        .await
        .assert_error(403, "forbidden", None);
    // 5,000 is allowed, and fits the default body limit.
    let full = Value::Array(vec![item; 5000]);
    let reply = app.post(BATCH, &app.recruiter, full).await;
    assert_eq!(
        reply.assert_status(201)["encounter_ids"]
            .as_array()
            .unwrap()
            .len(),
        5000
    );
    assert_eq!(app.count("encounters").await, 5000);
}

#[tokio::test]
async fn a_retried_batch_is_recorded_once() {
    let app = spawn_app().await;
    let c = catalog(&app).await;
    let batch = json!([
        {"candidate_external_ref": "SURVEY-9", "touchpoint_id": c.review_site,
         "occurred_at": "2026-03-03T10:00:00Z", "score": 2},
        {"candidate_id": c.candidate, "touchpoint_id": c.interview,
         "occurred_at": "2026-03-04T10:00:00Z", "score": 10},
    ]);
    let first = post_with_key(&app, BATCH, "nightly-2026-03-04", &batch).await;
    let first = first.assert_status(201).clone();
    let again = post_with_key(&app, BATCH, "nightly-2026-03-04", &batch).await;
    assert_eq!(again.assert_status(201), &first);
    assert_eq!(app.count("encounters").await, 2);
    assert_eq!(app.count("candidates").await, 2);
    let changed = json!([batch[0]]);
    post_with_key(&app, BATCH, "nightly-2026-03-04", &changed)
        .await
        .assert_error(422, "validation_failed", Some("Idempotency-Key"));
}

fn line(candidate_ref: &str, touchpoint: &str, day: u32, score: Option<i32>) -> String {
    json!({
        "candidate_external_ref": candidate_ref,
        "touchpoint_name": touchpoint,
        "occurred_at": format!("2026-02-{day:02}T09:00:00Z"),
        "score": score,
    })
    .to_string()
}

#[tokio::test]
async fn an_ndjson_import_commits_chunk_by_chunk_and_can_resume() {
    let app = spawn_app().await;
    catalog(&app).await;
    // 12,500 lines over 250 candidates, with blank lines on the way.
    let mut lines: Vec<String> = (0..12_500)
        .map(|n| {
            line(
                &format!("SURVEY-{}", n % 250),
                if n % 2 == 0 {
                    "Glassdoor"
                } else {
                    "Onsite interview"
                },
                1 + (n % 28) as u32,
                (n % 3 != 0).then_some(n % 11),
            )
        })
        .collect();
    lines.insert(10, String::new());
    lines.insert(20, "   ".to_owned());
    // Line 7,500 (in the second chunk of 5,000 items) is bad twice over, line 8,500 once.
    lines[7500] = r#"{"candidate_external_ref": "S", "touchpoint_name": "Glassdoor", "occurred_at": "2026-02-01T00:00:00Z", "score": 12}"#.to_owned();
    lines[8500] = "{not json".to_owned();
    let reply = import(&app, lines.join("\n")).await;
    reply.assert_error(422, "invalid_items", None);
    let report = reply.body.clone();
    // The first chunk is items 0..5000, which are lines 0..5002.
    assert_eq!(report["lines_committed"], 5002);
    let errors: Vec<(i64, String)> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_i64().unwrap(),
                e["error"]["code"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        errors,
        vec![
            (7500, "validation_failed".to_owned()),
            (8500, "malformed_json".to_owned())
        ]
    );
    assert_eq!(report["items"][0]["error"]["field"], "score");
    assert_eq!(app.count("encounters").await, 5000);

    // Fix the lines and send the rest.
    lines[7500] = line("SURVEY-1", "Glassdoor", 3, Some(5));
    lines[8500] = line("SURVEY-NEW", "Glassdoor", 4, None);
    let rest = lines[5002..].join("\n") + "\n";
    let reply = import(&app, rest).await;
    let report = reply.assert_status(200);
    assert_eq!(report["lines_committed"], 7500);
    assert_eq!(report["encounters_created"], 7500);
    assert_eq!(report["candidates_created"], 1);
    assert_eq!(app.count("encounters").await, 12_500);
    assert_eq!(app.count("candidates").await, 252);
}

/// The next chunk is read while one is written. A chunk the writer refuses
/// (an unknown touchpoint name, found only when it is written) still stops
/// the import there: the chunk read meanwhile is not recorded, and the
/// answer names only the refused chunk's lines, not the next one's.
#[tokio::test]
async fn a_chunk_refused_while_the_next_is_read_stops_the_import_there() {
    let app = spawn_app().await;
    catalog(&app).await;
    let mut lines: Vec<String> = (0..16_000)
        .map(|n| {
            line(
                &format!("READ-{}", n % 400),
                "Glassdoor",
                1 + (n % 28) as u32,
                Some(n % 11),
            )
        })
        .collect();
    // In the second chunk (lines 5,000 to 9,999), and in the third.
    lines[7_000] = line("READ-1", "No such touchpoint", 2, None);
    lines[12_000] = "{not json".to_owned();
    let reply = import(&app, lines.join("\n")).await;
    reply.assert_error(422, "invalid_items", None);
    assert_eq!(reply.body["lines_committed"], 5000);
    let items = reply.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    assert_eq!(items[0]["index"], 7000);
    assert_eq!(items[0]["error"]["code"], "unknown_reference");
    assert_eq!(app.count("encounters").await, 5000);
}

#[tokio::test]
async fn import_input_is_checked() {
    let app = spawn_app_with(Limits {
        body: touchpoint_tracker::config::BodyLimits {
            import_line_bytes: 300,
            ..Default::default()
        },
        rate: None,
        ..Default::default()
    })
    .await;
    catalog(&app).await;
    // A line over the limit is refused as a line.
    let long = json!({"candidate_external_ref": "A", "touchpoint_name": "Glassdoor",
                      "occurred_at": "2026-02-01T00:00:00Z", "note": "x".repeat(400)});
    let body = format!("{}\n{}\n", line("A", "Glassdoor", 1, Some(3)), long);
    let reply = import(&app, body).await;
    reply.assert_error(422, "invalid_items", None);
    assert_eq!(reply.body["lines_committed"], 0);
    assert_eq!(reply.body["items"][0]["index"], 1);
    assert_eq!(reply.body["items"][0]["error"]["code"], "payload_too_large");
    assert_eq!(app.count("encounters").await, 0);
    // An empty stream is a complete import of nothing.
    let report = import(&app, String::new()).await;
    assert_eq!(report.assert_status(200)["encounters_created"], 0);
    // JSON is not NDJSON.
    app.post_raw(IMPORT, &app.recruiter, "application/json", "[]")
        .await
        .assert_error(415, "unsupported_media_type", None);
    app.post_raw(IMPORT, &app.reporter, "application/x-ndjson", "")
        .await
        .assert_error(403, "forbidden", None);
}

#[tokio::test]
async fn bodies_over_the_configured_limit_are_413() {
    let app = spawn_app_with(Limits {
        body: touchpoint_tracker::config::BodyLimits {
            json_bytes: 2048,
            batch_bytes: 4096,
            import_line_bytes: 1024,
        },
        rate: None,
        ..Default::default()
    })
    .await;
    let c = catalog(&app).await;
    let note = "n".repeat(3000);
    let reply = app
        .post(
            ENCOUNTERS,
            &app.recruiter,
            json!({"candidate_id": c.candidate, "touchpoint_id": c.interview,
                   "occurred_at": "2026-03-02T10:00:00Z", "note": note}),
        )
        .await;
    reply.assert_error(413, "payload_too_large", None);
    // The batch endpoint has its own, larger limit.
    let item = json!({"candidate_id": c.candidate, "touchpoint_id": c.interview,
                      "occurred_at": "2026-03-02T10:00:00Z", "note": "n".repeat(1000)});
    app.post(BATCH, &app.recruiter, json!([item.clone(), item.clone()]))
        .await
        .assert_status(201);
    app.post(BATCH, &app.recruiter, Value::Array(vec![item; 5]))
        .await
        .assert_error(413, "payload_too_large", None);
    assert_eq!(app.count("encounters").await, 2);
}

#[tokio::test]
async fn a_key_over_its_rate_limit_gets_429_with_retry_after() {
    let app = spawn_app_with(Limits {
        body: Default::default(),
        rate: Some(RateLimit {
            per_second: 0.5,
            burst: 3.0,
        }),
        ..Default::default()
    })
    .await;
    for _ in 0..3 {
        app.get("/api/v1/touchpoints", &app.reporter)
            .await
            .assert_status(200);
    }
    let response = app
        .client
        .request(Method::GET, app.url("/api/v1/touchpoints"))
        .bearer_auth(&app.reporter)
        .send()
        .await
        .unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=2).contains(&retry_after), "Retry-After: {retry_after}");
    TestApp::reply(response)
        .await
        .assert_error(429, "rate_limited", None);
    // Another key has its own allowance.
    app.get("/api/v1/touchpoints", &app.admin)
        .await
        .assert_status(200);
}
