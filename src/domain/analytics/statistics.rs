//! How sure a report's figures are: 95% intervals and two-sided tests,
//! computed from the counts and sums the rollups hold (never from the
//! encounters themselves), and the Benjamini–Hochberg procedure. Free of
//! storage. README's "How sure is this number?" states the same formulas.
//!
//! Every function assumes independent values; a candidate's many answers
//! are not, which README says too.

use std::sync::OnceLock;

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// The confidence of every interval, and 1 − the level of every test.
pub const CONFIDENCE: f64 = 0.95;
/// The level of every test, and the false discovery rate of
/// [`benjamini_hochberg`].
pub const ALPHA: f64 = 1.0 - CONFIDENCE;

/// A closed interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub low: f64,
    pub high: f64,
}

impl Interval {
    fn around(centre: f64, half_width: f64) -> Self {
        Interval {
            low: centre - half_width,
            high: centre + half_width,
        }
    }

    /// The interval limited to the values the figure can take.
    fn clipped(self, min: f64, max: f64) -> Self {
        Interval {
            low: self.low.clamp(min, max),
            high: self.high.clamp(min, max),
        }
    }
}

/// The standard normal quantile of 1 − ALPHA/2 (1.96 for 95%).
fn z_critical() -> f64 {
    static Z: OnceLock<f64> = OnceLock::new();
    *Z.get_or_init(|| standard_normal().inverse_cdf(1.0 - ALPHA / 2.0))
}

fn standard_normal() -> Normal {
    Normal::standard()
}

/// Whole degrees of freedom below this have their t quantile computed once.
/// A report needs one per point (a trend of 12 weeks by 60 touchpoints, 720)
/// and the inverse (statrs inverts the regularized incomplete beta function
/// by iteration) costs microseconds each: without the cache that trend took
/// twice as long at 1M encounters (README, Performance).
const CACHED_FREEDOM: usize = 4096;

/// Student's t quantile of 1 − ALPHA/2 with `freedom` degrees of freedom.
fn t_critical(freedom: f64) -> f64 {
    static CACHE: [OnceLock<f64>; CACHED_FREEDOM] = [const { OnceLock::new() }; CACHED_FREEDOM];
    let quantile = |freedom| students_t(freedom).inverse_cdf(1.0 - ALPHA / 2.0);
    let whole = freedom as usize;
    if whole as f64 == freedom && whole < CACHED_FREEDOM {
        *CACHE[whole].get_or_init(|| quantile(freedom))
    } else {
        quantile(freedom)
    }
}

fn students_t(freedom: f64) -> StudentsT {
    StudentsT::new(0.0, 1.0, freedom).expect("positive degrees of freedom")
}

/// The two-sided p-value of a t statistic.
fn t_p_value(t: f64, freedom: f64) -> f64 {
    (2.0 * students_t(freedom).sf(t.abs())).min(1.0)
}

/// The two-sided p-value of a z statistic.
fn z_p_value(z: f64) -> f64 {
    (2.0 * standard_normal().sf(z.abs())).min(1.0)
}

// ---------------------------------------------------------------------------
// cNPS: the adjusted-Wald interval (Rocks, 2016)
// ---------------------------------------------------------------------------

/// A net promoter figure with the adjusted-Wald correction: three
/// pseudo-answers, 0.75 promoter, 1.5 passive and 0.75 detractor, added to
/// the `n` real ones.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdjustedNps {
    /// p+ − p−, from −1 to 1.
    pub nps: f64,
    /// V = p+ + p− − (p+ − p−)²: the variance of one answer's value
    /// (+1, 0, −1).
    pub variance: f64,
    /// n + 3.
    pub n: f64,
}

