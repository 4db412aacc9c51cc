//! The dashboard's sign-in: an API key exchanged once for a session held in
//! an `HttpOnly`, `SameSite=Strict` cookie, so that the key never has to
//! live in the page (see `domain::access::sessions`).

use chrono::{DateTime, Utc};
use poem::{
    web::{
        cookie::{Cookie, SameSite},
        Data,
    },
    Request,
};
use poem_openapi::{payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    error::ApiError,
    public_url::PublicUrl,
    security::{BearerKey, SessionCookie, SESSION_COOKIE},
    vocabulary::Role,
    ApiTags,
};
use crate::domain::{
    access::{
        auth::Principal,
        sessions::{self, Session},
    },
    organizations,
};

/// How long a sign-in lasts, as configured (`DASHBOARD_SESSION_HOURS`).
#[derive(Debug, Clone, Copy)]
pub struct SessionLifetime(pub chrono::Duration);

/// The organization a session acts in.
#[derive(Object)]
pub struct SessionOrganization {
    /// The organization's id.
    pub id: i64,
    /// Its short unique name.
    #[oai(validator(max_length = 64))]
    pub slug: String,
    /// Its display name.
    #[oai(validator(max_length = 200))]
    pub name: String,
    /// Reports suppress groups smaller than this ("fewer than N
    /// answers"); 0: no suppression.
    pub min_group_size: i32,
}

/// The key a session acts as.
#[derive(Object)]
pub struct SessionKey {
    /// The key's id.
    pub id: i64,
    /// What the key is for.
    #[oai(validator(max_length = 200))]
    pub name: String,
    pub role: Role,
}

/// A dashboard session: who it acts as, and until when.
#[derive(Object)]
pub struct DashboardSessionInfo {
    pub organization: SessionOrganization,
    pub key: SessionKey,
    /// When the session ends on its own (the sign-in plus
    /// `DASHBOARD_SESSION_HOURS`, or the key's expiry if sooner).
    pub expires_at: DateTime<Utc>,
}

#[derive(ApiResponse)]
pub enum SessionStarted {
    /// Signed in: the cookie is set.
    #[oai(status = 201)]
    Created(
        Json<DashboardSessionInfo>,
        /// `tt_session=<token>; HttpOnly; SameSite=Strict; Path=/;
        /// Max-Age=<seconds>`, with `Secure` when `PUBLIC_URL` is
        /// `https://` or the request came through a proxy that says
        /// `X-Forwarded-Proto: https`.
        #[oai(header = "Set-Cookie")]
        String,
        /// `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum SessionResponse {
    /// The live session.
    #[oai(status = 200)]
    Ok(
        Json<DashboardSessionInfo>,
        /// `no-store`.
        #[oai(header = "Cache-Control")]
        String,
    ),
}

#[derive(ApiResponse)]
pub enum SessionEnded {
    /// Signed out: the session is gone and the cookie cleared.
    #[oai(status = 204)]
    NoContent(
        /// The cookie, emptied and expired.
        #[oai(header = "Set-Cookie")]
        String,
    ),
}

#[derive(Default)]
pub struct SessionsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Sessions")]
impl SessionsApi {
    /// Sign in to the dashboard
    ///
    /// Exchanges the API key in `Authorization: Bearer` for a session
    /// cookie (`tt_session`, `HttpOnly`, `SameSite=Strict`), which every
    /// operation then accepts in the key's stead, with the key's
    /// organization and role. The session lasts `DASHBOARD_SESSION_HOURS`
    /// (8 by default) or until the key expires, and ends when signed out or
    /// when the key is revoked. Changes made with it must come from this
    /// service's own pages (403 `cross_site_request` otherwise). Any role.
    #[oai(path = "/session", method = "post", operation_id = "create_session")]
    async fn create(
        &self,
        auth: BearerKey,
        req: &Request,
        db: Data<&DatabaseConnection>,
        lifetime: Data<&SessionLifetime>,
    ) -> Result<SessionStarted, ApiError> {
        let started = sessions::start(*db, auth.0, lifetime.0 .0).await?;
        let info = describe(*db, &started.session).await?;
        let seconds = (started.session.expires_at - crate::domain::now())
            .num_seconds()
            .max(0) as u64;
        let mut cookie = Cookie::new_with_str(SESSION_COOKIE, started.token);
        cookie.set_http_only(true);
        cookie.set_same_site(SameSite::Strict);
        cookie.set_path("/");
        cookie.set_secure(behind_https(req));
        cookie.set_max_age(std::time::Duration::from_secs(seconds));
        Ok(SessionStarted::Created(
            Json(info),
            cookie.to_string(),
            "no-store".to_owned(),
        ))
    }

    /// Read the dashboard session
    ///
    /// The session the cookie names: its organization, its key and role,
    /// and when it ends. 401 once it has ended.
    #[oai(path = "/session", method = "get", operation_id = "get_session")]
    async fn get(
        &self,
        auth: SessionCookie,
        db: Data<&DatabaseConnection>,
    ) -> Result<SessionResponse, ApiError> {
        let info = describe(*db, &auth.0).await?;
        Ok(SessionResponse::Ok(Json(info), "no-store".to_owned()))
    }

    /// Sign out of the dashboard
    ///
    /// Ends the session the cookie names and clears the cookie.
    #[oai(path = "/session", method = "delete", operation_id = "delete_session")]
    async fn delete(
        &self,
        auth: SessionCookie,
        req: &Request,
        db: Data<&DatabaseConnection>,
    ) -> Result<SessionEnded, ApiError> {
        if let Some(cookie) = req.cookie().get(SESSION_COOKIE) {
            sessions::end(*db, &auth.0, cookie.value_str()).await?;
        }
        let mut cleared = Cookie::named(SESSION_COOKIE);
        cleared.set_http_only(true);
        cleared.set_same_site(SameSite::Strict);
        cleared.set_path("/");
        cleared.set_secure(behind_https(req));
        cleared.make_removal();
        Ok(SessionEnded::NoContent(cleared.to_string()))
    }
}

async fn describe(
    db: &DatabaseConnection,
    session: &Session,
) -> Result<DashboardSessionInfo, ApiError> {
    let Principal {
        key_id,
        key_name,
        organization_id,
        role,
    } = &session.principal;
    let organization = organizations::get(db, *organization_id).await?;
    Ok(DashboardSessionInfo {
        organization: SessionOrganization {
            id: organization.id,
            slug: organization.slug,
            name: organization.name,
            min_group_size: organization.min_group_size,
        },
        key: SessionKey {
            id: *key_id,
            name: key_name.clone(),
            role: (*role).into(),
        },
        expires_at: session.expires_at,
    })
}

/// Whether the browser reached the service over HTTPS: `PUBLIC_URL` says
/// so, or the proxy in front does. The cookie is then `Secure`.
fn behind_https(req: &Request) -> bool {
    let public = req.data::<PublicUrl>().is_some_and(PublicUrl::is_https);
    let forwarded = req
        .header("x-forwarded-proto")
        .is_some_and(|proto| proto.eq_ignore_ascii_case("https"));
    public || forwarded
}
