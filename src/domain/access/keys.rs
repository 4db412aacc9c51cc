//! API keys: random bearer tokens stored only as SHA-256 hashes.

use chrono::{DateTime, Duration, Utc};
use entity::{
    api_key,
    enums::{AuditAction, Role},
};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QuerySelect, Set,
};
use subtle::ConstantTimeEq;

use crate::db::store::Executor;
use crate::domain::{
    access::{
        auth::Principal,
        secret::{self, hash_token},
        sessions,
    },
    pagination::{Page, PageRequest},
    privacy::audit::{self, Actor, Event},
    validate, Connection, DomainError, DomainResult,
};

/// Every token starts with this, so leaked tokens are easy to grep for.
const TOKEN_PREFIX: &str = "tpt_";
/// Characters of the token kept in clear for display (the prefix plus 8).
const DISPLAY_PREFIX_LEN: usize = TOKEN_PREFIX.len() + 8;
/// `last_used_at` is refreshed at most this often, so authentication does
/// not write to the database on every request.
const LAST_USED_RESOLUTION_SECONDS: i64 = 60;

/// A key just created, with the token that is shown this once.
pub struct NewKey {
    pub key: api_key::Model,
    pub token: String,
}

fn generate_token() -> String {
    secret::random_token(TOKEN_PREFIX)
}

/// Creates a key of `role`, accepted until it is revoked or, if given, until
/// `expires_at` (which must be in the future).
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    role: Role,
    name: &str,
    expires_at: Option<DateTime<Utc>>,
) -> DomainResult<NewKey> {
    let name = validate::required_text("name", name, validate::NAME_MAX)?;
    let now = crate::domain::now();
    let expires_at = expires_at
        .map(|at| validate::timestamp("expires_at", at))
        .transpose()?;
    if expires_at.is_some_and(|at| at <= now) {
        return Err(DomainError::Invalid {
            field: "expires_at".to_owned(),
            message: "must be in the future".to_owned(),
        });
    }
    let token = generate_token();
    let txn = crate::domain::begin_write(db).await?;
    let key = api_key::ActiveModel {
        organization_id: Set(organization_id),
        name: Set(name),
        role: Set(role),
        token_hash: Set(hash_token(&token)),
        token_prefix: Set(token[..DISPLAY_PREFIX_LEN].to_owned()),
        last_used_at: Set(None),
        revoked_at: Set(None),
        expires_at: Set(expires_at),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = Event::api_key(key.id, AuditAction::Create)
        .fields(["name", "role"])
        .field_if(key.expires_at.is_some(), "expires_at");
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(NewKey { key, token })
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    page: PageRequest,
) -> DomainResult<Page<api_key::Model>> {
    let select =
        api_key::Entity::find().filter(api_key::Column::OrganizationId.eq(organization_id));
    page.fetch(db, select, api_key::Column::Id, |key| key.id)
        .await
}

pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<api_key::Model> {
    api_key::Entity::find_by_id(id)
        .filter(api_key::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "API key",
        })
}

