//! The perception reports: trend, touchpoint impact, perception shift and
//! summary. Windows are whole UTC days, `from` inclusive and `to`
//! exclusive.
//!
//! Trend, impact and summary read the rollups (`perception_daily` for the
//! counters, `touchpoint_reach` for distinct candidates), so their cost
//! grows with days × touchpoints, not with encounters. Perception shift
//! looks up each candidate's first and latest score in the window through
//! the partial index of scored encounters.
//!
//! Every report applies the organization's small-group suppression
//! (`min_group_size`) here, in [`Figures`] and [`ShiftGroup`], so the API
//! layer only ever sees what may be shown.

use std::{
    collections::{BTreeMap, HashMap},
    sync::OnceLock,
};

use chrono::{DateTime, NaiveDate, Utc};
use entity::{
    enums::{Channel, Kind, Stage},
    touchpoint, touchpoint_reach,
};
use roaring::RoaringTreemap;
use sea_orm::{
    ActiveEnum, ColumnTrait, Condition, ConnectionTrait, EntityTrait, Iterable, QueryFilter,
    QueryResult, QuerySelect,
};

use crate::db::sql::Sql;
use crate::domain::{
    analytics::perception::{
        date_of_day, day_of_date, month_of, month_start, week_of, CounterValue, Counters, Span,
    },
    analytics::rollups::decode_bitmap,
    DomainError, DomainResult,
};

/// The most buckets one trend answers.
pub const MAX_BUCKETS: i64 = 1000;
/// The most points (series × buckets) one trend answers. A point costs
/// about 1 KiB while the answer is built, so a trend stays near 20 MiB; a
/// year by day of 54 touchpoints fits, as does every kind, channel or
/// stage split of 1,000 days.
pub const MAX_POINTS: i64 = 20_000;
/// The most touchpoints the impact report and the summary read for one
/// window: about 1 KiB each, and their candidates' bitmaps.
pub const MAX_TOUCHPOINTS: usize = 20_000;

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

    fn start(&self) -> DateTime<Utc> {
        self.from.and_time(chrono::NaiveTime::MIN).and_utc()
    }

    fn end(&self) -> DateTime<Utc> {
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
/// of one, "1 promoter" is that candidate's score band).
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
    /// Encounters that received an attributed shift.
    pub attributions: i64,
    /// The shift figures need, besides a group that is not suppressed, at
    /// least `min_group_size` attributions: the shares of one pair of
    /// consecutive scores are one candidate's shift.
    pub attributed_shift_sum: Option<f64>,
    pub mean_attributed_shift: Option<f64>,
}

impl Figures {
    pub fn new(counters: &Counters, min: MinGroupSize) -> Self {
        let suppressed = min.withholds(counters.scored);
        let scores = !suppressed;
        let shifts = scores && !min.withholds(counters.attributions);
        Figures {
            encounters: counters.encounters,
            scored: counters.scored,
            suppressed,
            mean_score: counters.mean_score().filter(|_| scores),
            promoters: scores.then_some(counters.promoters),
            passives: scores.then_some(counters.passives),
            detractors: scores.then_some(counters.detractors),
            cnps: counters.cnps().filter(|_| scores),
            attributions: counters.attributions,
            attributed_shift_sum: shifts.then_some(counters.attributed_sum),
            mean_attributed_shift: counters.mean_attributed_shift().filter(|_| shifts),
        }
    }
}

// ---------------------------------------------------------------------------
// Reading the counters
// ---------------------------------------------------------------------------

