//! What can go wrong in storage, classified once, here: the database cannot
//! be reached now (the caller may retry), or a fault (a statement refused,
//! a stored value that does not read as its type: a bug, never the
//! caller's). Callers above this module never see a driver's error type.

use sea_orm::{sqlx, DbErr, RuntimeErr};

pub type StorageResult<T> = Result<T, StorageError>;

/// A storage failure. Each message is for the log: it names columns, row ids
/// and the kind of fault, never a stored value (which may be personal data).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// Pool exhausted or closed, connection refused or dropped, server
    /// shutting down, statement timeout.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Fault(String),
}

impl StorageError {
    pub fn fault(message: impl Into<String>) -> Self {
        StorageError::Fault(message.into())
    }
}

impl From<DbErr> for StorageError {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            StorageError::Unavailable(loggable(&err).into_owned())
        } else {
            StorageError::Fault(loggable(&err).into_owned())
        }
    }
}

/// The SQLite writer's and readers' own connections (see `store`): a file
/// that cannot be opened or read is the database being unavailable, as a
/// dropped connection is for the pool; the rest are faults.
impl From<rusqlite::Error> for StorageError {
    fn from(err: rusqlite::Error) -> Self {
        use rusqlite::ErrorCode;
        let message = match &err {
            // Conversion errors quote the value: keep the kind only.
            rusqlite::Error::FromSqlConversionFailure(index, stored, _) => {
                format!("SQLite: column {index} holds a {stored} value that does not convert")
            }
            other => format!("SQLite: {other}"),
        };
        match err.sqlite_error_code() {
            Some(ErrorCode::CannotOpen | ErrorCode::SystemIoFailure | ErrorCode::DiskFull) => {
                StorageError::Unavailable(message)
            }
            _ => StorageError::Fault(message),
        }
    }
}

/// Whether a database error means "the database cannot be reached now"
/// (pool exhausted or closed, connection refused or dropped, server shutting
/// down) rather than a fault in the request or the code.
pub fn is_unavailable(err: &DbErr) -> bool {
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => runtime,
        _ => return false,
    };
    let RuntimeErr::SqlxError(sqlx_err) = runtime else {
        return matches!(err, DbErr::Conn(_));
    };
    match sqlx_err.as_ref() {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL: query_canceled (statement timeout), admin_shutdown,
        // crash_shutdown, cannot_connect_now, and the connection-exception
        // class (08xxx).
        sqlx::Error::Database(db_err) => db_err.code().is_some_and(|code| {
            matches!(code.as_ref(), "57014" | "57P01" | "57P02" | "57P03") || code.starts_with("08")
        }),
        _ => matches!(err, DbErr::Conn(_)),
    }
}

/// A database error as it may be logged. A value that does not read as its
/// type (sea-orm's `Type` and `TryIntoErr`, e.g. "unexpected value for
/// Source enum: <the stored value>") would quote the stored value, which
/// may be personal data: only the kind of fault is kept.
pub fn loggable(err: &DbErr) -> std::borrow::Cow<'_, str> {
    match err {
        DbErr::Type(_) | DbErr::TryIntoErr { .. } => {
            "a stored value does not read as its type (the value is not logged)".into()
        }
        other => other.to_string().into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_that_do_not_read_stay_out_of_the_log() {
        let stored = "unexpected value for Source enum: Nguyen Thi Lan";
        let err = StorageError::from(DbErr::Type(stored.to_owned()));
        assert!(matches!(err, StorageError::Fault(_)));
        assert!(!err.to_string().contains("Nguyen"), "{err}");
        // Other faults keep their message, which names no stored value.
        let refused = DbErr::RecordNotInserted;
        assert_eq!(loggable(&refused), refused.to_string());
    }

    #[test]
    fn an_unreachable_database_is_told_apart_from_a_fault() {
        assert!(matches!(
            StorageError::from(DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout)),
            StorageError::Unavailable(_)
        ));
        let cannot_open = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
            None,
        );
        assert!(matches!(
            StorageError::from(cannot_open),
            StorageError::Unavailable(_)
        ));
        let constraint = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT),
            None,
        );
        assert!(matches!(
            StorageError::from(constraint),
            StorageError::Fault(_)
        ));
    }
}