impl AdjustedNps {
    /// The adjusted figure of `promoters` and `detractors` among `scored`
    /// answers; `None` when nothing was scored (the cNPS itself is
    /// undefined then).
    pub fn new(promoters: i64, detractors: i64, scored: i64) -> Option<Self> {
        if scored <= 0 {
            return None;
        }
        let n = scored as f64 + 3.0;
        let promoting = (promoters as f64 + 0.75) / n;
        let detracting = (detractors as f64 + 0.75) / n;
        let nps = promoting - detracting;
        Some(AdjustedNps {
            nps,
            variance: promoting + detracting - nps * nps,
            n,
        })
    }

    /// The 95% interval of the cNPS, in points (−100 to 100):
    /// 100·NPS̃ ± z·100·√(V/n′), clipped to [−100, 100].
    pub fn interval(&self) -> Interval {
        let half_width = z_critical() * 100.0 * (self.variance / self.n).sqrt();
        Interval::around(100.0 * self.nps, half_width).clipped(-100.0, 100.0)
    }

    /// The two-sided p-value of a z test that `later` and `earlier` come
    /// from the same cNPS: z = (NPS̃₂ − NPS̃₁) / √(V₁/n₁′ + V₂/n₂′).
    pub fn change_p_value(earlier: &Self, later: &Self) -> f64 {
        z_p_value(Self::change_z(earlier, later))
    }

    /// z = (NPS̃₂ − NPS̃₁) / √(V₁/n₁′ + V₂/n₂′), the statistic of
    /// [`Self::change_p_value`].
    pub fn change_z(earlier: &Self, later: &Self) -> f64 {
        let standard_error = (earlier.variance / earlier.n + later.variance / later.n).sqrt();
        (later.nps - earlier.nps) / standard_error
    }

    /// The one-sided p-value that `later` is lower than `earlier`: Φ(z) of
    /// [`Self::change_z`] (a drop alert's test).
    pub fn drop_p_value(earlier: &Self, later: &Self) -> f64 {
        standard_normal().cdf(Self::change_z(earlier, later))
    }
}

// ---------------------------------------------------------------------------
// Means: t intervals from the count, sum and sum of squares
// ---------------------------------------------------------------------------

/// `n` values summarized by their sum and sum of squares.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Moments {
    pub n: i64,
    pub sum: f64,
    pub sum_of_squares: f64,
}

