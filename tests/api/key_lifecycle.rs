//! API keys over their life: expiry, rotation, `last_used_at`, and tokens
//! kept out of the logs.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::helpers::{fresh_database, run_cli, spawn_app, ServiceProcess, TestApp, BIN};

async fn create_key(app: &TestApp, body: Value) -> (Value, String) {
    let reply = app.post("/api/v1/keys", &app.admin, body).await;
    let body = reply.assert_status(201).clone();
    let token = body["token"].as_str().unwrap().to_owned();
    (body["key"].clone(), token)
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().expect("a time"))
        .expect("RFC 3339")
        .with_timezone(&Utc)
}

#[tokio::test]
async fn an_expiring_key_works_until_it_expires_then_gets_401() {
    let app = spawn_app().await;
    let expires_at = Utc::now() + chrono::Duration::seconds(2);
    let (key, token) = create_key(
        &app,
        json!({"name": "Agency until Friday", "role": "recruiter",
               "expires_at": expires_at.to_rfc3339()}),
    )
    .await;
    assert_eq!(
        time(&key["expires_at"]).timestamp_millis(),
        expires_at.timestamp_millis()
    );
    app.get("/api/v1/candidates", &token)
        .await
        .assert_status(200);

    let wait = (expires_at - Utc::now()).to_std().unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(200)).await;
    app.get("/api/v1/candidates", &token)
        .await
        .assert_error(401, "unauthorized", None);

    // Listed as it is, still with its expiry; the other keys are untouched.
    let listed = app.get("/api/v1/keys", &app.admin).await;
    let listed = listed.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|item| item["id"] == key["id"])
        .cloned()
        .unwrap();
    assert_eq!(listed["expires_at"], key["expires_at"]);
    assert!(listed["revoked_at"].is_null());
    app.get("/api/v1/candidates", &app.recruiter)
        .await
        .assert_status(200);
}

