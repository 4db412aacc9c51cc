//! Webhooks, with a real HTTP receiver this test starts: signatures
//! checked with the Standard Webhooks library (not the service's code),
//! order, retries, 410, rotation, redelivery, personal data, SSRF, and a
//! SIGKILL in the middle of deliveries.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use poem::http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use touchpoint_tracker::config::WebhookSettings;

use crate::helpers::{spawn_app_with_webhooks, TestApp};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }

    fn id(&self) -> String {
        self.headers["webhook-id"].to_str().unwrap().to_owned()
    }

    /// Verified with `secret` by the specification's library.
    fn verifies_with(&self, secret: &str) -> bool {
        standardwebhooks::Webhook::new(secret)
            .unwrap()
            .verify(&self.body, &self.headers)
            .is_ok()
    }
}

/// Statuses to answer with, in order, each with an optional `Location`.
type Script = Arc<Mutex<VecDeque<(u16, Option<String>)>>>;

/// A real HTTP/1.1 server: it records each request and answers with the
/// next scripted status (200 when the script is empty), after `delay`.
#[derive(Clone)]
struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    script: Script,
    delay: Arc<Mutex<Duration>>,
}

impl Receiver {
    async fn start() -> Receiver {
        Self::start_on(0).await
    }

    /// A receiver on this port (0: any free one).
    async fn start_on(port: u16) -> Receiver {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let receiver = Receiver {
            port: listener.local_addr().unwrap().port(),
            received: Arc::default(),
            script: Arc::default(),
            delay: Arc::new(Mutex::new(Duration::ZERO)),
        };
        let serving = receiver.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let receiver = serving.clone();
                tokio::spawn(async move {
                    let _ = receiver.serve(stream).await;
                });
            }
        });
        receiver
    }

    async fn serve(&self, stream: tokio::net::TcpStream) -> std::io::Result<()> {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        // A connection closed before or within its head (a sender killed
        // mid-request, a pooled connection dropped) is no request: it is not
        // recorded.
        let cut = || std::io::Error::from(std::io::ErrorKind::UnexpectedEof);
        if reader.read_line(&mut line).await? == 0 {
            return Err(cut());
        }
        let mut headers = HeaderMap::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).await? == 0 {
                return Err(cut());
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.append(
                    HeaderName::from_bytes(name.trim().to_ascii_lowercase().as_bytes()).unwrap(),
                    HeaderValue::from_str(value.trim()).unwrap(),
                );
            }
        }
        let length: usize = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        reader.read_exact(&mut body).await?;
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        self.received
            .lock()
            .unwrap()
            .push(Received { headers, body });
        let (status, location) = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or((200, None));
        let mut answer =
            format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\nconnection: close\r\n");
        if let Some(location) = location {
            answer.push_str(&format!("location: {location}\r\n"));
        }
        answer.push_str("\r\nok");
        write.write_all(answer.as_bytes()).await?;
        write.shutdown().await
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn answer(&self, statuses: &[u16]) {
        let mut script = self.script.lock().unwrap();
        script.extend(statuses.iter().map(|s| (*s, None)));
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (up to 20 s) until at least `count` requests arrived.
    async fn wait_for(&self, count: usize) -> Vec<Received> {
        for _ in 0..400 {
            let received = self.received();
            if received.len() >= count {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "{count} deliveries did not arrive: {:?}",
            self.received().len()
        );
    }
}

fn local_settings() -> WebhookSettings {
    WebhookSettings {
        allow_http: true,
        allowed_networks: vec!["127.0.0.1/32".parse().unwrap()],
        disable_after_failures: 3,
        timeout: Duration::from_secs(5),
        ..Default::default()
    }
}

async fn endpoint(app: &TestApp, url: &str, extra: Value) -> (i64, String) {
    let mut body = json!({
        "url": url,
        "event_types": ["encounter.created", "encounter.updated", "encounter.deleted", "candidate.erased", "survey.answered"],
    });
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let reply = app.post("/api/v1/webhooks", &app.admin, body).await;
    let body = reply.assert_status(201);
    (
        body["endpoint"]["id"].as_i64().unwrap(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

const AT: &str = "2026-11-20T10:00:00Z";

#[tokio::test]
async fn changes_arrive_signed_in_order_without_personal_data() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let receiver = Receiver::start().await;
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    // Before the endpoint: not delivered.
    let early = app.candidate("EARLY").await;
    app.encounter(early, touchpoint, AT, Some(5)).await;
    let (id, secret) = endpoint(&app, &receiver.url(), json!({})).await;
    assert!(secret.starts_with("whsec_"));

    let candidate = app
        .post(
            "/api/v1/candidates",
            &app.recruiter,
            json!({"external_ref": "ATS-1", "display_name": "Trần Văn Minh", "email": "minh@example.test"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    let encounter = app
        .post(
            "/api/v1/encounters",
            &app.recruiter,
            json!({"candidate_id": candidate, "touchpoint_id": touchpoint, "occurred_at": AT, "score": 4, "note": "Waited an hour"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    app.patch(
        &format!("/api/v1/encounters/{encounter}"),
        &app.recruiter,
        json!({"score": 6}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/v1/encounters/{encounter}"), &app.admin)
        .await
        .assert_status(204);
    app.delete(&format!("/api/v1/candidates/{candidate}"), &app.admin)
        .await
        .assert_status(200);

    let received = receiver.wait_for(4).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        receiver.received().len(),
        4,
        "nothing from before the endpoint"
    );
    let types: Vec<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        types,
        [
            "encounter.created",
            "encounter.updated",
            "encounter.deleted",
            "candidate.erased"
        ]
    );
    let mut ids = Vec::new();
    for delivery in &received {
        assert!(delivery.verifies_with(&secret), "{delivery:?}");
        assert!(
            !delivery.verifies_with(&touchpoint_tracker::domain::webhooks::signature::new_secret())
        );
        let text = String::from_utf8(delivery.body.clone()).unwrap();
        for personal in ["Trần", "minh@example.test", "ATS-1", "Waited"] {
            assert!(!text.contains(personal), "{personal} in {text}");
        }
        let id = delivery.id();
        assert!(id.starts_with("evt_"), "{id}");
        ids.push(id[4..].parse::<i64>().unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let created = received[0].json();
    assert_eq!(created["data"]["encounter_id"], encounter);
    assert_eq!(created["data"]["score"], 4);
    assert_eq!(created["data"]["has_note"], true);
    assert!(created["data"].get("note").is_none());
    assert_eq!(received[1].json()["data"]["score"], 6);
    assert_eq!(received[3].json()["data"]["candidate_id"], candidate);

    // The API shows the same events, and the log each attempt.
    let events = app.get("/api/v1/webhook-events", &app.admin).await;
    let events = events.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(events.len(), 4);
    assert_eq!(events[0]["type"], "encounter.created");
    assert_eq!(events[0]["data"]["encounter_id"], encounter);
    let log = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin)
        .await;
    let log = log.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(log.len(), 4);
    assert!(log
        .iter()
        .all(|a| a["status_code"] == 200 && a["error"].is_null()));
    let state = app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await;
    assert_eq!(state.assert_status(200)["backlog"], 0);
    // Admins only.
    app.get("/api/v1/webhooks", &app.recruiter)
        .await
        .assert_error(403, "forbidden", None);
    app.get(&format!("/api/v1/webhooks/{id}"), &app.other_admin)
        .await
        .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn personal_data_goes_only_where_asked_and_never_after_erasure() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let receiver = Receiver::start().await;
    let touchpoint = app
        .touchpoint("Offer call", "employer_created", "phone", "offer")
        .await;
    let (id, secret) = endpoint(
        &app,
        &receiver.url(),
        json!({"include_personal_data": true}),
    )
    .await;
    let candidate = app
        .post(
            "/api/v1/candidates",
            &app.recruiter,
            json!({"external_ref": "ATS-9", "display_name": "Lê Thu", "email": "thu@example.test"}),
        )
        .await
        .assert_status(201)["id"]
        .as_i64()
        .unwrap();
    app.post(
        "/api/v1/encounters",
        &app.recruiter,
        json!({"candidate_id": candidate, "touchpoint_id": touchpoint, "occurred_at": AT, "score": 9, "note": "Great call"}),
    )
    .await
    .assert_status(201);
    let first = receiver.wait_for(1).await[0].clone();
    assert!(first.verifies_with(&secret));
    let data = first.json()["data"].clone();
    assert_eq!(data["candidate"]["display_name"], "Lê Thu");
    assert_eq!(data["candidate"]["email"], "thu@example.test");
    assert_eq!(data["note"], "Great call");

    app.delete(&format!("/api/v1/candidates/{candidate}"), &app.admin)
        .await
        .assert_status(200);
    let erased = receiver.wait_for(2).await[1].clone();
    assert_eq!(erased.json()["type"], "candidate.erased");
    assert!(erased.json()["data"]["candidate"].is_null());
    // Redelivered after the erasure: the same webhook-id, nothing personal.
    let event_id: i64 = first.id()[4..].parse().unwrap();
    let queued = app
        .post(
            &format!("/api/v1/webhooks/{id}/redeliveries"),
            &app.admin,
            json!({"event_id": event_id}),
        )
        .await;
    assert_eq!(queued.status, 202);
    let again = receiver.wait_for(3).await[2].clone();
    assert_eq!(again.id(), first.id());
    assert!(again.verifies_with(&secret));
    let text = String::from_utf8(again.body.clone()).unwrap();
    for personal in ["Lê Thu", "thu@example.test", "ATS-9", "Great call"] {
        assert!(!text.contains(personal), "{personal} in {text}");
    }
    app.post(
        &format!("/api/v1/webhooks/{id}/redeliveries"),
        &app.admin,
        json!({"event_id": 999_999}),
    )
    .await
    .assert_error(404, "not_found", None);
}

#[tokio::test]
async fn failures_are_retried_in_order_and_410_disables() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let receiver = Receiver::start().await;
    let touchpoint = app
        .touchpoint(
            "Careers site",
            "employer_created",
            "careers_site",
            "awareness",
        )
        .await;
    let (id, _) = endpoint(&app, &receiver.url(), json!({})).await;
    let candidate = app.candidate("R-1").await;
    // The first attempt fails; the second event waits behind the first.
    receiver.answer(&[500]);
    let first = app.encounter(candidate, touchpoint, AT, Some(3)).await;
    let second = app.encounter(candidate, touchpoint, AT, Some(8)).await;
    let received = receiver.wait_for(3).await;
    let order: Vec<i64> = received
        .iter()
        .map(|r| r.json()["data"]["encounter_id"].as_i64().unwrap())
        .collect();
    assert_eq!(order, vec![first, first, second], "retried, then the next");
    assert_eq!(
        received[0].id(),
        received[1].id(),
        "a retry keeps its webhook-id"
    );
    let log = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin)
        .await;
    let statuses: Vec<i64> = log.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|a| a["status_code"].as_i64().unwrap())
        .collect();
    assert_eq!(statuses, vec![500, 200, 200]);

    // 410 Gone: disabled at once, and says why; nothing more is sent.
    receiver.answer(&[410]);
    app.encounter(candidate, touchpoint, AT, Some(7)).await;
    receiver.wait_for(4).await;
    let state = wait_for_state(&app, id, |e| e["enabled"] == false).await;
    assert!(state["disabled_reason"].as_str().unwrap().contains("410"));
    app.encounter(candidate, touchpoint, AT, Some(6)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(receiver.received().len(), 4);
    assert_eq!(
        app.get(&format!("/api/v1/webhooks/{id}"), &app.admin)
            .await
            .body["backlog"],
        2
    );
    // Enabled again, it goes on from the event it stopped at.
    app.patch(
        &format!("/api/v1/webhooks/{id}"),
        &app.admin,
        json!({"enabled": true}),
    )
    .await
    .assert_status(200);
    let received = receiver.wait_for(6).await;
    assert_eq!(received[4].id(), received[3].id());
    let state = wait_for_state(&app, id, |e| e["backlog"] == 0).await;
    assert!(state["disabled_reason"].is_null());
}

#[tokio::test]
async fn a_run_of_failures_disables_the_endpoint() {
    let app = spawn_app_with_webhooks(WebhookSettings {
        disable_after_failures: 2,
        ..local_settings()
    })
    .await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let (id, _) = endpoint(&app, &format!("http://127.0.0.1:{port}/hook"), json!({})).await;
    let touchpoint = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("DOWN-1").await;
    app.encounter(candidate, touchpoint, AT, Some(3)).await;
    // 2 failures in a row (this test's setting): at 0 s and 5 s, then off.
    let state = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let state = app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await;
            if state.body["enabled"] == false {
                return state.body;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("disabled after a run of failures");
    assert_eq!(state["consecutive_failures"], 2);
    assert!(state["disabled_reason"]
        .as_str()
        .unwrap()
        .contains("2 delivery attempts"));
    let log = app
        .get(&format!("/api/v1/webhooks/{id}/deliveries"), &app.admin)
        .await;
    let attempts = log.assert_status(200)["items"].as_array().unwrap().clone();
    assert_eq!(attempts.len(), 2);
    assert!(attempts.iter().all(|a| a["status_code"].is_null()
        && a["error"]
            .as_str()
            .is_some_and(|e| e.contains("connection"))));
}

async fn wait_for_state(app: &TestApp, id: i64, done: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let state = app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await;
        if done(&state.body) {
            return state.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("endpoint {id} never got there");
}

#[tokio::test]
async fn a_rotated_secret_overlaps_with_the_previous_one() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let receiver = Receiver::start().await;
    let (id, old) = endpoint(&app, &receiver.url(), json!({})).await;
    let rotated = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &app.admin,
            json!({"overlap_seconds": 3600}),
        )
        .await;
    let rotated = rotated.assert_status(200);
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["endpoint"]["previous_secret_expires_at"].is_string());
    let ping = app
        .post(
            &format!("/api/v1/webhooks/{id}/ping"),
            &app.admin,
            json!({}),
        )
        .await;
    assert_eq!(ping.assert_status(200)["delivered"], true);
    let delivered = receiver.wait_for(1).await[0].clone();
    assert_eq!(delivered.json()["type"], "webhook.ping");
    assert!(delivered.verifies_with(&new) && delivered.verifies_with(&old));
    let signatures = delivered.headers["webhook-signature"].to_str().unwrap();
    assert_eq!(signatures.split(' ').count(), 2);
    // Without overlap, only the new one signs.
    let again = app
        .post(
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            &app.admin,
            json!({"overlap_seconds": 0}),
        )
        .await;
    let newest = again.assert_status(200)["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.post(
        &format!("/api/v1/webhooks/{id}/ping"),
        &app.admin,
        json!({}),
    )
    .await
    .assert_status(200);
    let delivered = receiver.wait_for(2).await[1].clone();
    assert!(delivered.verifies_with(&newest));
    assert!(!delivered.verifies_with(&new));
    app.post(
        &format!("/api/v1/webhooks/{id}/rotate-secret"),
        &app.admin,
        json!({"overlap_seconds": 700000}),
    )
    .await
    .assert_error(422, "validation_failed", Some("overlap_seconds"));
}

#[tokio::test]
async fn loopback_private_and_redirected_deliveries_are_refused() {
    // No allow-list: the defaults of a production service, but http.
    let app = spawn_app_with_webhooks(WebhookSettings {
        allowed_networks: Vec::new(),
        ..local_settings()
    })
    .await;
    let receiver = Receiver::start().await;
    for url in [
        receiver.url(),
        "http://10.0.0.8/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://[::1]:8080/hook".to_owned(),
        "ftp://example.com/hook".to_owned(),
    ] {
        app.post(
            "/api/v1/webhooks",
            &app.admin,
            json!({"url": url, "event_types": ["encounter.created"]}),
        )
        .await
        .assert_error(422, "validation_failed", Some("url"));
    }
    // A name that resolves to loopback is refused when it is resolved.
    let (id, _) = endpoint(
        &app,
        &format!("http://localhost:{}/hook", receiver.port),
        json!({}),
    )
    .await;
    let ping = app
        .post(
            &format!("/api/v1/webhooks/{id}/ping"),
            &app.admin,
            json!({}),
        )
        .await;
    let ping = ping.assert_status(200);
    assert_eq!(ping["delivered"], false);
    assert!(
        ping["error"].as_str().unwrap().contains("loopback"),
        "{ping}"
    );
    assert!(receiver.received().is_empty());
    // https only, without the development flag.
    let strict = spawn_app_with_webhooks(WebhookSettings::default()).await;
    strict
        .post(
            "/api/v1/webhooks",
            &strict.admin,
            json!({"url": "http://hooks.example.com/x", "event_types": ["encounter.created"]}),
        )
        .await
        .assert_error(422, "validation_failed", Some("url"));

    // A redirect is not followed, even to an allowed address.
    let allowed = spawn_app_with_webhooks(local_settings()).await;
    let target = Receiver::start().await;
    receiver
        .script
        .lock()
        .unwrap()
        .push_back((302, Some(target.url())));
    let (id, _) = endpoint(&allowed, &receiver.url(), json!({})).await;
    let ping = allowed
        .post(
            &format!("/api/v1/webhooks/{id}/ping"),
            &allowed.admin,
            json!({}),
        )
        .await;
    let ping = ping.assert_status(200);
    assert_eq!(ping["delivered"], false);
    assert_eq!(ping["status_code"], 302);
    assert!(ping["error"]
        .as_str()
        .unwrap()
        .contains("redirects are not followed"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(target.received().is_empty());
}

/// SIGKILL the service while events are pending and in flight: after a
/// restart every committed change's event reaches the receiver, repeats
/// carrying the same `webhook-id`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_sigkill_loses_no_event() {
    use crate::helpers::start_cluster;
    const ENCOUNTERS: usize = 40;
    let receiver = Receiver::start().await;
    *receiver.delay.lock().unwrap() = Duration::from_millis(100);
    // A 2-second timeout: the claim of a killed instance (three timeouts
    // and 5 s) lapses 11 s after it was taken.
    let env = [
        ("WEBHOOK_ALLOW_HTTP", "true"),
        ("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32"),
        ("WEBHOOK_TIMEOUT_SECONDS", "2"),
    ];
    let mut cluster = start_cluster(1, &env).await;
    let token = cluster.token.clone();
    let mut service = cluster.services.remove(0);
    let client = reqwest::Client::new();
    let post = |api: String, path: &str, body: Value| {
        client
            .post(format!("{api}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let hook: Value = post(
        service.api.clone(),
        "/api/v1/webhooks",
        json!({"url": receiver.url(), "event_types": ["encounter.created"]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let secret = hook["secret"].as_str().unwrap().to_owned();
    let touchpoint: Value = post(
        service.api.clone(),
        "/api/v1/touchpoints",
        json!({"name": "Interview", "kind": "employer_created", "channel": "interview", "stage": "interview"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    // One batch: every event committed at once, then delivered one by one.
    let items: Vec<Value> = (0..ENCOUNTERS)
        .map(|n| json!({"candidate_external_ref": format!("K-{n}"), "touchpoint_id": touchpoint["id"], "occurred_at": AT, "score": 5}))
        .collect();
    let reply = post(
        service.api.clone(),
        "/api/v1/encounters/batch",
        Value::Array(items),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), 201);
    let body: Value = reply.json().await.unwrap();
    let mut committed: Vec<i64> = body["encounter_ids"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|id| id.as_i64().unwrap())
        .collect();
    committed.sort_unstable();
    // Some were delivered, one is in flight (100 ms each), most wait.
    receiver.wait_for(3).await;
    service.child.kill().unwrap();
    let _ = service.child.wait();
    let before = receiver.received().len();
    assert!(
        before < ENCOUNTERS,
        "the kill came too late to test anything"
    );

    let restarted = crate::helpers::ServiceProcess::start(&cluster.database.url, &env);
    restarted.wait_for_health(200).await;
    *receiver.delay.lock().unwrap() = Duration::ZERO;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let received = receiver.received();
        let mut delivered: Vec<i64> = received
            .iter()
            .map(|r| r.json()["data"]["encounter_id"].as_i64().unwrap())
            .collect();
        delivered.sort_unstable();
        delivered.dedup();
        if delivered == committed {
            // Every repeat carries the id of its first delivery.
            for r in &received {
                assert!(r.verifies_with(&secret));
                let id = r.id();
                let encounter = r.json()["data"]["encounter_id"].clone();
                assert!(received
                    .iter()
                    .filter(|o| o.json()["data"]["encounter_id"] == encounter)
                    .all(|o| o.id() == id));
            }
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of {} events arrived after the restart",
            delivered.len(),
            committed.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn alerts_go_out_as_they_open_and_resolve() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let receiver = Receiver::start().await;
    let (_, secret) = endpoint(
        &app,
        &receiver.url(),
        json!({"event_types": ["alert.opened", "alert.resolved"]}),
    )
    .await;
    app.post(
        "/api/v1/alert-rules",
        &app.admin,
        json!({"name": "Any detractor", "kind": "detractor"}),
    )
    .await
    .assert_status(201);
    let touchpoint = app
        .touchpoint(
            "Onsite interview",
            "employer_created",
            "interview",
            "interview",
        )
        .await;
    let candidate = app.candidate("A-1").await;
    let encounter = app.encounter(candidate, touchpoint, AT, Some(2)).await;
    let opened = receiver.wait_for(1).await[0].clone();
    assert!(opened.verifies_with(&secret));
    let body = opened.json();
    assert_eq!(body["type"], "alert.opened");
    assert_eq!(body["data"]["encounter_id"], encounter);
    assert_eq!(body["data"]["rule_kind"], "detractor");
    assert_eq!(body["data"]["details"]["score"], 2);
    let alert_id = body["data"]["alert_id"].as_i64().unwrap();
    app.post(
        &format!("/api/v1/alerts/{alert_id}/resolve"),
        &app.recruiter,
        json!({}),
    )
    .await
    .assert_status(200);
    let resolved = receiver.wait_for(2).await[1].clone();
    assert_eq!(resolved.json()["type"], "alert.resolved");
    assert_eq!(resolved.json()["data"]["status"], "resolved");
    // The event API shows them with the alert schema.
    let events = app.get("/api/v1/webhook-events", &app.admin).await;
    let types: Vec<String> = events.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_owned())
        .collect();
    assert!(types.contains(&"alert.opened".to_owned()));
    assert_eq!(
        events.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "alert.opened")
            .unwrap()["data"]["period_start"],
        "2026-11-20"
    );
}

/// The metrics listener counts deliveries by outcome, the age of what
/// waits, and the alerts.
#[tokio::test]
async fn the_metrics_show_deliveries_backlog_and_alerts() {
    use crate::helpers::start_cluster;
    let receiver = Receiver::start().await;
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let metrics_bind = format!("127.0.0.1:{metrics_port}");
    let env = [
        ("WEBHOOK_ALLOW_HTTP", "true"),
        ("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32"),
        ("METRICS_BIND_ADDR", metrics_bind.as_str()),
    ];
    let mut cluster = start_cluster(1, &env).await;
    let token = cluster.token.clone();
    let service = cluster.services.remove(0);
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| {
        client
            .post(format!("{}{path}", service.api))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    // One endpoint that answers, one that fails (and keeps a backlog).
    for hook in [receiver.url(), "http://127.0.0.1:9/hook".to_owned()] {
        let reply = post(
            "/api/v1/webhooks",
            json!({"url": hook, "event_types": ["encounter.created", "alert.opened"]}),
        )
        .await
        .unwrap();
        assert_eq!(reply.status(), 201);
    }
    let rule = post(
        "/api/v1/alert-rules",
        json!({"name": "d", "kind": "detractor"}),
    )
    .await
    .unwrap();
    assert_eq!(rule.status(), 201);
    let touchpoint: Value = post(
        "/api/v1/touchpoints",
        json!({"name": "Interview", "kind": "employer_created", "channel": "interview", "stage": "interview"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let reply = post(
        "/api/v1/encounters/batch",
        json!([{"candidate_external_ref": "M-1", "touchpoint_id": touchpoint["id"], "occurred_at": AT, "score": 2}]),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), 201);
    receiver.wait_for(2).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let text = client
        .get(format!("http://{metrics_bind}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
            .and_then(|line| line.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    };
    assert_eq!(
        value(r#"webhook_deliveries_total{outcome="delivered"}"#),
        2.0
    );
    assert!(value(r#"webhook_deliveries_total{outcome="failed"}"#) >= 1.0);
    assert!(value("webhook_oldest_undelivered_seconds") > 0.0);
    assert_eq!(value(r#"alerts_open{kind="detractor"}"#), 1.0);
    assert_eq!(value(r#"alerts_open{kind="drop"}"#), 0.0);
    assert_eq!(value("alerts_opened"), 1.0);
}

/// Two instances share the deliveries: each event reaches the receiver
/// once, in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_deliver_each_event_once_in_order() {
    use crate::helpers::start_cluster;
    const EVENTS: usize = 30;
    let receiver = Receiver::start().await;
    *receiver.delay.lock().unwrap() = Duration::from_millis(20);
    let env = [
        ("WEBHOOK_ALLOW_HTTP", "true"),
        ("WEBHOOK_ALLOWED_NETWORKS", "127.0.0.1/32"),
    ];
    let mut cluster = start_cluster(2, &env).await;
    let token = cluster.token.clone();
    let a = cluster.services.remove(0);
    let b = cluster.services.remove(0);
    let client = reqwest::Client::new();
    let post = |api: &str, path: &str, body: Value| {
        client
            .post(format!("{api}{path}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
    };
    let reply = post(
        &a.api,
        "/api/v1/webhooks",
        json!({"url": receiver.url(), "event_types": ["encounter.created"]}),
    )
    .await
    .unwrap();
    assert_eq!(reply.status(), 201);
    let touchpoint: Value = post(
        &b.api,
        "/api/v1/touchpoints",
        json!({"name": "Interview", "kind": "employer_created", "channel": "interview", "stage": "interview"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    for n in 0..EVENTS {
        let api = if n % 2 == 0 { &a.api } else { &b.api };
        let reply = post(
            api,
            "/api/v1/encounters/batch",
            json!([{"candidate_external_ref": format!("I-{n}"), "touchpoint_id": touchpoint["id"], "occurred_at": AT, "score": 7}]),
        )
        .await
        .unwrap();
        assert_eq!(reply.status(), 201);
    }
    receiver.wait_for(EVENTS).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ids: Vec<i64> = receiver
        .received()
        .iter()
        .map(|r| r.id()[4..].parse().unwrap())
        .collect();
    assert_eq!(ids.len(), EVENTS, "an event went twice: {ids:?}");
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "out of order: {ids:?}");
}

/// Events and attempts older than the retention are forgotten; the
/// endpoint goes on with the next events.
#[tokio::test]
async fn old_events_and_attempts_are_purged() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let receiver = Receiver::start().await;
    let (id, _) = endpoint(&app, &receiver.url(), json!({})).await;
    let touchpoint = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("P-1").await;
    app.encounter(candidate, touchpoint, AT, Some(8)).await;
    receiver.wait_for(1).await;
    let later = chrono::Utc::now() + chrono::Duration::seconds(1);
    touchpoint_tracker::domain::webhooks::delivery::purge(&app.db, later)
        .await
        .unwrap();
    assert_eq!(app.count("outbox_events").await, 0);
    assert_eq!(app.count("webhook_deliveries").await, 0);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.encounter(candidate, touchpoint, AT, Some(9)).await;
    let received = receiver.wait_for(2).await;
    assert_eq!(received[1].json()["data"]["score"], 9);
    // The receiver has the event before the dispatcher commits its cursor
    // past it: the backlog empties a moment after.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let state = app.get(&format!("/api/v1/webhooks/{id}"), &app.admin).await;
        if state.assert_status(200)["backlog"] == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backlog stays {}",
            state.body["backlog"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A receiver that is down when the event comes gets it once it is back,
/// at the next retry, with the same webhook-id.
#[tokio::test]
async fn a_receiver_that_was_down_gets_the_event_at_the_next_retry() {
    let app = spawn_app_with_webhooks(local_settings()).await;
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let (id, secret) = endpoint(&app, &format!("http://127.0.0.1:{port}/hook"), json!({})).await;
    let touchpoint = app
        .touchpoint("Job ad", "employer_created", "job_board", "awareness")
        .await;
    let candidate = app.candidate("DOWN-UP").await;
    let encounter = app.encounter(candidate, touchpoint, AT, Some(4)).await;
    wait_for_state(&app, id, |e| e["consecutive_failures"] == 1).await;
    // Back up before the retry, 5 s after the first attempt.
    let receiver = Receiver::start_on(port).await;
    let delivered = tokio::time::timeout(Duration::from_secs(15), receiver.wait_for(1))
        .await
        .expect("delivered at the retry");
    assert!(delivered[0].verifies_with(&secret));
    assert_eq!(delivered[0].json()["data"]["encounter_id"], encounter);
    let state = wait_for_state(&app, id, |e| e["backlog"] == 0).await;
    assert_eq!(state["consecutive_failures"], 0);
    assert!(state["enabled"].as_bool().unwrap());
}
