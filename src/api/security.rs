//! Bearer-token authentication, declared as the document's security scheme.

use poem::Request;
use poem_openapi::{auth::Bearer, SecurityScheme};
use sea_orm::DatabaseConnection;

use std::sync::Arc;

use super::{
    error::ApiError,
    rate_limit::{client_bucket, AuthFailureLimiter, RateLimiter},
};
use crate::db::store::InlineReader;
use crate::domain::{
    access::auth::Principal,
    access::keys,
    privacy::audit::{Actor, KeyActor},
    DomainError,
};

/// An API key: `Authorization: Bearer <token>`. Keys belong to one
/// organization and one role (`admin`, `recruiter` or `reporter`).
#[derive(SecurityScheme)]
#[oai(ty = "bearer", checker = "authenticate")]
pub struct ApiKeyAuth(pub Principal);

impl ApiKeyAuth {
    /// The caller, as the audit trail names it.
    pub fn actor(&self) -> Actor {
        Actor::Key(self.key_actor())
    }

    /// The caller's key, which records encounters.
    pub fn key_actor(&self) -> KeyActor {
        KeyActor::from(&self.0)
    }
}

async fn authenticate(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let db = req
        .data::<DatabaseConnection>()
        .expect("the database connection is attached to every route");
    let reader = req
        .data::<InlineReader>()
        .expect("the inline reader is attached to every route");
    // A client address that failed too often is refused before its token is
    // looked up, so a flood of bad tokens costs almost nothing.
    let failures = req.data::<Arc<AuthFailureLimiter>>().and_then(|limiter| {
        let client = req.remote_addr().as_socket_addr()?.ip();
        Some((limiter, client_bucket(client)))
    });
    if let Some((limiter, client)) = &failures {
        limiter
            .peek(*client)
            .map_err(|wait| ApiError::auth_rate_limited(retry_after(wait)))?;
    }
    let principal = match keys::authenticate(db, reader, &bearer.token).await {
        Ok(principal) => principal,
        Err(err) => {
            if let (DomainError::Unauthenticated, Some((limiter, client))) = (&err, &failures) {
                let _ = limiter.check(*client);
            }
            return Err(ApiError::from(err).into());
        }
    };
    // The request's span (see `request_span`) names the organization from
    // here on: an id, nothing personal.
    tracing::Span::current().record("organization_id", principal.organization_id);
    if let Some(limiter) = req.data::<Arc<RateLimiter>>() {
        limiter
            .check(principal.key_id)
            .map_err(|wait| ApiError::rate_limited(retry_after(wait)))?;
    }
    Ok(principal)
}

/// Whole seconds, rounded up: `Retry-After: 0` would invite a retry that
/// fails again.
fn retry_after(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}
