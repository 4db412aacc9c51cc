//! Authentication, declared as the document's security schemes: an API key
//! in the `Authorization` header, or the dashboard's session cookie (an API
//! key exchanged once, see `sessions`). Every operation that takes
//! [`ApiKeyAuth`] accepts either; the header wins when both are sent.

use poem::{
    http::{header, Method},
    Request, RequestBody,
};
use poem_openapi::{
    auth::{ApiKey, Bearer},
    registry::Registry,
    ApiExtractor, ApiExtractorType, ExtractParamOptions, SecurityScheme,
};
use sea_orm::DatabaseConnection;

use std::sync::Arc;

use super::{
    error::{ApiError, ErrorCode},
    public_url::PublicUrl,
    rate_limit::{client_bucket, AuthFailureLimiter, RateLimiter},
};
use crate::db::store::InlineReader;
use crate::domain::{
    access::auth::Principal,
    access::{key_cache::KeyCache, sessions},
    privacy::audit::{Actor, KeyActor},
    DomainError, DomainResult,
};

/// The name of the dashboard's session cookie.
pub const SESSION_COOKIE: &str = "tt_session";

/// An API key: `Authorization: Bearer <token>`. Keys belong to one
/// organization and one role (`admin`, `recruiter` or `reporter`).
#[derive(SecurityScheme)]
#[oai(rename = "ApiKeyAuth", ty = "bearer", checker = "authenticate_key")]
pub struct BearerKey(pub Principal);

/// The HR dashboard's session (`/app`): the cookie `POST
/// /api/v1/session` sets in exchange for an API key. It acts as that key.
/// A request that changes something (POST, PATCH, DELETE) with it must
/// come from the service's own origin: its `Origin` header must name this
/// service's host (or `PUBLIC_URL`), or it is refused with 403
/// `cross_site_request`.
#[derive(SecurityScheme)]
#[oai(
    rename = "DashboardSession",
    ty = "api_key",
    key_name = "tt_session",
    key_in = "cookie",
    checker = "authenticate_session"
)]
pub struct SessionCookie(pub sessions::Session);

/// The caller of an operation: an API key, from the `Authorization` header
/// or from a dashboard session.
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

impl<'a> ApiExtractor<'a> for ApiKeyAuth {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::SecurityScheme];

    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        BearerKey::register(registry);
        SessionCookie::register(registry);
    }

    fn security_schemes() -> Vec<&'static str> {
        let mut schemes = BearerKey::security_schemes();
        schemes.extend(SessionCookie::security_schemes());
        schemes
    }

    async fn from_request(
        req: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        // A client that sends a key means that key, whatever its cookies;
        // without either, the bearer scheme's 401 is the answer.
        if req.headers().contains_key(header::AUTHORIZATION)
            || req.cookie().get(SESSION_COOKIE).is_none()
        {
            let key = BearerKey::from_request(req, body, ExtractParamOptions::default()).await?;
            Ok(ApiKeyAuth(key.0))
        } else {
            let session =
                SessionCookie::from_request(req, body, ExtractParamOptions::default()).await?;
            Ok(ApiKeyAuth(session.0.principal))
        }
    }
}

async fn authenticate_key(req: &Request, bearer: Bearer) -> poem::Result<Principal> {
    let gate = Gate::of(req)?;
    let cache = req
        .data::<Arc<KeyCache>>()
        .expect("the key cache is attached to every route");
    let principal = gate.settle(
        cache
            .authenticate(gate.db, gate.reader, &bearer.token)
            .await,
    )?;
    gate.admit(&principal)?;
    Ok(principal)
}

async fn authenticate_session(req: &Request, cookie: ApiKey) -> poem::Result<sessions::Session> {
    let gate = Gate::of(req)?;
    let session = gate.settle(sessions::authenticate(gate.reader, &cookie.key).await)?;
    check_same_origin(req)?;
    gate.admit(&session.principal)?;
    Ok(session)
}

