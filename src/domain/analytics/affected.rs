//! The part of a candidate's history that encounters inserted after the
//! rollups' mark can change: what a projection step and a report's tail
//! read, instead of the candidate's whole history. (Under single POSTs
//! over 1,000 candidates, every step read the whole history of nearly every
//! candidate, so its cost grew with the histories, not with the writes.)
//!
//! An insertion changes the attributed shares of its run: the encounters
//! after the latest score before it, up to and including the first score
//! after it. The candidate's scored days at the mark are stored
//! (`candidate_score_days` moves with the mark), so the run lies within
//! the days from the latest scored day before the insertion's day to the
//! first scored day after it (either end open when there is none). Those
//! days, read whole, also hold every day whose counters, reach or scores
//! the insertion changes. An encounter read whose run reaches beyond them
//! gets the same (cut short) share with the insertions and without, so it
//! cancels in the difference. Scored days outside them are the stored
//! ones. Only a month's reach cannot be told from the days read: the
//! difference may add a candidate to a month's bitmap that already holds
//! it, which changes nothing.
//!
//! More insertions after the mark only add scores, so the days worked out
//! from the stored scored days hold every run that changes between any two
//! states from the mark on (a step's end, the latest write).

use std::collections::HashMap;

use chrono::{DateTime, NaiveTime, Utc};
use entity::candidate_score_day;
use sea_orm::{DbBackend, Iden};

use crate::db::{sql::Sql, store::Executor};
use crate::domain::{
    analytics::{
        perception::{date_of_day, day_of_date, EncounterPoint, ScoreDays},
        rollups::{point_of, POINT_COLUMNS},
    },
    DomainError, DomainResult,
};

/// Days, first and last included.
pub(crate) type Days = (i32, i32);

/// Ranges of days one query reads (a power of two); each binds three
/// values.
const RANGES_PER_QUERY: usize = 512;

/// The days of one candidate's history that the insertions after the mark
/// can change, and what was read of them.
#[derive(Debug, Default)]
pub(crate) struct Affected {
    /// In order, disjoint.
    pub ranges: Vec<Days>,
    /// The candidate's scored days at the mark.
    pub stored: ScoreDays,
    /// Every encounter of the candidate on those days (projected or not).
    pub points: Vec<EncounterPoint>,
}

impl Affected {
    /// The candidate's scored days in full, given those of its days read
    /// (`read`, all within the ranges): the stored ones elsewhere.
    pub fn score_days(&self, read: &ScoreDays) -> ScoreDays {
        let mut days: Vec<_> = self
            .stored
            .0
            .iter()
            .filter(|day| !within(&self.ranges, day.day))
            .chain(&read.0)
            .copied()
            .collect();
        days.sort_by_key(|day| day.day);
        ScoreDays(days)
    }
}

/// Whether `day` is in one of `ranges` (in order, disjoint).
fn within(ranges: &[Days], day: i32) -> bool {
    let next = ranges.partition_point(|(first, _)| *first <= day);
    next > 0 && day <= ranges[next - 1].1
}

/// The days to read of a candidate with these scored days at the mark
/// and insertions on `days` (in order, once each): for each, from the
/// latest scored day before it to the first after it, or the first and
/// last day the service holds; merged, in order.
pub(crate) fn ranges(scored: &ScoreDays, days: &[i32]) -> Vec<Days> {
    let (earliest, latest) = bounds();
    let mut ranges: Vec<Days> = Vec::new();
    for &day in days {
        let next = scored.0.partition_point(|scored| scored.day <= day);
        let before = scored.0[..next].iter().rev().find(|s| s.day < day);
        let first = before.map_or(earliest, |s| s.day);
        let last = scored.0.get(next).map_or(latest, |s| s.day);
        match ranges.last_mut() {
            Some(range) if first <= range.1 + 1 => range.1 = range.1.max(last),
            _ => ranges.push((first, last)),
        }
    }
    ranges
}

/// The first and last day of the years the service holds (0001 to 9999).
fn bounds() -> Days {
    let day = |y| day_of_date(chrono::NaiveDate::from_ymd_opt(y, 1, 1).expect("a date"));
    (day(1), day(10_000) - 1)
}

