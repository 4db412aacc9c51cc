//! Dashboard sessions: an API key, presented once, exchanged for a random
//! session token that the browser keeps in an `HttpOnly` cookie, so the key
//! itself never has to live in the page.
//!
//! A session acts as its key, with the key's organization and role. It is
//! checked against the key on every request (one query joining both), so
//! revoking or expiring the key ends it at once; revoking also deletes the
//! key's sessions. A session ends on its own `lifetime` after sign-in (or
//! when the key expires, if that comes first), or when it is signed out.

use chrono::{DateTime, Duration, Utc};
use entity::{
    api_key, dashboard_session,
    enums::{AuditAction, Role},
};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set,
};
use subtle::ConstantTimeEq;

use crate::db::store::Executor;
use crate::domain::{
    access::{
        auth::Principal,
        secret::{hash_token, random_token},
    },
    privacy::audit::{self, Actor, Event, KeyActor},
    Connection, DomainError, DomainResult,
};

/// Every session token starts with this (and never with an API key's
/// `tpt_`), so one cannot be mistaken for the other.
const TOKEN_PREFIX: &str = "tts_";

/// A live session: who it acts as, and until when.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub expires_at: DateTime<Utc>,
}

/// A session just started, with the token that goes into the cookie.
pub struct NewSession {
    pub session: Session,
    pub token: String,
}

/// Starts a session for the key `principal` was authenticated with. It
/// lasts `lifetime`, or until the key expires if that is sooner. Expired
/// sessions of every organization are deleted on the way, so the table
/// holds only live ones (and signed-in browsers that never came back).
/// The sign-in is in the audit trail, as the key's.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = principal.organization_id))]
pub async fn start(
    db: &impl Connection,
    principal: Principal,
    lifetime: Duration,
) -> DomainResult<NewSession> {
    let now = crate::domain::now();
    let txn = crate::domain::begin_write(db).await?;
    let key_expires_at = api_key::Entity::find_by_id(principal.key_id)
        .one(&txn)
        .await?
        .ok_or(DomainError::Unauthenticated)?
        .expires_at;
    let expires_at = key_expires_at.map_or(now + lifetime, |at| std::cmp::min(at, now + lifetime));
    dashboard_session::Entity::delete_many()
        .filter(dashboard_session::Column::ExpiresAt.lte(now))
        .exec(&txn)
        .await?;
    let token = random_token(TOKEN_PREFIX);
    let session = dashboard_session::ActiveModel {
        organization_id: Set(principal.organization_id),
        api_key_id: Set(principal.key_id),
        token_hash: Set(hash_token(&token)),
        created_at: Set(now),
        expires_at: Set(expires_at),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = Event::dashboard_session(session.id, AuditAction::Create).fields(["expires_at"]);
    let actor = Actor::Key(KeyActor::from(&principal));
    audit::record(&txn, principal.organization_id, &actor, now, event).await?;
    txn.commit().await?;
    Ok(NewSession {
        session: Session {
            principal,
            expires_at,
        },
        token,
    })
}

/// Resolves a session token to its session, checking the session's expiry
/// and its key's (revoked or expired: no session). Unknown, ended and
/// malformed tokens are the same failure. Read through `reader`, like a
/// key (see `keys::authenticate`).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(reader: &impl Executor, token: &str) -> DomainResult<Session> {
    if !token.starts_with(TOKEN_PREFIX) || token.len() > 200 {
        return Err(DomainError::Unauthenticated);
    }
    let hash = hash_token(token);
    // The session's expiry is never later than its key's (see `start`;
    // a key's expiry does not change), so the key's is not read again.
    let lookup = Query::select()
        .column((
            dashboard_session::Entity,
            dashboard_session::Column::TokenHash,
        ))
        .column((
            dashboard_session::Entity,
            dashboard_session::Column::ExpiresAt,
        ))
        .column((api_key::Entity, api_key::Column::Id))
        .column((api_key::Entity, api_key::Column::Name))
        .column((api_key::Entity, api_key::Column::OrganizationId))
        .column((api_key::Entity, api_key::Column::Role))
        .column((api_key::Entity, api_key::Column::RevokedAt))
        .from(dashboard_session::Entity)
        .inner_join(
            api_key::Entity,
            Expr::col((api_key::Entity, api_key::Column::Id)).equals((
                dashboard_session::Entity,
                dashboard_session::Column::ApiKeyId,
            )),
        )
        .and_where(
            Expr::col((
                dashboard_session::Entity,
                dashboard_session::Column::TokenHash,
            ))
            .eq(&hash),
        )
        .to_owned();
    let rows = reader.query(&lookup).await?;
    let row = rows.first().ok_or(DomainError::Unauthenticated)?;
    let stored_hash: String = row.get(dashboard_session::Column::TokenHash)?;
    let matches: bool = stored_hash.as_bytes().ct_eq(hash.as_bytes()).into();
    let expires_at: DateTime<Utc> = row.get(dashboard_session::Column::ExpiresAt)?;
    let key_revoked_at: Option<DateTime<Utc>> = row.get(api_key::Column::RevokedAt)?;
    if !matches || expires_at <= crate::domain::now() || key_revoked_at.is_some() {
        return Err(DomainError::Unauthenticated);
    }
    let role: String = row.get(api_key::Column::Role)?;
    Ok(Session {
        principal: Principal {
            key_id: row.get(api_key::Column::Id)?,
            key_name: row.get(api_key::Column::Name)?,
            organization_id: row.get(api_key::Column::OrganizationId)?,
            role: Role::try_from_value(&role).map_err(DomainError::from)?,
        },
        expires_at,
    })
}

/// Signs the session with this token out: its token is accepted no more.
/// Recorded in the audit trail as its key's; ending an ended session
/// changes nothing.
pub async fn end(db: &impl Connection, session: &Session, token: &str) -> DomainResult<()> {
    let txn = crate::domain::begin_write(db).await?;
    let Some(ended) = dashboard_session::Entity::find()
        .filter(dashboard_session::Column::TokenHash.eq(hash_token(token)))
        .one(&txn)
        .await?
    else {
        return Ok(());
    };
    dashboard_session::Entity::delete_by_id(ended.id)
        .exec(&txn)
        .await?;
    let principal = &session.principal;
    let event = Event::dashboard_session(ended.id, AuditAction::Delete);
    let actor = Actor::Key(KeyActor::from(principal));
    audit::record(
        &txn,
        principal.organization_id,
        &actor,
        crate::domain::now(),
        event,
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// Ends every session of a key (called when it is revoked, in the
/// revocation's transaction).
pub async fn end_all_of_key(db: &impl ConnectionTrait, key_id: i64) -> DomainResult<()> {
    dashboard_session::Entity::delete_many()
        .filter(dashboard_session::Column::ApiKeyId.eq(key_id))
        .exec(db)
        .await?;
    Ok(())
}
