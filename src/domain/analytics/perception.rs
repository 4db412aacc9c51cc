//! The arithmetic of perception, free of storage: calendar numbers, cNPS,
//! the attribution of shifts to touchpoints, and what one candidate's
//! encounters contribute to the rollups the reports read.
//!
//! A candidate's contribution depends on their whole ordered history (an
//! inserted score changes the shift attributed to its neighbours), so every
//! write recomputes the contribution of the candidates it touches before and
//! after, and applies the difference ([`RollupDelta`]).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use entity::enums::Source;

// ---------------------------------------------------------------------------
// Calendar numbers
// ---------------------------------------------------------------------------

const SECONDS_PER_DAY: i64 = 86_400;

/// Days since 1970-01-01 (UTC) of a moment.
pub fn day_of(moment: DateTime<Utc>) -> i32 {
    moment.timestamp().div_euclid(SECONDS_PER_DAY) as i32
}

/// Days since 1970-01-01 of a date.
pub fn day_of_date(date: NaiveDate) -> i32 {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch")).num_days() as i32
}

/// The date of a day number.
pub fn date_of_day(day: i32) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(day.into())
}

/// The day number of the Monday that starts the ISO week of `day`.
pub fn week_of(day: i32) -> i32 {
    // 1970-01-01 was a Thursday: day 0 is three days after a Monday.
    day - (day + 3).rem_euclid(7)
}

/// `year * 12 + month - 1` of a day number.
pub fn month_of(day: i32) -> i32 {
    let date = date_of_day(day);
    date.year() * 12 + date.month0() as i32
}

/// The day number of the first day of a month number.
pub fn month_start(month: i32) -> i32 {
    let date = NaiveDate::from_ymd_opt(month.div_euclid(12), month.rem_euclid(12) as u32 + 1, 1)
        .expect("a valid month");
    day_of_date(date)
}

// ---------------------------------------------------------------------------
// cNPS
// ---------------------------------------------------------------------------

/// Where a 0-10 score puts a candidate: promoter 9-10, passive 7-8,
/// detractor 0-6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreClass {
    Promoter,
    Passive,
    Detractor,
}

pub fn class_of(score: i32) -> ScoreClass {
    match score {
        9.. => ScoreClass::Promoter,
        7..=8 => ScoreClass::Passive,
        _ => ScoreClass::Detractor,
    }
}

/// % promoters − % detractors among `scored` scores, rounded to one decimal;
/// `None` (undefined, never 0) when nothing was scored.
pub fn cnps(promoters: i64, detractors: i64, scored: i64) -> Option<f64> {
    (scored > 0).then(|| round_to(100.0 * (promoters - detractors) as f64 / scored as f64, 1))
}

/// The mean of `sum` over `count` values; `None` for none.
pub fn mean(sum: f64, count: i64) -> Option<f64> {
    (count > 0).then(|| sum / count as f64)
}

/// Rounds half away from zero to `decimals` places.
pub fn round_to(value: f64, decimals: i32) -> f64 {
    let factor = 10f64.powi(decimals);
    (value * factor).round() / factor
}

// ---------------------------------------------------------------------------
// Attribution
// ---------------------------------------------------------------------------

/// The shift attributed to each encounter of one candidate, given their
/// scores in time order: for every pair of consecutive scores, the shift
/// (later minus earlier) is shared equally among the encounters after the
/// earlier score up to and including the later one. Encounters before the
/// first score and after the latest get `None`.
pub fn attributed_shifts(scores: &[Option<i32>]) -> Vec<Option<f64>> {
    let mut shares = vec![None; scores.len()];
    let mut previous: Option<(usize, i32)> = None;
    for (index, score) in scores.iter().enumerate() {
        let Some(score) = *score else { continue };
        if let Some((at, before)) = previous {
            let share = f64::from(score - before) / (index - at) as f64;
            for slot in &mut shares[at + 1..=index] {
                *slot = Some(share);
            }
        }
        previous = Some((index, score));
    }
    shares
}

/// The step of the grid the rollups hold shares and their squares on:
/// 2^-26, about 1.5e-8.
const SHARE_GRID: f64 = 1.0 / (1u64 << 26) as f64;