impl Moments {
    pub fn new(n: i64, sum: f64, sum_of_squares: f64) -> Self {
        Moments {
            n,
            sum,
            sum_of_squares,
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The sample variance (n − 1 in the denominator); `None` below two
    /// values. Never negative: rounding in the stored sums can take
    /// Σx² − (Σx)²/n a hair below zero when every value is the same.
    pub fn variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| {
            let n = self.n as f64;
            ((self.sum_of_squares - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
        })
    }

    /// The variance of the mean, s²/n.
    fn mean_variance(&self) -> Option<f64> {
        Some(self.variance()? / self.n as f64)
    }

    /// The 95% t interval of the mean, x̄ ± t(n−1)·s/√n, limited to
    /// `[min, max]` (the values the figure can take); `None` below two
    /// values.
    pub fn mean_interval(&self, min: f64, max: f64) -> Option<Interval> {
        let mean = self.mean()?;
        let standard_error = self.mean_variance()?.sqrt();
        let freedom = (self.n - 1) as f64;
        Some(Interval::around(mean, t_critical(freedom) * standard_error).clipped(min, max))
    }

    /// The two-sided p-value of a one-sample t test that the mean is 0;
    /// `None` below two values. Values all equal have no spread: the mean
    /// is then certainly 0 (p = 1) or certainly not (p = 0).
    pub fn zero_mean_p_value(&self) -> Option<f64> {
        let mean = self.mean()?;
        let mean_variance = self.mean_variance()?;
        if mean_variance == 0.0 {
            return Some(if mean.abs() < EXACT_ZERO { 1.0 } else { 0.0 });
        }
        Some(t_p_value(mean / mean_variance.sqrt(), (self.n - 1) as f64))
    }
}

/// Below this a mean of shares summed in floating point is zero.
const EXACT_ZERO: f64 = 1e-9;

/// The difference of two means (`first` − `second`) with Welch's interval
/// and test (unequal variances, Welch–Satterthwaite degrees of freedom).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchDifference {
    pub difference: f64,
    pub interval: Interval,
    pub p_value: f64,
}

impl WelchDifference {
    /// `None` unless both groups have at least two values.
    pub fn new(first: &Moments, second: &Moments) -> Option<Self> {
        let difference = first.mean()? - second.mean()?;
        let (a, b) = (first.mean_variance()?, second.mean_variance()?);
        let standard_error = (a + b).sqrt();
        if standard_error == 0.0 {
            let certain = if difference.abs() < EXACT_ZERO {
                1.0
            } else {
                0.0
            };
            return Some(WelchDifference {
                difference,
                interval: Interval::around(difference, 0.0),
                p_value: certain,
            });
        }
        let freedom =
            (a + b).powi(2) / (a * a / (first.n - 1) as f64 + b * b / (second.n - 1) as f64);
        Some(WelchDifference {
            difference,
            interval: Interval::around(difference, t_critical(freedom) * standard_error),
            p_value: t_p_value(difference / standard_error, freedom),
        })
    }
}

// ---------------------------------------------------------------------------
// Many tests at once
// ---------------------------------------------------------------------------

/// Which of these p-values the Benjamini–Hochberg procedure rejects at a
/// false discovery rate of [`ALPHA`]: sorted ascending, the largest k with
/// p₍ₖ₎ ≤ k·α/m, and every p-value up to it.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<bool> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let cutoff = order
        .iter()
        .enumerate()
        .filter(|(rank, &index)| p_values[index] <= (rank + 1) as f64 * ALPHA / m as f64)
        .map(|(rank, _)| rank + 1)
        .max()
        .unwrap_or(0);
    let mut rejected = vec![false; m];
    for &index in &order[..cutoff] {
        rejected[index] = true;
    }
    rejected
}

