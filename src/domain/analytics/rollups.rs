//! The stored perception rollups (`perception_daily`, `perception_monthly`,
//! their per-source twins `perception_source_daily` and
//! `perception_source_monthly`, and `touchpoint_reach`): reading
//! candidates' contributions, and applying the difference a write made.
//! The write units of `encounters::write` call them, so the rollups stay
//! equal to a recount of the encounters.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use entity::{anonymous_answer, candidate_score_day, encounter, enums::Source, touchpoint_reach};
use roaring::RoaringTreemap;
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveEnum, ColumnTrait, EntityTrait, IdenStatic, QueryFilter, QuerySelect, QueryTrait,
};

use crate::db::{
    sql::Sql,
    store::{Assign, Executor, InsertRows, Row},
};
use crate::domain::{
    analytics::perception::{
        contribution, month_of, week_of, Contribution, CounterValue, Counters, DayKey,
        EncounterPoint, ReachKey, RollupDelta, ScoreDays,
    },
    DomainError, DomainResult,
};

/// The definition of the rollups. Raise it when what they hold changes:
/// every organization below it is rebuilt when the service starts.
///
/// 2: sums of squares, and the counters per source.
/// 3: each candidate's scored days (`candidate_score_days`).
/// 4: shares on a grid (`perception::on_share_grid`).
pub const ROLLUP_VERSION: i32 = 4;

/// Rows per multi-row statement: far below both backends' bind limits.
const CHUNK: usize = 500;

/// The current contribution of each of these candidates that has encounters.
pub(crate) async fn load_contributions(
    db: &impl Executor,
    organization_id: i64,
    candidate_ids: &[i64],
) -> DomainResult<HashMap<i64, Contribution>> {
    Ok(load_points(db, organization_id, candidate_ids)
        .await?
        .into_iter()
        .map(|(id, points)| (id, contribution(&points)))
        .collect())
}

/// The encounters of each of these candidates that has any.
pub(crate) async fn load_points(
    db: &impl Executor,
    organization_id: i64,
    candidate_ids: &[i64],
) -> DomainResult<HashMap<i64, Vec<EncounterPoint>>> {
    let mut points: HashMap<i64, Vec<EncounterPoint>> = HashMap::new();
    for chunk in candidate_ids.chunks(CHUNK) {
        let select = encounter::Entity::find()
            .select_only()
            .columns(POINT_COLUMNS)
            .filter(encounter::Column::OrganizationId.eq(organization_id))
            .filter(encounter::Column::CandidateId.is_in(chunk.iter().copied()))
            .into_query();
        for row in db.query(&select).await? {
            let (candidate_id, point) = point_of(&row)?;
            points.entry(candidate_id).or_default().push(point);
        }
    }
    Ok(points)
}

/// The columns of an encounter that [`point_of`] reads.
pub(crate) const POINT_COLUMNS: [encounter::Column; 7] = [
    encounter::Column::CandidateId,
    encounter::Column::Id,
    encounter::Column::ChangeSeq,
    encounter::Column::TouchpointId,
    encounter::Column::OccurredAt,
    encounter::Column::Score,
    encounter::Column::Source,
];

/// An encounter's candidate and what perception depends on of it, from a
/// row of [`POINT_COLUMNS`].
pub(crate) fn point_of(row: &Row) -> DomainResult<(i64, EncounterPoint)> {
    Ok((
        row.get(encounter::Column::CandidateId)?,
        EncounterPoint {
            id: row.get(encounter::Column::Id)?,
            change_seq: row.get(encounter::Column::ChangeSeq)?,
            touchpoint_id: row.get(encounter::Column::TouchpointId)?,
            occurred_at: row.get(encounter::Column::OccurredAt)?,
            score: row.get(encounter::Column::Score)?,
            source: source_of(&row.get::<String>(encounter::Column::Source)?)?,
        },
    ))
}