/// `value` to the nearest point of the share grid. A share such as 1/3 has
/// no exact binary value, so sums of shares would depend on the order they
/// were added in: the rollups the projector built step by step could
/// differ in the last bit from a rebuild, and a figure on a rounding
/// boundary round the other way (a crash test caught this once on
/// PostgreSQL). Sums of grid points are exact, and so independent of
/// order, while below 2^27 in magnitude: 13 million shares of the largest
/// size, ±10, or 1.3 million of their squares, in one figure. Each share
/// moves by at most half a step, 7.5e-9.
pub fn on_share_grid(value: f64) -> f64 {
    (value / SHARE_GRID).round() * SHARE_GRID
}

// ---------------------------------------------------------------------------
// Rollup contributions
// ---------------------------------------------------------------------------

/// One row of `perception_source_daily`: a touchpoint's encounters of one
/// source on one day. A row of `perception_daily` sums its sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayKey {
    pub touchpoint_id: i64,
    pub day: i32,
    pub source: Source,
}

/// A counter's number: a count or sum of whole numbers, or a sum of
/// fractional shares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CounterValue {
    Integer(i64),
    Real(f64),
}

/// The type of a counter field.
pub trait Counter: Copy {
    const IS_INTEGER: bool;
    fn value(self) -> CounterValue;
    fn from_value(value: CounterValue) -> Self;
    fn times(self, sign: i64) -> Self;
}

impl Counter for i64 {
    const IS_INTEGER: bool = true;
    fn value(self) -> CounterValue {
        CounterValue::Integer(self)
    }
    fn from_value(value: CounterValue) -> Self {
        match value {
            CounterValue::Integer(n) => n,
            CounterValue::Real(x) => x as i64,
        }
    }
    fn times(self, sign: i64) -> Self {
        sign * self
    }
}

impl Counter for f64 {
    const IS_INTEGER: bool = false;
    fn value(self) -> CounterValue {
        CounterValue::Real(self)
    }
    fn from_value(value: CounterValue) -> Self {
        match value {
            CounterValue::Integer(n) => n as f64,
            CounterValue::Real(x) => x,
        }
    }
    fn times(self, sign: i64) -> Self {
        sign as f64 * self
    }
}

/// Declares [`Counters`] once: each field is also the column that stores
/// it in every rollup table (`perception_daily`, `perception_monthly` and
/// their `perception_source_` twins), so the writer and the reports derive
/// the column list from here.
macro_rules! counters {
    ($( $(#[$doc:meta])* $field:ident: $ty:ty, )+) => {
        /// The counters of a rollup row, or a change to them.
        #[derive(Debug, Clone, Copy, Default, PartialEq)]
        pub struct Counters {
            $( $(#[$doc])* pub $field: $ty, )+
        }

        impl Counters {
            /// The columns, in field order, with whether each holds an
            /// integer (otherwise a real number).
            pub const COLUMNS: &'static [(&'static str, bool)] =
                &[$( (stringify!($field), <$ty as Counter>::IS_INTEGER) ),+];

            /// The values, in [`Self::COLUMNS`] order.
            pub fn values(&self) -> Vec<CounterValue> {
                vec![$( self.$field.value() ),+]
            }

            /// Reads each counter from `read(column, is_integer)`.
            pub fn read<E>(
                mut read: impl FnMut(&'static str, bool) -> Result<CounterValue, E>,
            ) -> Result<Self, E> {
                Ok(Counters {
                    $( $field: <$ty as Counter>::from_value(
                        read(stringify!($field), <$ty as Counter>::IS_INTEGER)?,
                    ), )+
                })
            }

            /// `self + sign * other`, field by field.
            pub fn add(&mut self, other: &Counters, sign: i64) {
                $( self.$field += other.$field.times(sign); )+
            }
        }
    };
}

counters! {
    /// Encounters.
    encounters: i64,
    /// Encounters with a score.
    scored: i64,
    /// The sum of their scores.
    score_sum: i64,
    /// The sum of the squares of their scores: with `scored` and
    /// `score_sum`, the variance behind the mean score's interval.
    score_sq_sum: i64,
    /// Scores of 9 or 10.
    promoters: i64,
    /// Scores of 7 or 8.
    passives: i64,
    /// Scores of 0 to 6.
    detractors: i64,
    /// The sum of the shifts attributed to the touchpoint.
    attributed_sum: f64,
    /// The sum of their squares.
    attributed_sq_sum: f64,
    /// How many shifts were attributed.
    attributions: i64,
}

impl Counters {
    fn count(&mut self, score: Option<i32>, share: Option<f64>) {
        self.encounters += 1;
        if let Some(score) = score {
            self.scored += 1;
            self.score_sum += i64::from(score);
            self.score_sq_sum += i64::from(score * score);
            match class_of(score) {
                ScoreClass::Promoter => self.promoters += 1,
                ScoreClass::Passive => self.passives += 1,
                ScoreClass::Detractor => self.detractors += 1,
            }
        }
        if let Some(share) = share {
            let share = on_share_grid(share);
            self.attributed_sum += share;
            self.attributed_sq_sum += on_share_grid(share * share);
            self.attributions += 1;
        }
    }

    pub fn is_zero(&self) -> bool {
        *self == Counters::default()
    }

    /// One scored encounter that carries no shift: an anonymous survey
    /// answer, which belongs to no candidate's history.
    pub fn of_score(score: i32) -> Counters {
        let mut counters = Counters::default();
        counters.count(Some(score), None);
        counters
    }
}

/// Whether a reach bitmap covers a day or a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Span {
    Day,
    Month,
}

impl Span {
    pub fn as_str(self) -> &'static str {
        match self {
            Span::Day => "day",
            Span::Month => "month",
        }
    }
}

/// One row of `touchpoint_reach`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReachKey {
    pub span: Span,
    pub period: i32,
    pub touchpoint_id: i64,
}

