//! Crash safety: the service killed with SIGKILL in the middle of a write
//! load keeps every acknowledged encounter exactly once, with reports that
//! equal a recount; killed in the middle of projecting encounters into the
//! rollups, it resumes from its mark and counts each once; SIGTERM lets
//! in-flight requests finish, then exits 0.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use reqwest::Client;
use serde_json::{json, Value};
use touchpoint_tracker::{
    config::DatabaseSettings,
    db,
    domain::{analytics::rebuild, organizations},
};

use super::{
    helpers::{
        fresh_database, projection_progress, projection_state, run_cli, wait_until_projected,
        ApiClient, ServiceProcess,
    },
    recount::assert_reports_match_recount,
};

struct Service {
    client: Client,
    api: String,
    admin: String,
}

impl Service {
    async fn post(&self, path: &str, body: Value) -> reqwest::Result<(u16, Value)> {
        let response = self
            .client
            .post(format!("{}{path}", self.api))
            .bearer_auth(&self.admin)
            .timeout(Duration::from_secs(10))
            .json(&body)
            .send()
            .await?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.admin)
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200, "{path}");
        response.json().await.expect("JSON")
    }

    /// Every encounter: id to note.
    async fn encounters(&self) -> Vec<(i64, String)> {
        let mut listed = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .get(&format!("/api/v1/encounters?limit=500{cursor}"))
                .await;
            for item in page["items"].as_array().unwrap() {
                listed.push((
                    item["id"].as_i64().unwrap(),
                    item["note"].as_str().unwrap_or_default().to_owned(),
                ));
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return listed,
            }
        }
    }

    /// Every report over a few windows, to compare before and after a recount.
    /// The ids of the encounters the audit trail says were created.
    async fn audited_encounters(&self) -> Vec<i64> {
        let mut ids = Vec::new();
        let mut cursor = String::new();
        loop {
            let page = self
                .get(&format!(
                    "/api/v1/audit-events?resource_type=encounter&limit=500{cursor}"
                ))
                .await;
            for event in page["items"].as_array().unwrap() {
                assert_eq!(event["action"], "create", "{event}");
                let first = event["resource_id"].as_i64().unwrap();
                ids.extend(first..=event["last_resource_id"].as_i64().unwrap());
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return ids,
            }
        }
    }

    async fn reports(&self) -> Vec<Value> {
        let mut reports = Vec::new();
        for (from, to) in [("2026-01-01", "2026-07-01"), ("2026-02-10", "2026-04-20")] {
            for path in [
                format!("/api/v1/reports/perception-trend?from={from}&to={to}&bucket=week&group_by=touchpoint"),
                format!("/api/v1/reports/perception-trend?from={from}&to={to}&bucket=month&group_by=kind"),
                format!("/api/v1/reports/touchpoint-impact?from={from}&to={to}"),
                format!("/api/v1/reports/perception-shift?from={from}&to={to}&group_by=stage"),
                format!("/api/v1/reports/summary?from={from}&to={to}"),
            ] {
                reports.push(self.get(&path).await);
            }
        }
        reports
    }
}

