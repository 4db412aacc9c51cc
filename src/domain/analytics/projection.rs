//! Projecting recorded encounters into the rollups.
//!
//! A request that records encounters only appends them, with what must
//! commit with them (its idempotency key, its audit events, its outbox
//! events, its alerts). What they change in the rollups is applied later
//! by the projector (`projector.rs`), in order of `change_seq`, from the
//! organization's high-water mark (`rollup_marks`): **the rollups hold
//! exactly the encounters whose `change_seq` is at most the mark**, and the
//! mark moves in the transaction that applies them, so a crash at any
//! point leaves the two agreeing.
//!
//! A change to recorded encounters (an update, a delete, an erasure, the
//! retention job, a rebuild) first projects everything pending under the
//! same lock, then brings the rollups up to date itself and moves the mark
//! past its own write (`encounters::write`). So the encounters after the
//! mark are only ever insertions, and what they change is
//! [`pending`]: each of their candidates' contribution with them, minus
//! the contribution without them.
//!
//! Reports read the rollups and [`pending`] in one snapshot and add the
//! two (`reports::Tail`), so they equal a recount whatever the projector's
//! lag.

use chrono::{DateTime, Utc};
use entity::{encounter, organization, rollup_mark};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, OnConflict, Query},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

use crate::db::store::Executor;
use crate::domain::{
    analytics::{
        perception::{contribution, EncounterPoint, RollupDelta},
        rollups,
    },
    DomainError, DomainResult,
};

/// The first key of PostgreSQL's two-key advisory locks that the
/// projection lock uses (the second is the organization's id): "tprj".
const LOCK_CLASS: i32 = 0x7470_726a;

/// The organization's high-water mark: every encounter whose `change_seq`
/// is at most this is in the rollups.
pub(crate) async fn mark(db: &impl Executor, organization_id: i64) -> DomainResult<i64> {
    let select = rollup_mark::Entity::find()
        .select_only()
        .column(rollup_mark::Column::ProjectedSeq)
        .filter(rollup_mark::Column::OrganizationId.eq(organization_id))
        .into_query();
    Ok(match db.query(&select).await?.first() {
        Some(row) => row.get(rollup_mark::Column::ProjectedSeq)?,
        // Created with the organization; a missing row is an empty log.
        None => 0,
    })
}

/// Moves the organization's mark to `seq`.
pub(crate) async fn set_mark(
    db: &impl Executor,
    organization_id: i64,
    seq: i64,
) -> DomainResult<()> {
    let upsert = rollup_mark::Entity::insert(rollup_mark::ActiveModel {
        organization_id: Set(organization_id),
        projected_seq: Set(seq),
    })
    .on_conflict(
        OnConflict::column(rollup_mark::Column::OrganizationId)
            .update_column(rollup_mark::Column::ProjectedSeq)
            .to_owned(),
    )
    .into_query();
    db.execute(&upsert).await?;
    Ok(())
}

/// The organization's latest write, as this transaction sees it.
async fn latest_seq(db: &impl Executor, organization_id: i64) -> DomainResult<i64> {
    let select = organization::Entity::find()
        .select_only()
        .column(organization::Column::ChangeSeq)
        .filter(organization::Column::Id.eq(organization_id))
        .into_query();
    match db.query(&select).await?.first() {
        Some(row) => Ok(row.get(organization::Column::ChangeSeq)?),
        None => Err(DomainError::NotFound {
            resource: "organization",
        }),
    }
}

/// Takes the organization's projection lock until the transaction ends,
/// waiting for it or (`wait` false) giving up at once: whether it was
/// taken. On PostgreSQL it is an advisory transaction lock, so that of
/// several instances one projects an organization at a time. On SQLite
/// the write transaction already holds the database's only write lock.
pub(crate) async fn lock(
    db: &impl Executor,
    postgres: bool,
    organization_id: i64,
    wait: bool,
) -> DomainResult<bool> {
    if !postgres {
        return Ok(true);
    }
    let key = i32::try_from(organization_id).map_err(|_| {
        DomainError::internal(format!(
            "organization id {organization_id} does not fit the projection lock's key"
        ))
    })?;
    if wait {
        let select = Query::select()
            .expr(Expr::cust(format!(
                "pg_advisory_xact_lock({LOCK_CLASS}, {key})"
            )))
            .to_owned();
        db.execute(&select).await?;
        return Ok(true);
    }
    // The answer is read back under a column name the row reader knows.
    // Both keys are numbers of this code's, written as literals.
    let taken = Expr::cust(format!(
        "CAST(CASE WHEN pg_try_advisory_xact_lock({LOCK_CLASS}, {key}) THEN 1 ELSE 0 END AS BIGINT)"
    ));
    let select = Query::select()
        .expr_as(taken, rollup_mark::Column::ProjectedSeq)
        .to_owned();
    let rows = db.query(&select).await?;
    let row = rows
        .first()
        .ok_or_else(|| DomainError::internal("the projection lock answered nothing"))?;
    Ok(row.get::<i64>(rollup_mark::Column::ProjectedSeq)? == 1)
}

