//! The perception reports, for HR teams and scheduled reporting jobs.

use chrono::NaiveDate;
use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, ApiResponse, Enum, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    error::ApiError,
    nullable::Nullable,
    security::ApiKeyAuth,
    vocabulary::{Channel, Kind, Source, Stage},
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    analytics::perception::round_to,
    analytics::reports::{gap, impact, shift, summary, trend, Figures, Window},
    analytics::statistics::{is_significant, Interval},
};

/// The ends of a figure's interval, rounded as the figure is; both `null`
/// without one.
fn ends(interval: Option<Interval>, decimals: i32) -> (Nullable<f64>, Nullable<f64>) {
    (
        interval.map(|i| round_to(i.low, decimals)).into(),
        interval.map(|i| round_to(i.high, decimals)).into(),
    )
}

/// The length of a trend's buckets. Weeks are ISO weeks, starting Monday;
/// all times are UTC.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum TrendBucket {
    Day,
    Week,
    Month,
}

/// What a trend's series are split by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum TrendGroupBy {
    /// One series, `all`.
    None,
    /// One series per touchpoint kind.
    Kind,
    /// One series per channel.
    Channel,
    /// One series per journey stage.
    Stage,
    /// One series per touchpoint with encounters in the window, named by id.
    Touchpoint,
}

/// What each point of a trend is tested against.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum TrendComparison {
    /// No test: the change fields are `null`.
    None,
    /// Each point's cNPS against the calendar bucket before it in the same
    /// series; the first point's against the bucket before the window.
    PreviousBucket,
}

/// What the perception-shift report is split by: the kind or stage of the
/// touchpoint of each candidate's latest scored encounter in the window.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum ShiftGroupBy {
    None,
    Kind,
    Stage,
}

/// Counts and perception of one bucket of a trend series.
#[derive(Object)]
pub struct TrendPoint {
    /// The first day of the calendar bucket (the window may start later in
    /// it; only encounters inside the window count).
    pub bucket_start: NaiveDate,
    /// Encounters in the bucket, scored or not.
    pub encounters: i64,
    /// Encounters with a score.
    pub scored: i64,
    /// Whether fewer scored encounters than the organization's
    /// `min_group_size` back this point: then its counts are shown, and
    /// `mean_score`, `cnps` and the promoter, passive and detractor counts
    /// are `null`. Always `false` while `min_group_size` is 0.
    pub suppressed: bool,
    /// Mean score (0-10) of the scored encounters, 2 decimals; `null` when
    /// nothing was scored or the point is suppressed.
    pub mean_score: Nullable<f64>,
    /// Scores of 9 or 10; `null` when the point is suppressed.
    pub promoters: Nullable<i64>,
    /// Scores of 7 or 8; `null` when the point is suppressed.
    pub passives: Nullable<i64>,
    /// Scores of 0 to 6; `null` when the point is suppressed.
    pub detractors: Nullable<i64>,
    /// % promoters − % detractors among scored encounters, 1 decimal;
    /// `null` when nothing was scored or the point is suppressed.
    pub cnps: Nullable<f64>,
    /// The lower end of the 95% t interval of `mean_score` (within 0-10),
    /// 2 decimals; `null` below two scores or when suppressed.
    pub mean_score_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_score_high: Nullable<f64>,
    /// The lower end of the 95% adjusted-Wald interval of `cnps` (within
    /// −100 to 100), 1 decimal; `null` when `cnps` is.
    pub cnps_low: Nullable<f64>,
    /// The upper end of that interval.
    pub cnps_high: Nullable<f64>,
    /// With `compare_to=previous_bucket`: the two-sided p-value of the z
    /// test of this point's cNPS against the calendar bucket before it
    /// (adjusted-Wald figures; for the first point, the whole bucket before
    /// the window, read for the purpose); `null` without the comparison, or
    /// when either bucket has no cNPS shown.
    pub cnps_change_p_value: Nullable<f64>,
    /// `cnps_change_p_value < 0.05`; `null` when the p-value is.
    pub cnps_change_significant: Nullable<bool>,
}

