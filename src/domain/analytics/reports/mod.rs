//! The perception reports: trend, touchpoint impact, perception shift and
//! summary, one file each. Windows are whole UTC days, `from` inclusive and
//! `to` exclusive.
//!
//! Trend, impact and summary read the rollups (`perception_daily` for the
//! counters, `touchpoint_reach` for distinct candidates), so their cost
//! grows with days × touchpoints, not with encounters. Perception shift
//! looks up each candidate's first and latest score in the window through
//! the partial index of scored encounters.
//!
//! Every report applies the organization's small-group suppression
//! (`min_group_size`) here, in [`Figures`] and [`shift::ShiftGroup`], so the
//! API layer only ever sees what may be shown.
//!
//! This file holds what more than one report uses: the window, the
//! suppression, and reading the summed counters from the rollups.

pub mod gap;
pub mod impact;
pub mod shift;
pub mod summary;
pub mod trend;

pub mod tail;

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ActiveEnum, ConnectionTrait, Iterable, QueryResult};

use crate::db::sql::Sql;
use crate::domain::{
    analytics::{
        perception::{day_of_date, month_of, month_start, CounterValue, Counters},
        statistics::{AdjustedNps, Interval, Moments},
    },
    DomainError, DomainResult,
};
use tail::Tail;

/// A report's time range: whole UTC days, `from` inclusive, `to` exclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    pub fn new(from: NaiveDate, to: NaiveDate) -> DomainResult<Self> {
        for (field, date) in [("from", from), ("to", to)] {
            if !(first_date()..=last_date()).contains(&date) {
                return Err(DomainError::invalid(
                    field,
                    "must be between 0001-01-01 and 9999-12-31",
                ));
            }
        }
        if from >= to {
            return Err(DomainError::invalid("to", "must be after from"));
        }
        Ok(Window { from, to })
    }

    pub fn from_day(&self) -> i32 {
        day_of_date(self.from)
    }

    pub fn to_day(&self) -> i32 {
        day_of_date(self.to)
    }

    /// The window's first instant.
    pub fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The instant after the window.
    pub fn end(&self) -> DateTime<Utc> {
        self.to.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    /// The window as whole calendar months and the days around them: what
    /// the monthly and daily rollups answer.
    fn cover(&self) -> Cover {
        let (from, to) = (self.from_day(), self.to_day());
        let first_month = if month_start(month_of(from)) == from {
            month_of(from)
        } else {
            month_of(from) + 1
        };
        // Every month before the one holding `to` ends by `to`.
        let end_month = month_of(to);
        if first_month < end_month {
            Cover {
                months: Some((first_month, end_month)),
                days: vec![
                    (from, month_start(first_month)),
                    (month_start(end_month), to),
                ],
            }
        } else {
            Cover {
                months: None,
                days: vec![(from, to)],
            }
        }
    }

    /// The window of the same length that ends where this one starts.
    pub fn previous(&self) -> DomainResult<Window> {
        let length = self.to - self.from;
        let from = self
            .from
            .checked_sub_signed(length)
            .filter(|from| *from >= first_date())
            .ok_or_else(|| {
                DomainError::invalid(
                    "from",
                    "leaves no previous window of equal length after 0001-01-01",
                )
            })?;
        Ok(Window {
            from,
            to: self.from,
        })
    }
}

/// Report windows stay within the years a timestamp can be written in
/// (RFC 3339), where stored times also sort correctly as text.
fn first_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(1, 1, 1).expect("a valid date")
}

fn last_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(9999, 12, 31).expect("a valid date")
}

/// Half-open ranges of month numbers and day numbers that make up a window.
struct Cover {
    months: Option<(i32, i32)>,
    days: Vec<(i32, i32)>,
}

impl Counters {
    /// The mean score of the scored encounters.
    pub fn mean_score(&self) -> Option<f64> {
        crate::domain::analytics::perception::mean(self.score_sum as f64, self.scored)
    }

    pub fn cnps(&self) -> Option<f64> {
        crate::domain::analytics::perception::cnps(self.promoters, self.detractors, self.scored)
    }

    /// The mean shift attributed to these encounters.
    pub fn mean_attributed_shift(&self) -> Option<f64> {
        crate::domain::analytics::perception::mean(self.attributed_sum, self.attributions)
    }

    /// The scores, as a count, sum and sum of squares.
    pub fn score_moments(&self) -> Moments {
        Moments::new(self.scored, self.score_sum as f64, self.score_sq_sum as f64)
    }

