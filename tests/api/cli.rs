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
    let principal = touchpoint_tracker::domain::access::keys::authenticate(&db, &db, token)
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
        "demo",
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

/// Encounters of one organization as comparable rows: candidate's
/// reference, touchpoint name, time and score.
async fn demo_rows(
    db: &sea_orm::DatabaseConnection,
    slug: &str,
) -> Vec<(String, String, String, Option<i32>)> {
    use sea_orm::{ConnectionTrait, Statement};
    let rows = db
        .query_all_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            "SELECT c.external_ref, t.name, e.occurred_at, e.score \
             FROM encounters e JOIN candidates c ON c.id = e.candidate_id \
             JOIN touchpoints t ON t.id = e.touchpoint_id \
             JOIN organizations o ON o.id = e.organization_id \
             WHERE o.slug = $1 ORDER BY c.external_ref, e.occurred_at, t.name",
            [slug.into()],
        ))
        .await
        .unwrap();
    rows.into_iter()
        .map(|row| {
            let at: chrono::DateTime<chrono::Utc> = row.try_get_by_index(2).unwrap();
            (
                row.try_get_by_index(0).unwrap(),
                row.try_get_by_index(1).unwrap(),
                at.to_rfc3339(),
                row.try_get_by_index(3).unwrap(),
            )
        })
        .collect()
}

fn mean_score(rows: &[(String, String, String, Option<i32>)], touchpoint: &str) -> f64 {
    let scores: Vec<i32> = rows
        .iter()
        .filter(|(_, name, _, _)| name == touchpoint)
        .filter_map(|(_, _, _, score)| *score)
        .collect();
    assert!(
        scores.len() >= 5,
        "{touchpoint} has {} scores",
        scores.len()
    );
    f64::from(scores.iter().sum::<i32>()) / scores.len() as f64
}

#[tokio::test]
async fn demo_seed_fills_an_organization_deterministically() {
    let database = fresh_database().await;
    let url = database.url.clone();
    let seed = |org: &str, seed: &str| {
        run(
            &url,
            &[
                "demo",
                "seed",
                "--org",
                org,
                "--candidates",
                "400",
                "--seed",
                seed,
            ],
        )
    };
    let first = seed("demo-a", "7");
    assert!(first.status.success(), "{first:?}");
    let report = String::from_utf8_lossy(&first.stderr);
    assert!(report.contains("400 candidates"), "{report}");
    assert!(seed("demo-b", "7").status.success());
    assert!(seed("demo-c", "8").status.success());

    let db = touchpoint_tracker::db::connect(&touchpoint_tracker::config::DatabaseSettings::new(
        url.as_str(),
    ))
    .await
    .unwrap();
    let a = demo_rows(&db, "demo-a").await;
    assert!(a.len() >= 1000, "{} encounters", a.len());
    assert_eq!(a, demo_rows(&db, "demo-b").await, "same seed, same data");
    assert_ne!(
        a,
        demo_rows(&db, "demo-c").await,
        "another seed, other data"
    );
    let scored = a.iter().filter(|row| row.3.is_some()).count();
    let share = scored as f64 / a.len() as f64;
    assert!((0.5..0.7).contains(&share), "{share} of encounters scored");
    // The touchpoints move perception as the catalog says.
    assert!(mean_score(&a, "Interviewer no-show") < mean_score(&a, "Offer call"));

    // A second seed into an organization with data is refused, adding nothing.
    let again = seed("demo-a", "7");
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already has"));
    assert_eq!(demo_rows(&db, "demo-a").await.len(), a.len());
}
