//! Domain logic: validation, queries and transactions. Knows nothing of HTTP;
//! every function takes a connection (`&impl ConnectionTrait`, or on the
//! encounter write path `&impl db::store::Executor`) so it also runs inside a
//! transaction.

pub mod access;
pub mod alerts;
pub mod analytics;
pub mod candidates;
pub mod catalog;
pub mod cursor;
pub mod encounters;
pub mod error;
pub mod idempotency;
pub mod organizations;
pub mod pagination;
pub mod patch;
pub mod privacy;
pub mod surveys;
pub mod validate;
pub mod webhooks;

pub use error::{DomainError, DomainResult};

pub use crate::db::{begin_write, Connection};

/// The current time, at the microsecond precision both SQLite and PostgreSQL
/// keep, so a value read back equals the value written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
