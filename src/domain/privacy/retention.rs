//! The retention policy: candidates whose latest encounter is older than the
//! limit are erased (see [`candidates::erase`](crate::domain::candidates::erase)),
//! so applicant data is not kept longer than the employer's policy allows.
//! A candidate without encounters counts from when it was created.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use entity::{candidate, encounter};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, SimpleExpr},
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, FromQueryResult, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait,
};

use crate::config::RetentionPolicy;
use crate::domain::{
    candidates,
    encounters::write::EncounterWrite,
    idempotency::AnswerRedactor,
    privacy::{audit::Actor, erasure},
    DomainResult,
};

/// Candidates erased in one transaction: few enough that encounter writes
/// of the organization wait only briefly behind it.
const ERASE_BATCH: u64 = 100;
/// Candidates read per query when listing those due.
const LIST_PAGE: u64 = 1000;

/// A candidate the policy erases.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct DueCandidate {
    pub organization_id: i64,
    pub candidate_id: i64,
    pub external_ref: String,
    /// The latest encounter's time, or the candidate's creation without one.
    pub last_activity: DateTime<Utc>,
}

/// The latest encounter's time, or the candidate's creation without one.
fn last_activity() -> SimpleExpr {
    let latest_encounter: SimpleExpr = Func::max(Expr::col((
        encounter::Entity,
        encounter::Column::OccurredAt,
    )))
    .into();
    let created: SimpleExpr = Expr::col((candidate::Entity, candidate::Column::CreatedAt));
    Func::coalesce([latest_encounter, created]).into()
}

/// Candidates not yet erased whose last activity is before `cutoff`, in id
/// order, after `after_id`, at most `limit`; only `ids` when given.
async fn due(
    db: &impl ConnectionTrait,
    cutoff: DateTime<Utc>,
    after_id: i64,
    limit: u64,
    ids: Option<&[i64]>,
) -> DomainResult<Vec<DueCandidate>> {
    let mut query = candidate::Entity::find()
        .select_only()
        .column(candidate::Column::OrganizationId)
        .column_as(candidate::Column::Id, "candidate_id")
        .column(candidate::Column::ExternalRef)
        .expr_as(last_activity(), "last_activity")
        .join(JoinType::LeftJoin, candidate::Relation::Encounter.def())
        .filter(candidate::Column::ErasedAt.is_null())
        .filter(candidate::Column::Id.gt(after_id));
    if let Some(ids) = ids {
        query = query.filter(candidate::Column::Id.is_in(ids.iter().copied()));
    }
    // Grouping by the primary key lets PostgreSQL select the other columns.
    Ok(query
        .group_by(candidate::Column::Id)
        .having(last_activity().lt(Expr::value(cutoff)))
        .order_by_asc(candidate::Column::Id)
        .limit(limit)
        .into_model::<DueCandidate>()
        .all(db)
        .await?)
}

/// Every candidate the policy would erase at `now`, without erasing them.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find_due(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
) -> DomainResult<Vec<DueCandidate>> {
    let cutoff = policy.cutoff(now);
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |due: &DueCandidate| due.candidate_id);
        let page = due(db, cutoff, after, LIST_PAGE, None).await?;
        let done = (page.len() as u64) < LIST_PAGE;
        all.extend(page);
        if done {
            return Ok(all);
        }
    }
}

/// Erases every candidate due at `now`, returning those erased.
///
/// Each batch is erased in one encounter write of its organization, which
/// checks again, under the organization's write lock, that each candidate is
/// still due and not yet erased. So an encounter recorded meanwhile saves its
/// candidate, and instances applying the policy at the same time erase each
/// candidate once: the later one finds it erased and skips it.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn enforce(
    db: &DatabaseConnection,
    policy: &RetentionPolicy,
    now: DateTime<Utc>,
    redactor: &dyn AnswerRedactor,
) -> DomainResult<Vec<DueCandidate>> {
    let cutoff = policy.cutoff(now);
    let mut erased = Vec::new();
    let mut after = 0;
    loop {
        let page = due(db, cutoff, after, ERASE_BATCH, None).await?;
        let Some(last) = page.last() else {
            return Ok(erased);
        };
        after = last.candidate_id;
        let mut by_organization: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
        for candidate in &page {
            by_organization
                .entry(candidate.organization_id)
                .or_default()
                .push(candidate.candidate_id);
        }
        for (organization_id, ids) in by_organization {
            erased.extend(erase_if_due(db, organization_id, &ids, cutoff, redactor).await?);
        }
    }
}

async fn erase_if_due(
    db: &DatabaseConnection,
    organization_id: i64,
    ids: &[i64],
    cutoff: DateTime<Utc>,
    redactor: &dyn AnswerRedactor,
) -> DomainResult<Vec<DueCandidate>> {
    let write = EncounterWrite::begin(db, organization_id).await?;
    let still_due = due(write.txn(), cutoff, 0, ids.len() as u64, Some(ids)).await?;
    if still_due.is_empty() {
        // Dropping the write rolls back its change_seq bump.
        return Ok(still_due);
    }
    for candidate in &still_due {
        let current = candidates::get(write.txn(), organization_id, candidate.candidate_id).await?;
        erasure::erase_in(&write, &Actor::RETENTION_POLICY, current, redactor).await?;
    }
    write.commit().await?;
    Ok(still_due)
}

/// Applies the policy every `policy.interval`, starting now, for as long as
/// the service runs.
pub async fn enforce_periodically(
    db: DatabaseConnection,
    policy: RetentionPolicy,
    redactor: std::sync::Arc<dyn AnswerRedactor>,
) {
    let mut interval = tokio::time::interval(policy.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match enforce(&db, &policy, crate::domain::now(), redactor.as_ref()).await {
            Ok(erased) if erased.is_empty() => {}
            Ok(erased) => tracing::info!(
                erased = erased.len(),
                days = policy.days,
                "retention: candidates erased"
            ),
            Err(err) => tracing::warn!(error = %err, "retention: applying the policy failed"),
        }
    }
}