/// One line of a trend chart.
#[derive(Object)]
pub struct TrendSeries {
    /// The kind, channel or stage value, the touchpoint id, or `all`.
    #[oai(validator(max_length = 200))]
    pub group: String,
    /// Every bucket of the window, in time order, with zero counts where
    /// nothing happened.
    pub points: Vec<TrendPoint>,
}

/// Perception over time.
#[derive(Object)]
pub struct PerceptionTrend {
    pub bucket: TrendBucket,
    pub group_by: TrendGroupBy,
    pub compare_to: TrendComparison,
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    /// One series per value of `group_by`.
    pub series: Vec<TrendSeries>,
}

/// One touchpoint's reach and effect on perception in a window.
#[derive(Object)]
pub struct TouchpointImpact {
    /// The touchpoint.
    pub touchpoint_id: i64,
    /// The touchpoint's name.
    #[oai(validator(max_length = 200))]
    pub name: String,
    pub kind: Kind,
    pub channel: Channel,
    pub stage: Stage,
    /// Encounters with the touchpoint in the window.
    pub encounters: i64,
    /// Distinct candidates who met it in the window.
    pub candidates: i64,
    /// Encounters with the touchpoint in the window that have a score.
    pub scored: i64,
    /// Whether fewer scored encounters than the organization's
    /// `min_group_size` back this row: then its counts are shown, and
    /// `mean_score`, `cnps` and the shift figures are `null`. Always
    /// `false` while `min_group_size` is 0.
    pub suppressed: bool,
    /// Mean score of the scored encounters, 2 decimals; `null` when nothing
    /// was scored or the row is suppressed.
    pub mean_score: Nullable<f64>,
    /// cNPS of the scored encounters, 1 decimal; `null` when nothing was
    /// scored or the row is suppressed.
    pub cnps: Nullable<f64>,
    /// The lower end of the 95% t interval of `mean_score` (within 0-10),
    /// 2 decimals; `null` below two scores or when suppressed.
    pub mean_score_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_score_high: Nullable<f64>,
    /// The lower end of the 95% adjusted-Wald interval of `cnps`, 1
    /// decimal; `null` when `cnps` is.
    pub cnps_low: Nullable<f64>,
    /// The upper end of that interval.
    pub cnps_high: Nullable<f64>,
    /// The sum of the shifts attributed to its encounters, 3 decimals;
    /// `null` when the row is suppressed or has fewer attributions than
    /// `min_group_size` (the shares of one pair of scores are one
    /// candidate's shift).
    pub attributed_shift_sum: Nullable<f64>,
    /// How many of its encounters received an attributed shift.
    pub attributions: i64,
    /// `attributed_shift_sum / attributions`, 3 decimals: how much one
    /// encounter with this touchpoint moves perception on average; `null`
    /// without attributions, and when `attributed_shift_sum` is.
    pub mean_attributed_shift: Nullable<f64>,
    /// The lower end of the 95% t interval of `mean_attributed_shift`
    /// (within −10 to 10), 3 decimals; `null` below two attributions or
    /// when `mean_attributed_shift` is.
    pub mean_attributed_shift_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_attributed_shift_high: Nullable<f64>,
    /// The two-sided p-value of a one-sample t test that the mean
    /// attributed shift is 0, before any correction; `null` when the
    /// interval is.
    pub mean_attributed_shift_p_value: Nullable<f64>,
    /// Whether the mean attributed shift differs from 0 after the
    /// Benjamini–Hochberg correction across every row of this answer (a
    /// false discovery rate of 5%); `null` when the p-value is.
    pub significant: Nullable<bool>,
}

