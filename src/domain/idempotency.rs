//! Idempotency keys: a client that retries a write (after a time-out, say)
//! sends the same `Idempotency-Key` header, and gets the original answer
//! instead of a second write.
//!
//! The key is *claimed* inside the write's own transaction, before the
//! write, and the answer is stored in that transaction, so the row exists
//! exactly when the write committed. A concurrent request with the same key
//! blocks on the unique index (PostgreSQL) or on the write lock (SQLite)
//! until the first commits, then finds the key taken and replays the stored
//! answer. A failed write rolls its claim back, so a retry runs afresh.

use chrono::{DateTime, Duration, Utc};
use entity::idempotency_key;
use sea_orm::{
    sea_query::{OnConflict, Query},
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect, QueryTrait, Set,
};
use sha2::{Digest, Sha256};

use crate::db::store::{Executor, Row};
use crate::domain::{DomainError, DomainResult};

/// The header's name, which is also the `field` of its errors.
pub const HEADER: &str = "Idempotency-Key";
/// The longest key accepted.
pub const KEY_MAX: usize = 255;
/// How long a key is kept at least; older keys are purged.
pub const RETENTION: Duration = Duration::hours(24);

/// A write's idempotency key and the fingerprint of the request it came with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Idempotency {
    key: String,
    fingerprint: String,
}

impl Idempotency {
    /// Checks the key (1 to 255 visible ASCII characters) and fingerprints
    /// the request: the operation and a digest of its body.
    pub fn new(key: &str, operation: &str, body_digest: &[u8]) -> DomainResult<Self> {
        if key.is_empty() || key.len() > KEY_MAX {
            return Err(DomainError::invalid(
                HEADER,
                format!("must be 1 to {KEY_MAX} characters"),
            ));
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(DomainError::invalid(
                HEADER,
                "must be visible ASCII characters without spaces",
            ));
        }
        let mut hasher = Sha256::new();
        hasher.update(operation.as_bytes());
        hasher.update([0]);
        hasher.update(body_digest);
        Ok(Idempotency {
            key: key.to_owned(),
            fingerprint: hex::encode(hasher.finalize()),
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }
}

/// The answer given to the request that first used a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: String,
}

/// A write's key, and how to render its result as the response to store.
pub type Idempotent<'a, T> = (&'a Idempotency, fn(&T) -> StoredResponse);

/// The outcome of a write that may carry an idempotency key.
#[derive(Debug)]
pub enum Written<T> {
    /// The write ran now.
    Fresh(T),
    /// The key was used before with the same request: its answer.
    Replayed(StoredResponse),
}

impl<T> Written<T> {
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Written<U> {
        match self {
            Written::Fresh(value) => Written::Fresh(f(value)),
            Written::Replayed(response) => Written::Replayed(response),
        }
    }
}

pub fn mismatch() -> DomainError {
    DomainError::invalid(
        HEADER,
        "this key was already used with a different request; use a new key",
    )
}

/// The stored answer of a key's earlier use, if any: the fast path before a
/// write, which still claims the key in its own transaction.
pub async fn find(
    db: &impl Executor,
    organization_id: i64,
    idempotency: &Idempotency,
) -> DomainResult<Option<StoredResponse>> {
    let columns = [
        idempotency_key::Column::Fingerprint,
        idempotency_key::Column::Status,
        idempotency_key::Column::ResponseBody,
    ];
    let Some(row) = key_row(db, organization_id, idempotency, columns).await? else {
        return Ok(None);
    };
    if row.get::<String>(idempotency_key::Column::Fingerprint)? != idempotency.fingerprint {
        return Err(mismatch());
    }
    Ok(Some(StoredResponse {
        status: u16::try_from(row.get::<i32>(idempotency_key::Column::Status)?).unwrap_or(200),
        body: row.get(idempotency_key::Column::ResponseBody)?,
    }))
}

/// The `columns` of the key's row, if the key was used.
async fn key_row<const N: usize>(
    db: &impl Executor,
    organization_id: i64,
    idempotency: &Idempotency,
    columns: [idempotency_key::Column; N],
) -> DomainResult<Option<Row>> {
    let select = idempotency_key::Entity::find()
        .select_only()
        .columns(columns)
        .filter(idempotency_key::Column::OrganizationId.eq(organization_id))
        .filter(idempotency_key::Column::Key.eq(&idempotency.key))
        .into_query();
    Ok(db.query(&select).await?.into_iter().next())
}