/// A database with an organization, an admin key, touchpoints and candidates.
async fn prepared(url: &str) -> (Service, ServiceProcess, Vec<i64>, Vec<i64>) {
    run_cli(url, &["org", "create", "acme", "Acme"]);
    let admin = run_cli(url, &["key", "create", "--org", "acme", "--role", "admin"]);
    let process = ServiceProcess::start_healthy(url).await;
    let service = Service {
        client: Client::new(),
        api: process.api.clone(),
        admin,
    };
    let mut touchpoints = Vec::new();
    for (n, (kind, stage)) in [
        ("employer_created", "interview"),
        ("true", "consideration"),
        ("unexpected", "awareness"),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = service
            .post(
                "/api/v1/touchpoints",
                json!({"name": format!("T{n}"), "kind": kind, "channel": "event", "stage": stage}),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        touchpoints.push(body["id"].as_i64().unwrap());
    }
    let mut candidates = Vec::new();
    for n in 0..10 {
        let (status, body) = service
            .post(
                "/api/v1/candidates",
                json!({"external_ref": format!("ATS-{n}")}),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        candidates.push(body["id"].as_i64().unwrap());
    }
    (service, process, touchpoints, candidates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_service_keeps_every_acknowledged_encounter_once() {
    let database = fresh_database().await;
    let (service, mut process, touchpoints, candidates) = prepared(&database.url).await;
    let service = Arc::new(service);

    // 16 clients write until the service dies; each note is a unique marker.
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..16usize {
        let service = service.clone();
        let (touchpoints, candidates) = (touchpoints.clone(), candidates.clone());
        writers.spawn(async move {
            let mut acknowledged: Vec<(i64, String)> = Vec::new();
            for n in 0.. {
                let note = format!("w{writer}-{n}");
                let result = if n % 10 == 9 {
                    // A small batch now and then: all of it or none.
                    let items: Vec<Value> = (0..3)
                        .map(|k| json!({
                            "candidate_id": candidates[(writer + n + k) % candidates.len()],
                            "touchpoint_id": touchpoints[(n + k) % touchpoints.len()],
                            "occurred_at": format!("2026-0{}-{:02}T09:00:00Z", 1 + (n + k) % 6, 1 + writer),
                            "score": (writer + n + k) % 11,
                            "note": format!("{note}-{k}"),
                        }))
                        .collect();
                    service.post("/api/v1/encounters/batch", json!(items)).await.map(
                        |(status, body)| {
                            let ids = body["encounter_ids"].as_array().cloned().unwrap_or_default();
                            (status, ids.into_iter().zip(0..).map(|(id, k)| (id.as_i64().unwrap(), format!("{note}-{k}"))).collect::<Vec<_>>())
                        },
                    )
                } else {
                    service
                        .post(
                            "/api/v1/encounters",
                            json!({
                                "candidate_id": candidates[(writer + n) % candidates.len()],
                                "touchpoint_id": touchpoints[n % touchpoints.len()],
                                "occurred_at": format!("2026-0{}-{:02}T10:00:00Z", 1 + n % 6, 1 + writer),
                                "score": (n % 3 != 0).then_some((writer * 7 + n) % 11),
                                "note": note,
                            }),
                        )
                        .await
                        .map(|(status, body)| (status, vec![(body["id"].as_i64().unwrap_or(-1), note.clone())]))
                };
                match result {
                    Ok((status, written)) if (200..300).contains(&status) => {
                        acknowledged.extend(written)
                    }
                    Ok((status, body)) => panic!("writer {writer}: {status} {body:?}"),
                    // The service died under this request.
                    Err(_) => return acknowledged,
                }
            }
            acknowledged
        });
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    process.child.kill().expect("SIGKILL sent");
    process.child.wait().expect("killed");
    let mut acknowledged: Vec<(i64, String)> = Vec::new();
    while let Some(result) = writers.join_next().await {
        acknowledged.extend(result.expect("writer finished"));
    }
    eprintln!(
        "{} encounters acknowledged before the kill",
        acknowledged.len()
    );
    assert!(
        acknowledged.len() > 50,
        "the load ran before the kill: {}",
        acknowledged.len()
    );

    // Restarted on the same database: every acknowledged encounter, once.
    let process = ServiceProcess::start_healthy(&database.url).await;
    let service = Service {
        client: Client::new(),
        api: process.api.clone(),
        admin: service.admin.clone(),
    };
    let stored = service.encounters().await;
    let mut notes_seen = HashSet::new();
    for (_, note) in &stored {
        assert!(notes_seen.insert(note.clone()), "{note} stored twice");
    }
    let stored: HashMap<i64, String> = stored.into_iter().collect();
    for (id, note) in &acknowledged {
        assert_eq!(
            stored.get(id),
            Some(note),
            "acknowledged encounter {id} ({note})"
        );
    }

    // The audit trail survived the kill with them: a create event (alone,
    // or in a batch's run) for each stored encounter, none for an encounter
    // that was not stored.
    let mut created = service.audited_encounters().await;
    created.sort_unstable();
    let mut stored_ids: Vec<i64> = stored.keys().copied().collect();
    stored_ids.sort_unstable();
    assert_eq!(created, stored_ids, "one audit record per encounter");

    // Every report equals a recount from the encounters, done here and
    // done by the service's own rollup rebuild.
    let api = ApiClient {
        base_url: service.api.clone(),
        token: service.admin.clone(),
        client: service.client.clone(),
    };
    assert_reports_match_recount(
        &api,
        &[("2026-01-01", "2026-07-01"), ("2026-02-10", "2026-04-20")],
    )
    .await;
    let before = service.reports().await;
    let conn = db::connect(&DatabaseSettings::new(database.url.clone()))
        .await
        .unwrap();
    let org = organizations::find_by_slug(&conn, "acme")
        .await
        .unwrap()
        .unwrap();
    rebuild::rebuild(&conn, org.id).await.unwrap();
    conn.close().await.unwrap();
    let after = service.reports().await;
    assert_same_reports(&before, &after, "reports after the crash equal a recount");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_requests_finish_then_exits_zero() {
    let database = fresh_database().await;
    let (service, mut process, _, _) = prepared(&database.url).await;

    // An NDJSON import whose body arrives over two seconds.
    let (lines, body) = tokio::sync::mpsc::channel::<Result<String, std::io::Error>>(4);
    let import = service
        .client
        .post(format!("{}/api/v1/encounters/import", service.api))
        .bearer_auth(&service.admin)
        .header("Content-Type", "application/x-ndjson")
        .body(reqwest::Body::wrap_stream(tokio_stream_from(body)))
        .send();
    let feed = async move {
        for n in 0..20 {
            let line = json!({
                "candidate_external_ref": format!("SURVEY-{n}"),
                "touchpoint_name": "T1",
                "occurred_at": "2026-03-01T09:00:00Z",
                "score": n % 11,
            });
            lines.send(Ok(format!("{line}\n"))).await.unwrap();
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let terminate = async {
        // SIGTERM while the import is streaming.
        tokio::time::sleep(Duration::from_millis(500)).await;
        process.terminate().await
    };
    let (response, (), status) = tokio::join!(import, feed, terminate);
    let response = response.expect("the in-flight import was answered");
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    assert_eq!(report["encounters_created"], 20, "{report}");
    assert!(status.success(), "exit status after SIGTERM: {status:?}");

    // What it acknowledged is there after a restart.
    let process = ServiceProcess::start_healthy(&database.url).await;
    let service = Service {
        client: Client::new(),
        api: process.api.clone(),
        admin: service.admin.clone(),
    };
    assert_eq!(service.encounters().await.len(), 20);
}

/// A stream of the receiver's items, for a streamed request body.
fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kill_during_projection_loses_and_counts_twice_nothing() {
    let _alone = super::helpers::MACHINE_LOAD.lock().await;
    let database = fresh_database().await;
    let url = database.url.clone();
    run_cli(&url, &["org", "create", "acme", "Acme"]);
    let admin = run_cli(&url, &["key", "create", "--org", "acme", "--role", "admin"]);

    // A backlog written with the projector paused: nothing is projected.
    let mut paused = ServiceProcess::start(&url, &[("PROJECTOR_PAUSED", "true")]);
    paused.wait_for_health(200).await;
    let service = Service {
        client: Client::new(),
        api: paused.api.clone(),
        admin,
    };
    // Thirty touchpoints over 280 days of ten months, every day at each: a
    // step (20,000 encounters) changes about 17,000 rollup keys in 300
    // parts (a month and a touchpoint each), more than a transaction of the
    // projector takes (`TXN_ROWS`) even when no write waits.
    let mut touchpoints = Vec::new();
    for (n, kind) in ["employer_created", "true", "unexpected"]
        .iter()
        .cycle()
        .take(30)
        .enumerate()
    {
        let (status, body) = service
            .post(
                "/api/v1/touchpoints",
                json!({"name": format!("T{n}"), "kind": kind, "channel": "event", "stage": "interview"}),
            )
            .await
            .unwrap();
        assert_eq!(status, 201);
        touchpoints.push(body["id"].as_i64().unwrap());
    }
    for batch in 0..12usize {
        let items: Vec<Value> = (0..2500usize)
            .map(|n| {
                let k = batch * 2500 + n;
                json!({
                    "candidate_external_ref": format!("ATS-{}", k % 4000),
                    "touchpoint_id": touchpoints[(k / 280) % touchpoints.len()],
                    "occurred_at": format!("2026-{:02}-{:02}T{:02}:00:00Z", 1 + k % 10, 1 + (k / 10) % 28, k % 24),
                    "score": (k % 7 != 0).then_some(k % 11),
                })
            })
            .collect();
        let (status, body) = service
            .post("/api/v1/encounters/batch", json!(items))
            .await
            .unwrap();
        assert_eq!(status, 201, "{body}");
    }
    paused.child.kill().expect("stopped");
    paused.child.wait().expect("stopped");
    let (mark, latest) = projection_state(&url).await;
    assert!(mark < latest, "paused, yet projected ({mark} of {latest})");

    // Three times: a projecting service killed as soon as it has committed
    // a part of a step (or a whole one), so in the middle of the step: some
    // rollup rows hold it, the mark does not yet.
    let mut half_applied = 0;
    for round in 0..3 {
        let (before, _, parts_before) = projection_progress(&url).await;
        let mut process = ServiceProcess::start(&url, &[]);
        let started = std::time::Instant::now();
        loop {
            let (mark, _, parts) = projection_progress(&url).await;
            if mark > before || parts > parts_before {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "round {round}: the projector never moved the mark"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        process.child.kill().expect("SIGKILL sent");
        process.child.wait().expect("killed");
        let (mark, latest, parts) = projection_progress(&url).await;
        eprintln!(
            "round {round}: killed at mark {mark} of {latest}, {parts} parts of a step applied"
        );
        assert!(mark < latest, "round {round}: caught up before the kill");
        half_applied += usize::from(parts > 0);
    }
    assert!(half_applied > 0, "never killed in the middle of a step");

    // Restarted, it resumes from its mark and catches up.
    let process = ServiceProcess::start_healthy(&url).await;
    wait_until_projected(&url).await;
    let service = Service {
        client: Client::new(),
        api: process.api.clone(),
        admin: service.admin.clone(),
    };
    let api = ApiClient {
        base_url: service.api.clone(),
        token: service.admin.clone(),
        client: service.client.clone(),
    };
    let rows = assert_reports_match_recount(
        &api,
        &[("2026-01-01", "2026-07-01"), ("2026-02-10", "2026-04-20")],
    )
    .await;
    assert_eq!(rows.len(), 30_000);
    // And the rollups equal the service's own rebuild from the encounters.
    let before = service.reports().await;
    let conn = db::connect(&DatabaseSettings::new(url.clone()))
        .await
        .unwrap();
    let org = organizations::find_by_slug(&conn, "acme")
        .await
        .unwrap()
        .unwrap();
    rebuild::rebuild(&conn, org.id).await.unwrap();
    conn.close().await.unwrap();
    assert_same_reports(
        &before,
        &service.reports().await,
        "projected equals rebuilt",
    );
}

/// Asserts that two runs of the same reports are equal, naming the first
/// value that differs (the reports are long: a whole-vector diff hides it).
fn assert_same_reports(before: &[Value], after: &[Value], what: &str) {
    fn first_difference(path: String, a: &Value, b: &Value) -> Option<(String, String, String)> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) if x.len() == y.len() => {
                x.iter().find_map(|(key, v)| match y.get(key) {
                    Some(w) => first_difference(format!("{path}.{key}"), v, w),
                    None => Some((format!("{path}.{key}"), v.to_string(), "missing".into())),
                })
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
                .iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (v, w))| first_difference(format!("{path}[{i}]"), v, w)),
            _ if a == b => None,
            _ => Some((path, a.to_string(), b.to_string())),
        }
    }
    assert_eq!(before.len(), after.len(), "{what}: as many reports");
    for (index, (a, b)) in before.iter().zip(after).enumerate() {
        if let Some((path, x, y)) = first_difference(format!("report {index}"), a, b) {
            panic!("{what}: {path} was {x}, then {y}");
        }
    }
}