/// Revokes a key; revoking a revoked key changes nothing (and records no
/// second event). Through the API, a key cannot revoke itself, and the
/// organization's last active admin key cannot be revoked: either would
/// lock its admins out of the API. The command line, which can always
/// create a key, may.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id, key_id = id))]
pub async fn revoke(
    db: &impl Connection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<api_key::Model> {
    let txn = crate::domain::begin_write(db).await?;
    let key = get(&txn, organization_id, id).await?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let now = crate::domain::now();
    if let Actor::Key(caller) = actor {
        if caller.key_id == id {
            return Err(DomainError::KeyStillNeeded(
                "a key cannot revoke itself; revoke it with another admin key".to_owned(),
            ));
        }
        if key.role == Role::Admin && key.expires_at.is_none_or(|at| at > now) {
            // FOR UPDATE on PostgreSQL, so two admins revoking each other at
            // once cannot both succeed; SQLite's write lock is already held.
            let active_admins = api_key::Entity::find()
                .filter(api_key::Column::OrganizationId.eq(organization_id))
                .filter(api_key::Column::Role.eq(Role::Admin))
                .filter(api_key::Column::RevokedAt.is_null())
                .filter(
                    api_key::Column::ExpiresAt
                        .is_null()
                        .or(api_key::Column::ExpiresAt.gt(now)),
                )
                .lock_exclusive()
                .all(&txn)
                .await?;
            if active_admins.iter().all(|admin| admin.id == id) {
                return Err(DomainError::KeyStillNeeded(
                    "this is the organization's last active admin key; \
                     create another admin key before revoking it"
                        .to_owned(),
                ));
            }
        }
    }
    let mut active: api_key::ActiveModel = key.into();
    active.revoked_at = Set(Some(now));
    active.updated_at = Set(now);
    let revoked = active.update(&txn).await?;
    let event = Event::api_key(id, AuditAction::Revoke).fields(["revoked_at"]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    // Its dashboard sessions would be refused anyway; they go too.
    sessions::end_all_of_key(&txn, id).await?;
    txn.commit().await?;
    Ok(revoked)
}

/// A key as authentication needs it: who it is, when it expires, when it
/// was last used (to the minute).
#[derive(Debug, Clone)]
pub struct ActiveKey {
    pub principal: Principal,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// The hash a well-formed token is looked up by; `None` for a token no key
/// could have (wrong prefix, too long), which needs no lookup.
pub fn token_hash(token: &str) -> Option<String> {
    (token.starts_with(TOKEN_PREFIX) && token.len() <= 200).then(|| hash_token(token))
}

/// The unrevoked key whose token hashes to `hash`, read through `reader`
/// (see [`InlineReader`]); `None` when there is none. Expiry is left to
/// [`admit`], which the caller runs at each use.
///
/// [`InlineReader`]: crate::db::store::InlineReader
pub async fn find_active(reader: &impl Executor, hash: &str) -> DomainResult<Option<ActiveKey>> {
    let lookup = Query::select()
        .columns([
            api_key::Column::Id,
            api_key::Column::Name,
            api_key::Column::OrganizationId,
            api_key::Column::Role,
            api_key::Column::TokenHash,
            api_key::Column::LastUsedAt,
            api_key::Column::RevokedAt,
            api_key::Column::ExpiresAt,
        ])
        .from(api_key::Entity)
        .and_where(api_key::Column::TokenHash.eq(hash))
        .to_owned();
    let rows = reader.query(&lookup).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let stored_hash: String = row.get(api_key::Column::TokenHash)?;
    // The lookup already matched the hash; comparing again in constant time
    // keeps the check itself free of timing differences.
    let matches: bool = stored_hash.as_bytes().ct_eq(hash.as_bytes()).into();
    let revoked_at: Option<DateTime<Utc>> = row.get(api_key::Column::RevokedAt)?;
    if !matches || revoked_at.is_some() {
        return Ok(None);
    }
    let role: String = row.get(api_key::Column::Role)?;
    Ok(Some(ActiveKey {
        principal: Principal {
            key_id: row.get(api_key::Column::Id)?,
            key_name: row.get(api_key::Column::Name)?,
            organization_id: row.get(api_key::Column::OrganizationId)?,
            role: Role::try_from_value(&role).map_err(DomainError::from)?,
        },
        expires_at: row.get(api_key::Column::ExpiresAt)?,
        last_used_at: row.get(api_key::Column::LastUsedAt)?,
    }))
}

/// Admits a use of `key` now: refused once it has expired; `last_used_at`
/// refreshed through `db` when it is older than a minute. The time it was
/// refreshed to, if it was.
pub async fn admit(
    db: &impl ConnectionTrait,
    key: &ActiveKey,
) -> DomainResult<Option<DateTime<Utc>>> {
    let now = crate::domain::now();
    if key.expires_at.is_some_and(|at| at <= now) {
        return Err(DomainError::Unauthenticated);
    }
    touch_last_used(db, key.principal.key_id, key.last_used_at, now).await
}

/// Resolves a bearer token to its key, reading the database each time
/// (the service goes through [`KeyCache`](super::key_cache::KeyCache)).
/// Unknown, revoked and expired tokens are the same failure, so a caller
/// learns nothing about which keys exist.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn authenticate(
    db: &impl ConnectionTrait,
    reader: &impl Executor,
    token: &str,
) -> DomainResult<Principal> {
    let hash = token_hash(token).ok_or(DomainError::Unauthenticated)?;
    let key = find_active(reader, &hash)
        .await?
        .ok_or(DomainError::Unauthenticated)?;
    admit(db, &key).await?;
    Ok(key.principal)
}

async fn touch_last_used(
    db: &impl ConnectionTrait,
    key_id: i64,
    last_used_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DomainResult<Option<DateTime<Utc>>> {
    let stale_before = now - Duration::seconds(LAST_USED_RESOLUTION_SECONDS);
    if last_used_at.is_some_and(|at| at > stale_before) {
        return Ok(None);
    }
    // A conditional update: concurrent requests of one key write at most once.
    api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(key_id))
        .filter(
            api_key::Column::LastUsedAt
                .is_null()
                .or(api_key::Column::LastUsedAt.lt(stale_before)),
        )
        .exec(db)
        .await?;
    Ok(Some(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_prefixed() {
        let a = generate_token();
        let b = generate_token();
        assert_ne!(a, b);
        assert!(a.starts_with(TOKEN_PREFIX));
        // 32 bytes of base64 without padding.
        assert_eq!(a.len(), TOKEN_PREFIX.len() + 43);
        assert_eq!(hash_token(&a).len(), 64);
        assert_ne!(hash_token(&a), hash_token(&b));
    }
}