    /// The attributed shifts, as a count, sum and sum of squares.
    pub fn shift_moments(&self) -> Moments {
        Moments::new(
            self.attributions,
            self.attributed_sum,
            self.attributed_sq_sum,
        )
    }

    pub fn adjusted_nps(&self) -> Option<AdjustedNps> {
        AdjustedNps::new(self.promoters, self.detractors, self.scored)
    }
}

/// The range a mean score can take.
pub const SCORE_RANGE: (f64, f64) = (0.0, 10.0);
/// The range a shift (the difference of two scores, or a share of one) can
/// take.
pub const SHIFT_RANGE: (f64, f64) = (-10.0, 10.0);

/// Every value of a vocabulary (kind, stage...), in its order: the groups a
/// report shows even where they have no data.
fn vocabulary<E: ActiveEnum<Value = String> + Iterable>() -> Vec<String> {
    E::iter().map(|value| value.to_value()).collect()
}

/// The groups of a report by touchpoint: the touchpoint ids among `groups`
/// (the groups with data), in numeric order.
fn touchpoint_ids_in_order<'a>(groups: impl Iterator<Item = &'a String>) -> Vec<String> {
    let mut ids: Vec<i64> = groups.filter_map(|g| g.parse().ok()).collect();
    ids.sort_unstable();
    ids.into_iter().map(|id| id.to_string()).collect()
}

// ---------------------------------------------------------------------------
// Small-group suppression
// ---------------------------------------------------------------------------

/// An organization's `min_group_size`: a report shows the figures computed
/// from a group's scores only when at least this many values back them, so
/// that no figure is one candidate's score (or shift). 0 shows everything.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MinGroupSize(i64);

impl MinGroupSize {
    /// The organization's setting, read by every report.
    pub async fn of(db: &impl ConnectionTrait, organization_id: i64) -> DomainResult<Self> {
        let organization = crate::domain::organizations::get(db, organization_id).await?;
        Ok(MinGroupSize(organization.min_group_size.into()))
    }

    /// Whether figures computed from `values` values must be withheld.
    pub fn withholds(self, values: i64) -> bool {
        values < self.0
    }
}

/// What a report shows of one group's counters (a trend point, a touchpoint,
/// a window). The counts of encounters, scored encounters and attributions
/// are always shown. When fewer than `min_group_size` scored encounters back
/// the group it is `suppressed`: everything computed from the scores is
/// `None`, the promoter, passive and detractor counts included (in a group
/// of one, "1 promoter" is that candidate's score band), and so are the
/// intervals and tests.
#[derive(Debug, Clone, PartialEq)]
pub struct Figures {
    pub encounters: i64,
    pub scored: i64,
    pub suppressed: bool,
    pub mean_score: Option<f64>,
    pub promoters: Option<i64>,
    pub passives: Option<i64>,
    pub detractors: Option<i64>,
    pub cnps: Option<f64>,
    /// The 95% t interval of `mean_score`, within 0-10; `None` below two
    /// scores.
    pub mean_score_interval: Option<Interval>,
    /// The scores' count, sum and sum of squares, for tests between groups.
    pub score_moments: Option<Moments>,
    /// The adjusted-Wald figure behind `cnps_interval` and the tests of a
    /// cNPS change.
    pub adjusted_nps: Option<AdjustedNps>,
    /// The 95% adjusted-Wald interval of `cnps`.
    pub cnps_interval: Option<Interval>,
    /// Encounters that received an attributed shift.
    pub attributions: i64,
    /// The shift figures need, besides a group that is not suppressed, at
    /// least `min_group_size` attributions: the shares of one pair of
    /// consecutive scores are one candidate's shift.
    pub attributed_shift_sum: Option<f64>,
    pub mean_attributed_shift: Option<f64>,
    /// The 95% t interval of `mean_attributed_shift`; `None` below two
    /// attributions.
    pub mean_attributed_shift_interval: Option<Interval>,
    /// The two-sided p-value of a t test that the mean attributed shift is
    /// 0; `None` below two attributions.
    pub mean_attributed_shift_p_value: Option<f64>,
}