/// The fields of an encounter that perception depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncounterPoint {
    pub id: i64,
    /// The write that recorded (or last changed) it, in the organization's
    /// change log: what tells the projected from the pending.
    pub change_seq: i64,
    pub touchpoint_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub score: Option<i32>,
    pub source: Source,
}

/// One day with scores of one candidate: the day's first and latest score,
/// in order of time then id, and the touchpoint of the latest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScoreDay {
    pub day: i32,
    pub first_score: i32,
    pub latest_score: i32,
    /// Whether the day has more than one score.
    pub several: bool,
    pub latest_touchpoint_id: i64,
}

/// A candidate's days with scores, in order (a row of
/// `candidate_score_days`). Report windows are whole days, so they give
/// any window's first and latest score of the candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreDays(pub Vec<ScoreDay>);

/// A candidate's first and latest score in a window, and the touchpoint of
/// the latest: their shift there, when they are two encounters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowScores {
    pub first_score: i32,
    pub latest_score: i32,
    pub latest_touchpoint_id: i64,
    /// Whether the window holds more than one score.
    pub several: bool,
}

impl ScoreDays {
    /// The first and latest score on the days `from` (inclusive) to `to`
    /// (exclusive); `None` without a score there.
    pub fn in_window(&self, from: i32, to: i32) -> Option<WindowScores> {
        let start = self.0.partition_point(|d| d.day < from);
        let end = self.0.partition_point(|d| d.day < to);
        window_scores(self.0.get(start..end)?.iter().copied())
    }

    /// [`in_window`](Self::in_window) of the days [`encode`](Self::encode)
    /// wrote, read as far as `to` without building them (`None` if the
    /// bytes are not such days): the perception-shift report reads every
    /// candidate's days.
    pub fn encoded_in_window(bytes: &[u8], from: i32, to: i32) -> Option<Option<WindowScores>> {
        // Only the first and the latest day count, and whether there are
        // more.
        let mut first_and_latest: Option<(ScoreDay, ScoreDay, usize)> = None;
        for day in (EncodedDays { bytes, previous: 0 }) {
            let day = day?;
            if day.day >= to {
                break;
            }
            if day.day >= from {
                first_and_latest = Some(match first_and_latest {
                    None => (day, day, 1),
                    Some((first, _, count)) => (first, day, count + 1),
                });
            }
        }
        Some(first_and_latest.and_then(|(first, latest, count)| {
            window_scores([first, latest].into_iter().take(count))
        }))
    }

    /// Packs the days: for each, the day's difference from the one before
    /// (from 0; zigzag LEB128), the first score, the latest score (+128
    /// when the day has several), and the touchpoint id (LEB128). About
    /// four bytes a day.
    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.0.len() * 4);
        let mut previous = 0i64;
        for day in &self.0 {
            let delta = i64::from(day.day) - previous;
            previous = i64::from(day.day);
            push_varint(&mut bytes, ((delta << 1) ^ (delta >> 63)) as u64);
            bytes.push(day.first_score as u8);
            bytes.push(day.latest_score as u8 | if day.several { 0x80 } else { 0 });
            push_varint(&mut bytes, day.latest_touchpoint_id as u64);
        }
        bytes
    }

    /// Reads what [`encode`](Self::encode) wrote; `None` if it is not that.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        EncodedDays { bytes, previous: 0 }
            .collect::<Option<Vec<_>>>()
            .map(ScoreDays)
    }
}

