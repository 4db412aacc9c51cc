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
//! A step (the encounters after the mark up to its end) is applied in
//! parts ([`Part`]: a month and a touchpoint, whose rollup rows always
//! move together), in groups of a few hundred rollup keys; a transaction
//! ends after the group during which a write began to wait for it (see
//! [`Limit`]), so that a write waits behind one group rather than the
//! whole step: with a year of
//! days, a step of a thousand single POSTs rewrote rows all over the
//! rollups and held SQLite's one write lock for 40 to 90 ms. Until its last
//! part, the step's end and the parts applied are stored with them
//! (`rollup_steps`): **the rows of those parts hold exactly the encounters
//! up to the step's end**, the others those up to the mark. The last part
//! moves the mark and forgets the step; a restarted projector resumes it.
//!
//! A change to recorded encounters (an update, a delete, an erasure, the
//! retention job, a rebuild) first projects everything pending under the
//! same lock, then brings the rollups up to date itself and moves the mark
//! past its own write (`encounters::write`). So the encounters after the
//! mark are only ever insertions, and what they change is
//! [`pending`]: each of their candidates' contribution with them, minus
//! the contribution without them, worked out on the days of the
//! candidate's history that they can change (`affected`).
//!
//! Reports read the rollups and what they lack ([`unapplied`]: [`pending`]
//! after the mark, or after the step's end for the parts applied) in one
//! snapshot and add the two (`reports::Tail`), so they equal a recount
//! whatever the projector's lag, mid-step included.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use entity::{encounter, organization, rollup_mark, rollup_step};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, OnConflict, Query},
    ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, Set,
};

use crate::db::store::Executor;
use crate::domain::{
    analytics::{
        affected::{self, Affected},
        perception::{
            contribution, day_of, month_of, DayKey, EncounterPoint, ReachKey, RollupDelta, Span,
        },
        rollups,
    },
    DomainError, DomainResult,
};

/// Candidates whose encounters are read at a time to work out what pending
/// encounters change: the memory a projection step or a report's tail
/// takes grows with this, not with the number of candidates it touches
/// (under single POSTs on 1,000 candidates of 400 encounters each, a
/// report read every 250 ms took the service's peak RSS to 1.4 GiB when
/// all were read at once).
const HISTORIES: usize = 64;

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
/// contribution with them minus the contribution without them, worked out
/// on the part of its history they can change (`affected`).
pub(crate) async fn pending(
    db: &impl Executor,
    organization_id: i64,
    mark: i64,
    upto: Option<i64>,
) -> DomainResult<Pending> {
    let (recorded, encounters) = recorded_after(db, organization_id, mark, upto).await?;
    let mut delta = RollupDelta::default();
    for chunk in recorded.chunks(HISTORIES) {
        let histories = affected::load(db, organization_id, chunk).await?;
        record_after(&mut delta, &histories, ids(chunk), mark, upto);
    }
    Ok(Pending {
        delta,
        encounters,
        candidates: ids(&recorded).collect(),
    })
}

/// The candidates of the encounters recorded after `mark` (and, with
/// `upto`, at most `upto`), in order, once each, with the days of those
/// encounters (in order, once each); and how many encounters.
async fn recorded_after(
    db: &impl Executor,
    organization_id: i64,
    mark: i64,
    upto: Option<i64>,
) -> DomainResult<(Vec<(i64, Vec<i32>)>, u64)> {
    let mut select = encounter::Entity::find()
        .select_only()
        .columns([
            encounter::Column::CandidateId,
            encounter::Column::OccurredAt,
        ])
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .filter(encounter::Column::ChangeSeq.gt(mark));
    if let Some(upto) = upto {
        select = select.filter(encounter::Column::ChangeSeq.lte(upto));
    }
    let rows = db.query(&select.into_query()).await?;
    let encounters = rows.len() as u64;
    let mut days: BTreeMap<i64, Vec<i32>> = BTreeMap::new();
    for row in rows {
        days.entry(row.get(encounter::Column::CandidateId)?)
            .or_default()
            .push(day_of(row.get(encounter::Column::OccurredAt)?));
    }
    let recorded = days
        .into_iter()
        .map(|(candidate_id, mut days)| {
            days.sort_unstable();
            days.dedup();
            (candidate_id, days)
        })
        .collect();
    Ok((recorded, encounters))
}

