//! Perception shift: each candidate's latest score in the window minus
//! their first, counted per group.

use std::collections::{HashMap, HashSet};

use entity::{
    enums::{Kind, Stage},
    touchpoint,
};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryResult,
};

use super::{tail, vocabulary, MinGroupSize, Window, SHIFT_RANGE};
use crate::db::sql::{unpack_blobs, Sql};
use crate::domain::{
    analytics::{
        perception::ScoreDays,
        statistics::{Interval, Moments},
    },
    DomainError, DomainResult,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShiftGrouping {
    None,
    Kind,
    Stage,
}

/// Shifts from −10 to 10.
pub const HISTOGRAM_BINS: usize = 21;

/// The overall shifts of one group of candidates, as shown. The values
/// behind its figures are the candidates' shifts, so it is `suppressed`
/// when it has fewer than `min_group_size` candidates: the count stays, and
/// everything else is `None`, the improved / unchanged / declined counts
/// and the histogram included (in a group of one they are its shift).
#[derive(Debug, Clone, PartialEq)]
pub struct ShiftGroup {
    pub group: String,
    pub candidates: i64,
    pub suppressed: bool,
    pub improved: Option<i64>,
    pub unchanged: Option<i64>,
    pub declined: Option<i64>,
    pub mean_shift: Option<f64>,
    /// The 95% t interval of `mean_shift`, within −10 to 10; `None` below
    /// two candidates.
    pub mean_shift_interval: Option<Interval>,
    /// `histogram[i]` counts candidates whose shift is `i - 10`.
    pub histogram: Option<[i64; HISTOGRAM_BINS]>,
}

/// The shifts of one group, counted.
struct ShiftTally {
    group: String,
    candidates: i64,
    improved: i64,
    unchanged: i64,
    declined: i64,
    shift_sum: i64,
    shift_sq_sum: i64,
    histogram: [i64; HISTOGRAM_BINS],
}

impl ShiftTally {
    fn new(group: String) -> Self {
        ShiftTally {
            group,
            candidates: 0,
            improved: 0,
            unchanged: 0,
            declined: 0,
            shift_sum: 0,
            shift_sq_sum: 0,
            histogram: [0; HISTOGRAM_BINS],
        }
    }

    fn count(&mut self, shift: i64) {
        self.candidates += 1;
        self.shift_sum += shift;
        self.shift_sq_sum += shift * shift;
        match shift.signum() {
            1 => self.improved += 1,
            0 => self.unchanged += 1,
            _ => self.declined += 1,
        }
        self.histogram[(shift + 10) as usize] += 1;
    }

    fn shown(self, min: MinGroupSize) -> ShiftGroup {
        let shown = !min.withholds(self.candidates);
        let moments = Moments::new(
            self.candidates,
            self.shift_sum as f64,
            self.shift_sq_sum as f64,
        );
        ShiftGroup {
            mean_shift_interval: moments
                .mean_interval(SHIFT_RANGE.0, SHIFT_RANGE.1)
                .filter(|_| shown),
            suppressed: !shown,
            improved: shown.then_some(self.improved),
            unchanged: shown.then_some(self.unchanged),
            declined: shown.then_some(self.declined),
            mean_shift: crate::domain::analytics::perception::mean(
                self.shift_sum as f64,
                self.candidates,
            )
            .filter(|_| shown),
            histogram: shown.then_some(self.histogram),
            group: self.group,
            candidates: self.candidates,
        }
    }
}

/// For each candidate with at least two scores in the window: the latest
/// score minus the first, grouped by the kind or stage of the touchpoint of
/// the latest scored encounter.
///
/// Each candidate's first and latest score in the window come from their
/// scored days (`candidate_score_days`, one packed row per candidate,
/// streamed): windows are whole days, so the days in the window give them
/// exactly. A candidate with encounters the projector has not applied yet
/// is read from their encounters instead, with two index seeks. Both in
/// one snapshot with the pending encounters (`tail`), so the report equals
/// a recount whatever the projector's lag.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn perception_shift(
    db: &DatabaseConnection,
    organization_id: i64,
    window: &Window,
    grouping: ShiftGrouping,
) -> DomainResult<Vec<ShiftGroup>> {
    let (txn, tail) = tail::snapshot(db, organization_id).await?;
    let group_of = touchpoint_groups(&txn, organization_id, grouping).await?;
    let min = MinGroupSize::of(&txn, organization_id).await?;
    let mut groups: Vec<ShiftTally> = group_names(grouping)
        .into_iter()
        .map(ShiftTally::new)
        .collect();
    let mut count = |shift: CandidateShift| {
        let name = group_of.get(&shift.touchpoint_id).ok_or_else(|| {
            DomainError::internal(format!(
                "touchpoint {} is not in the catalog",
                shift.touchpoint_id
            ))
        })?;
        if let Some(group) = groups.iter_mut().find(|g| &g.group == name) {
            group.count(shift.shift);
        }
        DomainResult::Ok(())
    };
    let pending: HashSet<i64> = tail.candidates().iter().copied().collect();
    let (from, to) = (window.from_day(), window.to_day());
    let mut after = 0;
    loop {
        let page = score_days_after(&txn, organization_id, after)
            .all(&txn)
            .await?;
        let Some(page) = page.first() else { break };
        let read: i64 = page.try_get("", "n")?;
        if read == 0 {
            break;
        }
        let packed: Vec<u8> = page.try_get("", "packed")?;
        let scored = unpack_blobs(&packed)
            .ok_or_else(|| DomainError::internal("unreadable packed scored days"))?;
        for (candidate_id, days) in scored {
            after = after.max(candidate_id);
            if pending.contains(&candidate_id) {
                continue;
            }
            let scores = ScoreDays::encoded_in_window(days, from, to).ok_or_else(|| {
                DomainError::internal(format!(
                    "unreadable scored days of candidate {candidate_id}"
                ))
            })?;
            if let Some(scores) = scores.filter(|scores| scores.several) {
                count(CandidateShift {
                    shift: i64::from(scores.latest_score - scores.first_score),
                    touchpoint_id: scores.latest_touchpoint_id,
                })?;
            }
        }
        if read < SCORE_DAYS_PER_READ {
            break;
        }
    }
    if !tail.candidates().is_empty() {
        for row in score_lookup(&txn, organization_id, window, tail.candidates())
            .all(&txn)
            .await?
        {
            if let Some(shift) = candidate_shift(&row)? {
                count(shift)?;
            }
        }
    }
    txn.commit().await?;
    Ok(groups.into_iter().map(|g| g.shown(min)).collect())
}