/// What the organization's anonymous survey answers add to the rollups:
/// each a scored `candidate_survey` encounter of its touchpoint and day,
/// with no shift and no reach (they belong to no candidate).
pub(crate) async fn anonymous_delta(
    db: &impl Executor,
    organization_id: i64,
) -> DomainResult<RollupDelta> {
    let select = Query::select()
        .columns([
            anonymous_answer::Column::TouchpointId,
            anonymous_answer::Column::Day,
            anonymous_answer::Column::Score,
        ])
        // The count comes back under the `id` column's name (read by it).
        .expr_as(
            Expr::col(anonymous_answer::Column::Id).count(),
            anonymous_answer::Column::Id,
        )
        .from(anonymous_answer::Entity)
        .and_where(anonymous_answer::Column::OrganizationId.eq(organization_id))
        .group_by_columns([
            anonymous_answer::Column::TouchpointId,
            anonymous_answer::Column::Day,
            anonymous_answer::Column::Score,
        ])
        .to_owned();
    let mut delta = RollupDelta::default();
    for row in db.query(&select).await? {
        let key = DayKey {
            touchpoint_id: row.get(anonymous_answer::Column::TouchpointId)?,
            day: row.get(anonymous_answer::Column::Day)?,
            source: Source::CandidateSurvey,
        };
        let answers: i64 = row.get(anonymous_answer::Column::Id)?;
        delta.counters.entry(key).or_default().add(
            &Counters::of_score(row.get(anonymous_answer::Column::Score)?),
            answers,
        );
    }
    Ok(delta)
}

fn source_of(value: &String) -> DomainResult<Source> {
    Source::try_from_value(value)
        .map_err(|_| DomainError::internal(format!("unknown encounter source {value:?}")))
}

/// Writes a delta: counters are added in place (an upsert), reach bitmaps
/// are read, changed and written back (safe under the write's lock).
pub(crate) async fn apply(
    db: &impl Executor,
    organization_id: i64,
    delta: &RollupDelta,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let changes = CounterChanges::of(delta);
    let org = sea_orm::Value::from(organization_id);
    add_counters(
        db,
        "perception_source_daily",
        &["organization_id", "touchpoint_id", "day", "source", "month"],
        4,
        changes.source_days.iter().map(|(key, change)| {
            let leading = vec![
                org.clone(),
                key.touchpoint_id.into(),
                key.day.into(),
                key.source.to_value().into(),
                month_of(key.day).into(),
            ];
            (leading, change)
        }),
        now,
    )
    .await?;
    add_counters(
        db,
        "perception_daily",
        &["organization_id", "touchpoint_id", "day", "week", "month"],
        3,
        changes.days.iter().map(|((touchpoint_id, day), change)| {
            let leading = vec![
                org.clone(),
                (*touchpoint_id).into(),
                (*day).into(),
                week_of(*day).into(),
                month_of(*day).into(),
            ];
            (leading, change)
        }),
        now,
    )
    .await?;
    add_counters(
        db,
        "perception_source_monthly",
        &["organization_id", "touchpoint_id", "month", "source"],
        4,
        changes
            .source_months
            .iter()
            .map(|((touchpoint_id, month, source), change)| {
                let leading = vec![
                    org.clone(),
                    (*touchpoint_id).into(),
                    (*month).into(),
                    source.to_value().into(),
                ];
                (leading, change)
            }),
        now,
    )
    .await?;
    add_counters(
        db,
        "perception_monthly",
        &["organization_id", "touchpoint_id", "month"],
        3,
        changes
            .months
            .iter()
            .map(|((touchpoint_id, month), change)| {
                let leading = vec![org.clone(), (*touchpoint_id).into(), (*month).into()];
                (leading, change)
            }),
        now,
    )
    .await?;
    // Day and month bitmaps in one read and one write: each statement
    // costs a round trip to the database.
    let changes: Vec<_> = delta.reach.iter().collect();
    for chunk in changes.chunks(CHUNK) {
        update_reach(db, organization_id, chunk, now).await?;
    }
    update_score_days(db, organization_id, &delta.score_days).await
}

