//! Domain logic: validation, queries and transactions. Knows nothing of HTTP;
//! every function takes `&impl ConnectionTrait` so it also runs inside a
//! transaction.

pub mod auth;
pub mod candidates;
pub mod encounters;
pub mod error;
pub mod exports;
pub mod keys;
pub mod organizations;
pub mod pagination;
pub mod patch;
pub mod perception;
pub mod reports;
pub mod rollups;
pub mod sql;
pub mod touchpoints;
pub mod validate;

pub use error::{DomainError, DomainResult};

/// The current time, at the microsecond precision both SQLite and PostgreSQL
/// keep, so a value read back equals the value written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    use chrono::SubsecRound;
    chrono::Utc::now().trunc_subsecs(6)
}