/// The first and latest score of `days` (in order), and whether they hold
/// more than one.
fn window_scores(mut days: impl Iterator<Item = ScoreDay>) -> Option<WindowScores> {
    let first = days.next()?;
    let latest = days.last();
    let several = latest.is_some() || first.several;
    let latest = latest.unwrap_or(first);
    Some(WindowScores {
        first_score: first.first_score,
        latest_score: latest.latest_score,
        latest_touchpoint_id: latest.latest_touchpoint_id,
        several,
    })
}

/// The days [`ScoreDays::encode`] wrote, read one by one; an item is
/// `None` where the bytes stop being such days (and then they end).
struct EncodedDays<'a> {
    bytes: &'a [u8],
    previous: i64,
}

impl Iterator for EncodedDays<'_> {
    type Item = Option<ScoreDay>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        let day = self.read();
        if day.is_none() {
            self.bytes = &[];
        }
        Some(day)
    }
}

impl EncodedDays<'_> {
    fn read(&mut self) -> Option<ScoreDay> {
        let zigzag = read_varint(&mut self.bytes)?;
        let delta = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
        self.previous += delta;
        let (&[first, latest], rest) = self.bytes.split_first_chunk::<2>()?;
        self.bytes = rest;
        let touchpoint = read_varint(&mut self.bytes)?;
        Some(ScoreDay {
            day: i32::try_from(self.previous).ok()?,
            first_score: i32::from(first),
            latest_score: i32::from(latest & 0x7f),
            several: latest & 0x80 != 0,
            latest_touchpoint_id: i64::try_from(touchpoint).ok()?,
        })
    }
}

fn push_varint(bytes: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        bytes.push(value as u8 | 0x80);
        value >>= 7;
    }
    bytes.push(value as u8);
}

