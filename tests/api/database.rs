//! Connection settings reach the database.

use std::time::Duration;

use sea_orm::{ConnectionTrait, Statement};
use touchpoint_tracker::{config::DatabaseSettings, db};

use super::helpers::fresh_database;

#[tokio::test]
async fn statement_timeout_cancels_long_statements_on_postgres() {
    let database = fresh_database().await;
    if !database.url.starts_with("postgres") {
        eprintln!("not run: SQLite has no statement timeout");
        return;
    }
    let mut settings = DatabaseSettings::new(database.url.clone());
    settings.statement_timeout = Some(Duration::from_millis(300));
    let conn = db::connect(&settings).await.unwrap();

    let backend = conn.get_database_backend();
    let slow = conn
        .execute_raw(Statement::from_string(backend, "SELECT pg_sleep(2)"))
        .await;

    let err = slow.expect_err("the statement is cancelled");
    assert!(
        db::is_unavailable(&err),
        "a cancelled statement is a 503: {err}"
    );
    let quick = conn
        .execute_raw(Statement::from_string(backend, "SELECT 1"))
        .await;
    assert!(quick.is_ok(), "the connection stays usable");
}

#[tokio::test]
async fn sqlite_directories_are_created_on_first_start() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/nested/dir/t.db", dir.path().display());

    let conn = db::connect(&DatabaseSettings::new(url)).await.unwrap();
    touchpoint_tracker::startup::migrate(&conn).await.unwrap();

    assert!(dir.path().join("nested/dir/t.db").exists());
}
