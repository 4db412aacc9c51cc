//! Domain logic: validation, queries and transactions. Knows nothing of HTTP;
//! every function takes a connection (`&impl ConnectionTrait`, or on the
//! encounter write path `&impl store::Executor`) so it also runs inside a
//! transaction.

pub mod access;
pub mod analytics;
pub mod candidates;
pub mod catalog;
pub mod encounters;
pub mod error;
pub mod idempotency;
pub mod organizations;
pub mod pagination;
pub mod patch;
pub mod privacy;
pub mod validate;

pub use error::{DomainError, DomainResult};

use sea_orm::{
    ConnectionTrait, DatabaseTransaction, SqliteTransactionMode, TransactionOptions,
    TransactionTrait,
};

/// Where a change runs in a transaction of its own, with its audit event:
/// the pool (a transaction), or a caller's transaction (a savepoint in it),
/// as `demo seed` does to write its catalog in one transaction.
pub trait Connection:
    ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>
{
}

impl<C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>> Connection for C {}

/// Begins a transaction that is going to write. On SQLite it takes the write
/// lock at once (`BEGIN IMMEDIATE`), waiting for it under the busy timeout:
/// a deferred transaction that reads first and then writes cannot wait, and
/// fails with "database is locked" when another writer got there first.
/// Inside a transaction, it is a savepoint.
pub async fn begin_write(db: &impl Connection) -> DomainResult<DatabaseTransaction> {
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
