//! The tail: the encounters recorded after the rollups' high-water mark,
//! as what they change in the rollups (see `analytics::projection`); for
//! the parts of a step the projector has begun to apply, those after the
//! step's end (`projection::unapplied`). A
//! report reads it in the snapshot it reads the rollups in and adds it to
//! them, so it equals a recount of the encounters whatever the projector's
//! lag: an acknowledged write is in the next report.
//!
//! Counter changes are read with the stored rows, as rows of a `VALUES`
//! list in the same query (`from_rollups`), so every report's filters,
//! joins and groupings apply to them unchanged. The tail only holds
//! insertions, so it only adds candidates to the reach bitmaps.

use std::{collections::BTreeMap, time::Duration};

use entity::enums::Source;
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseConnection, DatabaseTransaction};

use super::{Grain, RollupRead, Window};
use crate::db::sql::Sql;
use crate::domain::{
    analytics::{
        perception::{month_of, week_of, CounterValue, Counters, DayKey, Span},
        projection,
    },
    DomainError, DomainResult,
};

/// The most pending encounters a report merges. Past it (a large import
/// the projector has not caught up with), the report waits for the
/// projector instead.
pub const MAX_ENCOUNTERS: u64 = 20_000;
/// The most rollup rows a report merges: each is a row of a `VALUES`
/// list, with up to three bound values (within SQLite's 32,766).
const MAX_ROWS: usize = 8_000;
/// How long a report waits for the projector before it answers 503.
const WAIT: Duration = Duration::from_secs(10);
const WAIT_STEP: Duration = Duration::from_millis(50);

/// What the pending encounters change in the rollups.
#[derive(Debug, Default)]
pub struct Tail {
    /// Counter changes by touchpoint, day and source; none is zero.
    counters: Vec<(DayKey, Counters)>,
    /// `(touchpoint, day, candidate)`: a candidate the pending encounters
    /// add to a touchpoint's day.
    reach: Vec<(i64, i32, i64)>,
    /// The candidates of the pending encounters, in order, once each.
    candidates: Vec<i64>,
}

/// One row of the tail as a report reads it.
pub(super) struct TailRow {
    touchpoint_id: i64,
    day: i32,
    /// `None` when summed over sources.
    source: Option<Source>,
    counters: Counters,
}

impl Tail {
    /// The tail in `db`'s snapshot; `None` when it is more than a report
    /// merges.
    async fn read(db: &impl ConnectionTrait, organization_id: i64) -> DomainResult<Option<Tail>> {
        let mark = projection::mark(db, organization_id).await?;
        if projection::nth_after(db, organization_id, mark, MAX_ENCOUNTERS)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let pending = projection::unapplied(db, organization_id, mark).await?;
        let counters: Vec<(DayKey, Counters)> = pending
            .delta
            .counters
            .into_iter()
            .filter(|(_, change)| !change.is_zero())
            .collect();
        if counters.len() > MAX_ROWS {
            return Ok(None);
        }
        let mut reach = Vec::new();
        for (key, members) in &pending.delta.reach {
            if key.span != Span::Day {
                continue;
            }
            for (candidate_id, present) in members {
                // Insertions never take a candidate out of a bitmap.
                debug_assert!(present, "a pending encounter removed reach");
                if *present {
                    reach.push((key.touchpoint_id, key.period, *candidate_id));
                }
            }
        }
        Ok(Some(Tail {
            counters,
            reach,
            candidates: pending.candidates,
        }))
    }

    /// The counter changes of the window's days, by touchpoint, day and
    /// (`by_source`) source.
    pub(super) fn rows(&self, window: &Window, by_source: bool) -> Vec<TailRow> {
        let (from, to) = (window.from_day(), window.to_day());
        let mut rows: BTreeMap<(i64, i32, Option<Source>), Counters> = BTreeMap::new();
        for (key, change) in &self.counters {
            if (from..to).contains(&key.day) {
                let source = by_source.then_some(key.source);
                rows.entry((key.touchpoint_id, key.day, source))
                    .or_default()
                    .add(change, 1);
            }
        }
        rows.into_iter()
            .filter(|(_, counters)| !counters.is_zero())
            .map(|((touchpoint_id, day, source), counters)| TailRow {
                touchpoint_id,
                day,
                source,
                counters,
            })
            .collect()
    }

    /// The candidates of the pending encounters, in order, once each:
    /// their rows of `candidate_score_days` may be out of date.
    pub(super) fn candidates(&self) -> &[i64] {
        &self.candidates
    }

    /// `(touchpoint, candidate)`: the candidates the pending encounters
    /// add to each touchpoint in the window.
    pub(super) fn reach_in<'a>(&'a self, window: &Window) -> impl Iterator<Item = (i64, i64)> + 'a {
        let (from, to) = (window.from_day(), window.to_day());
        self.reach
            .iter()
            .filter(move |(_, day, _)| (from..to).contains(day))
            .map(|(touchpoint_id, _, candidate_id)| (*touchpoint_id, *candidate_id))
    }
}

/// Appends `SELECT <the columns of rollups at grain> FROM (VALUES ...)`:
/// the rows, with the stored rows' columns in their order, to follow a
/// `UNION ALL`. Whole numbers are written as literals; the fractional
/// sums and the source are bound.
pub(super) fn push_rows(sql: &mut Sql, rows: &[TailRow], rollups: RollupRead, grain: Grain) {
    let columns = rollups.columns(grain);
    sql.push("SELECT ")
        .push(columns)
        .push(" FROM (WITH tail (")
        .push(columns)
        .push(") AS (VALUES ");
    for (index, row) in rows.iter().enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push("(");
        for (position, key) in rollups.keys(grain).iter().enumerate() {
            if position > 0 {
                sql.push(", ");
            }
            match *key {
                "touchpoint_id" => {
                    sql.push(&row.touchpoint_id.to_string());
                }
                "day" => {
                    sql.push(&row.day.to_string());
                }
                "week" => {
                    sql.push(&week_of(row.day).to_string());
                }
                "month" => {
                    sql.push(&month_of(row.day).to_string());
                }
                "source" => {
                    let source = row.source.map(|source| source.to_value());
                    sql.bind(source.unwrap_or_default());
                }
                other => unreachable!("no tail value for the key {other}"),
            }
        }
        let values = row.counters.values();
        for ((column, _), value) in Counters::COLUMNS.iter().zip(values) {
            if !rollups.measures.includes(column) {
                continue;
            }
            sql.push(", ");
            match value {
                CounterValue::Integer(n) => {
                    sql.push(&n.to_string());
                }
                CounterValue::Real(x) => {
                    sql.bind(x);
                }
            }
        }
        sql.push(")");
    }
    sql.push(") SELECT ")
        .push(columns)
        .push(" FROM tail) tail_rows");
}

/// Opens the snapshot a report reads in, with its tail. While the tail is
/// more than a report merges, waits for the projector (up to [`WAIT`],
/// then 503).
pub async fn snapshot(
    db: &DatabaseConnection,
    organization_id: i64,
) -> DomainResult<(DatabaseTransaction, Tail)> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let txn = crate::db::snapshot(db).await?;
        if let Some(tail) = Tail::read(&txn, organization_id).await? {
            return Ok((txn, tail));
        }
        txn.rollback().await?;
        if tokio::time::Instant::now() >= deadline {
            return Err(DomainError::Behind(format!(
                "more than {MAX_ENCOUNTERS} recorded encounters are still being added to \
                 the reports' rollups; try again shortly"
            )));
        }
        tokio::time::sleep(WAIT_STEP).await;
    }
}