/// Inserts a key's row unless the key is taken (then nothing changes).
fn insert_if_new(
    organization_id: i64,
    key: &str,
    fingerprint: String,
    status: i32,
    body: String,
    now: DateTime<Utc>,
) -> sea_orm::sea_query::InsertStatement {
    Query::insert()
        .into_table(idempotency_key::Entity)
        .columns([
            idempotency_key::Column::OrganizationId,
            idempotency_key::Column::Key,
            idempotency_key::Column::Fingerprint,
            idempotency_key::Column::Status,
            idempotency_key::Column::ResponseBody,
            idempotency_key::Column::CreatedAt,
        ])
        .values_panic([
            organization_id.into(),
            key.into(),
            fingerprint.into(),
            status.into(),
            body.into(),
            now.into(),
        ])
        .on_conflict(
            OnConflict::columns([
                idempotency_key::Column::OrganizationId,
                idempotency_key::Column::Key,
            ])
            .do_nothing()
            .to_owned(),
        )
        .to_owned()
}

/// Claims the key inside a write transaction. `None`: claimed, go on with
/// the write and [`record`] its answer. `Some`: a committed write already
/// used it; roll back and answer with this.
pub async fn claim(
    txn: &impl Executor,
    organization_id: i64,
    idempotency: &Idempotency,
    now: DateTime<Utc>,
) -> DomainResult<Option<StoredResponse>> {
    let insert = insert_if_new(
        organization_id,
        &idempotency.key,
        idempotency.fingerprint.clone(),
        0,
        String::new(),
        now,
    );
    if txn.execute(&insert).await? == 1 {
        return Ok(None);
    }
    let stored = find(txn, organization_id, idempotency).await?;
    // The conflicting row committed before this statement ran, so it exists.
    stored
        .map(Some)
        .ok_or_else(|| DomainError::internal("the idempotency key that conflicted is not there"))
}

/// Stores the answer of a write whose key was [`claim`]ed in this transaction.
pub async fn record(
    txn: &impl Executor,
    organization_id: i64,
    idempotency: &Idempotency,
    response: &StoredResponse,
) -> DomainResult<()> {
    let update = idempotency_key::Entity::update_many()
        .set(idempotency_key::ActiveModel {
            status: Set(i32::from(response.status)),
            response_body: Set(response.body.clone()),
            ..Default::default()
        })
        .filter(idempotency_key::Column::OrganizationId.eq(organization_id))
        .filter(idempotency_key::Column::Key.eq(&idempotency.key))
        .into_query();
    txn.execute(&update).await?;
    Ok(())
}

/// Before a write with a key: the stored answer of the key's earlier use,
/// if any. A fast path only; the write still claims the key.
pub async fn earlier_answer<T>(
    db: &impl Executor,
    organization_id: i64,
    idempotent: Option<Idempotent<'_, T>>,
) -> DomainResult<Option<StoredResponse>> {
    match idempotent {
        Some((key, _)) => find(db, organization_id, key).await,
        None => Ok(None),
    }
}

/// In the write's transaction: [`claim`]s the key, if the write has one.
pub async fn claim_if_keyed<T>(
    txn: &impl Executor,
    organization_id: i64,
    idempotent: Option<Idempotent<'_, T>>,
    now: DateTime<Utc>,
) -> DomainResult<Option<StoredResponse>> {
    match idempotent {
        Some((key, _)) => claim(txn, organization_id, key, now).await,
        None => Ok(None),
    }
}

/// In the write's transaction: [`record`]s its answer, if it has a key.
pub async fn record_if_keyed<T>(
    txn: &impl Executor,
    organization_id: i64,
    idempotent: Option<Idempotent<'_, T>>,
    written: &T,
) -> DomainResult<()> {
    match idempotent {
        Some((key, render)) => record(txn, organization_id, key, &render(written)).await,
        None => Ok(()),
    }
}

// ---------------------------------------------------------------------------
// Streamed imports
// ---------------------------------------------------------------------------