/// The candidates of `recorded_after`'s pairs, in order.
fn ids(recorded: &[(i64, Vec<i32>)]) -> impl Iterator<Item = i64> + '_ {
    recorded.iter().map(|(id, _)| *id)
}

/// Adds to `delta` what the encounters after `mark` (up to `upto`, if
/// any) change for these candidates, from the affected part of their
/// histories.
fn record_after(
    delta: &mut RollupDelta,
    histories: &HashMap<i64, Affected>,
    candidates: impl IntoIterator<Item = i64>,
    mark: i64,
    upto: Option<i64>,
) {
    let in_view = |point: &&EncounterPoint| upto.is_none_or(|upto| point.change_seq <= upto);
    for candidate_id in candidates {
        let Some(history) = histories.get(&candidate_id) else {
            continue;
        };
        let whole = |points: Vec<EncounterPoint>| {
            let mut contribution = contribution(&points);
            contribution.score_days = history.score_days(&contribution.score_days);
            contribution
        };
        let before = whole(
            history
                .points
                .iter()
                .filter(|point| point.change_seq <= mark)
                .copied()
                .collect(),
        );
        let after = whole(history.points.iter().filter(in_view).copied().collect());
        delta.record(candidate_id, &before, &after);
    }
}

/// What one projection step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Projected {
    /// Encounters applied.
    pub encounters: u64,
    /// Whether nothing the transaction can see is left to project.
    pub caught_up: bool,
}

/// A group of rollup keys that a step applies together: a month and a
/// touchpoint. Every rollup row belongs to one: a daily row by its day's
/// month, a monthly row and a month's reach by their month. So the rows a
/// report reads for a touchpoint and month (daily, monthly, reach) always
/// hold the same encounters.
pub type Part = (i32, i64);

fn counter_part(key: &DayKey) -> Part {
    (month_of(key.day), key.touchpoint_id)
}

fn reach_part(key: &ReachKey) -> Part {
    match key.span {
        Span::Day => (month_of(key.period), key.touchpoint_id),
        Span::Month => (key.period, key.touchpoint_id),
    }
}

/// A projection step read and not yet (wholly) applied: what the
/// encounters after `mark`, up to `upto`, change in the rollups, by part.
#[derive(Debug)]
pub struct Step {
    mark: i64,
    upto: i64,
    latest: i64,
    pending: Pending,
    /// The step's counter and reach changes, by part.
    parts: BTreeMap<Part, RollupDelta>,
    /// The parts already in the rollups, as stored (`rollup_steps`) once
    /// the step's first part is applied.
    applied: BTreeSet<Part>,
    begun: bool,
}

/// What applying (part of) a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Some of its parts; the rest is left for the next transactions.
    Part,
    /// Its last parts: the mark moved to its end.
    Step(Projected),
    /// Nothing: the mark or the step's stored progress moved since it
    /// was read (another instance, or a change). Read it again.
    Stale,
}

/// Reads the next step in `db`'s snapshot, which need not be the one it is
/// applied in: the step begun and not finished, if any, else a new one;
/// `None` when nothing is pending. With a `limit`, a new step takes about
/// that many encounters: whole writes, in order, at least one.
pub async fn read_step(
    db: &impl Executor,
    organization_id: i64,
    limit: Option<u64>,
) -> DomainResult<Option<Step>> {
    let mark = mark(db, organization_id).await?;
    let latest = latest_seq(db, organization_id).await?;
    let (upto, applied, begun) = match stored_step(db, organization_id).await? {
        Some((upto, applied)) => (upto, applied, true),
        None if latest <= mark => return Ok(None),
        None => {
            let upto = match limit {
                Some(limit) => step_end(db, organization_id, mark, latest, limit).await?,
                None => latest,
            };
            (upto, BTreeSet::new(), false)
        }
    };
    let mut pending = pending(db, organization_id, mark, Some(upto)).await?;
    // Moved into the parts; the step keeps the scored days for its last.
    let mut parts: BTreeMap<Part, RollupDelta> = BTreeMap::new();
    for (key, change) in std::mem::take(&mut pending.delta.counters) {
        parts
            .entry(counter_part(&key))
            .or_default()
            .counters
            .insert(key, change);
    }
    for (key, members) in std::mem::take(&mut pending.delta.reach) {
        parts
            .entry(reach_part(&key))
            .or_default()
            .reach
            .insert(key, members);
    }
    Ok(Some(Step {
        mark,
        upto,
        latest,
        pending,
        parts,
        applied,
        begun,
    }))
}