impl TouchpointImpact {
    fn from_domain(row: impact::TouchpointImpact) -> Self {
        let f = &row.figures;
        let (mean_score_low, mean_score_high) = ends(f.mean_score_interval, 2);
        let (cnps_low, cnps_high) = ends(f.cnps_interval, 1);
        let (shift_low, shift_high) = ends(f.mean_attributed_shift_interval, 3);
        TouchpointImpact {
            touchpoint_id: row.touchpoint.id,
            name: row.touchpoint.name,
            kind: row.touchpoint.kind.into(),
            channel: row.touchpoint.channel.into(),
            stage: row.touchpoint.stage.into(),
            encounters: f.encounters,
            candidates: row.candidates as i64,
            scored: f.scored,
            suppressed: f.suppressed,
            mean_score: f.mean_score.map(|m| round_to(m, 2)).into(),
            cnps: f.cnps.into(),
            attributed_shift_sum: f.attributed_shift_sum.map(|s| round_to(s, 3)).into(),
            attributions: f.attributions,
            mean_attributed_shift: f.mean_attributed_shift.map(|m| round_to(m, 3)).into(),
            mean_score_low,
            mean_score_high,
            cnps_low,
            cnps_high,
            mean_attributed_shift_low: shift_low,
            mean_attributed_shift_high: shift_high,
            mean_attributed_shift_p_value: f.mean_attributed_shift_p_value.into(),
            significant: row.significant.into(),
        }
    }
}

/// Where perception is won and lost.
#[derive(Object)]
pub struct TouchpointImpactReport {
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    /// Every touchpoint with encounters in the window, sorted by mean
    /// attributed shift ascending (the touchpoints that hurt perception
    /// most first; those where it is `null` last), ties by encounters
    /// descending. `significant` is decided across all of them.
    pub touchpoints: Vec<TouchpointImpact>,
}

/// How many candidates shifted by one amount.
#[derive(Object)]
pub struct ShiftHistogramBin {
    /// Latest score minus first score, −10 to 10.
    pub shift: i32,
    /// Candidates whose perception shifted by `shift`.
    pub candidates: i64,
}

/// The overall shifts of one group of candidates.
#[derive(Object)]
pub struct ShiftGroup {
    /// The kind or stage value, or `all`.
    #[oai(validator(max_length = 200))]
    pub group: String,
    /// Candidates with at least two scores in the window.
    pub candidates: i64,
    /// Whether the group has fewer candidates than the organization's
    /// `min_group_size` (each candidate's shift is one value): then
    /// `candidates` is shown, the other counts and `mean_shift` are `null`
    /// and `histogram` is empty. Always `false` while `min_group_size` is 0.
    pub suppressed: bool,
    /// Candidates whose latest score is above their first; `null` when
    /// suppressed.
    pub improved: Nullable<i64>,
    /// Candidates whose latest score equals their first; `null` when
    /// suppressed.
    pub unchanged: Nullable<i64>,
    /// Candidates whose latest score is below their first; `null` when
    /// suppressed.
    pub declined: Nullable<i64>,
    /// The mean of latest minus first score, 2 decimals; `null` without
    /// candidates or when suppressed.
    pub mean_shift: Nullable<f64>,
    /// The lower end of the 95% t interval of `mean_shift` (within −10 to
    /// 10), 2 decimals; `null` below two candidates or when suppressed.
    pub mean_shift_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_shift_high: Nullable<f64>,
    /// All 21 shifts from −10 to 10, in order; empty when suppressed.
    #[oai(validator(max_items = 21))]
    pub histogram: Vec<ShiftHistogramBin>,
}

/// How candidates' perception moved over a window.
#[derive(Object)]
pub struct PerceptionShiftReport {
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    pub group_by: ShiftGroupBy,
    /// One group per value of `group_by`.
    pub groups: Vec<ShiftGroup>,
}