/// The summed counters of `perception_daily`, as `SELECT` expressions. The
/// casts keep integer sums integers on PostgreSQL (`SUM(bigint)` is numeric).
fn sums() -> &'static str {
    static SUMS: OnceLock<String> = OnceLock::new();
    SUMS.get_or_init(|| {
        Counters::COLUMNS
            .iter()
            .map(|&(column, is_integer)| {
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

/// The counters of a row of [`sums`]: a sum over no rows is null, read as 0.
fn counters_of(row: &QueryResult) -> DomainResult<Counters> {
    Ok(Counters::read(|column, is_integer| {
        Ok::<_, sea_orm::DbErr>(if is_integer {
            CounterValue::Integer(row.try_get::<Option<i64>>("", column)?.unwrap_or_default())
        } else {
            CounterValue::Real(row.try_get::<Option<f64>>("", column)?.unwrap_or_default())
        })
    })?)
}

/// Which rollup rows a query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Grain {
    /// `perception_daily` only: for day and week buckets.
    Days,
    /// `perception_monthly` for whole months, `perception_daily` for the
    /// days around them: a year is twelve rows per touchpoint, not 365.
    Months,
}

/// The columns both rollup tables share: the key a report groups by, and
/// the counters.
fn rollup_columns() -> &'static str {
    static COLUMNS: OnceLock<String> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        ["touchpoint_id", "month"]
            .into_iter()
            .chain(Counters::COLUMNS.iter().map(|(column, _)| *column))
            .collect::<Vec<_>>()
            .join(", ")
    })
}

/// `FROM <rollup rows of the window> pd [JOIN touchpoints t] WHERE ...`:
/// more conditions may follow with ` AND`.
fn from_rollups(
    sql: &mut Sql,
    organization_id: i64,
    window: &Window,
    grain: Grain,
    join_touchpoints: bool,
) {
    match grain {
        Grain::Days => {
            sql.push(" FROM perception_daily pd");
        }
        Grain::Months => {
            let cover = window.cover();
            sql.push(" FROM (SELECT ")
                .push(rollup_columns())
                .push(" FROM perception_monthly WHERE organization_id = ")
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
            sql.push(" UNION ALL SELECT ")
                .push(rollup_columns())
                .push(" FROM perception_daily WHERE organization_id = ")
                .bind(organization_id)
                .push(" AND (1 = 0");
            for (from, to) in cover.days.into_iter().filter(|(from, to)| from < to) {
                sql.push(" OR (day >= ")
                    .bind(from)
                    .push(" AND day < ")
                    .bind(to)
                    .push(")");
            }
            sql.push(")) pd");
        }
    }
    if join_touchpoints {
        sql.push(" JOIN touchpoints t ON t.id = pd.touchpoint_id");
    }
    match grain {
        Grain::Days => {
            sql.push(" WHERE pd.organization_id = ")
                .bind(organization_id)
                .push(" AND pd.day >= ")
                .bind(window.from_day())
                .push(" AND pd.day < ")
                .bind(window.to_day());
        }
        Grain::Months => {
            sql.push(" WHERE 1 = 1");
        }
    }
}

/// The counters of every encounter in the window.
pub async fn totals(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
) -> DomainResult<Counters> {
    let mut sql = Sql::new(db);
    sql.push("SELECT ").push(sums());
    from_rollups(&mut sql, organization_id, window, Grain::Months, false);
    match sql.all(db).await?.first() {
        Some(row) => counters_of(row),
        None => Ok(Counters::default()),
    }
}

// ---------------------------------------------------------------------------
// Perception trend
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    Day,
    Week,
    Month,
}

