//! The perception trend: the figures of each calendar bucket (day, ISO
//! week or month) of the window, in one series or one per kind, channel,
//! stage or touchpoint.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use entity::enums::{Channel, Kind, Stage};
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseConnection, Iterable};

use super::{
    from_rollups, tail, touchpoint_ids_in_order, Figures, Grain, MinGroupSize, RollupRead, Tail,
    Window,
};
use crate::db::sql::Sql;
use crate::domain::{
    analytics::perception::{date_of_day, month_of, month_start, week_of, Counters},
    analytics::statistics::AdjustedNps,
    DomainError, DomainResult,
};

/// The most buckets one trend answers.
pub const MAX_BUCKETS: i64 = 1000;
/// The most points (series × buckets) one trend answers. A point costs
/// about 1 KiB while the answer is built, so a trend stays near 20 MiB; a
/// year by day of 54 touchpoints fits, as does every kind, channel or
/// stage split of 1,000 days.
pub const MAX_POINTS: i64 = 20_000;

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

    fn previous(self, bucket: i32) -> i32 {
        match self {
            Bucket::Day => bucket - 1,
            Bucket::Week => bucket - 7,
            Bucket::Month => bucket - 1,
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
    /// With [`Comparison::PreviousBucket`]: the two-sided p-value of the z
    /// test of this bucket's cNPS against the calendar bucket before it in
    /// the same series (for the first point, the whole bucket before the
    /// window's first); `None` when either shows no cNPS.
    pub cnps_change_p_value: Option<f64>,
}

/// What each point of a trend is tested against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    None,
    PreviousBucket,
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

/// The figures of every bucket the window touches, one series per group.
/// Refused when the window holds more than [`MAX_BUCKETS`] buckets or the
/// answer more than [`MAX_POINTS`] points.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn trend(
    db: &DatabaseConnection,
    organization_id: i64,
    window: &Window,
    bucket: Bucket,
    grouping: TrendGrouping,
    filter: &TrendFilter,
    comparison: Comparison,
) -> DomainResult<Vec<TrendSeries>> {
    let (txn, tail) = tail::snapshot(db, organization_id).await?;
    let series = trend_in(
        &txn,
        &tail,
        organization_id,
        window,
        bucket,
        grouping,
        filter,
        comparison,
    )
    .await?;
    txn.commit().await?;
    Ok(series)
}

#[allow(clippy::too_many_arguments)]
async fn trend_in(
    db: &impl ConnectionTrait,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
    bucket: Bucket,
    grouping: TrendGrouping,
    filter: &TrendFilter,
    comparison: Comparison,
) -> DomainResult<Vec<TrendSeries>> {
    if bucket.count(window) > MAX_BUCKETS {
        return Err(DomainError::invalid(
            "bucket",
            format!("the window holds more than {MAX_BUCKETS} buckets; choose a larger bucket or a shorter window"),
        ));
    }
    let query = TrendQuery::new(organization_id, window, bucket, grouping, filter, tail);
    // Refused before anything of its size is read: a trend's points are
    // its series times its buckets, and each costs memory to answer.
    let series = match fixed_groups(grouping, filter) {
        Some(groups) => groups.len() as i64,
        None => query.touchpoints_met(db).await?,
    };
    check_points(series, bucket.count(window), bucket)?;

    let min = MinGroupSize::of(db, organization_id).await?;
    let data = query.counters(db).await?;
    let groups =
        fixed_groups(grouping, filter).unwrap_or_else(|| touchpoint_ids_in_order(data.keys()));
    let mut series = series_of(groups, data, &buckets(bucket, window), bucket, min);
    if comparison == Comparison::PreviousBucket {
        let mut before = bucket_before(db, &query, window).await?;
        for one in &mut series {
            let first = before
                .remove(&one.group)
                .and_then(|counters| Figures::new(&counters, min).adjusted_nps);
            compare_to_previous_bucket(&mut one.points, first);
        }
    }
    Ok(series)
}

/// The counters of each group in the whole calendar bucket before the
/// window's first bucket; none when that bucket starts before the first
/// date a report may read.
async fn bucket_before(
    db: &impl ConnectionTrait,
    query: &TrendQuery<'_>,
    window: &Window,
) -> DomainResult<HashMap<String, Counters>> {
    let bucket = query.bucket;
    let first = bucket.of(window.from_day());
    let previous = bucket.previous(first);
    let Ok(before) = Window::new(bucket.start_date(previous), bucket.start_date(first)) else {
        return Ok(HashMap::new());
    };
    let query = TrendQuery {
        window: &before,
        ..*query
    };
    Ok(query
        .counters(db)
        .await?
        .into_iter()
        .filter_map(|(group, mut by_bucket)| Some((group, by_bucket.remove(&previous)?)))
        .collect())
}

/// The counters of each group in each bucket, before suppression.
type TrendData = BTreeMap<String, HashMap<i32, Counters>>;