/// The headline figures of a window, against the window before it.
#[derive(Object)]
pub struct PerceptionSummary {
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    /// Distinct candidates with an encounter in the window.
    pub candidates: i64,
    /// Encounters in the window.
    pub encounters: i64,
    /// Encounters in the window that have a score.
    pub scored: i64,
    /// Whether the window has fewer scored encounters than the
    /// organization's `min_group_size`: then `mean_score`, `cnps` and
    /// `cnps_change` are `null`. Always `false` while `min_group_size` is 0.
    pub suppressed: bool,
    /// Mean score of the scored encounters, 2 decimals; `null` when nothing
    /// was scored or the window is suppressed.
    pub mean_score: Nullable<f64>,
    /// cNPS of the window, 1 decimal; `null` when nothing was scored or the
    /// window is suppressed.
    pub cnps: Nullable<f64>,
    /// The lower end of the 95% t interval of `mean_score` (within 0-10),
    /// 2 decimals; `null` below two scores or when suppressed.
    pub mean_score_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_score_high: Nullable<f64>,
    /// The lower end of the 95% adjusted-Wald interval of `cnps`, 1
    /// decimal; `null` when `cnps` is.
    pub cnps_low: Nullable<f64>,
    /// The upper end of that interval.
    pub cnps_high: Nullable<f64>,
    /// The start of the previous window of equal length (it ends at `from`).
    pub previous_from: NaiveDate,
    /// Encounters in the previous window that have a score.
    pub previous_scored: i64,
    /// Whether the previous window has fewer scored encounters than
    /// `min_group_size`: then `previous_cnps` and `cnps_change` are `null`.
    pub previous_suppressed: bool,
    /// cNPS of the previous window; `null` when nothing was scored in it or
    /// it is suppressed.
    pub previous_cnps: Nullable<f64>,
    /// The lower end of the 95% adjusted-Wald interval of `previous_cnps`.
    pub previous_cnps_low: Nullable<f64>,
    /// The upper end of that interval.
    pub previous_cnps_high: Nullable<f64>,
    /// `cnps - previous_cnps`, 1 decimal; `null` when either is.
    pub cnps_change: Nullable<f64>,
    /// The two-sided p-value of the z test of the change, on the
    /// adjusted-Wald figures of both windows: z = (NPS̃₂ − NPS̃₁) /
    /// √(V₁/n₁′ + V₂/n₂′); `null` when `cnps_change` is.
    pub cnps_change_p_value: Nullable<f64>,
    /// `cnps_change_p_value < 0.05`: the change is larger than chance alone
    /// would make it 95 times in 100; `null` when the p-value is.
    pub cnps_change_significant: Nullable<bool>,
    /// Touchpoints of the impact report whose mean attributed shift was
    /// tested (those with a `significant` value).
    pub touchpoints_tested: i64,
    /// How many of them are significant (Benjamini–Hochberg, 5% false
    /// discovery rate): the only ones `most_positive` and `most_negative`
    /// list.
    pub touchpoints_significant: i64,
    /// Up to three touchpoints with the highest positive mean attributed
    /// shift, best first, chosen among the significant ones only: a
    /// touchpoint whose shift may be chance, or whose figures are
    /// suppressed, is never listed.
    #[oai(validator(max_items = 3))]
    pub most_positive: Vec<TouchpointImpact>,
    /// Up to three touchpoints with the most negative mean attributed
    /// shift, worst first, chosen among the significant ones only.
    #[oai(validator(max_items = 3))]
    pub most_negative: Vec<TouchpointImpact>,
}

/// What the perception-gap report is split by.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[oai(rename_all = "snake_case")]
pub enum GapGroupBy {
    /// One group, `all`.
    None,
    /// One group per touchpoint kind.
    Kind,
    /// One group per journey stage.
    Stage,
    /// One group per touchpoint with encounters in the window, named by id.
    Touchpoint,
}

/// The scores one source gave in a group.
#[derive(Object)]
pub struct SourcePerception {
    pub source: Source,
    /// Encounters of this source in the group, scored or not.
    pub encounters: i64,
    /// Those with a score.
    pub scored: i64,
    /// Whether fewer scores than the organization's `min_group_size` back
    /// these figures: then the counts are shown and everything else is
    /// `null`. Always `false` while `min_group_size` is 0.
    pub suppressed: bool,
    /// Mean score, 2 decimals; `null` when nothing was scored or suppressed.
    pub mean_score: Nullable<f64>,
    /// The lower end of the 95% t interval of `mean_score` (within 0-10),
    /// 2 decimals; `null` below two scores or when suppressed.
    pub mean_score_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_score_high: Nullable<f64>,
    /// cNPS, 1 decimal; `null` when nothing was scored or suppressed.
    pub cnps: Nullable<f64>,
    /// The lower end of the 95% adjusted-Wald interval of `cnps`, 1
    /// decimal; `null` when `cnps` is.
    pub cnps_low: Nullable<f64>,
    /// The upper end of that interval.
    pub cnps_high: Nullable<f64>,
}