#[tokio::test]
async fn a_key_without_expiry_says_so_and_expiry_must_be_a_future_time() {
    let app = spawn_app().await;
    let (key, _) = create_key(&app, json!({"name": "BI export", "role": "reporter"})).await;
    assert!(key["expires_at"].is_null(), "{key}");
    let (key, _) = create_key(
        &app,
        json!({"name": "BI export 2", "role": "reporter", "expires_at": null}),
    )
    .await;
    assert!(key["expires_at"].is_null(), "null is no expiry too: {key}");

    let past = (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339();
    for (expires_at, status, code) in [
        (json!(past), 422, "validation_failed"),
        (json!("next friday"), 422, "validation_failed"),
        (json!(1767225600), 422, "validation_failed"),
    ] {
        let reply = app
            .post(
                "/api/v1/keys",
                &app.admin,
                json!({"name": "Bad", "role": "reporter", "expires_at": expires_at}),
            )
            .await;
        reply.assert_error(status, code, Some("expires_at"));
    }
    let keys = app.get("/api/v1/keys", &app.admin).await;
    let names: Vec<&str> = keys.assert_status(200)["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert!(
        !names.contains(&"Bad"),
        "no refused key was stored: {names:?}"
    );
}

/// The rotation README.md describes: create the successor, switch over,
/// revoke the old key. Both work in between, so no request fails.
#[tokio::test]
async fn a_key_is_rotated_without_downtime() {
    let app = spawn_app().await;
    let (old, old_token) =
        create_key(&app, json!({"name": "Nightly BI", "role": "reporter"})).await;
    let (new, new_token) =
        create_key(&app, json!({"name": "Nightly BI", "role": "reporter"})).await;
    assert_ne!(old["id"], new["id"]);
    for token in [&old_token, &new_token] {
        app.get(
            "/api/v1/reports/summary?from=2026-01-01&to=2026-02-01",
            token,
        )
        .await
        .assert_status(200);
    }
    app.delete(&format!("/api/v1/keys/{}", old["id"]), &app.admin)
        .await
        .assert_status(200);
    app.get("/api/v1/encounters", &old_token)
        .await
        .assert_error(401, "unauthorized", None);
    app.get("/api/v1/encounters", &new_token)
        .await
        .assert_status(200);
}

/// `last_used_at` is refreshed at most once a minute, so a busy key costs a
/// database write a minute, not one per request.
#[tokio::test]
async fn last_used_at_is_recorded_without_a_write_per_request() {
    let app = spawn_app().await;
    let (key, token) = create_key(&app, json!({"name": "Busy", "role": "recruiter"})).await;
    assert!(key["last_used_at"].is_null());
    let last_used = || async {
        let keys = app.get("/api/v1/keys", &app.admin).await;
        keys.assert_status(200)["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|item| item["id"] == key["id"])
            .unwrap()["last_used_at"]
            .clone()
    };

    let before = Utc::now();
    app.get("/api/v1/candidates", &token)
        .await
        .assert_status(200);
    let first = last_used().await;
    assert!(
        time(&first) >= before - chrono::Duration::seconds(1),
        "{first}"
    );

    for _ in 0..20 {
        app.get("/api/v1/candidates", &token)
            .await
            .assert_status(200);
    }
    assert_eq!(last_used().await, first, "not rewritten within the minute");
}

/// Runs the service at the most verbose level with its log in a file, uses
/// and creates keys in every way, and returns the log and the tokens seen.
async fn service_log(format: &str) -> (String, Vec<String>) {
    let database = fresh_database().await;
    run_cli(&database.url, &["org", "create", "acme", "Acme Corp"]);
    let log_dir = tempfile::tempdir().unwrap();
    let cli = std::process::Command::new(BIN)
        .args(["key", "create", "--org", "acme", "--role", "admin"])
        .env("DATABASE_URL", &database.url)
        .env("RUST_LOG", "trace")
        .env("LOG_FORMAT", format)
        .output()
        .expect("binary runs");
    assert!(cli.status.success(), "{cli:?}");
    let admin = String::from_utf8(cli.stdout).unwrap().trim().to_owned();
    let mut log = String::from_utf8_lossy(&cli.stderr).into_owned();

    let log_path = log_dir.path().join("service.log");
    let mut service = ServiceProcess::start_logging_to(
        &database.url,
        &[("RUST_LOG", "trace"), ("LOG_FORMAT", format)],
        std::fs::File::create(&log_path).unwrap(),
    );
    service.wait_for_health(200).await;
    let client = reqwest::Client::new();
    let url = |path: &str| format!("{}{path}", service.api);

    let created = client
        .post(url("/api/v1/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Recruiting agency", "role": "recruiter"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    let recruiter = created["token"].as_str().unwrap().to_owned();
    let revoked = client
        .post(url("/api/v1/keys"))
        .bearer_auth(&admin)
        .json(&json!({"name": "Leaked", "role": "reporter"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let revoked_token = revoked["token"].as_str().unwrap().to_owned();
    let status = client
        .delete(url(&format!("/api/v1/keys/{}", revoked["key"]["id"])))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);

    let unknown = format!("tpt_{}", "x".repeat(43));
    let garbage = "not-a-token-Zq8Rw".to_owned();
    for (authorization, expected) in [
        (format!("Bearer {admin}"), 200),
        (format!("Bearer {recruiter}"), 200),
        (format!("bearer {recruiter}"), 200),
        (format!("Bearer {revoked_token}"), 401),
        (format!("Bearer {unknown}"), 401),
        (format!("Bearer {garbage}"), 401),
        (format!("Basic {garbage}"), 401),
        (garbage.clone(), 401),
    ] {
        let reply = client
            .get(url("/api/v1/candidates"))
            .header("Authorization", &authorization)
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), expected, "{authorization}");
    }
    // A token in a query string is not a credential, and not logged either.
    let reply = client
        .get(url(&format!("/api/v1/candidates?token={recruiter}")))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);

    assert!(service.terminate().await.success());
    log.push_str(&std::fs::read_to_string(&log_path).unwrap());
    (log, vec![admin, recruiter, revoked_token, unknown, garbage])
}

async fn assert_no_secret_in_log(format: &str) {
    let (log, secrets) = service_log(format).await;
    // The most verbose level really was on: request lines and the database
    // driver's statements, with their values, are there.
    assert!(log.contains("/api/v1/keys"), "request lines are logged");
    assert!(log.contains("DEBUG"), "debug events are logged");
    assert!(log.contains("INSERT INTO"), "statements are logged");
    for secret in &secrets {
        assert!(
            !log.contains(secret.as_str()),
            "a token appears in the {format} log"
        );
        // Nor a tell-tale fragment longer than the displayed prefix.
        let fragment = &secret[secret.len() - 16..];
        assert!(
            !log.contains(fragment),
            "part of a token appears in the {format} log"
        );
    }
    let lowercase = log.to_lowercase();
    for header in ["bearer ", "basic ", "authorization:", "\"authorization\""] {
        assert!(
            !lowercase.contains(header),
            "an Authorization value appears in the {format} log ({header:?})"
        );
    }
}

#[tokio::test]
async fn no_token_or_authorization_value_is_logged_at_any_level_in_text() {
    assert_no_secret_in_log("pretty").await;
}

#[tokio::test]
async fn no_token_or_authorization_value_is_logged_at_any_level_in_json() {
    assert_no_secret_in_log("json").await;
}

#[tokio::test]
async fn key_create_on_the_command_line_takes_an_expiry_in_days() {
    use sea_orm::EntityTrait;

    let database = fresh_database().await;
    run_cli(&database.url, &["org", "create", "acme", "Acme Corp"]);
    let before = Utc::now();
    run_cli(
        &database.url,
        &[
            "key",
            "create",
            "--org",
            "acme",
            "--role",
            "admin",
            "--expires-in-days",
            "30",
        ],
    );
    run_cli(
        &database.url,
        &["key", "create", "--org", "acme", "--role", "reporter"],
    );
    let db = touchpoint_tracker::db::connect(&touchpoint_tracker::config::DatabaseSettings::new(
        database.url.as_str(),
    ))
    .await
    .unwrap();
    let keys = entity::api_key::Entity::find().all(&db).await.unwrap();
    assert_eq!(keys.len(), 2);
    let expires_at = keys[0].expires_at.expect("the admin key expires");
    let expected = before + chrono::Duration::days(30);
    assert!(
        (expires_at - expected).num_seconds().abs() < 60,
        "{expires_at} is 30 days after {before}"
    );
    assert_eq!(keys[1].expires_at, None, "no flag, no expiry");
}