impl Figures {
    pub fn new(counters: &Counters, min: MinGroupSize) -> Self {
        let suppressed = min.withholds(counters.scored);
        let scores = !suppressed;
        let shifts = scores && !min.withholds(counters.attributions);
        let adjusted_nps = counters.adjusted_nps();
        Figures {
            encounters: counters.encounters,
            scored: counters.scored,
            suppressed,
            mean_score: counters.mean_score().filter(|_| scores),
            promoters: scores.then_some(counters.promoters),
            passives: scores.then_some(counters.passives),
            detractors: scores.then_some(counters.detractors),
            cnps: counters.cnps().filter(|_| scores),
            mean_score_interval: counters
                .score_moments()
                .mean_interval(SCORE_RANGE.0, SCORE_RANGE.1)
                .filter(|_| scores),
            score_moments: Some(counters.score_moments()).filter(|_| scores),
            adjusted_nps: adjusted_nps.filter(|_| scores),
            cnps_interval: adjusted_nps.map(|nps| nps.interval()).filter(|_| scores),
            attributions: counters.attributions,
            attributed_shift_sum: shifts.then_some(counters.attributed_sum),
            mean_attributed_shift: counters.mean_attributed_shift().filter(|_| shifts),
            mean_attributed_shift_interval: counters
                .shift_moments()
                .mean_interval(SHIFT_RANGE.0, SHIFT_RANGE.1)
                .filter(|_| shifts),
            mean_attributed_shift_p_value: counters
                .shift_moments()
                .zero_mean_p_value()
                .filter(|_| shifts),
        }
    }
}

// ---------------------------------------------------------------------------
// Reading the counters
// ---------------------------------------------------------------------------

/// Which rollup rows a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// `perception_daily` only: for day and week buckets.
    Days,
    /// `perception_monthly` for whole months, `perception_daily` for the
    /// days around them: a year is twelve rows per touchpoint, not 365.
    Months,
}

/// Which pair of rollup tables a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rollups {
    /// `perception_daily` and `perception_monthly`: per touchpoint.
    Touchpoints,
    /// `perception_source_daily` and `perception_source_monthly`: per
    /// touchpoint and source (the perception gap).
    Sources,
}

/// Which counters a query sums. Each summed column costs every row read,
/// and only touchpoint impact (and the summary through it) shows the
/// attributed shift.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measures {
    /// Every counter but the attributed shift's.
    Scores,
    /// Every counter.
    All,
}

/// The counters of the attributed shift, which [`Measures::Scores`] leaves
/// out (read as 0).
const SHIFT_COUNTERS: [&str; 3] = ["attributed_sum", "attributed_sq_sum", "attributions"];

impl Measures {
    fn includes(self, column: &str) -> bool {
        self == Measures::All || !SHIFT_COUNTERS.contains(&column)
    }

    fn counters(self) -> impl Iterator<Item = (&'static str, bool)> {
        Counters::COLUMNS
            .iter()
            .copied()
            .filter(move |(column, _)| self.includes(column))
    }
}

/// What a report reads from the rollups: which tables, which counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RollupRead {
    tables: Rollups,
    measures: Measures,
}

impl RollupRead {
    const TOUCHPOINT_SCORES: RollupRead = RollupRead {
        tables: Rollups::Touchpoints,
        measures: Measures::Scores,
    };
    const TOUCHPOINT_ALL: RollupRead = RollupRead {
        tables: Rollups::Touchpoints,
        measures: Measures::All,
    };
    const SOURCE_SCORES: RollupRead = RollupRead {
        tables: Rollups::Sources,
        measures: Measures::Scores,
    };