/// The operation whose keys hold import checkpoints.
pub const IMPORT_OPERATION: &str = "import_encounters";

/// What a keyed NDJSON import has recorded so far, from the start of its
/// stream: the answer it stores, and what a retry resumes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImportProgress {
    pub lines_committed: u64,
    pub encounters_created: u64,
    pub candidates_created: u64,
}

/// A keyed import's last committed chunk. An import cannot be answered
/// from one stored response (its body streams, and chunks commit one by
/// one), so its key holds a checkpoint instead: each chunk's transaction
/// moves it forward, and its fingerprint is the digest of the lines
/// committed, which a retry must repeat before it records anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportCheckpoint {
    pub progress: ImportProgress,
    /// SHA-256 of the committed lines (see `NdjsonReader::digest`).
    pub digest: [u8; 32],
}

impl ImportCheckpoint {
    fn fingerprint(&self) -> String {
        import_fingerprint(&self.digest)
    }
}

fn import_fingerprint(digest: &[u8; 32]) -> String {
    format!("{IMPORT_OPERATION}:{}", hex::encode(digest))
}

/// One chunk of a keyed import: the checkpoint it continues (none before
/// the first chunk) and the lines it brings the import to.
#[derive(Debug, Clone)]
pub struct ImportStep {
    pub key: Idempotency,
    pub previous: Option<ImportCheckpoint>,
    /// Lines from the start of the stream committed with this chunk.
    pub lines_committed: u64,
    /// The digest of those lines.
    pub digest: [u8; 32],
}

impl ImportStep {
    /// The checkpoint this chunk commits, given what it recorded.
    pub fn checkpoint(&self, encounters: u64, candidates: u64) -> ImportCheckpoint {
        let before = self
            .previous
            .as_ref()
            .map(|c| c.progress)
            .unwrap_or_default();
        ImportCheckpoint {
            progress: ImportProgress {
                lines_committed: self.lines_committed,
                encounters_created: before.encounters_created + encounters,
                candidates_created: before.candidates_created + candidates,
            },
            digest: self.digest,
        }
    }
}

/// The refusal of a chunk whose key moved on since the request read it:
/// another request with the same key is recording the same stream.
pub fn import_moved_on() -> DomainError {
    DomainError::invalid(
        HEADER,
        "another request with this key recorded lines of this import meanwhile; \
         send the stream again with the same key to resume after them",
    )
}

/// The checkpoint of a keyed import, if the key was used; a key used by
/// another operation is refused as a mismatch.
pub async fn import_checkpoint(
    db: &impl Executor,
    organization_id: i64,
    key: &Idempotency,
) -> DomainResult<Option<ImportCheckpoint>> {
    let columns = [
        idempotency_key::Column::Fingerprint,
        idempotency_key::Column::ResponseBody,
    ];
    let Some(row) = key_row(db, organization_id, key, columns).await? else {
        return Ok(None);
    };
    let fingerprint: String = row.get(idempotency_key::Column::Fingerprint)?;
    let Some(digest) = fingerprint
        .strip_prefix(IMPORT_OPERATION)
        .and_then(|rest| rest.strip_prefix(':'))
    else {
        return Err(mismatch());
    };
    let corrupt = || {
        DomainError::internal(format!(
            "the checkpoint of idempotency key row of organization {organization_id} does not parse"
        ))
    };
    let digest: [u8; 32] = hex::decode(digest)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(corrupt)?;
    let progress = serde_json::from_str(&row.get::<String>(idempotency_key::Column::ResponseBody)?)
        .map_err(|_| corrupt())?;
    Ok(Some(ImportCheckpoint { progress, digest }))
}