/// How much of a step one transaction applies (see [`apply_step`]).
pub struct Limit<'a> {
    /// Rollup keys of a group of parts (at least one part).
    pub rows: usize,
    /// Rollup keys after which the transaction ends.
    pub total: usize,
    /// Asked after each group: `false` ends the transaction there.
    pub go_on: &'a (dyn Fn() -> bool + Sync),
}

/// Applies a step's parts not applied yet, in `db`'s transaction, which
/// holds the organization's projection lock ([`lock`]): within `limit`,
/// in groups of whole parts, else all of them. The last part also writes
/// the candidates' scored days, moves the mark to the step's end and
/// forgets the step; otherwise the transaction stores which parts are
/// applied. Applies nothing when the mark or the stored progress has moved
/// since the step was read ([`Applied::Stale`]). With both where they
/// were, the encounters up to the step's end are those it was read from:
/// only a change moves the mark past them, and after the mark the log only
/// grows, in order of `change_seq`.
pub async fn apply_step(
    db: &impl Executor,
    organization_id: i64,
    step: &mut Step,
    limit: Option<Limit<'_>>,
    now: DateTime<Utc>,
) -> DomainResult<Applied> {
    let stored = stored_step(db, organization_id).await?;
    let expected = step.begun.then(|| (step.upto, step.applied.clone()));
    if mark(db, organization_id).await? != step.mark || stored != expected {
        return Ok(Applied::Stale);
    }
    let mut applied_rows = 0;
    loop {
        let (mut batch, chosen, rows) = step.next_group(limit.as_ref().map(|limit| limit.rows));
        let last = step.applied.len() + chosen.len() == step.parts.len();
        if last {
            batch.score_days = std::mem::take(&mut step.pending.delta.score_days);
        }
        rollups::apply(db, organization_id, &batch, now).await?;
        step.applied.extend(chosen);
        if last {
            if step.begun {
                let forget = rollup_step::Entity::delete_by_id(organization_id).into_query();
                db.execute(&forget).await?;
            }
            set_mark(db, organization_id, step.upto).await?;
            return Ok(Applied::Step(Projected {
                encounters: step.pending.encounters,
                caught_up: step.upto == step.latest,
            }));
        }
        applied_rows += rows;
        if let Some(limit) = &limit {
            if applied_rows >= limit.total || !(limit.go_on)() {
                break;
            }
        }
    }
    let progress = rollup_step::Entity::insert(rollup_step::ActiveModel {
        organization_id: Set(organization_id),
        upto: Set(step.upto),
        applied_parts: Set(encode_parts(&step.applied)),
    })
    .on_conflict(
        OnConflict::column(rollup_step::Column::OrganizationId)
            .update_columns([rollup_step::Column::Upto, rollup_step::Column::AppliedParts])
            .to_owned(),
    )
    .into_query();
    db.execute(&progress).await?;
    step.begun = true;
    Ok(Applied::Part)
}

impl Step {
    /// The next parts not applied, in order, of about `max_rows` rollup
    /// keys in all (at least one part), else all of them: their changes,
    /// the parts, and how many keys they hold.
    fn next_group(&self, max_rows: Option<usize>) -> (RollupDelta, Vec<Part>, usize) {
        let mut batch = RollupDelta::default();
        let mut chosen = Vec::new();
        let mut rows = 0;
        for (part, delta) in &self.parts {
            if self.applied.contains(part) {
                continue;
            }
            let size = delta.counters.len() + delta.reach.len();
            if max_rows.is_some_and(|max| !chosen.is_empty() && rows + size > max) {
                break;
            }
            rows += size;
            chosen.push(*part);
            batch
                .counters
                .extend(delta.counters.iter().map(|(k, v)| (*k, *v)));
            batch
                .reach
                .extend(delta.reach.iter().map(|(k, v)| (*k, v.clone())));
        }
        (batch, chosen, rows)
    }
}

