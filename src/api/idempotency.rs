//! The `Idempotency-Key` header on the create operations: turning it into
//! the domain's [`Idempotency`], and answering a replayed request with the
//! stored response as the operation's own typed body.

use poem_openapi::types::{ParseFromJSON, ToJSON};

use super::error::ApiError;
use crate::domain::idempotency::{Idempotency, StoredResponse, Written};

/// The operation's idempotency, when the request carries a key.
pub fn idempotency(
    header: Option<&str>,
    operation: &str,
    body_digest: &[u8],
) -> Result<Option<Idempotency>, ApiError> {
    // Whitespace around a header value is not part of it (RFC 9110).
    header
        .map(|key| Idempotency::new(key.trim_matches([' ', '\t']), operation, body_digest))
        .transpose()
        .map_err(Into::into)
}

/// A response as stored for a key.
pub fn stored<T: ToJSON>(status: u16, body: &T) -> StoredResponse {
    StoredResponse {
        status,
        body: body.to_json_string(),
    }
}

/// The body to answer with: the fresh result, or the stored one read back
/// into the same type (a stored body that no longer parses is a server bug).
pub fn answer<T, R: ParseFromJSON>(
    written: Written<T>,
    fresh: impl FnOnce(T) -> R,
) -> Result<R, ApiError> {
    match written {
        Written::Fresh(value) => Ok(fresh(value)),
        Written::Replayed(stored) => {
            let value = serde_json::from_str(&stored.body).ok();
            R::parse_from_json(value).map_err(|err| {
                tracing::error!(error = %err.into_message(), "the stored response's schema error");
                ApiError::from(crate::domain::DomainError::internal(
                    "a stored idempotent response no longer parses",
                ))
            })
        }
    }
}