/// In the chunk's transaction, after its encounters: moves the key's
/// checkpoint from `step.previous` to what this chunk commits. Refused with
/// [`import_moved_on`] when the stored checkpoint is no longer
/// `step.previous` (a concurrent request with the key committed a chunk).
pub async fn advance_import(
    txn: &impl Executor,
    organization_id: i64,
    step: &ImportStep,
    next: &ImportCheckpoint,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let body = serde_json::to_string(&next.progress).unwrap_or_default();
    let changed = match &step.previous {
        None => {
            let insert = insert_if_new(
                organization_id,
                &step.key.key,
                next.fingerprint(),
                200,
                body,
                now,
            );
            txn.execute(&insert).await?
        }
        Some(previous) => {
            let update = idempotency_key::Entity::update_many()
                .set(idempotency_key::ActiveModel {
                    fingerprint: Set(next.fingerprint()),
                    response_body: Set(body),
                    ..Default::default()
                })
                .filter(idempotency_key::Column::OrganizationId.eq(organization_id))
                .filter(idempotency_key::Column::Key.eq(&step.key.key))
                .filter(idempotency_key::Column::Fingerprint.eq(previous.fingerprint()))
                .into_query();
            txn.execute(&update).await?
        }
    };
    if changed == 1 {
        Ok(())
    } else {
        Err(import_moved_on())
    }
}

/// Deletes keys older than [`RETENTION`]; returns how many.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn purge_expired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> DomainResult<u64> {
    let deleted = idempotency_key::Entity::delete_many()
        .filter(idempotency_key::Column::CreatedAt.lt(now - RETENTION))
        .exec(db)
        .await?;
    Ok(deleted.rows_affected)
}

/// How often [`purge_periodically`] runs.
const PURGE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(3600);

/// Purges expired keys every hour, for as long as the service runs. Several
/// instances purging at once delete the same rows; that is harmless.
pub async fn purge_periodically(db: sea_orm::DatabaseConnection) {
    let mut interval = tokio::time::interval(PURGE_INTERVAL);
    loop {
        interval.tick().await;
        match purge_expired(&db, crate::domain::now()).await {
            Ok(0) => {}
            Ok(purged) => tracing::info!(purged, "expired idempotency keys purged"),
            Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed"),
        }
    }
}

/// Removes one candidate's personal data from a stored answer. Supplied by
/// the layer that rendered the answers, which knows their schema: to this
/// module an answer is an opaque body.
pub trait AnswerRedactor: Send + Sync {
    /// The body without the personal data of candidate `candidate_id`, or
    /// `None` when it holds none.
    fn redact(&self, body: &str, candidate_id: i64) -> Option<String>;
}

/// Removes an erased candidate's personal data from the stored answers of
/// the organization's keys (kept for [`RETENTION`]), as `redactor` says.
/// The answers keep their ids, so a retry still replays instead of writing
/// twice.
pub async fn redact_candidate(
    txn: &impl ConnectionTrait,
    organization_id: i64,
    candidate_id: i64,
    redactor: &dyn AnswerRedactor,
) -> DomainResult<()> {
    // Only a body with the id in it can mention the candidate.
    let stored = idempotency_key::Entity::find()
        .filter(idempotency_key::Column::OrganizationId.eq(organization_id))
        .filter(idempotency_key::Column::ResponseBody.contains(candidate_id.to_string()))
        .all(txn)
        .await?;
    for row in stored {
        let Some(body) = redactor.redact(&row.response_body, candidate_id) else {
            continue;
        };
        idempotency_key::Entity::update_many()
            .col_expr(
                idempotency_key::Column::ResponseBody,
                sea_orm::sea_query::Expr::value(body),
            )
            .filter(idempotency_key::Column::Id.eq(row.id))
            .exec(txn)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_and_requests_fingerprinted() {
        let a = Idempotency::new("retry-1", "create_encounter", b"body").unwrap();
        assert_eq!(
            a,
            Idempotency::new("retry-1", "create_encounter", b"body").unwrap()
        );
        assert_ne!(
            a.fingerprint,
            Idempotency::new("retry-1", "create_encounter", b"other")
                .unwrap()
                .fingerprint
        );
        assert_ne!(
            a.fingerprint,
            Idempotency::new("retry-1", "create_candidate", b"body")
                .unwrap()
                .fingerprint
        );
        for bad in ["", "has space", "tab\t", "é", &"k".repeat(KEY_MAX + 1)] {
            let err = Idempotency::new(bad, "op", b"").unwrap_err();
            assert!(matches!(err, DomainError::Invalid { ref field, .. } if field == HEADER));
        }
        assert!(Idempotency::new(&"k".repeat(KEY_MAX), "op", b"").is_ok());
    }
}