impl SourcePerception {
    fn from_domain(source: &gap::SourceFigures) -> Self {
        let f = &source.figures;
        let (mean_score_low, mean_score_high) = ends(f.mean_score_interval, 2);
        let (cnps_low, cnps_high) = ends(f.cnps_interval, 1);
        SourcePerception {
            source: source.source.into(),
            encounters: f.encounters,
            scored: f.scored,
            suppressed: f.suppressed,
            mean_score: f.mean_score.map(|m| round_to(m, 2)).into(),
            mean_score_low,
            mean_score_high,
            cnps: f.cnps.into(),
            cnps_low,
            cnps_high,
        }
    }
}

/// One group's scores by source, and the gap between what recruiters
/// observe and what candidates say.
#[derive(Object)]
pub struct PerceptionGapGroup {
    /// The kind or stage value, the touchpoint id, or `all`.
    #[oai(validator(max_length = 200))]
    pub group: String,
    /// Every source, in the order of the vocabulary, with zero counts
    /// where it gave no score.
    #[oai(validator(max_items = 4))]
    pub sources: Vec<SourcePerception>,
    /// Recruiters' mean score minus candidates' own (`recruiter_observation`
    /// minus `candidate_survey`), 2 decimals: above 0, recruiters believe
    /// candidates are happier than candidates say. `null` unless both
    /// sources have at least two scores and neither is suppressed.
    pub mean_score_gap: Nullable<f64>,
    /// The lower end of Welch's 95% interval of `mean_score_gap` (unequal
    /// variances, Welch–Satterthwaite degrees of freedom), 2 decimals.
    pub mean_score_gap_low: Nullable<f64>,
    /// The upper end of that interval.
    pub mean_score_gap_high: Nullable<f64>,
    /// The two-sided p-value of Welch's t test that the gap is 0.
    pub mean_score_gap_p_value: Nullable<f64>,
    /// `mean_score_gap_p_value < 0.05`; `null` when the p-value is.
    pub gap_significant: Nullable<bool>,
    /// Recruiters' cNPS minus candidates', 1 decimal; `null` unless both
    /// show a cNPS.
    pub cnps_gap: Nullable<f64>,
}

/// Where recruiters' view of candidates' perception differs from the
/// candidates' own.
#[derive(Object)]
pub struct PerceptionGapReport {
    /// The first day of the window (inclusive).
    pub from: NaiveDate,
    /// The day after the window (exclusive).
    pub to: NaiveDate,
    pub group_by: GapGroupBy,
    /// One group per value of `group_by` (at most 20,000 touchpoints).
    #[oai(validator(max_items = 20000))]
    pub groups: Vec<PerceptionGapGroup>,
}

fn point(p: &trend::TrendPoint) -> TrendPoint {
    let f: &Figures = &p.figures;
    let (mean_score_low, mean_score_high) = ends(f.mean_score_interval, 2);
    let (cnps_low, cnps_high) = ends(f.cnps_interval, 1);
    TrendPoint {
        bucket_start: p.bucket_start,
        mean_score_low,
        mean_score_high,
        cnps_low,
        cnps_high,
        cnps_change_p_value: p.cnps_change_p_value.into(),
        cnps_change_significant: p.cnps_change_p_value.map(is_significant).into(),
        encounters: f.encounters,
        scored: f.scored,
        suppressed: f.suppressed,
        mean_score: f.mean_score.map(|m| round_to(m, 2)).into(),
        promoters: f.promoters.into(),
        passives: f.passives.into(),
        detractors: f.detractors.into(),
        cnps: f.cnps.into(),
    }
}

#[derive(ApiResponse)]
pub enum TrendResponse {
    /// The trend, one series per group.
    #[oai(status = 200)]
    Ok(Json<PerceptionTrend>),
}