/// Writes the candidates' changed scored days: an upsert for those with a
/// score, a delete for those left without one.
async fn update_score_days(
    db: &impl Executor,
    organization_id: i64,
    changed: &BTreeMap<i64, ScoreDays>,
) -> DomainResult<()> {
    let (scored, unscored): (Vec<_>, Vec<_>) =
        changed.iter().partition(|(_, days)| !days.0.is_empty());
    use candidate_score_day::Column as C;
    let mut rows = InsertRows::new(
        candidate_score_day::Entity,
        [C::CandidateId, C::OrganizationId, C::Days],
    )
    .on_conflict(
        [C::CandidateId.as_str()],
        [(C::Days.as_str(), Assign::Replace)],
    );
    for (candidate_id, days) in scored {
        rows.push([
            (*candidate_id).into(),
            organization_id.into(),
            days.encode().into(),
        ]);
    }
    db.insert_rows(&rows, false).await?;
    for chunk in unscored.chunks(CHUNK) {
        let delete = candidate_score_day::Entity::delete_many()
            .filter(candidate_score_day::Column::OrganizationId.eq(organization_id))
            .filter(
                candidate_score_day::Column::CandidateId
                    .is_in(chunk.iter().map(|(candidate_id, _)| **candidate_id)),
            )
            .into_query();
        db.execute(&delete).await?;
    }
    Ok(())
}

/// A delta's counter changes for each of the four tables: by touchpoint,
/// day and source as recorded, and summed over sources, over days into
/// months, or both. Rows whose change is zero are left out.
#[derive(Default)]
struct CounterChanges {
    source_days: BTreeMap<DayKey, Counters>,
    days: BTreeMap<(i64, i32), Counters>,
    source_months: BTreeMap<(i64, i32, Source), Counters>,
    months: BTreeMap<(i64, i32), Counters>,
}

impl CounterChanges {
    fn of(delta: &RollupDelta) -> Self {
        let mut changes = CounterChanges::default();
        for (key, change) in &delta.counters {
            if change.is_zero() {
                continue;
            }
            let month = month_of(key.day);
            changes.source_days.insert(*key, *change);
            for sum in [
                changes
                    .days
                    .entry((key.touchpoint_id, key.day))
                    .or_default(),
                changes
                    .months
                    .entry((key.touchpoint_id, month))
                    .or_default(),
            ] {
                sum.add(change, 1);
            }
            changes
                .source_months
                .entry((key.touchpoint_id, month, key.source))
                .or_default()
                .add(change, 1);
        }
        // A change of source only moves counters between sources.
        changes.days.retain(|_, change| !change.is_zero());
        changes.months.retain(|_, change| !change.is_zero());
        changes.source_months.retain(|_, change| !change.is_zero());
        changes
    }
}