/// Applies everything after the mark to the rollups (a step begun by the
/// projector first) and moves the mark past it, reading and applying in
/// `db`'s transaction, which holds the organization's projection lock
/// ([`lock`]).
pub(crate) async fn project(
    db: &impl Executor,
    organization_id: i64,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    while let Some(mut step) = read_step(db, organization_id, None).await? {
        match apply_step(db, organization_id, &mut step, None, now).await? {
            Applied::Step(_) => {}
            Applied::Part | Applied::Stale => {
                return Err(DomainError::internal(
                    "a whole projection step was not applied in its own transaction",
                ))
            }
        }
    }
    Ok(())
}

/// The step begun and not finished: its end and the parts applied.
async fn stored_step(
    db: &impl Executor,
    organization_id: i64,
) -> DomainResult<Option<(i64, BTreeSet<Part>)>> {
    let select = rollup_step::Entity::find_by_id(organization_id).into_query();
    match db.query(&select).await?.first() {
        Some(row) => Ok(Some((
            row.get(rollup_step::Column::Upto)?,
            decode_parts(&row.get::<Vec<u8>>(rollup_step::Column::AppliedParts)?)?,
        ))),
        None => Ok(None),
    }
}

/// Parts as stored: each its month (4 bytes) and touchpoint (8), big-endian.
fn encode_parts(parts: &BTreeSet<Part>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(parts.len() * 12);
    for (month, touchpoint_id) in parts {
        bytes.extend_from_slice(&month.to_be_bytes());
        bytes.extend_from_slice(&touchpoint_id.to_be_bytes());
    }
    bytes
}

fn decode_parts(bytes: &[u8]) -> DomainResult<BTreeSet<Part>> {
    if bytes.len() % 12 != 0 {
        return Err(DomainError::internal(
            "unreadable parts of a projection step",
        ));
    }
    Ok(bytes
        .chunks_exact(12)
        .map(|part| {
            let (month, touchpoint) = part.split_at(4);
            (
                i32::from_be_bytes(month.try_into().expect("4 bytes")),
                i64::from_be_bytes(touchpoint.try_into().expect("8 bytes")),
            )
        })
        .collect())
}

/// What the rollups lack in `db`'s snapshot: what the encounters after the
/// mark change, less the parts of a step begun that are already applied
/// (for those, what the encounters after the step's end change).
pub(crate) async fn unapplied(
    db: &impl Executor,
    organization_id: i64,
    mark: i64,
) -> DomainResult<Pending> {
    let Some((upto, applied)) = stored_step(db, organization_id).await? else {
        return pending(db, organization_id, mark, None).await;
    };
    // The candidates after the step's end are among those after the mark,
    // and the days read for those hold the changes after the step's end
    // too (see `affected`): they are read once for both.
    let (recorded, encounters) = recorded_after(db, organization_id, mark, None).await?;
    let mut all = RollupDelta::default();
    let mut after = RollupDelta::default();
    for chunk in recorded.chunks(HISTORIES) {
        let histories = affected::load(db, organization_id, chunk).await?;
        record_after(&mut all, &histories, ids(chunk), mark, None);
        let later = ids(chunk).filter(|id| {
            histories
                .get(id)
                .is_some_and(|history| history.points.iter().any(|point| point.change_seq > upto))
        });
        record_after(&mut after, &histories, later, upto, None);
    }
    let mut delta = RollupDelta::default();
    for (key, change) in all.counters {
        if !applied.contains(&counter_part(&key)) {
            delta.counters.insert(key, change);
        }
    }
    for (key, change) in after.counters {
        if applied.contains(&counter_part(&key)) {
            delta.counters.insert(key, change);
        }
    }
    for (key, members) in all.reach {
        if !applied.contains(&reach_part(&key)) {
            delta.reach.insert(key, members);
        }
    }
    for (key, members) in after.reach {
        if applied.contains(&reach_part(&key)) {
            delta.reach.insert(key, members);
        }
    }
    // Scored days move with the mark, in the step's last part.
    delta.score_days = all.score_days;
    Ok(Pending {
        delta,
        encounters,
        candidates: ids(&recorded).collect(),
    })
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