#[derive(ApiResponse)]
pub enum ImpactResponse {
    /// Touchpoints, the most harmful first.
    #[oai(status = 200)]
    Ok(Json<TouchpointImpactReport>),
}

#[derive(ApiResponse)]
pub enum ShiftResponse {
    /// Shift counts and histograms per group.
    #[oai(status = 200)]
    Ok(Json<PerceptionShiftReport>),
}

#[derive(ApiResponse)]
pub enum SummaryResponse {
    /// The window's headline figures.
    #[oai(status = 200)]
    Ok(Json<PerceptionSummary>),
}

#[derive(ApiResponse)]
pub enum GapResponse {
    /// Scores by source and the recruiter–candidate gap, per group.
    #[oai(status = 200)]
    Ok(Json<PerceptionGapReport>),
}

#[derive(Default)]
pub struct ReportsApi;

#[OpenApi(prefix_path = "/api/v1/reports", tag = "ApiTags::Reports")]
impl ReportsApi {
    /// Perception trend
    ///
    /// Encounters, scores and cNPS per day, ISO week or month, optionally
    /// split by kind, channel, stage or touchpoint and filtered. Every bucket
    /// of the window appears in every series. At most 1,000 buckets and
    /// 20,000 points (series × buckets: a year by day of 54 touchpoints, or
    /// any split by kind, channel or stage of 1,000 days); a larger trend is
    /// refused with 422 naming `bucket` (or `from` for monthly buckets),
    /// before anything is read: choose a larger bucket, a shorter window or
    /// fewer series (a filter, or another `group_by`).
    #[oai(
        path = "/perception-trend",
        method = "get",
        operation_id = "get_perception_trend"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn trend(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
        /// Bucket length (default `month`).
        bucket: Query<Option<TrendBucket>>,
        /// Split into series by (default `none`).
        group_by: Query<Option<TrendGroupBy>>,
        /// Only touchpoints of this kind.
        kind: Query<Option<Kind>>,
        /// Only touchpoints on this channel.
        channel: Query<Option<Channel>>,
        /// Only touchpoints at this stage.
        stage: Query<Option<Stage>>,
        /// Only this touchpoint.
        touchpoint_id: Query<Option<i64>>,
        /// Test each point's cNPS against the bucket before it (default
        /// `none`).
        compare_to: Query<Option<TrendComparison>>,
    ) -> Result<TrendResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let bucket = bucket.0.unwrap_or(TrendBucket::Month);
        let group_by = group_by.0.unwrap_or(TrendGroupBy::None);
        let compare_to = compare_to.0.unwrap_or(TrendComparison::None);
        let filter = trend::TrendFilter {
            kind: kind.0.map(Into::into),
            channel: channel.0.map(Into::into),
            stage: stage.0.map(Into::into),
            touchpoint_id: touchpoint_id.0,
        };
        let series = trend::trend(
            *db,
            auth.0.organization_id,
            &window,
            match bucket {
                TrendBucket::Day => trend::Bucket::Day,
                TrendBucket::Week => trend::Bucket::Week,
                TrendBucket::Month => trend::Bucket::Month,
            },
            match group_by {
                TrendGroupBy::None => trend::TrendGrouping::None,
                TrendGroupBy::Kind => trend::TrendGrouping::Kind,
                TrendGroupBy::Channel => trend::TrendGrouping::Channel,
                TrendGroupBy::Stage => trend::TrendGrouping::Stage,
                TrendGroupBy::Touchpoint => trend::TrendGrouping::Touchpoint,
            },
            &filter,
            match compare_to {
                TrendComparison::None => trend::Comparison::None,
                TrendComparison::PreviousBucket => trend::Comparison::PreviousBucket,
            },
        )
        .await?;
        Ok(TrendResponse::Ok(Json(PerceptionTrend {
            bucket,
            group_by,
            compare_to,
            from: window.from,
            to: window.to,
            series: series
                .into_iter()
                .map(|s| TrendSeries {
                    group: s.group,
                    points: s.points.iter().map(point).collect(),
                })
                .collect(),
        })))
    }

    /// Touchpoint impact
    ///
    /// For each touchpoint met in the window: encounters, distinct
    /// candidates, scores, cNPS and the perception shift attributed to it.
    /// Attribution: for every pair of consecutive scores of one candidate,
    /// the shift (later minus earlier) is shared equally among that
    /// candidate's encounters after the earlier score up to and including
    /// the later one; a touchpoint's figures sum the shares of its
    /// encounters in the window. Sorted so the touchpoints that hurt
    /// perception most come first. At most 20,000 touchpoints met in the
    /// window; more is refused with 422 naming `from`.
    #[oai(
        path = "/touchpoint-impact",
        method = "get",
        operation_id = "get_touchpoint_impact"
    )]
    async fn impact(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
    ) -> Result<ImpactResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let rows = impact::touchpoint_impact(*db, auth.0.organization_id, &window).await?;
        Ok(ImpactResponse::Ok(Json(TouchpointImpactReport {
            from: window.from,
            to: window.to,
            touchpoints: rows
                .into_iter()
                .map(TouchpointImpact::from_domain)
                .collect(),
        })))
    }

    /// Perception shift
    ///
    /// For candidates with at least two scores in the window, their overall
    /// shift (latest minus first score in the window): how many improved,
    /// stayed and declined, the mean shift and a histogram, optionally
    /// grouped by the kind or stage of the touchpoint of each candidate's
    /// latest scored encounter.
    #[oai(
        path = "/perception-shift",
        method = "get",
        operation_id = "get_perception_shift"
    )]
    async fn shift(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
        /// Split by (default `none`).
        group_by: Query<Option<ShiftGroupBy>>,
    ) -> Result<ShiftResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let group_by = group_by.0.unwrap_or(ShiftGroupBy::None);
        let groups = shift::perception_shift(
            *db,
            auth.0.organization_id,
            &window,
            match group_by {
                ShiftGroupBy::None => shift::ShiftGrouping::None,
                ShiftGroupBy::Kind => shift::ShiftGrouping::Kind,
                ShiftGroupBy::Stage => shift::ShiftGrouping::Stage,
            },
        )
        .await?;
        Ok(ShiftResponse::Ok(Json(PerceptionShiftReport {
            from: window.from,
            to: window.to,
            group_by,
            groups: groups
                .into_iter()
                .map(|g| ShiftGroup {
                    mean_shift: g.mean_shift.map(|m| round_to(m, 2)).into(),
                    mean_shift_low: ends(g.mean_shift_interval, 2).0,
                    mean_shift_high: ends(g.mean_shift_interval, 2).1,
                    histogram: g
                        .histogram
                        .iter()
                        .flatten()
                        .zip(-10..)
                        .map(|(&candidates, shift)| ShiftHistogramBin { shift, candidates })
                        .collect(),
                    group: g.group,
                    candidates: g.candidates,
                    suppressed: g.suppressed,
                    improved: g.improved.into(),
                    unchanged: g.unchanged.into(),
                    declined: g.declined.into(),
                })
                .collect(),
        })))
    }

    /// Perception summary
    ///
    /// Totals and cNPS of the window with their 95% intervals, cNPS of the
    /// previous window of equal length, the change and whether it is
    /// significant, and the three touchpoints with the most positive and
    /// the most negative mean attributed shift among those whose shift is
    /// significant. At most 20,000 touchpoints met in the window; more is
    /// refused with 422 naming `from`.
    #[oai(
        path = "/summary",
        method = "get",
        operation_id = "get_perception_summary"
    )]
    async fn summary(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
    ) -> Result<SummaryResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let summary = summary::summary(*db, auth.0.organization_id, &window).await?;
        let (current, previous) = (&summary.current, &summary.previous);
        let (cnps, previous_cnps) = (current.cnps, previous.cnps);
        let (mean_score_low, mean_score_high) = ends(current.mean_score_interval, 2);
        let (cnps_low, cnps_high) = ends(current.cnps_interval, 1);
        let (previous_cnps_low, previous_cnps_high) = ends(previous.cnps_interval, 1);
        Ok(SummaryResponse::Ok(Json(PerceptionSummary {
            mean_score_low,
            mean_score_high,
            cnps_low,
            cnps_high,
            previous_scored: previous.scored,
            previous_cnps_low,
            previous_cnps_high,
            cnps_change_p_value: summary.cnps_change_p_value.into(),
            cnps_change_significant: summary.cnps_change_p_value.map(is_significant).into(),
            touchpoints_tested: summary.touchpoints_tested as i64,
            touchpoints_significant: summary.touchpoints_significant as i64,
            from: window.from,
            to: window.to,
            candidates: summary.candidates as i64,
            encounters: current.encounters,
            scored: current.scored,
            suppressed: current.suppressed,
            mean_score: current.mean_score.map(|m| round_to(m, 2)).into(),
            cnps: cnps.into(),
            previous_from: summary.previous_window.from,
            previous_suppressed: previous.suppressed,
            previous_cnps: previous_cnps.into(),
            cnps_change: cnps
                .zip(previous_cnps)
                .map(|(now, before)| round_to(now - before, 1))
                .into(),
            most_positive: summary
                .most_positive
                .into_iter()
                .map(TouchpointImpact::from_domain)
                .collect(),
            most_negative: summary
                .most_negative
                .into_iter()
                .map(TouchpointImpact::from_domain)
                .collect(),
        })))
    }

    /// Perception gap
    ///
    /// Per group of touchpoints, the scored count, mean score and cNPS of
    /// each source (recruiters' observations, candidates' own surveys,
    /// review imports, other), each with its 95% interval, and the gap
    /// between recruiters' mean score and candidates' own with Welch's
    /// interval and test: where recruiters think candidates are happier
    /// than candidates say. Read from the rollups, like every report, with
    /// the same small-group suppression. With `group_by=touchpoint`, at
    /// most 20,000 touchpoints met in the window; more is refused with 422
    /// naming `from`.
    #[oai(
        path = "/perception-gap",
        method = "get",
        operation_id = "get_perception_gap"
    )]
    async fn gap(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// First day of the window (UTC, inclusive).
        from: Query<NaiveDate>,
        /// Day after the window (UTC, exclusive); after `from`.
        to: Query<NaiveDate>,
        /// Split by (default `none`).
        group_by: Query<Option<GapGroupBy>>,
    ) -> Result<GapResponse, ApiError> {
        auth.0.require(Capability::Read)?;
        let window = Window::new(from.0, to.0)?;
        let group_by = group_by.0.unwrap_or(GapGroupBy::None);
        let groups = gap::perception_gap(
            *db,
            auth.0.organization_id,
            &window,
            match group_by {
                GapGroupBy::None => gap::GapGrouping::None,
                GapGroupBy::Kind => gap::GapGrouping::Kind,
                GapGroupBy::Stage => gap::GapGrouping::Stage,
                GapGroupBy::Touchpoint => gap::GapGrouping::Touchpoint,
            },
        )
        .await?;
        Ok(GapResponse::Ok(Json(PerceptionGapReport {
            from: window.from,
            to: window.to,
            group_by,
            groups: groups
                .into_iter()
                .map(|g| {
                    let interval = g.gap.map(|gap| gap.interval);
                    let (mean_score_gap_low, mean_score_gap_high) = ends(interval, 2);
                    let p_value = g.gap.map(|gap| gap.p_value);
                    PerceptionGapGroup {
                        sources: g
                            .sources
                            .iter()
                            .map(SourcePerception::from_domain)
                            .collect(),
                        mean_score_gap: g.gap.map(|gap| round_to(gap.difference, 2)).into(),
                        mean_score_gap_low,
                        mean_score_gap_high,
                        mean_score_gap_p_value: p_value.into(),
                        gap_significant: p_value.map(is_significant).into(),
                        cnps_gap: g.cnps_gap.map(|c| round_to(c, 1)).into(),
                        group: g.group,
                    }
                })
                .collect(),
        })))
    }
}