/// Candidates whose scored days one query of [`score_days_after`] reads.
/// Each query is a few thread wake-ups through SQLite's driver: with pages
/// of 256 candidates (about 40 queries for 10,000) the wake-ups were about
/// a third of the report's time in `perf`, and pages of 1,024 took its CPU
/// from 19–20 ms to 17–18 ms at 1,000,000 encounters. A page is about four
/// bytes a day with a score: 1 MiB for 1,024 candidates scored on 250 days
/// each. (Bounding a page by its bytes as well, with a running sum in SQL,
/// made the report about 45% slower.)
const SCORE_DAYS_PER_READ: i64 = 1024;

/// The scored days of the organization's next [`SCORE_DAYS_PER_READ`]
/// candidates after the id `after`, packed in one row (`n` of them, as
/// `packed`: see `Sql::push_packed_blobs`).
fn score_days_after(db: &impl ConnectionTrait, organization_id: i64, after: i64) -> Sql {
    let mut sql = Sql::new(db);
    sql.push("SELECT count(*) AS n, ")
        .push_packed_blobs("candidate_id", "days")
        .push(
            " AS packed FROM (SELECT candidate_id, days FROM candidate_score_days \
             WHERE organization_id = ",
        )
        .bind(organization_id)
        .push(" AND candidate_id > ")
        .bind(after)
        .push(" ORDER BY candidate_id LIMIT ")
        .push(&SCORE_DAYS_PER_READ.to_string())
        .push(") AS page");
    sql
}

/// The first and latest score in the window of each of these candidates
/// (the ones with pending encounters), read from the covering index of
/// their encounters as `id:score` (`first_score`) and
/// `id:score:touchpoint_id` (`latest_score`): one index seek each, no table
/// rows. The ids are the database's own, written as literals: a report may
/// merge thousands.
fn score_lookup(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
    candidates: &[i64],
) -> Sql {
    let mut sql = Sql::new(db);
    let scored_in_window = |sql: &mut Sql, fields: &str, order: &str| {
        sql.push("(SELECT ")
            .push(fields)
            .push(
                " FROM encounters e WHERE e.organization_id = c.organization_id \
                 AND e.candidate_id = c.id AND e.score IS NOT NULL AND e.occurred_at >= ",
            )
            .bind(window.start())
            .push(" AND e.occurred_at < ")
            .bind(window.end())
            .push(" ORDER BY ")
            .push(order)
            .push(" LIMIT 1)");
    };
    sql.push("SELECT ");
    scored_in_window(
        &mut sql,
        "CAST(e.id AS TEXT) || ':' || CAST(e.score AS TEXT)",
        "e.occurred_at ASC, e.id ASC",
    );
    sql.push(" AS first_score, ");
    scored_in_window(
        &mut sql,
        "CAST(e.id AS TEXT) || ':' || CAST(e.score AS TEXT) || ':' || CAST(e.touchpoint_id AS TEXT)",
        "e.occurred_at DESC, e.id DESC",
    );
    sql.push(" AS latest_score FROM candidates c WHERE c.organization_id = ")
        .bind(organization_id)
        .push(" AND c.id IN (");
    for (index, id) in candidates.iter().enumerate() {
        if index > 0 {
            sql.push(",");
        }
        sql.push(&id.to_string());
    }
    sql.push(")");
    sql
}

