//! Several service processes on one database (PostgreSQL in production):
//! concurrent writes through both are neither lost nor duplicated, a retried
//! request racing through both is recorded once, and a key revoked through
//! one is refused by it at once and by the other within a second (each
//! instance keeps the keys it accepted in memory and asks the database
//! every second which of them are still unrevoked). Both project recorded
//! encounters into the rollups, and never the same one twice.

use std::collections::HashSet;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::{
    helpers::{fresh_database, run_cli, wait_until_projected, ApiClient, ServiceProcess},
    recount::assert_reports_match_recount,
};

struct Instances {
    client: Client,
    apis: [String; 2],
    token: String,
}

impl Instances {
    async fn send(
        &self,
        instance: usize,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.apis[instance % 2]))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("request sent");
        let status = response.status();
        let body = response.json().await.unwrap_or(Value::Null);
        assert!(
            !status.is_server_error(),
            "{path} answered {status}: {body}"
        );
        (status, body)
    }

    async fn post(&self, instance: usize, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(instance, reqwest::Method::POST, path, Some(body))
            .await
    }

    async fn post_keyed(
        &self,
        instance: usize,
        path: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}{path}", self.apis[instance % 2]))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
            .await
            .expect("request sent");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn patch(&self, instance: usize, path: &str, body: Value) -> (StatusCode, Value) {
        self.send(instance, reqwest::Method::PATCH, path, Some(body))
            .await
    }
}

