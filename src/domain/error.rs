use sea_orm::{DbErr, SqlErr};

use crate::db::StorageError;

pub type DomainResult<T> = Result<T, DomainError>;

/// Everything that can go wrong in the domain layer. `api::error` is the one
/// place that turns it into an HTTP status and JSON body.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// An input value breaks a rule; `field` names it.
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// A reference in the request body names a row that does not exist in
    /// the caller's organization.
    #[error("{field}: no such {resource}")]
    UnknownReference {
        field: &'static str,
        resource: &'static str,
    },
    /// The addressed resource does not exist in the caller's organization.
    #[error("{resource} not found")]
    NotFound { resource: &'static str },
    /// A unique value is already taken.
    #[error("{field}: {message}")]
    AlreadyExists {
        field: &'static str,
        message: String,
    },
    /// The touchpoint is archived and takes no new encounters.
    #[error("{message}")]
    Archived {
        field: &'static str,
        message: String,
    },
    /// The candidate's personal data was erased: it takes no changes and no
    /// new encounters. `field` names the request field that refers to it.
    #[error("{message}")]
    Erased {
        field: &'static str,
        message: String,
    },
    /// The API key is still needed: it is the caller's own, or the
    /// organization's last active admin key.
    #[error("{0}")]
    KeyStillNeeded(String),
    /// The candidate was invited to a survey more recently than the
    /// organization's cool-down allows; the message names that invitation.
    #[error("{message}")]
    SurveyCooldown {
        field: &'static str,
        message: String,
    },
    /// The survey invitation is answered, so it can no longer change.
    #[error("{0}")]
    InvitationClosed(String),
    /// The alert is resolved, so its status can no longer change.
    #[error("{0}")]
    AlertResolved(String),
    /// No valid credentials.
    #[error("missing, malformed, unknown, revoked or expired API key")]
    Unauthenticated,
    /// Valid credentials whose role does not allow the action.
    #[error("{0}")]
    Forbidden(String),
    /// Items of a batch or import were refused, each for its own reason.
    #[error("{} items refused", .0.len())]
    InvalidItems(Vec<ItemError>),
    /// Recorded encounters are waiting to be projected into the rollups,
    /// more than a report adds as it reads; the caller may retry shortly.
    /// The message is the client's.
    #[error("{0}")]
    Behind(String),
    /// The database cannot be reached now; the caller may retry. The
    /// message is for the log; the client is told only that.
    #[error("{0}")]
    Unavailable(String),
    /// A fault of the service or of its stored data, never the caller's:
    /// the message is for the log; the client gets a bare 500.
    #[error("{0}")]
    Internal(String),
}

impl From<StorageError> for DomainError {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::Unavailable(message) => DomainError::Unavailable(message),
            StorageError::Fault(message) => DomainError::Internal(message),
        }
    }
}

impl From<DbErr> for DomainError {
    fn from(err: DbErr) -> Self {
        StorageError::from(err).into()
    }
}

impl DomainError {
    /// The refusal of a change to an erased candidate, or of an encounter
    /// for one; `field` names the request field that refers to it.
    pub fn erased(field: &'static str, candidate_id: i64) -> Self {
        Self::Erased {
            field,
            message: format!(
                "candidate {candidate_id} is erased and takes no changes or encounters"
            ),
        }
    }

    /// A fault of the service or of its stored data (see [`Self::Internal`]).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Turns a unique-constraint violation into `AlreadyExists` (the insert
    /// lost a race with a concurrent one); any other error stays a database
    /// error.
    pub fn on_unique_violation(err: DbErr, field: &'static str, message: &str) -> Self {
        match err.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => Self::AlreadyExists {
                field,
                message: message.to_owned(),
            },
            _ => err.into(),
        }
    }
}

/// One item of a batch or import that was refused, by its position.
#[derive(Debug)]
pub struct ItemError {
    pub index: usize,
    pub error: DomainError,
}
