//! Domain logic: validation, queries and transactions. Knows nothing of HTTP;
//! every function takes a connection (`&impl ConnectionTrait`, or on the
//! encounter write path `&impl store::Executor`) so it also runs inside a
//! transaction.

pub mod auth;
pub mod candidates;
pub mod demo;
pub mod encounters;
pub mod error;
pub mod exports;
pub mod group_commit;
pub mod idempotency;
pub mod ingest;
pub mod keys;
pub mod organizations;
pub mod pagination;
pub mod patch;
pub mod perception;
pub mod reports;
pub mod retention;
pub mod rollups;
pub mod sql;
pub mod store;
pub mod touchpoints;
pub mod validate;

pub use error::{DomainError, DomainResult};

use sea_orm::{
    DatabaseConnection, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

/// Begins a transaction that is going to write. On SQLite it takes the write
/// lock at once (`BEGIN IMMEDIATE`), waiting for it under the busy timeout:
/// a deferred transaction that reads first and then writes cannot wait, and
/// fails with "database is locked" when another writer got there first.
pub async fn begin_write(db: &DatabaseConnection) -> DomainResult<DatabaseTransaction> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}

/// The current time, at the microsecond precision both SQLite and PostgreSQL
/// keep, so a value read back equals the value written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