/// The organizations with writes not yet projected.
pub(crate) async fn behind(db: &impl Executor) -> DomainResult<Vec<i64>> {
    let select = Query::select()
        .column((organization::Entity, organization::Column::Id))
        .from(organization::Entity)
        .left_join(
            rollup_mark::Entity,
            Expr::col((rollup_mark::Entity, rollup_mark::Column::OrganizationId))
                .equals((organization::Entity, organization::Column::Id)),
        )
        .and_where(
            Expr::col((organization::Entity, organization::Column::ChangeSeq)).gt(Func::coalesce(
                [
                    Expr::col((rollup_mark::Entity, rollup_mark::Column::ProjectedSeq)),
                    Expr::val(0i64),
                ],
            )),
        )
        .to_owned();
    db.query(&select)
        .await?
        .iter()
        .map(|row| Ok(row.get(organization::Column::Id)?))
        .collect()
}

/// Encounters recorded and not yet projected, of every organization.
pub async fn pending_encounters(db: &impl Executor) -> DomainResult<i64> {
    let select = Query::select()
        .expr_as(
            Expr::col((encounter::Entity, encounter::Column::Id)).count(),
            encounter::Column::Id,
        )
        .from(organization::Entity)
        .left_join(
            rollup_mark::Entity,
            Expr::col((rollup_mark::Entity, rollup_mark::Column::OrganizationId))
                .equals((organization::Entity, organization::Column::Id)),
        )
        .inner_join(
            encounter::Entity,
            Expr::col((encounter::Entity, encounter::Column::OrganizationId))
                .equals((organization::Entity, organization::Column::Id))
                .and(
                    Expr::col((encounter::Entity, encounter::Column::ChangeSeq)).gt(
                        Func::coalesce([
                            Expr::col((rollup_mark::Entity, rollup_mark::Column::ProjectedSeq)),
                            Expr::val(0i64),
                        ]),
                    ),
                ),
        )
        .to_owned();
    // The count comes back under the `id` column's name (read by it).
    match db.query(&select).await?.first() {
        Some(row) => Ok(row.get(encounter::Column::Id)?),
        None => Ok(0),
    }
}

/// What the encounters after a mark change in the rollups.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    pub delta: RollupDelta,
    /// How many encounters.
    pub encounters: u64,
    /// Their candidates, in order, once each.
    pub candidates: Vec<i64>,
}

/// What the encounters recorded after `mark` (and, with `upto`, at most
/// `upto`) change in the rollups: for each of their candidates, the
/// contribution with them minus the contribution without them.
pub(crate) async fn pending(
    db: &impl Executor,
    organization_id: i64,
    mark: i64,
    upto: Option<i64>,
) -> DomainResult<Pending> {
    let mut select = encounter::Entity::find()
        .select_only()
        .column(encounter::Column::CandidateId)
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .filter(encounter::Column::ChangeSeq.gt(mark));
    if let Some(upto) = upto {
        select = select.filter(encounter::Column::ChangeSeq.lte(upto));
    }
    let rows = db.query(&select.into_query()).await?;
    let mut candidates = rows
        .iter()
        .map(|row| Ok(row.get(encounter::Column::CandidateId)?))
        .collect::<DomainResult<Vec<i64>>>()?;
    let encounters = candidates.len() as u64;
    if encounters == 0 {
        return Ok(Pending::default());
    }
    candidates.sort_unstable();
    candidates.dedup();
    let in_view = |point: &&EncounterPoint| upto.is_none_or(|upto| point.change_seq <= upto);
    let mut delta = RollupDelta::default();
    for (candidate_id, points) in rollups::load_points(db, organization_id, &candidates).await? {
        let before: Vec<EncounterPoint> = points
            .iter()
            .filter(|point| point.change_seq <= mark)
            .copied()
            .collect();
        let after: Vec<EncounterPoint> = points.iter().filter(in_view).copied().collect();
        delta.record(candidate_id, &contribution(&before), &contribution(&after));
    }
    Ok(Pending {
        delta,
        encounters,
        candidates,
    })
}