    fn daily(self) -> &'static str {
        match self.tables {
            Rollups::Touchpoints => "perception_daily",
            Rollups::Sources => "perception_source_daily",
        }
    }

    fn monthly(self) -> &'static str {
        match self.tables {
            Rollups::Touchpoints => "perception_monthly",
            Rollups::Sources => "perception_source_monthly",
        }
    }

    /// Built once per combination of tables, measures and grain.
    fn cached(
        self,
        grain: Grain,
        cache: &'static [OnceLock<String>; 8],
        build: impl FnOnce() -> String,
    ) -> &'static str {
        let index = 4 * (grain == Grain::Days) as usize
            + 2 * (self.tables == Rollups::Sources) as usize
            + (self.measures == Measures::All) as usize;
        cache[index].get_or_init(build)
    }

    /// The keys of a row that a report groups by: the daily rows' for
    /// day and week buckets, the ones daily and monthly rows share
    /// otherwise.
    fn keys(self, grain: Grain) -> &'static [&'static str] {
        match (self.tables, grain) {
            (Rollups::Touchpoints, Grain::Months) => &["touchpoint_id", "month"],
            (Rollups::Sources, Grain::Months) => &["touchpoint_id", "month", "source"],
            (Rollups::Touchpoints, Grain::Days) => &["touchpoint_id", "day", "week", "month"],
            (Rollups::Sources, Grain::Days) => &["touchpoint_id", "day", "month", "source"],
        }
    }

    /// The columns a query reads of each rollup row: its keys, and the
    /// counters.
    fn columns(self, grain: Grain) -> &'static str {
        static COLUMNS: [OnceLock<String>; 8] = [const { OnceLock::new() }; 8];
        self.cached(grain, &COLUMNS, || {
            self.keys(grain)
                .iter()
                .copied()
                .chain(self.measures.counters().map(|(column, _)| column))
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The summed counters, as `SELECT` expressions. The casts keep integer
    /// sums integers on PostgreSQL (`SUM(bigint)` is numeric).
    fn sums(self) -> &'static str {
        static SUMS: [OnceLock<String>; 8] = [const { OnceLock::new() }; 8];
        // The same for either grain.
        self.cached(Grain::Months, &SUMS, || {
            self.measures
                .counters()
                .map(|(column, is_integer)| {
                    if is_integer {
                        format!("CAST(SUM(pd.{column}) AS BIGINT) AS {column}")
                    } else {
                        format!("SUM(pd.{column}) AS {column}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        })
    }

    /// The counters of a row of [`Self::sums`]: a sum over no rows is null,
    /// read as 0, and so is a counter the query does not read.
    fn counters_of(self, row: &QueryResult) -> DomainResult<Counters> {
        Ok(Counters::read(|column, is_integer| {
            let read = self.measures.includes(column);
            Ok::<_, sea_orm::DbErr>(if is_integer {
                let value = if read {
                    row.try_get::<Option<i64>>("", column)?
                } else {
                    None
                };
                CounterValue::Integer(value.unwrap_or_default())
            } else {
                let value = if read {
                    row.try_get::<Option<f64>>("", column)?
                } else {
                    None
                };
                CounterValue::Real(value.unwrap_or_default())
            })
        })?)
    }
}

/// `FROM <rollup rows of the window> pd [JOIN touchpoints t] WHERE ...`:
/// more conditions may follow with ` AND`. The rows of the `tail` (the
/// encounters not yet projected) in the window are read with the stored
/// ones, so every sum over `pd` counts them.
fn from_rollups(
    sql: &mut Sql,
    rollups: RollupRead,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
    grain: Grain,
    join_touchpoints: bool,
) {
    let tail_rows = tail.rows(window, rollups.tables == Rollups::Sources);
    match grain {
        Grain::Days if tail_rows.is_empty() => {
            sql.push(" FROM ").push(rollups.daily()).push(" pd");
        }
        Grain::Days => {
            sql.push(" FROM (SELECT ")
                .push(rollups.columns(grain))
                .push(" FROM ")
                .push(rollups.daily())
                .push(" WHERE organization_id = ")
                .bind(organization_id)
                .push(" AND day >= ")
                .bind(window.from_day())
                .push(" AND day < ")
                .bind(window.to_day())
                .push(" UNION ALL ");
            tail::push_rows(sql, &tail_rows, rollups, grain);
            sql.push(") pd");
        }
        Grain::Months => {
            let cover = window.cover();
            sql.push(" FROM (SELECT ")
                .push(rollups.columns(grain))
                .push(" FROM ")
                .push(rollups.monthly())
                .push(" WHERE organization_id = ")
                .bind(organization_id);
            match cover.months {
                Some((first, end)) => {
                    sql.push(" AND month >= ")
                        .bind(first)
                        .push(" AND month < ")
                        .bind(end);
                }
                None => {
                    sql.push(" AND 1 = 0");
                }
            }
            // One range per statement: SQLite reads an index range for
            // each, where `day` in one range OR another reads every day of
            // the organization (twice the time of a year's gap report).
            for (from, to) in cover.days.into_iter().filter(|(from, to)| from < to) {
                sql.push(" UNION ALL SELECT ")
                    .push(rollups.columns(grain))
                    .push(" FROM ")
                    .push(rollups.daily())
                    .push(" WHERE organization_id = ")
                    .bind(organization_id)
                    .push(" AND day >= ")
                    .bind(from)
                    .push(" AND day < ")
                    .bind(to);
            }
            if !tail_rows.is_empty() {
                sql.push(" UNION ALL ");
                tail::push_rows(sql, &tail_rows, rollups, grain);
            }
            sql.push(") pd");
        }
    }
    if join_touchpoints {
        sql.push(" JOIN touchpoints t ON t.id = pd.touchpoint_id");
    }
    match grain {
        Grain::Days if tail_rows.is_empty() => {
            sql.push(" WHERE pd.organization_id = ")
                .bind(organization_id)
                .push(" AND pd.day >= ")
                .bind(window.from_day())
                .push(" AND pd.day < ")
                .bind(window.to_day());
        }
        Grain::Days | Grain::Months => {
            sql.push(" WHERE 1 = 1");
        }
    }
}

/// `FROM <the daily rollup rows of the window, with the tail's> pd JOIN
/// touchpoints t ON ... WHERE ...`: what the drop alerts read (more
/// conditions may follow with ` AND`).
pub(crate) fn from_daily_rollups(
    sql: &mut Sql,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
) {
    from_rollups(
        sql,
        RollupRead::TOUCHPOINT_SCORES,
        tail,
        organization_id,
        window,
        Grain::Days,
        true,
    );
}

/// The counters of every encounter in the window, but the attributed
/// shift's.
pub(crate) async fn totals(
    db: &impl ConnectionTrait,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
) -> DomainResult<Counters> {
    let mut sql = Sql::new(db);
    let read = RollupRead::TOUCHPOINT_SCORES;
    sql.push("SELECT ").push(read.sums());
    from_rollups(
        &mut sql,
        read,
        tail,
        organization_id,
        window,
        Grain::Months,
        false,
    );
    match sql.all(db).await?.first() {
        Some(row) => read.counters_of(row),
        None => Ok(Counters::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn figures_of_small_groups_are_withheld() {
        let counters = Counters {
            encounters: 5,
            scored: 3,
            // Scores 9, 7 and 5; shifts -3 and +1.
            score_sum: 21,
            score_sq_sum: 155,
            promoters: 1,
            passives: 1,
            detractors: 1,
            attributed_sum: -2.0,
            attributed_sq_sum: 10.0,
            attributions: 2,
        };
        let off = Figures::new(&counters, MinGroupSize::default());
        assert!(!off.suppressed);
        assert!(off.mean_score_interval.is_some() && off.cnps_interval.is_some());
        assert!(off.mean_attributed_shift_interval.is_some());
        assert!(off.mean_attributed_shift_p_value.is_some());
        assert_eq!(off.promoters, Some(1));
        assert_eq!(off.mean_attributed_shift, Some(-1.0));
        // Enough scores, too few attributions: only the shift figures go.
        let three = Figures::new(&counters, MinGroupSize(3));
        assert!(!three.suppressed);
        assert_eq!((three.mean_score, three.cnps), (Some(7.0), Some(0.0)));
        assert_eq!(three.detractors, Some(1));
        assert_eq!(three.attributed_shift_sum, None);
        assert_eq!(three.mean_attributed_shift, None);
        assert!(three.cnps_interval.is_some());
        assert_eq!(three.mean_attributed_shift_interval, None);
        assert_eq!(three.mean_attributed_shift_p_value, None);
        // Too few scores: every figure goes, the counts stay.
        let four = Figures::new(&counters, MinGroupSize(4));
        assert!(four.suppressed);
        assert_eq!((four.encounters, four.scored, four.attributions), (5, 3, 2));
        assert_eq!((four.mean_score, four.cnps), (None, None));
        assert_eq!(
            (four.promoters, four.passives, four.detractors),
            (None, None, None)
        );
        assert_eq!(four.attributed_shift_sum, None);
        assert_eq!((four.mean_score_interval, four.cnps_interval), (None, None));
        assert_eq!(four.adjusted_nps, None);
        assert_eq!(four.mean_attributed_shift_interval, None);
        assert_eq!(four.mean_attributed_shift_p_value, None);
    }

    #[test]
    fn the_shift_counters_are_counters() {
        for column in SHIFT_COUNTERS {
            assert!(
                Counters::COLUMNS.iter().any(|(c, _)| *c == column),
                "{column}"
            );
        }
        assert_eq!(
            Measures::Scores.counters().count(),
            Counters::COLUMNS.len() - 3
        );
    }

    #[test]
    fn windows_are_ordered_and_have_a_previous_one() {
        assert!(Window::new(date("2026-01-02"), date("2026-01-02")).is_err());
        assert!(Window::new(date("2026-01-03"), date("2026-01-02")).is_err());
        let window = Window::new(date("2026-02-01"), date("2026-03-01")).unwrap();
        assert_eq!(
            window.previous().unwrap(),
            Window::new(date("2026-01-04"), date("2026-02-01")).unwrap()
        );
    }
}