const WRITERS: usize = 8;
const ENCOUNTERS_PER_WRITER: usize = 20;
const CANDIDATES: usize = 4;
const TOUCHPOINTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_one_database() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let postgres = url.starts_with("postgres");
    // On PostgreSQL both instances start together on an empty database and
    // take turns migrating it; SQLite is migrated by the first command.
    let (a, b) = if postgres {
        let a = ServiceProcess::start(&url, &[]);
        let b = ServiceProcess::start(&url, &[]);
        a.wait_for_health(200).await;
        b.wait_for_health(200).await;
        run_cli(&url, &["org", "create", "acme", "Acme"]);
        (a, b)
    } else {
        run_cli(&url, &["org", "create", "acme", "Acme"]);
        (
            ServiceProcess::start_healthy(&url).await,
            ServiceProcess::start_healthy(&url).await,
        )
    };
    let token = run_cli(&url, &["key", "create", "--org", "acme", "--role", "admin"]);
    let instances = std::sync::Arc::new(Instances {
        client: Client::new(),
        apis: [a.api.clone(), b.api.clone()],
        token,
    });

    let mut touchpoints = Vec::new();
    for n in 0..TOUCHPOINTS {
        let (status, body) = instances
            .post(n, "/api/v1/touchpoints", json!({"name": format!("Touchpoint {n}"), "kind": "employer_created", "channel": "interview", "stage": "interview"}))
            .await;
        assert_eq!(status, 201);
        touchpoints.push(body["id"].as_i64().unwrap());
    }
    let mut candidates = Vec::new();
    for n in 0..CANDIDATES {
        let (status, body) = instances
            .post(
                n,
                "/api/v1/candidates",
                json!({"external_ref": format!("ATS-{n}")}),
            )
            .await;
        assert_eq!(status, 201);
        candidates.push(body["id"].as_i64().unwrap());
    }

    let mut tasks = tokio::task::JoinSet::new();
    // Writers: encounters for the same candidates through both instances.
    for writer in 0..WRITERS {
        let instances = instances.clone();
        let (candidates, touchpoints) = (candidates.clone(), touchpoints.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for n in 0..ENCOUNTERS_PER_WRITER {
                let (status, body) = instances
                    .post(
                        writer + n,
                        "/api/v1/encounters",
                        json!({
                            "candidate_id": candidates[n % CANDIDATES],
                            "touchpoint_id": touchpoints[n % TOUCHPOINTS],
                            "occurred_at": format!("2026-01-{:02}T{:02}:{:02}:00Z", 1 + n, writer, n),
                            "score": (writer + n) % 11,
                        }),
                    )
                    .await;
                assert_eq!(status, 201, "{body}");
                ids.push(body["id"].as_i64().unwrap());
            }
            ids
        });
    }
    // Candidate updates and catalog edits through both instances meanwhile.
    for editor in 0..2 {
        let instances = instances.clone();
        let (candidates, touchpoints) = (candidates.clone(), touchpoints.clone());
        tasks.spawn(async move {
            for n in 0..20 {
                let stage = ["screening", "interview", "offer"][n % 3];
                let (status, _) = instances
                    .patch(
                        editor + n,
                        &format!("/api/v1/candidates/{}", candidates[n % CANDIDATES]),
                        json!({"stage": stage}),
                    )
                    .await;
                assert_eq!(status, 200);
                let (status, _) = instances
                    .patch(
                        editor + n,
                        &format!("/api/v1/touchpoints/{}", touchpoints[n % TOUCHPOINTS]),
                        json!({"description": format!("edit {editor}-{n}")}),
                    )
                    .await;
                assert_eq!(status, 200);
            }
            Vec::new()
        });
    }
    // Racing creates of one external_ref: one wins, the other gets 409.
    let race = {
        let instances = instances.clone();
        tokio::spawn(async move {
            let mut outcomes = Vec::new();
            for n in 0..10 {
                let body = json!({"external_ref": format!("RACE-{n}")});
                let (first, second) = tokio::join!(
                    instances.post(0, "/api/v1/candidates", body.clone()),
                    instances.post(1, "/api/v1/candidates", body.clone()),
                );
                let mut statuses = [first.0.as_u16(), second.0.as_u16()];
                statuses.sort();
                outcomes.push(statuses);
            }
            outcomes
        })
    };

    // Racing retries of one keyed request through both instances: one
    // write, and both answered with it.
    let retries = {
        let instances = instances.clone();
        let (candidate, touchpoint) = (candidates[0], touchpoints[0]);
        tokio::spawn(async move {
            let mut ids = Vec::new();
            for n in 0..10 {
                let body = json!({
                    "candidate_id": candidate,
                    "touchpoint_id": touchpoint,
                    "occurred_at": format!("2026-02-{:02}T08:00:00Z", 1 + n),
                    "score": n,
                });
                let key = format!("retry-{n}");
                let (first, second) = tokio::join!(
                    instances.post_keyed(0, "/api/v1/encounters", &key, body.clone()),
                    instances.post_keyed(1, "/api/v1/encounters", &key, body.clone()),
                );
                assert_eq!((first.0.as_u16(), second.0.as_u16()), (201, 201));
                assert_eq!(first.1, second.1, "both answered with the one write");
                ids.push(first.1["id"].as_i64().unwrap());
            }
            ids
        })
    };

    let mut created = Vec::new();
    while let Some(result) = tasks.join_next().await {
        created.extend(result.expect("task succeeded"));
    }
    for outcome in race.await.unwrap() {
        assert_eq!(outcome, [201, 409]);
    }
    let retried = retries.await.unwrap();
    assert_eq!(retried.iter().collect::<HashSet<_>>().len(), 10);
    created.extend(retried);

    // Every acknowledged encounter is there exactly once, read through
    // either instance.
    let expected = WRITERS * ENCOUNTERS_PER_WRITER + 10;
    assert_eq!(created.len(), expected);
    let created: HashSet<i64> = created.into_iter().collect();
    assert_eq!(created.len(), expected, "ids are unique");
    for instance in 0..2 {
        let mut listed = Vec::new();
        let mut cursor = String::new();
        loop {
            let (status, body) = instances
                .send(
                    instance,
                    reqwest::Method::GET,
                    &format!("/api/v1/encounters?limit=37{cursor}"),
                    None,
                )
                .await;
            assert_eq!(status, 200);
            listed.extend(
                body["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["id"].as_i64().unwrap()),
            );
            match body["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => break,
            }
        }
        assert_eq!(listed.len(), created.len(), "no duplicates in the list");
        assert_eq!(listed.into_iter().collect::<HashSet<_>>(), created);
    }
    let mut journey_steps = 0;
    for candidate in &candidates {
        let (_, journey) = instances
            .send(
                1,
                reqwest::Method::GET,
                &format!("/api/v1/candidates/{candidate}/journey"),
                None,
            )
            .await;
        journey_steps += journey["steps"].as_array().unwrap().len();
    }
    assert_eq!(journey_steps, expected);

    // Both instances project, one at a time per organization: once they
    // have caught up, the reports through either equal a recount (a change
    // applied twice would count twice).
    wait_until_projected(&url).await;
    for api in &instances.apis {
        let client = ApiClient {
            base_url: api.clone(),
            token: instances.token.clone(),
            client: instances.client.clone(),
        };
        assert_reports_match_recount(&client, &[("2026-01-01", "2026-03-01")]).await;
    }

    // A key revoked through one instance is refused by the other at once.
    let (status, key) = instances
        .post(
            0,
            "/api/v1/keys",
            json!({"name": "temp", "role": "reporter"}),
        )
        .await;
    assert_eq!(status, 201);
    let (key_id, temp_token) = (
        key["key"]["id"].as_i64().unwrap(),
        key["token"].as_str().unwrap().to_owned(),
    );
    let with_temp = |api: &str| {
        instances
            .client
            .get(format!("{api}/api/v1/touchpoints"))
            .bearer_auth(&temp_token)
            .send()
    };
    assert_eq!(with_temp(&b.api).await.unwrap().status(), 200);
    let (status, _) = instances
        .send(
            0,
            reqwest::Method::DELETE,
            &format!("/api/v1/keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        with_temp(&a.api).await.unwrap().status(),
        401,
        "refused at once by the instance that revoked it"
    );
    // The other instance accepted the key a moment ago, so it has it in
    // memory: it refuses it once its next check (every second) has run.
    let revoked_at = std::time::Instant::now();
    loop {
        let status = with_temp(&b.api).await.unwrap().status();
        if status == 401 {
            break;
        }
        assert_eq!(status, 200);
        assert!(
            revoked_at.elapsed() < std::time::Duration::from_secs(10),
            "the other instance still accepts the revoked key"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // ... and from then on, for good.
    for _ in 0..5 {
        assert_eq!(with_temp(&b.api).await.unwrap().status(), 401);
    }
}
