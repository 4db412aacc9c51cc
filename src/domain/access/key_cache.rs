//! API keys checked without a database round trip: each instance keeps the
//! keys it has seen accepted, by token hash, in memory.
//!
//! - A token not in the cache is looked up as before (and cached if its key
//!   is active); unknown tokens are never cached, so random tokens cannot
//!   grow it: it holds at most the organizations' active keys.
//! - Expiry is checked at every use, to the second, from the cached time.
//! - A key revoked through this instance is forgotten at once (the keys
//!   API calls [`KeyCache::forget`] after the revocation commits).
//! - A key revoked through another instance is forgotten at the next
//!   [`KeyCache::revalidate`], which asks the database which cached keys
//!   are still unrevoked: [`REVALIDATE_EVERY`] apart, so a revocation takes
//!   effect everywhere within about a second. Asking about the cached ids
//!   (not about recent changes) needs no clock agreement between
//!   instances and misses no slow transaction.
//! - `last_used_at` is still written at most once a minute per key, and
//!   the cache remembers when.

use std::{
    collections::{HashMap, HashSet},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc, RwLock,
    },
    time::Duration,
};

use entity::api_key;
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ConnectionTrait,
};

use crate::db::store::Executor;
use crate::domain::{
    access::{
        auth::Principal,
        keys::{self, ActiveKey},
    },
    DomainError, DomainResult,
};

/// How often the cached keys are checked against the database: the most a
/// revocation through another instance takes to be refused here (plus the
/// check's own time).
pub const REVALIDATE_EVERY: Duration = Duration::from_secs(1);

/// Cached ids asked about per statement.
const IDS_PER_QUERY: usize = 500;

#[derive(Default)]
pub struct KeyCache {
    by_hash: RwLock<HashMap<String, ActiveKey>>,
    /// How many times a key was forgotten: a lookup that sees this change
    /// while it reads the database does not cache what it read.
    forgotten: AtomicU64,
}

impl KeyCache {
    pub fn new() -> Arc<Self> {
        Arc::new(KeyCache::default())
    }

    /// The key of `token`, as [`keys::authenticate`] resolves it, from
    /// memory when this instance has accepted it before.
    pub async fn authenticate(
        &self,
        db: &impl ConnectionTrait,
        reader: &impl Executor,
        token: &str,
    ) -> DomainResult<Principal> {
        let hash = keys::token_hash(token).ok_or(DomainError::Unauthenticated)?;
        let cached = self.read().get(&hash).cloned();
        let key = match cached {
            Some(key) => key,
            None => {
                // A key forgotten while it was being read (revoked through
                // this instance meanwhile) is not cached: this request may
                // still pass, as it raced the revocation, but no later one.
                let forgotten = self.forgotten.load(Ordering::Acquire);
                let key = keys::find_active(reader, &hash)
                    .await?
                    .ok_or(DomainError::Unauthenticated)?;
                let mut keys = self.write();
                if self.forgotten.load(Ordering::Acquire) == forgotten {
                    keys.insert(hash.clone(), key.clone());
                }
                key
            }
        };
        match keys::admit(db, &key).await {
            Ok(Some(used_at)) => {
                if let Some(entry) = self.write().get_mut(&hash) {
                    entry.last_used_at = Some(used_at);
                }
            }
            Ok(None) => {}
            Err(DomainError::Unauthenticated) => {
                // Expired: it will not come back.
                self.write().remove(&hash);
                return Err(DomainError::Unauthenticated);
            }
            Err(err) => return Err(err),
        }
        Ok(key.principal)
    }

    /// Forgets a key (revoked through this instance).
    pub fn forget(&self, key_id: i64) {
        let mut keys = self.write();
        self.forgotten.fetch_add(1, Ordering::AcqRel);
        keys.retain(|_, key| key.principal.key_id != key_id);
    }

    /// Forgets every cached key that the database no longer has unrevoked.
    pub async fn revalidate(&self, reader: &impl Executor) -> DomainResult<()> {
        let cached: Vec<i64> = self
            .read()
            .values()
            .map(|key| key.principal.key_id)
            .collect();
        let mut active = HashSet::with_capacity(cached.len());
        for ids in cached.chunks(IDS_PER_QUERY) {
            let query = Query::select()
                .column(api_key::Column::Id)
                .from(api_key::Entity)
                .and_where(Expr::col(api_key::Column::Id).is_in(ids.iter().copied()))
                .and_where(Expr::col(api_key::Column::RevokedAt).is_null())
                .to_owned();
            for row in reader.query(&query).await? {
                active.insert(row.get::<i64>(api_key::Column::Id)?);
            }
        }
        // A key cached meanwhile was read after the query began: it stays.
        let cached: HashSet<i64> = cached.into_iter().collect();
        self.write().retain(|_, key| {
            let id = key.principal.key_id;
            active.contains(&id) || !cached.contains(&id)
        });
        Ok(())
    }

    /// Revalidates every [`REVALIDATE_EVERY`], for as long as the service
    /// runs; a failed check (the database briefly away) is retried at the
    /// next tick, and logged.
    pub async fn revalidate_periodically(self: Arc<Self>, reader: impl Executor) {
        let mut ticks = tokio::time::interval(REVALIDATE_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if let Err(err) = self.revalidate(&reader).await {
                tracing::warn!(error = %err, "the cached API keys could not be checked; retrying");
            }
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<String, ActiveKey>> {
        // A panic while holding the lock leaves a consistent map (every
        // write is one call), so a poisoned lock is still usable.
        self.by_hash
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, ActiveKey>> {
        self.by_hash
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