/// Whether a p-value is below the level of every test.
pub fn is_significant(p_value: f64) -> bool {
    p_value < ALPHA
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    #[test]
    fn the_critical_values_are_the_textbook_ones() {
        close(z_critical(), 1.959_964, 1e-6);
        // t tables: 12.706 (1 df), 4.303 (2), 2.262 (9), 1.984 (100).
        close(t_critical(1.0), 12.706_205, 1e-5);
        close(t_critical(2.0), 4.302_653, 1e-5);
        close(t_critical(9.0), 2.262_157, 1e-5);
        close(t_critical(100.0), 1.983_972, 1e-5);
        // Cached or not, the same quantile.
        assert_eq!(t_critical(9.0), t_critical(9.0));
        close(t_critical(5000.0), 1.960_439, 1e-6);
        close(t_critical(3.857_142_857), 2.817_474, 1e-5);
    }

    #[test]
    fn adjusted_wald_by_hand() {
        assert_eq!(AdjustedNps::new(0, 0, 0), None);
        // n = 10: 5 promoters, 2 detractors. n' = 13, p+ = 5.75/13,
        // p- = 2.75/13, NPS~ = 3/13 = 0.230769, V = 8.5/13 - (3/13)^2
        // = 0.600592, half width 1.959964 * 100 * sqrt(V/13) = 42.1273.
        let nps = AdjustedNps::new(5, 2, 10).unwrap();
        close(nps.nps, 3.0 / 13.0, 1e-12);
        close(nps.variance, 8.5 / 13.0 - (3.0f64 / 13.0).powi(2), 1e-12);
        let interval = nps.interval();
        close(interval.low, 23.0769 - 42.1273, 1e-3);
        close(interval.high, 23.0769 + 42.1273, 1e-3);
        // n = 1, one promoter: p+ = 1.75/4, p- = 0.75/4, NPS~ = 0.25,
        // V = 0.625 - 0.0625 = 0.5625, half width 1.96*100*sqrt(0.5625/4) =
        // 73.4987: 25 ± 73.5.
        let one = AdjustedNps::new(1, 0, 1).unwrap().interval();
        close(one.low, 25.0 - 73.4987, 1e-3);
        close(one.high, 25.0 + 73.4987, 1e-3);
    }

    #[test]
    fn adjusted_wald_margin_of_the_domain_example() {
        // 100 answers, 40% promoters, 30% detractors: about ±16 points.
        let interval = AdjustedNps::new(40, 30, 100).unwrap().interval();
        close((interval.high - interval.low) / 2.0, 15.98, 0.01);
    }

    #[test]
    fn adjusted_wald_at_the_extremes_is_clipped_and_never_degenerate() {
        // All 2 promoters: p+ = 2.75/5 = 0.55, p- = 0.15, NPS~ = 0.4,
        // V = 0.7 - 0.16 = 0.54, half width 1.96*100*sqrt(0.108) = 64.41:
        // [-24.4, 104.4], clipped at 100.
        let all_promoters = AdjustedNps::new(2, 0, 2).unwrap().interval();
        close(all_promoters.low, 40.0 - 64.4107, 1e-3);
        assert_eq!(all_promoters.high, 100.0);
        let all_detractors = AdjustedNps::new(0, 2, 2).unwrap().interval();
        close(all_detractors.high, -40.0 + 64.4107, 1e-3);
        assert_eq!(all_detractors.low, -100.0);
        // Many answers, all promoters: a narrow interval just under 100.
        let many = AdjustedNps::new(1000, 0, 1000).unwrap();
        assert!(many.variance > 0.0);
        let interval = many.interval();
        assert!(
            interval.low > 98.0 && interval.high == 100.0,
            "{interval:?}"
        );
    }

    #[test]
    fn cnps_change_test_by_hand() {
        // 20 answers each. Earlier: 4 P, 10 D -> p+ = 4.75/23, p- = 10.75/23.
        // Later: 12 P, 3 D -> p+ = 12.75/23, p- = 3.75/23.
        let earlier = AdjustedNps::new(4, 10, 20).unwrap();
        let later = AdjustedNps::new(12, 3, 20).unwrap();
        let (p1, d1, p2, d2): (f64, f64, f64, f64) =
            (4.75 / 23.0, 10.75 / 23.0, 12.75 / 23.0, 3.75 / 23.0);
        let (v1, v2) = (
            p1 + d1 - (p1 - d1) * (p1 - d1),
            p2 + d2 - (p2 - d2) * (p2 - d2),
        );
        let z = ((p2 - d2) - (p1 - d1)) / (v1 / 23.0 + v2 / 23.0).sqrt();
        close(z, 2.891_411, 1e-5);
        // 2 * (1 - Phi(2.891411)) = 0.003835.
        let p = AdjustedNps::change_p_value(&earlier, &later);
        close(p, 0.003_835_2, 1e-6);
        assert!(is_significant(p));
        // The same figures twice differ by nothing.
        assert_eq!(AdjustedNps::change_p_value(&earlier, &earlier), 1.0);
        assert!(!is_significant(1.0));
    }

    #[test]
    fn t_intervals_by_hand() {
        // Nothing, or one value: no interval.
        assert_eq!(Moments::new(0, 0.0, 0.0).mean_interval(0.0, 10.0), None);
        assert_eq!(Moments::new(1, 7.0, 49.0).mean_interval(0.0, 10.0), None);
        assert_eq!(Moments::new(1, 7.0, 49.0).zero_mean_p_value(), None);
        // 6 and 8: mean 7, s^2 = 2, se = 1, t(1) = 12.706: [-5.7, 19.7],
        // clipped to the scores' 0-10.
        let two = Moments::new(2, 14.0, 100.0);
        assert_eq!(two.variance(), Some(2.0));
        let interval = two.mean_interval(0.0, 10.0).unwrap();
        assert_eq!((interval.low, interval.high), (0.0, 10.0));
        let unclipped = two.mean_interval(-100.0, 100.0).unwrap();
        close(unclipped.low, 7.0 - 12.706_205, 1e-5);
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, s^2 = 32/7, se = sqrt(32/56),
        // t(7) = 2.364624: 5 ± 1.78750.
        let values = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0f64];
        let eight = Moments::new(8, values.iter().sum(), values.iter().map(|v| v * v).sum());
        let interval = eight.mean_interval(0.0, 10.0).unwrap();
        close(interval.low, 5.0 - 1.787_50, 1e-4);
        close(interval.high, 5.0 + 1.787_50, 1e-4);
        // Mean 5 against 0: t = 5 / 0.755929 = 6.6144, 7 df: p = 0.000301.
        close(eight.zero_mean_p_value().unwrap(), 0.000_301, 2e-6);
    }

    #[test]
    fn values_without_spread() {
        // Every shift +1.5: certainly not zero. Every shift 0: certainly zero.
        let ones = Moments::new(4, 6.0, 9.0);
        assert_eq!(ones.variance(), Some(0.0));
        assert_eq!(ones.zero_mean_p_value(), Some(0.0));
        let interval = ones.mean_interval(-10.0, 10.0).unwrap();
        assert_eq!((interval.low, interval.high), (1.5, 1.5));
        assert_eq!(Moments::new(3, 0.0, 0.0).zero_mean_p_value(), Some(1.0));
        // Rounding in stored sums never makes a variance negative.
        assert_eq!(Moments::new(3, 0.3, 0.029_999_999).variance(), Some(0.0));
    }

    #[test]
    fn welch_by_hand() {
        // Recruiters 8, 9, 10 (mean 9, s^2 1); candidates 5, 7, 6, 6
        // (mean 6, s^2 2/3). se^2 = 1/3 + 1/6 = 0.5; df = 0.25 /
        // ((1/9)/2 + (1/36)/3) = 3.857143; t = 3 / 0.707107 = 4.24264.
        let recruiters = Moments::new(3, 27.0, 245.0);
        let candidates = Moments::new(4, 24.0, 146.0);
        let gap = WelchDifference::new(&recruiters, &candidates).unwrap();
        assert_eq!(gap.difference, 3.0);
        // scipy's ttest_ind(equal_var=False): p = 0.014299, interval
        // [1.007745, 4.992255].
        close(gap.interval.low, 1.007_745, 1e-5);
        close(gap.interval.high, 4.992_255, 1e-5);
        close(gap.p_value, 0.014_299, 1e-5);
        assert_eq!(
            WelchDifference::new(&recruiters, &Moments::new(1, 6.0, 36.0)),
            None
        );
        // No spread on either side.
        let same =
            WelchDifference::new(&Moments::new(2, 16.0, 128.0), &Moments::new(2, 16.0, 128.0));
        assert_eq!(same.map(|g| (g.difference, g.p_value)), Some((0.0, 1.0)));
    }

    #[test]
    fn benjamini_hochberg_by_hand() {
        assert_eq!(benjamini_hochberg(&[]), Vec::<bool>::new());
        // m = 5, thresholds 0.01 0.02 0.03 0.04 0.05. Sorted: 0.001 (ok),
        // 0.025 (> 0.02), 0.03 (ok at rank 3): ranks 1-3 rejected; 0.041 >
        // 0.04, 0.9 > 0.05.
        let p = [0.9, 0.025, 0.001, 0.041, 0.03];
        assert_eq!(benjamini_hochberg(&p), vec![false, true, true, false, true]);
        // Nothing below its threshold: nothing rejected, even at p = 0.04.
        assert_eq!(benjamini_hochberg(&[0.04, 0.5]), vec![false, false]);
        assert_eq!(benjamini_hochberg(&[0.049]), vec![true]);
    }
}