fn read_varint(bytes: &mut &[u8]) -> Option<u64> {
    // Most values (a day's step, a small touchpoint id) are one byte.
    if let Some((&byte, rest)) = bytes.split_first() {
        if byte < 0x80 {
            *bytes = rest;
            return Some(u64::from(byte));
        }
    }
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// What one candidate's encounters add to the rollups.
#[derive(Debug, Default, PartialEq)]
pub struct Contribution {
    pub counters: HashMap<DayKey, Counters>,
    pub reach: BTreeSet<ReachKey>,
    /// Empty when no encounter is scored.
    pub score_days: ScoreDays,
}

/// The contribution of one candidate's encounters (in any order).
pub fn contribution(points: &[EncounterPoint]) -> Contribution {
    let mut ordered: Vec<&EncounterPoint> = points.iter().collect();
    ordered.sort_by_key(|p| (p.occurred_at, p.id));
    let scores: Vec<Option<i32>> = ordered.iter().map(|p| p.score).collect();
    let shares = attributed_shifts(&scores);
    let mut result = Contribution::default();
    for (point, share) in ordered.into_iter().zip(shares) {
        let day = day_of(point.occurred_at);
        if let Some(score) = point.score {
            match result.score_days.0.last_mut() {
                Some(same) if same.day == day => {
                    same.latest_score = score;
                    same.latest_touchpoint_id = point.touchpoint_id;
                    same.several = true;
                }
                _ => result.score_days.0.push(ScoreDay {
                    day,
                    first_score: score,
                    latest_score: score,
                    several: false,
                    latest_touchpoint_id: point.touchpoint_id,
                }),
            }
        }
        result
            .counters
            .entry(DayKey {
                touchpoint_id: point.touchpoint_id,
                day,
                source: point.source,
            })
            .or_default()
            .count(point.score, share);
        for (span, period) in [(Span::Day, day), (Span::Month, month_of(day))] {
            result.reach.insert(ReachKey {
                span,
                period,
                touchpoint_id: point.touchpoint_id,
            });
        }
    }
    result
}

/// Changes to apply to the rollups, merged over any number of candidates.
#[derive(Debug, Default)]
pub struct RollupDelta {
    pub counters: BTreeMap<DayKey, Counters>,
    /// Candidates to add to (`true`) or remove from (`false`) each bitmap.
    pub reach: BTreeMap<ReachKey, Vec<(i64, bool)>>,
    /// Candidates whose scored days changed, with the new ones (empty: no
    /// score left).
    pub score_days: BTreeMap<i64, ScoreDays>,
}

impl RollupDelta {
    /// Adds the change from `before` to `after` of one candidate.
    pub fn record(&mut self, candidate_id: i64, before: &Contribution, after: &Contribution) {
        for (key, counters) in &after.counters {
            let mut change = *counters;
            if let Some(old) = before.counters.get(key) {
                // Unchanged rows are skipped, so floating-point sums only
                // move where something really changed.
                if old == counters {
                    continue;
                }
                change.add(old, -1);
            }
            self.add_counters(*key, &change);
        }
        for (key, old) in &before.counters {
            if !after.counters.contains_key(key) {
                let mut change = Counters::default();
                change.add(old, -1);
                self.add_counters(*key, &change);
            }
        }
        for key in after.reach.difference(&before.reach) {
            self.reach
                .entry(*key)
                .or_default()
                .push((candidate_id, true));
        }
        for key in before.reach.difference(&after.reach) {
            self.reach
                .entry(*key)
                .or_default()
                .push((candidate_id, false));
        }
        if before.score_days != after.score_days {
            self.score_days
                .insert(candidate_id, after.score_days.clone());
        }
    }

    fn add_counters(&mut self, key: DayKey, change: &Counters) {
        self.counters.entry(key).or_default().add(change, 1);
    }

    pub fn is_empty(&self) -> bool {
        self.counters.values().all(Counters::is_zero)
            && self.reach.is_empty()
            && self.score_days.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, s).unwrap()
    }

    #[test]
    fn calendar_numbers() {
        assert_eq!(day_of(at(1970, 1, 1, 23, 59, 59)), 0);
        assert_eq!(day_of(at(1969, 12, 31, 23, 59, 59)), -1);
        // 2026-03-01 is a Sunday, 2026-03-02 a Monday.
        let sunday = day_of(at(2026, 3, 1, 12, 0, 0));
        let monday = day_of(at(2026, 3, 2, 0, 0, 0));
        assert_eq!(week_of(sunday), monday - 7);
        assert_eq!(week_of(monday), monday);
        assert_eq!(week_of(monday + 6), monday);
        assert_eq!(date_of_day(week_of(0)).to_string(), "1969-12-29");
        // The last second of January is still January.
        let last = day_of(at(2026, 1, 31, 23, 59, 59));
        assert_eq!(month_of(last), 2026 * 12);
        assert_eq!(month_of(last + 1), 2026 * 12 + 1);
        assert_eq!(month_start(2026 * 12 + 1), last + 1);
        assert_eq!(day_of_date(date_of_day(20_000)), 20_000);
    }

    #[test]
    fn cnps_is_promoters_minus_detractors() {
        assert_eq!(cnps(0, 0, 0), None);
        assert_eq!(cnps(1, 0, 1), Some(100.0));
        assert_eq!(cnps(1, 2, 3), Some(-33.3));
        assert_eq!(cnps(2, 1, 3), Some(33.3));
        assert_eq!(cnps(0, 0, 5), Some(0.0));
        assert_eq!(class_of(6), ScoreClass::Detractor);
        assert_eq!(class_of(7), ScoreClass::Passive);
        assert_eq!(class_of(9), ScoreClass::Promoter);
    }

    #[test]
    fn shifts_are_shared_among_the_encounters_that_moved_them() {
        // 6, (none), 9: +3 shared by two encounters; 9 -> 3: -6 to one.
        assert_eq!(
            attributed_shifts(&[None, Some(6), None, Some(9), Some(3), None]),
            vec![None, None, Some(1.5), Some(1.5), Some(-6.0), None]
        );
        assert_eq!(attributed_shifts(&[Some(5)]), vec![None]);
        assert_eq!(
            attributed_shifts(&[Some(5), Some(5)]),
            vec![None, Some(0.0)]
        );
    }

    #[test]
    fn sums_of_shares_do_not_depend_on_their_order() {
        use rand::{rngs::StdRng, seq::SliceRandom, Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(26);
        let mut shares: Vec<f64> = (0..20_000)
            .map(|_| f64::from(rng.random_range(-10..=10)) / f64::from(rng.random_range(1..40)))
            .collect();
        let sum = |shares: &[f64]| {
            let mut counters = Counters::default();
            for share in shares {
                counters.count(None, Some(*share));
            }
            counters
        };
        let forward = sum(&shares);
        shares.shuffle(&mut rng);
        assert_eq!(sum(&shares), forward);
        shares.reverse();
        assert_eq!(sum(&shares), forward);
        // Without the grid the order shows in the last bits.
        let raw = |shares: &[f64]| shares.iter().sum::<f64>();
        let mut sorted = shares.clone();
        sorted.sort_by(f64::total_cmp);
        assert_ne!(raw(&sorted), raw(&shares));
        // Each share moves by at most half a step.
        assert!(shares
            .iter()
            .all(|share| (on_share_grid(*share) - share).abs() <= 0.5 / (1u64 << 26) as f64));
        assert_eq!(on_share_grid(-1.5), -1.5);
        assert_eq!(on_share_grid(1.0 / 3.0), -on_share_grid(-1.0 / 3.0));
    }

    fn point(id: i64, touchpoint_id: i64, day: u32, score: Option<i32>) -> EncounterPoint {
        EncounterPoint {
            id,
            change_seq: 1,
            touchpoint_id,
            occurred_at: at(2026, 3, day, 10, 0, 0),
            score,
            source: Source::CandidateSurvey,
        }
    }

    #[test]
    fn a_new_score_changes_its_neighbours_attribution() {
        let before = contribution(&[point(1, 10, 1, Some(4)), point(2, 20, 2, None)]);
        let after = contribution(&[
            point(1, 10, 1, Some(4)),
            point(2, 20, 2, None),
            point(3, 30, 3, Some(8)),
        ]);
        let mut delta = RollupDelta::default();
        delta.record(7, &before, &after);
        let day2 = DayKey {
            touchpoint_id: 20,
            day: day_of(at(2026, 3, 2, 0, 0, 0)),
            source: Source::CandidateSurvey,
        };
        // Encounter 2 now carries half of +4; it was already counted.
        assert_eq!(delta.counters[&day2].encounters, 0);
        assert_eq!(delta.counters[&day2].attributed_sum, 2.0);
        assert_eq!(delta.counters[&day2].attributed_sq_sum, 4.0);
        assert_eq!(delta.counters[&day2].attributions, 1);
        // The first day did not change at all.
        assert!(!delta.counters.contains_key(&DayKey {
            touchpoint_id: 10,
            day: day2.day - 1,
            source: Source::CandidateSurvey,
        }));
        // Touchpoint 30 gains the candidate for that day and month.
        assert_eq!(
            delta
                .reach
                .iter()
                .filter(|(k, v)| k.touchpoint_id == 30 && v == &&vec![(7, true)])
                .count(),
            2
        );
        // Undoing the write is the exact opposite.
        let mut undo = RollupDelta::default();
        undo.record(7, &after, &before);
        for (key, change) in &delta.counters {
            let mut sum = *change;
            sum.add(&undo.counters[key], 1);
            assert!(sum.is_zero(), "{key:?}");
        }
    }

    #[test]
    fn moving_the_only_encounter_of_a_day_removes_the_reach() {
        let before = contribution(&[point(1, 10, 1, Some(4))]);
        let after = contribution(&[point(1, 11, 1, Some(4))]);
        let mut delta = RollupDelta::default();
        delta.record(3, &before, &after);
        assert!(delta
            .reach
            .iter()
            .any(|(k, v)| k.touchpoint_id == 10 && v == &vec![(3, false)]));
        assert!(!delta.is_empty());
        let mut nothing = RollupDelta::default();
        nothing.record(3, &before, &before);
        assert!(nothing.is_empty());
    }

    #[test]
    fn a_new_source_moves_the_counters_between_sources_only() {
        let before = contribution(&[point(1, 10, 1, Some(4)), point(2, 10, 2, Some(7))]);
        let recruiter = EncounterPoint {
            source: Source::RecruiterObservation,
            ..point(2, 10, 2, Some(7))
        };
        let after = contribution(&[point(1, 10, 1, Some(4)), recruiter]);
        let day = |source| DayKey {
            touchpoint_id: 10,
            day: day_of(at(2026, 3, 2, 0, 0, 0)),
            source,
        };
        assert_eq!(
            after.counters[&day(Source::RecruiterObservation)].score_sq_sum,
            49
        );
        assert_eq!(
            after.counters[&day(Source::RecruiterObservation)].attributed_sq_sum,
            9.0
        );
        let mut delta = RollupDelta::default();
        delta.record(3, &before, &after);
        // Out of one source's row, into the other's: the touchpoint's
        // totals and its reach do not move.
        assert_eq!(delta.counters.len(), 2);
        let mut total = Counters::default();
        for change in delta.counters.values() {
            total.add(change, 1);
        }
        assert!(total.is_zero(), "{total:?}");
        assert!(delta.reach.is_empty());
    }

    #[test]
    fn scored_days_give_each_windows_first_and_latest_score() {
        let point = |id, day: u32, hour, touchpoint_id, score| EncounterPoint {
            id,
            change_seq: id,
            touchpoint_id,
            occurred_at: at(2026, 3, day, hour, 0, 0),
            score,
            source: Source::Other,
        };
        // Given out of order; of two at the same instant the higher id is
        // the later, and an unscored encounter is no score.
        let points = [
            point(4, 9, 12, 70, None),
            point(3, 5, 12, 60, Some(2)),
            point(1, 2, 12, 50, Some(8)),
            point(2, 5, 12, 40, Some(6)),
            point(5, 7, 9, 300, Some(10)),
        ];
        let days = contribution(&points).score_days;
        let day = |d| day_of(at(2026, 3, d, 0, 0, 0));
        assert_eq!(days.0.len(), 3);
        assert_eq!(
            days.0[1],
            ScoreDay {
                day: day(5),
                first_score: 6,
                latest_score: 2,
                several: true,
                latest_touchpoint_id: 60,
            }
        );
        let whole = days.in_window(day(1), day(10)).unwrap();
        assert_eq!((whole.first_score, whole.latest_score), (8, 10));
        assert_eq!((whole.latest_touchpoint_id, whole.several), (300, true));
        // One day of two scores; one day of one; a window with none.
        let fifth = days.in_window(day(5), day(6)).unwrap();
        assert_eq!(
            (fifth.first_score, fifth.latest_score, fifth.several),
            (6, 2, true)
        );
        assert!(!days.in_window(day(7), day(9)).unwrap().several);
        assert_eq!(days.in_window(day(8), day(9)), None);
        assert_eq!(ScoreDays::decode(&days.encode()), Some(days.clone()));
        // Read from the bytes, every window gives what the days give.
        for from in day(1) - 1..day(11) {
            for to in from + 1..=day(11) {
                assert_eq!(
                    ScoreDays::encoded_in_window(&days.encode(), from, to),
                    Some(days.in_window(from, to)),
                    "days {from} to {to}"
                );
            }
        }
        assert_eq!(
            contribution(&[point(6, 1, 1, 50, None)]).score_days,
            ScoreDays::default()
        );

        // Far days, large ids and a day before 1970 survive the packing.
        let far = ScoreDays(vec![
            ScoreDay {
                day: -719_162,
                first_score: 0,
                latest_score: 10,
                several: true,
                latest_touchpoint_id: 1,
            },
            ScoreDay {
                day: 2_932_896,
                first_score: 10,
                latest_score: 0,
                several: false,
                latest_touchpoint_id: i64::MAX,
            },
        ]);
        assert_eq!(ScoreDays::decode(&far.encode()), Some(far));
        assert_eq!(ScoreDays::decode(&[0x80]), None, "a cut varint");
        assert_eq!(ScoreDays::decode(&[0x02, 5]), None, "a cut day");
        assert_eq!(ScoreDays::encoded_in_window(&[0x02, 5], 0, 9), None);
        let mut cut = days.encode();
        cut.push(0x80);
        assert_eq!(ScoreDays::encoded_in_window(&cut, 0, i32::MAX), None);

        // A delta carries a candidate's days only when they changed.
        let before = contribution(&points[..2]);
        let mut delta = RollupDelta::default();
        delta.record(7, &before, &contribution(&points));
        assert_eq!(delta.score_days.get(&7), Some(&days));
        let mut unchanged = RollupDelta::default();
        unchanged.record(7, &before, &contribution(&points[..2]));
        assert!(unchanged.score_days.is_empty());
    }
}