/// The rollup rows a trend reads and how it groups them.
struct TrendQuery<'a> {
    organization_id: i64,
    /// The encounters not yet in the rollups.
    tail: &'a Tail,
    window: &'a Window,
    bucket: Bucket,
    filter: &'a TrendFilter,
    /// The expression naming a row's group; `None` for the one series `all`.
    group_column: Option<&'static str>,
    /// Whether the rows need their touchpoint's kind, channel or stage.
    join: bool,
    grain: Grain,
}

impl<'a> TrendQuery<'a> {
    fn new(
        organization_id: i64,
        window: &'a Window,
        bucket: Bucket,
        grouping: TrendGrouping,
        filter: &'a TrendFilter,
        tail: &'a Tail,
    ) -> Self {
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
        TrendQuery {
            organization_id,
            tail,
            window,
            bucket,
            filter,
            group_column,
            join,
            grain,
        }
    }

    /// `FROM ... WHERE ...`: the rollup rows of the window that pass the
    /// filters.
    fn rows(&self, sql: &mut Sql) {
        from_rollups(
            sql,
            RollupRead::TOUCHPOINT_SCORES,
            self.tail,
            self.organization_id,
            self.window,
            self.grain,
            self.join,
        );
        if let Some(kind) = self.filter.kind {
            sql.push(" AND t.kind = ").bind(kind.to_value());
        }
        if let Some(channel) = self.filter.channel {
            sql.push(" AND t.channel = ").bind(channel.to_value());
        }
        if let Some(stage) = self.filter.stage {
            sql.push(" AND t.stage = ").bind(stage.to_value());
        }
        if let Some(touchpoint_id) = self.filter.touchpoint_id {
            sql.push(" AND pd.touchpoint_id = ").bind(touchpoint_id);
        }
    }

    /// How many touchpoints the rows hold: the series of a trend by
    /// touchpoint.
    async fn touchpoints_met(&self, db: &impl ConnectionTrait) -> DomainResult<i64> {
        let mut count = Sql::new(db);
        count.push("SELECT COUNT(DISTINCT pd.touchpoint_id) AS n");
        self.rows(&mut count);
        Ok(match count.all(db).await?.first() {
            Some(row) => row.try_get::<i64>("", "n")?,
            None => 0,
        })
    }

    /// The summed counters of the rows, by group and bucket number.
    async fn counters(&self, db: &impl ConnectionTrait) -> DomainResult<TrendData> {
        let mut sql = Sql::new(db);
        sql.push("SELECT ")
            .push(self.bucket.column())
            .push(" AS bucket, ")
            .push(self.group_column.unwrap_or("'all'"))
            .push(" AS grp, ")
            .push(RollupRead::TOUCHPOINT_SCORES.sums());
        self.rows(&mut sql);
        sql.push(" GROUP BY ").push(self.bucket.column());
        if let Some(column) = self.group_column {
            sql.push(", ").push(column);
        }
        let mut data = TrendData::new();
        for row in sql.all(db).await? {
            let bucket_number: i32 = row.try_get("", "bucket")?;
            let group: String = row.try_get("", "grp")?;
            data.entry(group).or_default().insert(
                bucket_number,
                RollupRead::TOUCHPOINT_SCORES.counters_of(&row)?,
            );
        }
        Ok(data)
    }
}

/// The numbers of every bucket the window touches, in order.
fn buckets(bucket: Bucket, window: &Window) -> Vec<i32> {
    let last = bucket.of(window.to_day() - 1);
    std::iter::successors(Some(bucket.of(window.from_day())), |b| {
        Some(bucket.next(*b))
    })
    .take_while(|b| *b <= last)
    .collect()
}

/// One series per group with a point in every bucket, empty where the group
/// has no data, each point's figures suppressed as `min` requires.
fn series_of(
    groups: Vec<String>,
    mut data: TrendData,
    buckets: &[i32],
    bucket: Bucket,
    min: MinGroupSize,
) -> Vec<TrendSeries> {
    groups
        .into_iter()
        .map(|group| {
            let mut counts = data.remove(&group).unwrap_or_default();
            let points = buckets
                .iter()
                .map(|b| TrendPoint {
                    bucket_start: bucket.start_date(*b),
                    figures: Figures::new(&counts.remove(b).unwrap_or_default(), min),
                    cnps_change_p_value: None,
                })
                .collect();
            TrendSeries { group, points }
        })
        .collect()
}

/// Tests each point's cNPS against the point before it, and the first
/// against `first_before` (the bucket before the window's first).
fn compare_to_previous_bucket(points: &mut [TrendPoint], first_before: Option<AdjustedNps>) {
    let mut before = first_before;
    for point in points {
        let now = point.figures.adjusted_nps;
        point.cnps_change_p_value = before
            .zip(now)
            .map(|(before, now)| AdjustedNps::change_p_value(&before, &now));
        before = now;
    }
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
}