/// What one projection step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projected {
    /// Encounters applied.
    pub encounters: u64,
    /// Whether nothing the transaction can see is left to project.
    pub caught_up: bool,
}

/// A projection step read and not yet applied: what the encounters after
/// `mark`, up to `upto`, change in the rollups.
#[derive(Debug)]
pub(crate) struct Step {
    mark: i64,
    upto: i64,
    latest: i64,
    pending: Pending,
}

/// Reads the next step in `db`'s snapshot, which need not be the one it is
/// applied in: `None` when nothing is pending. With a `limit`, a step takes
/// about that many encounters: whole writes, in order, at least one.
pub(crate) async fn read_step(
    db: &impl Executor,
    organization_id: i64,
    limit: Option<u64>,
) -> DomainResult<Option<Step>> {
    let mark = mark(db, organization_id).await?;
    let latest = latest_seq(db, organization_id).await?;
    if latest <= mark {
        return Ok(None);
    }
    let upto = match limit {
        Some(limit) => step_end(db, organization_id, mark, latest, limit).await?,
        None => latest,
    };
    let pending = pending(db, organization_id, mark, Some(upto)).await?;
    Ok(Some(Step {
        mark,
        upto,
        latest,
        pending,
    }))
}

/// Applies a step to the rollups and moves the mark past it, in `db`'s
/// transaction, which holds the organization's projection lock
/// ([`lock`]); or nothing, when the mark has moved since the step was read
/// (`caught_up` false: read it again). With the mark where it was, the
/// encounters up to the step's end are those it was read from: only a
/// change moves the mark past them, and after the mark the log only
/// grows, in order of `change_seq`.
pub(crate) async fn apply_step(
    db: &impl Executor,
    organization_id: i64,
    step: &Step,
    now: DateTime<Utc>,
) -> DomainResult<Projected> {
    if mark(db, organization_id).await? != step.mark {
        return Ok(Projected {
            encounters: 0,
            caught_up: false,
        });
    }
    rollups::apply(db, organization_id, &step.pending.delta, now).await?;
    set_mark(db, organization_id, step.upto).await?;
    Ok(Projected {
        encounters: step.pending.encounters,
        caught_up: step.upto == step.latest,
    })
}

/// Applies the encounters after the mark to the rollups and moves the
/// mark past them, reading and applying in `db`'s transaction, which
/// holds the organization's projection lock ([`lock`]).
pub(crate) async fn project(
    db: &impl Executor,
    organization_id: i64,
    now: DateTime<Utc>,
) -> DomainResult<Projected> {
    match read_step(db, organization_id, None).await? {
        Some(step) => apply_step(db, organization_id, &step, now).await,
        None => Ok(Projected {
            encounters: 0,
            caught_up: true,
        }),
    }
}

/// The last write a step of at most `limit` encounters after `mark` ends
/// with; the first write whole when it alone holds more.
async fn step_end(
    db: &impl Executor,
    organization_id: i64,
    mark: i64,
    latest: i64,
    limit: u64,
) -> DomainResult<i64> {
    Ok(match nth_after(db, organization_id, mark, limit).await? {
        Some(beyond) if beyond <= latest => {
            // The write holding the encounter past the limit: the step
            // ends before it, unless it is the first.
            if beyond - 1 > mark {
                beyond - 1
            } else {
                beyond
            }
        }
        _ => latest,
    })
}

/// The write of the encounter after the first `n` recorded after `mark`,
/// in order of writes; `None` when there are at most `n`.
pub(crate) async fn nth_after(
    db: &impl Executor,
    organization_id: i64,
    mark: i64,
    n: u64,
) -> DomainResult<Option<i64>> {
    let select = encounter::Entity::find()
        .select_only()
        .column(encounter::Column::ChangeSeq)
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .filter(encounter::Column::ChangeSeq.gt(mark))
        .order_by_asc(encounter::Column::ChangeSeq)
        .offset(n)
        .limit(1)
        .into_query();
    match db.query(&select).await?.first() {
        Some(row) => Ok(Some(row.get(encounter::Column::ChangeSeq)?)),
        None => Ok(None),
    }
}