/// The affected part of each candidate's history, given the days of its
/// insertions after the mark (`pending`: candidates once each, days in
/// order).
pub(crate) async fn load(
    db: &impl Executor,
    organization_id: i64,
    pending: &[(i64, Vec<i32>)],
) -> DomainResult<HashMap<i64, Affected>> {
    let mut stored = stored_score_days(db, organization_id, pending).await?;
    let mut affected: HashMap<i64, Affected> = HashMap::with_capacity(pending.len());
    for (candidate_id, days) in pending {
        let stored = stored.remove(candidate_id).unwrap_or_default();
        affected.insert(
            *candidate_id,
            Affected {
                ranges: ranges(&stored, days),
                stored,
                points: Vec::new(),
            },
        );
    }
    let all: Vec<(i64, Days)> = pending
        .iter()
        .flat_map(|(candidate_id, _)| {
            affected[candidate_id]
                .ranges
                .iter()
                .map(|range| (*candidate_id, *range))
        })
        .collect();
    for chunk in all.chunks(RANGES_PER_QUERY) {
        for row in db
            .query(&points_on(db.backend(), organization_id, chunk))
            .await?
        {
            let (candidate_id, point) = point_of(&row)?;
            if let Some(affected) = affected.get_mut(&candidate_id) {
                affected.points.push(point);
            }
        }
    }
    Ok(affected)
}

/// The stored scored days of these candidates that have any.
async fn stored_score_days(
    db: &impl Executor,
    organization_id: i64,
    candidates: &[(i64, Vec<i32>)],
) -> DomainResult<HashMap<i64, ScoreDays>> {
    let mut stored = HashMap::new();
    if candidates.is_empty() {
        return Ok(stored);
    }
    let mut sql = Sql::for_backend(db.backend());
    sql.push("SELECT candidate_id, days FROM candidate_score_days WHERE organization_id = ")
        .bind(organization_id)
        .push(" AND candidate_id IN (");
    for (index, (candidate_id, _)) in candidates.iter().enumerate() {
        if index > 0 {
            sql.push(",");
        }
        sql.bind(*candidate_id);
    }
    sql.push(")");
    for row in db.query(&sql).await? {
        let candidate_id: i64 = row.get(candidate_score_day::Column::CandidateId)?;
        let bytes: Vec<u8> = row.get(candidate_score_day::Column::Days)?;
        let days = ScoreDays::decode(&bytes).ok_or_else(|| {
            DomainError::internal(format!(
                "unreadable scored days of candidate {candidate_id}"
            ))
        })?;
        stored.insert(candidate_id, days);
    }
    Ok(stored)
}

/// The encounters of each candidate on its days: one index range each.
/// The ranges are bound and padded to a power of two with ranges of no
/// candidate, so that a handful of statements serve every step and report
/// (each new text is prepared, and kept in the connection's cache).
fn points_on(backend: DbBackend, organization_id: i64, ranges: &[(i64, Days)]) -> Sql {
    // An empty range (its first day after its last) of no candidate.
    const NO_CANDIDATE: (i64, Days) = (0, (1, 0));
    let mut sql = Sql::for_backend(backend);
    sql.push("WITH r (candidate_id, first_at, last_at) AS (VALUES ");
    let padded = ranges.len().next_power_of_two();
    let padding = std::iter::repeat_n(&NO_CANDIDATE, padded - ranges.len());
    for (index, (candidate_id, (first, last))) in ranges.iter().chain(padding).enumerate() {
        if index > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(*candidate_id)
            .push(", ")
            .bind(start_of(*first))
            .push(", ")
            .bind(end_of(*last))
            .push(")");
    }
    let columns = POINT_COLUMNS
        .map(|column| format!("e.{}", column.to_string()))
        .join(", ");
    let matching = "e.candidate_id = r.candidate_id \
                    AND e.occurred_at >= r.first_at AND e.occurred_at <= r.last_at";
    sql.push(") SELECT ").push(&columns);
    match backend {
        // Each range looked up on its own in the candidate's index: a
        // lateral subquery that cannot be flattened (`OFFSET 0`), as
        // `Sql::push_rows_per_id` explains.
        DbBackend::Postgres => {
            sql.push(
                " FROM r CROSS JOIN LATERAL (SELECT * FROM encounters e WHERE e.organization_id = ",
            )
            .bind(organization_id)
            .push(" AND ")
            .push(matching)
            .push(" OFFSET 0) e");
        }
        // SQLite keeps the order of a CROSS JOIN: the ranges outside.
        _ => {
            sql.push(" FROM r CROSS JOIN encounters e WHERE e.organization_id = ")
                .bind(organization_id)
                .push(" AND ")
                .push(matching);
        }
    }
    sql
}