impl Bucket {
    /// The stored column holding this bucket's number.
    fn column(self) -> &'static str {
        match self {
            Bucket::Day => "pd.day",
            Bucket::Week => "pd.week",
            Bucket::Month => "pd.month",
        }
    }

    /// The bucket number of a day.
    fn of(self, day: i32) -> i32 {
        match self {
            Bucket::Day => day,
            Bucket::Week => week_of(day),
            Bucket::Month => month_of(day),
        }
    }

    fn next(self, bucket: i32) -> i32 {
        match self {
            Bucket::Day => bucket + 1,
            Bucket::Week => bucket + 7,
            Bucket::Month => bucket + 1,
        }
    }

    fn start_date(self, bucket: i32) -> NaiveDate {
        match self {
            Bucket::Day | Bucket::Week => date_of_day(bucket),
            Bucket::Month => date_of_day(month_start(bucket)),
        }
    }

    /// How many buckets the window touches.
    fn count(self, window: &Window) -> i64 {
        let (first, last) = (self.of(window.from_day()), self.of(window.to_day() - 1));
        let steps = i64::from(last - first);
        match self {
            Bucket::Week => steps / 7 + 1,
            Bucket::Day | Bucket::Month => steps + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrendGrouping {
    None,
    Kind,
    Channel,
    Stage,
    Touchpoint,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TrendFilter {
    pub kind: Option<Kind>,
    pub channel: Option<Channel>,
    pub stage: Option<Stage>,
    pub touchpoint_id: Option<i64>,
}

pub struct TrendPoint {
    /// The first day of the calendar bucket (which may start before `from`;
    /// only encounters inside the window are counted).
    pub bucket_start: NaiveDate,
    pub figures: Figures,
}

pub struct TrendSeries {
    /// The kind, channel or stage value, the touchpoint id, or `all`.
    pub group: String,
    pub points: Vec<TrendPoint>,
}

/// The groups a trend shows even where they have no data: every value of
/// the vocabulary that the filters allow.
fn fixed_groups(grouping: TrendGrouping, filter: &TrendFilter) -> Option<Vec<String>> {
    fn values<E: ActiveEnum<Value = String> + Iterable + PartialEq>(
        only: Option<E>,
    ) -> Vec<String> {
        E::iter()
            .filter(|value| only.as_ref().is_none_or(|only| only == value))
            .map(|value| value.to_value())
            .collect()
    }
    match grouping {
        TrendGrouping::None => Some(vec!["all".to_owned()]),
        TrendGrouping::Kind => Some(values(filter.kind)),
        TrendGrouping::Channel => Some(values(filter.channel)),
        TrendGrouping::Stage => Some(values(filter.stage)),
        TrendGrouping::Touchpoint => None,
    }
}

/// Refuses a trend of more than [`MAX_POINTS`] points, naming the
/// parameter that narrows it most simply: a larger `bucket` while there is
/// one, else a shorter window (`from`).
fn check_points(series: i64, buckets: i64, bucket: Bucket) -> DomainResult<()> {
    let points = series * buckets;
    if points <= MAX_POINTS {
        return Ok(());
    }
    let field = match bucket {
        Bucket::Day | Bucket::Week => "bucket",
        Bucket::Month => "from",
    };
    Err(DomainError::invalid(
        field,
        format!(
            "the trend would have {points} points ({series} series of {buckets} buckets), \
             more than {MAX_POINTS}; choose a larger bucket, a shorter window (from, to), or \
             fewer series (group_by, or filter by kind, channel, stage or touchpoint_id)"
        ),
    ))
}

pub async fn trend(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
    bucket: Bucket,
    grouping: TrendGrouping,
    filter: &TrendFilter,
) -> DomainResult<Vec<TrendSeries>> {
    if bucket.count(window) > MAX_BUCKETS {
        return Err(DomainError::invalid(
            "bucket",
            format!("the window holds more than {MAX_BUCKETS} buckets; choose a larger bucket or a shorter window"),
        ));
    }
    let group_column = match grouping {
        TrendGrouping::None => None,
        TrendGrouping::Kind => Some("t.kind"),
        TrendGrouping::Channel => Some("t.channel"),
        TrendGrouping::Stage => Some("t.stage"),
        // Cast so both backends hand back text, like the other groupings.
        TrendGrouping::Touchpoint => Some("CAST(pd.touchpoint_id AS VARCHAR(20))"),
    };
    let join = matches!(
        grouping,
        TrendGrouping::Kind | TrendGrouping::Channel | TrendGrouping::Stage
    ) || filter.kind.is_some()
        || filter.channel.is_some()
        || filter.stage.is_some();

    let grain = match bucket {
        Bucket::Month => Grain::Months,
        Bucket::Day | Bucket::Week => Grain::Days,
    };
    // The rollup rows of the window that pass the filters.
    let rows_of = |sql: &mut Sql| {
        from_rollups(sql, organization_id, window, grain, join);
        if let Some(kind) = filter.kind {
            sql.push(" AND t.kind = ").bind(kind.to_value());
        }
        if let Some(channel) = filter.channel {
            sql.push(" AND t.channel = ").bind(channel.to_value());
        }
        if let Some(stage) = filter.stage {
            sql.push(" AND t.stage = ").bind(stage.to_value());
        }
        if let Some(touchpoint_id) = filter.touchpoint_id {
            sql.push(" AND pd.touchpoint_id = ").bind(touchpoint_id);
        }
    };
    // Refused before anything of its size is read: a trend's points are
    // its series times its buckets, and each costs memory to answer.
    let series = match fixed_groups(grouping, filter) {
        Some(groups) => groups.len() as i64,
        None => {
            let mut count = Sql::new(db);
            count.push("SELECT COUNT(DISTINCT pd.touchpoint_id) AS n");
            rows_of(&mut count);
            match count.all(db).await?.first() {
                Some(row) => row.try_get::<i64>("", "n")?,
                None => 0,
            }
        }
    };
    check_points(series, bucket.count(window), bucket)?;

    let min = MinGroupSize::of(db, organization_id).await?;
    let mut sql = Sql::new(db);
    sql.push("SELECT ")
        .push(bucket.column())
        .push(" AS bucket, ")
        .push(group_column.unwrap_or("'all'"))
        .push(" AS grp, ")
        .push(sums());
    rows_of(&mut sql);
    sql.push(" GROUP BY ").push(bucket.column());
    if let Some(column) = group_column {
        sql.push(", ").push(column);
    }

    let mut data: BTreeMap<String, HashMap<i32, Counters>> = BTreeMap::new();
    for row in sql.all(db).await? {
        let bucket_number: i32 = row.try_get("", "bucket")?;
        let group: String = row.try_get("", "grp")?;
        data.entry(group)
            .or_default()
            .insert(bucket_number, counters_of(&row)?);
    }
    let groups = match fixed_groups(grouping, filter) {
        Some(groups) => groups,
        None => {
            // Touchpoint ids, in numeric order.
            let mut ids: Vec<i64> = data.keys().filter_map(|g| g.parse().ok()).collect();
            ids.sort_unstable();
            ids.into_iter().map(|id| id.to_string()).collect()
        }
    };

    let last = bucket.of(window.to_day() - 1);
    let buckets: Vec<i32> = std::iter::successors(Some(bucket.of(window.from_day())), |b| {
        Some(bucket.next(*b))
    })
    .take_while(|b| *b <= last)
    .collect();
    Ok(groups
        .into_iter()
        .map(|group| {
            let mut counts = data.remove(&group).unwrap_or_default();
            let points = buckets
                .iter()
                .map(|b| TrendPoint {
                    bucket_start: bucket.start_date(*b),
                    figures: Figures::new(&counts.remove(b).unwrap_or_default(), min),
                })
                .collect();
            TrendSeries { group, points }
        })
        .collect())
}

// ---------------------------------------------------------------------------
// Touchpoint impact
// ---------------------------------------------------------------------------

pub struct TouchpointImpact {
    pub touchpoint: touchpoint::Model,
    pub figures: Figures,
    /// Distinct candidates who met the touchpoint in the window.
    pub candidates: u64,
}

/// Every touchpoint with encounters in the window, the ones that hurt
/// perception most first: by mean attributed shift ascending (those
/// without one shown last), ties by encounters descending. The order uses
/// the shown mean only, so a withheld one cannot be read off a row's place.
pub async fn touchpoint_impact(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
) -> DomainResult<Vec<TouchpointImpact>> {
    let min = MinGroupSize::of(db, organization_id).await?;
    let (rows, _) = touchpoint_counters(db, organization_id, window).await?;
    Ok(impact_rows(rows, min))
}

/// One touchpoint's counters in a window, before suppression.
struct TouchpointCounters {
    touchpoint: touchpoint::Model,
    counters: Counters,
    candidates: u64,
}

/// The counters of every touchpoint with encounters in the window, and the
/// distinct candidates with any encounter in it.
async fn touchpoint_counters(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
) -> DomainResult<(Vec<TouchpointCounters>, u64)> {
    let mut sql = Sql::new(db);
    sql.push("SELECT pd.touchpoint_id AS touchpoint_id, ")
        .push(sums());
    from_rollups(&mut sql, organization_id, window, Grain::Months, false);
    sql.push(" GROUP BY pd.touchpoint_id");
    let mut counters: HashMap<i64, Counters> = HashMap::new();
    for row in sql.all(db).await? {
        let id: i64 = row.try_get("", "touchpoint_id")?;
        let row_counters = counters_of(&row)?;
        if row_counters.encounters > 0 {
            counters.insert(id, row_counters);
        }
    }
    // Refused before the touchpoints and their candidates' bitmaps are read.
    if counters.len() > MAX_TOUCHPOINTS {
        return Err(DomainError::invalid(
            "from",
            format!(
                "{} touchpoints were met in the window, more than the {MAX_TOUCHPOINTS} a \
                 report reads; choose a shorter window",
                counters.len()
            ),
        ));
    }
    let touchpoints = touchpoint::Entity::find()
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .filter(touchpoint::Column::Id.is_in(counters.keys().copied()))
        .all(db)
        .await?;
    let (reach, everyone) = reach(db, organization_id, window).await?;
    let rows = touchpoints
        .into_iter()
        .map(|touchpoint| TouchpointCounters {
            counters: counters.remove(&touchpoint.id).unwrap_or_default(),
            candidates: reach.get(&touchpoint.id).map_or(0, RoaringTreemap::len),
            touchpoint,
        })
        .collect();
    Ok((rows, everyone.len()))
}

/// The rows of the impact report, suppressed and sorted as
/// [`touchpoint_impact`] describes.
fn impact_rows(rows: Vec<TouchpointCounters>, min: MinGroupSize) -> Vec<TouchpointImpact> {
    let mut rows: Vec<TouchpointImpact> = rows
        .into_iter()
        .map(|row| TouchpointImpact {
            figures: Figures::new(&row.counters, min),
            candidates: row.candidates,
            touchpoint: row.touchpoint,
        })
        .collect();
    rows.sort_by(|a, b| {
        let key = |row: &TouchpointImpact| row.figures.mean_attributed_shift;
        match (key(a), key(b)) {
            (Some(x), Some(y)) => x.total_cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then(b.figures.encounters.cmp(&a.figures.encounters))
        .then(a.touchpoint.id.cmp(&b.touchpoint.id))
    });
    rows
}

/// The candidates who met each touchpoint in the window, and all of them:
/// the union of the monthly bitmaps of the months wholly inside the window
/// and the daily bitmaps of the days around them.
async fn reach(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
) -> DomainResult<(HashMap<i64, RoaringTreemap>, RoaringTreemap)> {
    let cover = window.cover();
    let mut periods = Condition::any();
    if let Some((first, end)) = cover.months {
        periods = periods.add(
            Condition::all()
                .add(touchpoint_reach::Column::Span.eq(Span::Month.as_str()))
                .add(touchpoint_reach::Column::Period.gte(first))
                .add(touchpoint_reach::Column::Period.lt(end)),
        );
    }
    for (from, to) in cover.days.into_iter().filter(|(from, to)| from < to) {
        periods = periods.add(day_range(from, to));
    }
    let rows: Vec<(i64, Vec<u8>)> = touchpoint_reach::Entity::find()
        .select_only()
        .columns([
            touchpoint_reach::Column::TouchpointId,
            touchpoint_reach::Column::Candidates,
        ])
        .filter(touchpoint_reach::Column::OrganizationId.eq(organization_id))
        .filter(periods)
        .into_tuple()
        .all(db)
        .await?;
    let mut by_touchpoint: HashMap<i64, RoaringTreemap> = HashMap::new();
    for (touchpoint_id, candidates) in rows {
        *by_touchpoint.entry(touchpoint_id).or_default() |= decode_bitmap(&candidates)?;
    }
    let mut everyone = RoaringTreemap::new();
    for bitmap in by_touchpoint.values() {
        everyone |= bitmap;
    }
    Ok((by_touchpoint, everyone))
}

fn day_range(from: i32, to: i32) -> Condition {
    Condition::all()
        .add(touchpoint_reach::Column::Span.eq(Span::Day.as_str()))
        .add(touchpoint_reach::Column::Period.gte(from))
        .add(touchpoint_reach::Column::Period.lt(to))
}

// ---------------------------------------------------------------------------
// Perception shift
// ---------------------------------------------------------------------------

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
            histogram: [0; HISTOGRAM_BINS],
        }
    }

    fn count(&mut self, shift: i64) {
        self.candidates += 1;
        self.shift_sum += shift;
        match shift.signum() {
            1 => self.improved += 1,
            0 => self.unchanged += 1,
            _ => self.declined += 1,
        }
        self.histogram[(shift + 10) as usize] += 1;
    }

    fn shown(self, min: MinGroupSize) -> ShiftGroup {
        let shown = !min.withholds(self.candidates);
        ShiftGroup {
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
pub async fn perception_shift(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
    grouping: ShiftGrouping,
) -> DomainResult<Vec<ShiftGroup>> {
    // Each candidate's first and latest score in the window, read from the
    // covering index of each candidate's encounters as `id:score` and
    // `id:score:touchpoint_id` (one index seek each, no table rows).
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
        .bind(organization_id);

    let catalog: HashMap<i64, (String, String)> = touchpoint::Entity::find()
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, (t.kind.to_value(), t.stage.to_value())))
        .collect();
    let group_names: Vec<String> = match grouping {
        ShiftGrouping::None => vec!["all".to_owned()],
        ShiftGrouping::Kind => Kind::iter().map(|k| k.to_value()).collect(),
        ShiftGrouping::Stage => Stage::iter().map(|s| s.to_value()).collect(),
    };
    let min = MinGroupSize::of(db, organization_id).await?;
    let mut groups: Vec<ShiftTally> = group_names.into_iter().map(ShiftTally::new).collect();
    for row in sql.all(db).await? {
        let first: Option<String> = row.try_get("", "first_score")?;
        let latest: Option<String> = row.try_get("", "latest_score")?;
        let (Some(first), Some(latest)) = (first, latest) else {
            continue;
        };
        let first = parse_fields(&first)?;
        let latest = parse_fields(&latest)?;
        // One scored encounter is both the first and the latest.
        if first[0] == latest[0] {
            continue;
        }
        let (kind, stage) = catalog.get(&latest[2]).ok_or_else(|| {
            DomainError::internal(format!("touchpoint {} is not in the catalog", latest[2]))
        })?;
        let name = match grouping {
            ShiftGrouping::None => "all",
            ShiftGrouping::Kind => kind,
            ShiftGrouping::Stage => stage,
        };
        if let Some(group) = groups.iter_mut().find(|g| g.group == name) {
            group.count(latest[1] - first[1]);
        }
    }
    Ok(groups.into_iter().map(|g| g.shown(min)).collect())
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

// ---------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------

pub struct Summary {
    /// Distinct candidates with an encounter in the window.
    pub candidates: u64,
    pub current: Figures,
    pub previous_window: Window,
    pub previous: Figures,
    /// Up to three touchpoints with the highest positive mean attributed
    /// shift, best first.
    pub most_positive: Vec<TouchpointImpact>,
    /// Up to three touchpoints with the lowest negative mean attributed
    /// shift, worst first.
    pub most_negative: Vec<TouchpointImpact>,
}

/// How many touchpoints each end of the summary lists.
const SUMMARY_TOP: usize = 3;

/// The window's totals against the previous window's, and the touchpoints
/// that move perception most. Only touchpoints whose mean attributed shift
/// is shown are listed, so being listed reveals nothing withheld.
pub async fn summary(
    db: &impl ConnectionTrait,
    organization_id: i64,
    window: &Window,
) -> DomainResult<Summary> {
    let previous_window = window.previous()?;
    let min = MinGroupSize::of(db, organization_id).await?;
    let (rows, candidates) = touchpoint_counters(db, organization_id, window).await?;
    let current = rows.iter().fold(Counters::default(), |mut sum, row| {
        sum.add(&row.counters, 1);
        sum
    });
    let previous = totals(db, organization_id, &previous_window).await?;
    // Sorted by shown mean attributed shift ascending, unknown last.
    let rows = impact_rows(rows, min);
    let mut most_negative: Vec<TouchpointImpact> = Vec::new();
    let mut positive: Vec<TouchpointImpact> = Vec::new();
    for row in rows {
        match row.figures.mean_attributed_shift {
            Some(mean) if mean < 0.0 && most_negative.len() < SUMMARY_TOP => {
                most_negative.push(row)
            }
            Some(mean) if mean > 0.0 => positive.push(row),
            _ => {}
        }
    }
    positive.sort_by(|a, b| {
        let mean = |row: &TouchpointImpact| row.figures.mean_attributed_shift.unwrap_or(0.0);
        mean(b)
            .total_cmp(&mean(a))
            .then(b.figures.encounters.cmp(&a.figures.encounters))
            .then(a.touchpoint.id.cmp(&b.touchpoint.id))
    });
    positive.truncate(SUMMARY_TOP);
    Ok(Summary {
        candidates,
        current: Figures::new(&current, min),
        previous_window,
        previous: Figures::new(&previous, min),
        most_positive: positive,
        most_negative,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn bucket_counts_cover_partial_buckets() {
        let window = Window::new(date("2026-01-15"), date("2026-03-02")).unwrap();
        assert_eq!(Bucket::Month.count(&window), 3);
        assert_eq!(Bucket::Day.count(&window), 46);
        // The weeks of Monday 2026-01-12 to Monday 2026-02-23 (which holds
        // Sunday 2026-03-01, the last day): seven ISO weeks.
        assert_eq!(Bucket::Week.count(&window), 7);
        let one_day = Window::new(date("2026-03-01"), date("2026-03-02")).unwrap();
        assert_eq!(Bucket::Week.count(&one_day), 1);
    }

    #[test]
    fn figures_of_small_groups_are_withheld() {
        let counters = Counters {
            encounters: 5,
            scored: 3,
            score_sum: 21,
            promoters: 1,
            passives: 1,
            detractors: 1,
            attributed_sum: -2.0,
            attributions: 2,
        };
        let off = Figures::new(&counters, MinGroupSize::default());
        assert!(!off.suppressed);
        assert_eq!(off.promoters, Some(1));
        assert_eq!(off.mean_attributed_shift, Some(-1.0));
        // Enough scores, too few attributions: only the shift figures go.
        let three = Figures::new(&counters, MinGroupSize(3));
        assert!(!three.suppressed);
        assert_eq!((three.mean_score, three.cnps), (Some(7.0), Some(0.0)));
        assert_eq!(three.detractors, Some(1));
        assert_eq!(three.attributed_shift_sum, None);
        assert_eq!(three.mean_attributed_shift, None);
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
    }

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
        assert_eq!(shown.histogram.map(|h| h[7]), Some(1));
        let withheld = two_candidates(3);
        assert!(withheld.suppressed);
        assert_eq!(withheld.candidates, 2);
        let counts = (withheld.improved, withheld.unchanged, withheld.declined);
        assert_eq!(counts, (None, None, None));
        assert_eq!((withheld.mean_shift, withheld.histogram), (None, None));
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