/// Applies a chunk of reach changes: reads the bitmaps, adds and removes
/// the candidates, and writes them back.
async fn update_reach(
    db: &impl Executor,
    organization_id: i64,
    chunk: &[(&ReachKey, &Vec<(i64, bool)>)],
    now: DateTime<Utc>,
) -> DomainResult<()> {
    // The stored bitmaps of exactly these keys, each looked up in the
    // unique index by a subquery of its own. (Filtering each column by its
    // own list matched every key of their cross product, up to all of the
    // organization's bitmaps: a step under single POSTs read ~25,000 of
    // them to change ~500. A join of the keys with the table was planned
    // by PostgreSQL as a hash join over all of the organization's bitmaps:
    // for 400 keys among 16,000 bitmaps, 4.6 ms against 1.4 ms this way,
    // `psycopg`, medians of 40.)
    let mut select = Sql::for_backend(db.backend());
    select.push("WITH k (span, period, touchpoint_id) AS (VALUES ");
    for (index, (key, _)) in chunk.iter().enumerate() {
        if index > 0 {
            select.push(", ");
        }
        select
            .push("(")
            .bind(key.span.as_str())
            .push(&format!(", {}, {})", key.period, key.touchpoint_id));
    }
    select
        .push(
            ") SELECT k.span, CAST(k.period AS INTEGER) AS period, \
             CAST(k.touchpoint_id AS BIGINT) AS touchpoint_id, \
             (SELECT r.candidates FROM touchpoint_reach r WHERE r.organization_id = ",
        )
        .bind(organization_id)
        .push(
            " AND r.span = k.span AND r.period = k.period \
             AND r.touchpoint_id = k.touchpoint_id) AS candidates FROM k",
        );
    let mut stored: HashMap<(String, i32, i64), Vec<u8>> = HashMap::new();
    for row in db.query(&select).await? {
        let Some(candidates) = row.get(touchpoint_reach::Column::Candidates)? else {
            continue; // no bitmap yet
        };
        let key = (
            row.get(touchpoint_reach::Column::Span)?,
            row.get(touchpoint_reach::Column::Period)?,
            row.get(touchpoint_reach::Column::TouchpointId)?,
        );
        stored.insert(key, candidates);
    }
    use touchpoint_reach::Column as C;
    let mut rows = InsertRows::new(
        touchpoint_reach::Entity,
        [
            C::OrganizationId,
            C::TouchpointId,
            C::Span,
            C::Period,
            C::Candidates,
            C::CreatedAt,
            C::UpdatedAt,
        ],
    )
    .on_conflict(
        [C::OrganizationId, C::Span, C::Period, C::TouchpointId].map(|c| c.as_str()),
        [C::Candidates, C::UpdatedAt].map(|c| (c.as_str(), Assign::Replace)),
    );
    for (key, members) in chunk {
        let stored_key = (key.span.as_str().to_owned(), key.period, key.touchpoint_id);
        let mut bitmap = match stored.get(&stored_key) {
            Some(bytes) => decode_bitmap(bytes)?,
            None => RoaringTreemap::new(),
        };
        for (candidate_id, present) in members.iter() {
            let id = *candidate_id as u64;
            if *present {
                bitmap.insert(id);
            } else {
                bitmap.remove(id);
            }
        }
        rows.push([
            organization_id.into(),
            key.touchpoint_id.into(),
            key.span.as_str().into(),
            key.period.into(),
            encode_bitmap(&bitmap).into(),
            now.into(),
            now.into(),
        ]);
    }
    db.insert_rows(&rows, false).await?;
    Ok(())
}

/// Adds changes to a counters table (`perception_daily` or
/// `perception_monthly`): each row is its leading `columns` values and a
/// change; the first `unique` columns are the row's unique key, and an
/// existing row gets the change added (an upsert).
async fn add_counters<'a>(
    db: &impl Executor,
    table: &'static str,
    columns: &[&'static str],
    unique: usize,
    rows: impl Iterator<Item = (Vec<sea_orm::Value>, &'a Counters)>,
    now: DateTime<Utc>,
) -> DomainResult<()> {
    let counters = Counters::COLUMNS.iter().map(|(column, _)| *column);
    let all = columns
        .iter()
        .copied()
        .chain(counters.clone())
        .chain(["created_at", "updated_at"])
        .collect();
    let set = counters
        .map(|column| (column, Assign::Add))
        .chain([("updated_at", Assign::Replace)]);
    let mut insert =
        InsertRows::into_table(table, all).on_conflict(columns[..unique].iter().copied(), set);
    for (leading, change) in rows {
        let counters = change.values().into_iter().map(|value| match value {
            CounterValue::Integer(n) => sea_orm::Value::from(n),
            CounterValue::Real(x) => sea_orm::Value::from(x),
        });
        insert.push(
            leading
                .into_iter()
                .chain(counters)
                .chain([now.into(), now.into()]),
        );
    }
    db.insert_rows(&insert, false).await?;
    Ok(())
}

pub fn decode_bitmap(bytes: &[u8]) -> DomainResult<RoaringTreemap> {
    RoaringTreemap::deserialize_from(bytes)
        .map_err(|err| DomainError::internal(format!("unreadable reach bitmap: {err}")))
}

fn encode_bitmap(bitmap: &RoaringTreemap) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(bitmap.serialized_size());
    bitmap
        .serialize_into(&mut bytes)
        .expect("writing to a Vec cannot fail");
    bytes
}