/// The first moment of a day.
fn start_of(day: i32) -> DateTime<Utc> {
    date_of_day(day).and_time(NaiveTime::MIN).and_utc()
}

/// The last moment of a day (to the nanosecond, as stored).
fn end_of(day: i32) -> DateTime<Utc> {
    start_of(day + 1) - chrono::Duration::nanoseconds(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::analytics::perception::ScoreDay;

    fn scored(days: &[i32]) -> ScoreDays {
        ScoreDays(
            days.iter()
                .map(|&day| ScoreDay {
                    day,
                    first_score: 5,
                    latest_score: 5,
                    several: false,
                    latest_touchpoint_id: 1,
                })
                .collect(),
        )
    }

    #[test]
    fn an_insertion_reads_from_the_score_before_its_day_to_the_one_after() {
        let (earliest, latest) = bounds();
        let stored = scored(&[10, 20, 30]);
        assert_eq!(ranges(&stored, &[15]), vec![(10, 20)]);
        // On a scored day: the scores before and after that day.
        assert_eq!(ranges(&stored, &[20]), vec![(10, 30)]);
        assert_eq!(ranges(&stored, &[5]), vec![(earliest, 10)]);
        assert_eq!(ranges(&stored, &[35]), vec![(30, latest)]);
        assert_eq!(ranges(&scored(&[]), &[15]), vec![(earliest, latest)]);
        // Overlapping and adjacent ranges merge; the others stay apart.
        let stored = scored(&[10, 20, 30, 40, 41, 50, 60]);
        assert_eq!(ranges(&stored, &[12, 25, 45, 55]), vec![(10, 30), (41, 60)]);
        assert_eq!(ranges(&stored, &[12, 45]), vec![(10, 20), (41, 50)]);
        let date = |y, m, d| day_of_date(chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap());
        assert_eq!(bounds(), (date(1, 1, 1), date(9999, 12, 31)));
    }

    #[test]
    fn scored_days_outside_the_ranges_are_the_stored_ones() {
        let affected = Affected {
            ranges: vec![(10, 20), (40, 50)],
            stored: scored(&[5, 10, 20, 30, 40, 60]),
            points: Vec::new(),
        };
        let read = scored(&[10, 15, 20, 45]);
        let days: Vec<i32> = affected.score_days(&read).0.iter().map(|d| d.day).collect();
        assert_eq!(days, vec![5, 10, 15, 20, 30, 45, 60]);
        assert!(within(&affected.ranges, 10) && within(&affected.ranges, 50));
        assert!(!within(&affected.ranges, 9) && !within(&affected.ranges, 21));
        assert!(!within(&affected.ranges, 51) && !within(&[], 0));
    }

    #[test]
    fn the_ranges_read_are_padded_to_a_power_of_two_with_empty_ones() {
        let statement = |n: usize| {
            let ranges = vec![(5, (10, 12)); n];
            points_on(DbBackend::Sqlite, 1, &ranges).statement()
        };
        let values = |n: usize| statement(n).values.map_or(0, |values| values.0.len());
        // Three values a range, and the organization's id.
        assert_eq!(values(1), 3 + 1);
        assert_eq!(values(3), 4 * 3 + 1);
        assert_eq!(values(4), 4 * 3 + 1);
        assert_eq!(values(5), 8 * 3 + 1);
        assert_eq!(statement(5).sql, statement(8).sql, "one text for 5 to 8");
        let (first, last) = (start_of(1), end_of(0));
        assert!(first > last, "a padding range holds no moment");
    }

    #[test]
    fn a_range_covers_its_days_to_the_last_nanosecond() {
        let day = 20_000;
        assert_eq!(
            crate::domain::analytics::perception::day_of(start_of(day)),
            day
        );
        assert_eq!(
            crate::domain::analytics::perception::day_of(end_of(day)),
            day
        );
        assert_eq!(
            crate::domain::analytics::perception::day_of(
                end_of(day) + chrono::Duration::nanoseconds(1)
            ),
            day + 1
        );
    }
}