/// What every authentication goes through: the client address's allowance
/// of failed attempts before the credential is looked up, the key's rate
/// limit after.
struct Gate<'r> {
    db: &'r DatabaseConnection,
    reader: &'r InlineReader,
    failures: Option<(&'r Arc<AuthFailureLimiter>, std::net::IpAddr)>,
    rate: Option<&'r Arc<RateLimiter<i64>>>,
}

impl<'r> Gate<'r> {
    /// A client address that failed too often is refused before its
    /// credential is looked up, so a flood of bad tokens costs almost
    /// nothing.
    fn of(req: &'r Request) -> poem::Result<Self> {
        let failures = req.data::<Arc<AuthFailureLimiter>>().and_then(|limiter| {
            let client = req.remote_addr().as_socket_addr()?.ip();
            Some((limiter, client_bucket(client)))
        });
        if let Some((limiter, client)) = &failures {
            limiter
                .peek(*client)
                .map_err(|wait| ApiError::auth_rate_limited(retry_after(wait)))?;
        }
        Ok(Gate {
            db: req
                .data::<DatabaseConnection>()
                .expect("the database connection is attached to every route"),
            reader: req
                .data::<InlineReader>()
                .expect("the inline reader is attached to every route"),
            failures,
            rate: req.data::<Arc<RateLimiter<i64>>>(),
        })
    }

    /// The lookup's answer; a refused credential counts against the client
    /// address.
    fn settle<T>(&self, outcome: DomainResult<T>) -> poem::Result<T> {
        outcome.map_err(|err| {
            if let (DomainError::Unauthenticated, Some((limiter, client))) = (&err, &self.failures)
            {
                let _ = limiter.check(*client);
            }
            ApiError::from(err).into()
        })
    }

    /// The request's span (see `request_span`) names the organization from
    /// here on (an id, nothing personal); then the key's rate limit.
    fn admit(&self, principal: &Principal) -> poem::Result<()> {
        tracing::Span::current().record("organization_id", principal.organization_id);
        if let Some(limiter) = self.rate {
            limiter
                .check(principal.key_id)
                .map_err(|wait| ApiError::rate_limited(retry_after(wait)))?;
        }
        Ok(())
    }
}

/// Refuses a state-changing request made with the session cookie unless
/// its `Origin` names this service: the request's own host (what the
/// browser addressed) or `PUBLIC_URL`'s. `SameSite=Strict` already keeps
/// the cookie off other sites' requests; this holds even where a browser
/// or a same-site subdomain does not.
fn check_same_origin(req: &Request) -> poem::Result<()> {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    let refuse = |why: &str| -> poem::Result<()> {
        Err(ApiError::new(
            ErrorCode::CrossSiteRequest,
            format!(
                "a change made with the dashboard's session must come from this service's own \
                 pages: {why}"
            ),
            None,
        )
        .into())
    };
    let Some(origin) = req.header(header::ORIGIN) else {
        return refuse("the request has no Origin header");
    };
    let Some(origin) = url::Url::parse(origin)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
    else {
        return refuse("its Origin is not an http(s) origin");
    };
    let authority = &origin[url::Position::BeforeHost..url::Position::AfterPort];
    let host = req
        .uri()
        .authority()
        .map(|authority| authority.as_str())
        .or_else(|| req.header(header::HOST));
    let public = req
        .data::<PublicUrl>()
        .and_then(|public| url::Url::parse(&public.0).ok());
    let same_host = host.is_some_and(|host| host.eq_ignore_ascii_case(authority));
    let public_origin = public.is_some_and(|public| public.origin() == origin.origin());
    if same_host || public_origin {
        Ok(())
    } else {
        refuse("its Origin names another site")
    }
}

/// Whole seconds, rounded up: `Retry-After: 0` would invite a retry that
/// fails again.
fn retry_after(wait: std::time::Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}
