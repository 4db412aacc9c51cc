//! Runs the README's shell blocks, as written, against the real binary.

use std::process::Command;

use serde_json::Value;

use super::helpers::{fresh_database, ServiceProcess, BIN};

const README: &str = include_str!("../../README.md");

/// The shell block between `<!-- name:start -->` and `<!-- name:end -->`.
fn readme_block(name: &str) -> String {
    let start = README
        .find(&format!("<!-- {name}:start -->"))
        .expect("start marker");
    let end = README
        .find(&format!("<!-- {name}:end -->"))
        .expect("end marker");
    let block = &README[start..end];
    let body_start = block.find("```sh\n").expect("sh fence") + "```sh\n".len();
    let body_end = block.rfind("```").expect("closing fence");
    block[body_start..body_end].to_owned()
}

#[tokio::test]
async fn readme_tour_works_as_written_and_sigterm_exits_cleanly() {
    let database = fresh_database().await;
    let database_url = database.url.clone();
    let mut server = ServiceProcess::start_healthy(&database_url).await;
    let api = server.api.clone();

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
        .arg(format!(
            "{preamble}\n{}\n{}",
            readme_block("tour"),
            readme_block("audit")
        ))
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

    let impact_at = stdout
        .find("{\"from\":\"2026-11-01\"")
        .expect("impact report");
    let impact = first_json(&stdout[impact_at..], "{");
    let rows = impact["touchpoints"].as_array().unwrap();
    assert_eq!(rows[0]["name"], "Interviewer no-show");
    assert_eq!(rows[0]["mean_attributed_shift"], -4.0);
    assert_eq!(rows[1]["name"], "Careers site");
    assert_eq!(rows[1]["mean_attributed_shift"], Value::Null);

    let journey = first_json(&stdout[stdout.rfind("{\"candidate_id\"").unwrap()..], "{");
    assert_eq!(journey["first_score"], 7);
    assert_eq!(journey["latest_score"], 3);
    assert_eq!(journey["overall_shift"], -4);
    let steps = journey["steps"].as_array().unwrap();
    assert_eq!(steps[0]["touchpoint_name"], "Careers site");
    assert_eq!(steps[1]["touchpoint_name"], "Interviewer no-show");
    assert_eq!(steps[1]["kind"], "unexpected");
    assert_eq!(steps[1]["shift"], -4);

    // The audit trail: the latest changes (the encounters), then the
    // candidate's history, by the key the tour created.
    let latest = first_json(&stdout, "{\"items\"");
    let latest = latest["items"].as_array().unwrap();
    assert_eq!(latest.len(), 3);
    assert_eq!(latest[0]["resource_type"], "encounter");
    assert_eq!(latest[0]["actor_name"], "HR team");
    let history: Value =
        serde_json::from_str(&stdout[stdout.rfind("{\"items\"").unwrap()..]).unwrap();
    assert_eq!(history["items"][0]["action"], "create");
    assert_eq!(
        history["items"][0]["changed_fields"],
        serde_json::json!(["external_ref", "display_name", "stage"])
    );

    // SIGTERM: a graceful exit with status 0.
    let status = server.terminate().await;
    assert!(status.success(), "exit status after SIGTERM: {status:?}");
}

/// The first JSON value in `output` that starts with `prefix`.
fn first_json(output: &str, prefix: &str) -> Value {
    let at = output.find(prefix).expect(prefix);
    serde_json::Deserializer::from_str(&output[at..])
        .into_iter()
        .next()
        .unwrap()
        .unwrap()
}

/// The PostgreSQL set-up block, on a fresh database of the suite's server
/// (only when the suite runs on PostgreSQL).
#[tokio::test]
async fn readme_postgres_setup_works_as_written() {
    let database = fresh_database().await;
    if !database.url.starts_with("postgres") {
        eprintln!("not run: the suite runs on SQLite (see scripts/test-postgres.sh)");
        return;
    }
    // `cargo build --release` stands for this test's build of the binary.
    let preamble = r#"
set -euo pipefail
cargo() { [ "$*" = "build --release" ] || { echo "unexpected cargo call: $*" >&2; exit 1; }; }
touchpoint-tracker() { "$BIN" "$@"; }
"#;
    let script = format!("{preamble}\n{}\necho \"$TOKEN\"", readme_block("postgres"));
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("BIN", BIN)
        .env("DATABASE_URL", &database.url)
        .env_remove("RUST_LOG")
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{output:?}");
    let token = String::from_utf8(output.stdout).unwrap().trim().to_owned();

    let server = ServiceProcess::start_healthy(&database.url).await;
    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/keys", server.api))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let keys: Value = response.json().await.unwrap();
    assert_eq!(keys["items"][0]["name"], "HR team");
    assert_eq!(keys["items"][0]["role"], "admin");
}

/// The key rotation block: afterwards only the successor works, and it
/// expires in 90 days.
#[tokio::test]
async fn readme_key_rotation_works_as_written() {
    let database = fresh_database().await;
    super::helpers::run_cli(&database.url, &["org", "create", "acme", "Acme Corp"]);
    let admin = super::helpers::run_cli(
        &database.url,
        &["key", "create", "--org", "acme", "--role", "admin"],
    );
    let server = ServiceProcess::start_healthy(&database.url).await;
    let client = reqwest::Client::new();
    let old: Value = client
        .post(format!("{}/api/v1/keys", server.api))
        .bearer_auth(&admin)
        .json(&serde_json::json!({"name": "Nightly BI export", "role": "reporter"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let old_token = old["token"].as_str().unwrap();

    let preamble = r#"
set -euo pipefail
AUTH="Authorization: Bearer $TOKEN"
JSON="Content-Type: application/json"
"#;
    let script = format!(
        "{preamble}\n{}\nprintf '\\n%s\\n' \"$NEW_TOKEN\"",
        readme_block("rotation")
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("API", &server.api)
        .env("TOKEN", &admin)
        .env("OLD_KEY_ID", old["key"]["id"].to_string())
        .output()
        .expect("bash runs");
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    let new_token = stdout.lines().last().unwrap().trim();
    assert!(new_token.starts_with("tpt_"), "{stdout}");

    let status = |token: &str| {
        let request = client
            .get(format!("{}/api/v1/touchpoints", server.api))
            .bearer_auth(token);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(status(old_token).await, 401, "the old key is revoked");
    assert_eq!(status(new_token).await, 200, "the successor works");
    let keys: Value = client
        .get(format!("{}/api/v1/keys", server.api))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let successor = keys["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["revoked_at"].is_null() && key["role"] == "reporter")
        .expect("the successor is listed");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(successor["expires_at"].as_str().unwrap())
            .unwrap()
            .with_timezone(&chrono::Utc);
    let days = (expires_at - chrono::Utc::now()).num_hours() as f64 / 24.0;
    assert!((89.0..=90.0).contains(&days), "expires in {days} days");
}
