//! The bootstrap commands, run as the real binary.

use std::process::Command;

use super::helpers::fresh_database;

const BIN: &str = env!("CARGO_BIN_EXE_touchpoint-tracker");

fn run(database_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env("DB_STARTUP_TIMEOUT", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs")
}

#[tokio::test]
async fn org_and_key_create_print_only_the_token_on_stdout() {
    let database = fresh_database().await;
    let url = database.url.clone();

    let org = run(&url, &["org", "create", "acme", "Acme Corp"]);
    assert!(org.status.success(), "{org:?}");
    assert!(org.stdout.is_empty(), "org create prints nothing on stdout");

    let key = run(
        &url,
        &[
            "key",
            "create",
            "--org",
            "acme",
            "--role",
            "admin",
            "--name",
            "HR laptop",
        ],
    );
    assert!(key.status.success(), "{key:?}");
    let stdout = String::from_utf8(key.stdout).unwrap();
    let token = stdout.trim_end();
    assert_eq!(
        stdout.lines().count(),
        1,
        "only the token on stdout: {stdout:?}"
    );
    assert!(token.starts_with("tpt_") && token.len() >= 40, "{token:?}");
    let stderr = String::from_utf8(key.stderr).unwrap();
    assert!(stderr.contains("admin"), "details go to stderr: {stderr}");
    assert!(
        !stderr.contains(token),
        "the token is not repeated on stderr"
    );

    // The token authenticates against a service on the same database.
    let db = touchpoint_tracker::db::connect(&touchpoint_tracker::config::DatabaseSettings::new(
        url.as_str(),
    ))
    .await
    .unwrap();
    let principal = touchpoint_tracker::domain::keys::authenticate(&db, token)
        .await
        .unwrap();
    assert_eq!(principal.role, entity::enums::Role::Admin);
    assert_eq!(principal.key_name, "HR laptop");
}

#[tokio::test]
async fn bootstrap_errors_are_clear_and_fail() {
    let database = fresh_database().await;
    let url = database.url.clone();

    let unknown_org = run(&url, &["key", "create", "--org", "nope", "--role", "admin"]);
    assert!(!unknown_org.status.success());
    assert!(String::from_utf8_lossy(&unknown_org.stderr).contains("no organization with slug"));

    assert!(run(&url, &["org", "create", "acme", "Acme"])
        .status
        .success());
    let duplicate = run(&url, &["org", "create", "acme", "Acme again"]);
    assert!(!duplicate.status.success());

    let bad_role = run(&url, &["key", "create", "--org", "acme", "--role", "owner"]);
    assert!(!bad_role.status.success());
}

#[test]
fn help_documents_the_configuration() {
    let help = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8(help.stdout).unwrap();
    for expected in [
        "--database-url",
        "DATABASE_URL",
        "--bind",
        "BIND_ADDR",
        "--log-format",
        "serve",
        "migrate",
        "openapi",
        "org",
        "key",
    ] {
        assert!(text.contains(expected), "--help lacks {expected}: {text}");
    }
}

#[test]
fn openapi_command_prints_the_document() {
    let out = Command::new(BIN).arg("openapi").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        touchpoint_tracker::api::openapi_document()
    );
}