/// The group each of the organization's touchpoints counts a shift in.
async fn touchpoint_groups(
    db: &impl ConnectionTrait,
    organization_id: i64,
    grouping: ShiftGrouping,
) -> DomainResult<HashMap<i64, String>> {
    Ok(touchpoint::Entity::find()
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| {
            let name = match grouping {
                ShiftGrouping::None => "all".to_owned(),
                ShiftGrouping::Kind => t.kind.to_value(),
                ShiftGrouping::Stage => t.stage.to_value(),
            };
            (t.id, name)
        })
        .collect())
}

/// The groups a shift report shows, in order, even where they are empty.
fn group_names(grouping: ShiftGrouping) -> Vec<String> {
    match grouping {
        ShiftGrouping::None => vec!["all".to_owned()],
        ShiftGrouping::Kind => vocabulary::<Kind>(),
        ShiftGrouping::Stage => vocabulary::<Stage>(),
    }
}

/// One candidate's shift in the window.
struct CandidateShift {
    /// The latest score minus the first.
    shift: i64,
    /// The touchpoint of the latest scored encounter.
    touchpoint_id: i64,
}

/// The shift of a row of [`score_lookup`]; `None` for a candidate with
/// fewer than two scores in the window.
fn candidate_shift(row: &QueryResult) -> DomainResult<Option<CandidateShift>> {
    let first: Option<String> = row.try_get("", "first_score")?;
    let latest: Option<String> = row.try_get("", "latest_score")?;
    let (Some(first), Some(latest)) = (first, latest) else {
        return Ok(None);
    };
    let first = parse_fields(&first)?;
    let latest = parse_fields(&latest)?;
    // One scored encounter is both the first and the latest.
    if first[0] == latest[0] {
        return Ok(None);
    }
    Ok(Some(CandidateShift {
        shift: latest[1] - first[1],
        touchpoint_id: latest[2],
    }))
}

/// The numbers of an `id:score[:touchpoint_id]` lookup.
fn parse_fields(text: &str) -> DomainResult<Vec<i64>> {
    text.split(':')
        .map(|field| field.parse::<i64>())
        .collect::<Result<Vec<_>, _>>()
        .ok()
        .filter(|fields| fields.len() >= 2)
        .ok_or_else(|| DomainError::internal(format!("unexpected score lookup {text:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_groups_of_too_few_candidates_are_withheld() {
        let two_candidates = |min| {
            let mut tally = ShiftTally::new("all".to_owned());
            tally.count(-3);
            tally.count(1);
            tally.shown(MinGroupSize(min))
        };
        let shown = two_candidates(2);
        assert!(!shown.suppressed);
        assert_eq!(shown.mean_shift, Some(-1.0));
        // Shifts -3 and 1: s = 2.828, se = 2, t(1) = 12.706: clipped.
        let interval = shown.mean_shift_interval.unwrap();
        assert_eq!((interval.low, interval.high), (-10.0, 10.0));
        assert_eq!(shown.histogram.map(|h| h[7]), Some(1));
        let withheld = two_candidates(3);
        assert!(withheld.suppressed);
        assert_eq!(withheld.candidates, 2);
        let counts = (withheld.improved, withheld.unchanged, withheld.declined);
        assert_eq!(counts, (None, None, None));
        assert_eq!((withheld.mean_shift, withheld.histogram), (None, None));
        assert_eq!(withheld.mean_shift_interval, None);
    }

    /// The pages of scored days: [`SCORE_DAYS_PER_READ`] candidates each,
    /// the organization's only, all of their bytes.
    #[tokio::test]
    async fn scored_days_are_read_in_pages() {
        use sea_orm::Database;
        let db = Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared(
            "CREATE TABLE candidate_score_days (candidate_id INTEGER PRIMARY KEY, \
             organization_id INTEGER NOT NULL, days BLOB NOT NULL)",
        )
        .await
        .unwrap();
        let rows: Vec<(i64, Vec<u8>)> = (10..10 + SCORE_DAYS_PER_READ + 5)
            .map(|id| (id, vec![id as u8; id as usize % 7]))
            .collect();
        for (id, days) in &rows {
            let mut insert = Sql::new(&db);
            insert
                .push("INSERT INTO candidate_score_days VALUES (")
                .bind(*id)
                .push(", 7, ")
                .bind(days.clone())
                .push(")");
            db.execute_raw(insert.statement()).await.unwrap();
        }
        db.execute_unprepared("INSERT INTO candidate_score_days VALUES (5, 8, x'00')")
            .await
            .unwrap();
        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = score_days_after(&db, 7, after).all(&db).await.unwrap();
            let read: i64 = page[0].try_get("", "n").unwrap();
            if read == 0 {
                break;
            }
            let packed: Vec<u8> = page[0].try_get("", "packed").unwrap();
            let unpacked: Vec<(i64, Vec<u8>)> = unpack_blobs(&packed)
                .unwrap()
                .into_iter()
                .map(|(id, days)| (id, days.to_vec()))
                .collect();
            assert_eq!(unpacked.len() as i64, read);
            after = unpacked.last().unwrap().0;
            pages.push(unpacked);
        }
        let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
        assert_eq!(sizes, [SCORE_DAYS_PER_READ as usize, 5]);
        assert_eq!(pages.concat(), rows);
    }
}
