//! Drop alerts: is a group's cNPS over the last complete period
//! significantly lower than over the periods before it?
//!
//! For each group the rule watches, the period's promoters, detractors and
//! scores and the baseline's (all `baseline_periods` together) are read
//! from the daily rollups. Both need at least `min_scores` scores, and
//! never fewer than the organization's `min_group_size`, so an alert never
//! speaks of a figure a report would suppress. The test is one-sided, on
//! the adjusted-Wald figures: z = (NPS̃ₚ − NPS̃_b) / √(V_b/n_b′ + V_p/n_p′),
//! p = Φ(z), an alert when p < 0.05. An alert already open for the same
//! rule, group and period is not opened again; open alerts of a group whose
//! later period shows no drop are resolved.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use entity::alert;
use sea_orm::DatabaseConnection;
use serde_json::json;

use crate::db::sql::Sql;
use crate::domain::{
    alerts::{
        lifecycle::{self as raised, NewAlert, Status},
        rules::{Grouping, Period, Rule, RuleKind},
    },
    analytics::{
        perception::{cnps, date_of_day, day_of_date, month_of, month_start, round_to, week_of},
        reports::{self, tail, MinGroupSize, Window},
        statistics::{is_significant, AdjustedNps},
    },
    webhooks::endpoints::lock_organization,
    DomainError, DomainResult,
};

/// The period a rule evaluates and its baseline, as day numbers
/// (`[start, end)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub baseline_start: i32,
    pub start: i32,
    pub end: i32,
}

/// The first day of the period containing `day`.
fn period_start(period: Period, day: i32) -> i32 {
    match period {
        Period::Day => day,
        Period::Week => week_of(day),
        Period::Month => month_start(month_of(day)),
    }
}

/// The first day of the period before the one starting on `start`.
fn previous(period: Period, start: i32) -> i32 {
    period_start(period, start - 1)
}

/// The first days of the `count` complete periods before `as_of`, oldest
/// first, and the day after the last of them.
pub fn period_starts(period: Period, count: usize, as_of: NaiveDate) -> (Vec<i32>, i32) {
    let end = period_start(period, day_of_date(as_of));
    let mut starts = Vec::with_capacity(count);
    let mut start = end;
    for _ in 0..count {
        start = previous(period, start);
        starts.push(start);
    }
    starts.reverse();
    (starts, end)
}

/// The last complete period before `as_of`, and the `baseline` periods
/// before it.
pub fn periods(period: Period, baseline: i32, as_of: NaiveDate) -> Periods {
    let (starts, end) = period_starts(period, baseline as usize + 1, as_of);
    Periods {
        baseline_start: starts[0],
        start: starts[starts.len() - 1],
        end,
    }
}

/// The CUSUM's allowance and decision interval, in standard errors: the
/// textbook defaults (Montgomery), which detect a sustained shift of one
/// standard error in about eight periods.
pub const CUSUM_K: f64 = 0.5;
pub const CUSUM_H: f64 = 4.0;

/// A two-sided CUSUM over `series` (standardized values, oldest first):
/// the lower and upper sums after the last value.
pub fn cusum(series: &[f64]) -> (f64, f64) {
    let mut lower: f64 = 0.0;
    let mut upper: f64 = 0.0;
    for x in series {
        lower = (lower - x - CUSUM_K).max(0.0);
        upper = (upper + x - CUSUM_K).max(0.0);
    }
    (lower, upper)
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    scored: i64,
    promoters: i64,
    detractors: i64,
}

impl Tally {
    fn add(&mut self, other: &Tally) {
        self.scored += other.scored;
        self.promoters += other.promoters;
        self.detractors += other.detractors;
    }

    fn nps(&self) -> Option<AdjustedNps> {
        AdjustedNps::new(self.promoters, self.detractors, self.scored)
    }
}

fn sum<'a>(tallies: impl IntoIterator<Item = &'a Tally>) -> Tally {
    let mut total = Tally::default();
    for tally in tallies {
        total.add(tally);
    }
    total
}

/// What one evaluation did.
#[derive(Debug, Default)]
pub struct Evaluation {
    pub periods: Option<Periods>,
    /// Groups with enough scores in both the period and the baseline.
    pub groups_tested: usize,
    pub opened: Vec<alert::Model>,
    pub resolved: Vec<alert::Model>,
}

/// Evaluates one drop rule for the last complete period before `as_of`.
///
/// With `cusum`, the rule also watches for slow drifts: each of the last
/// `baseline_periods` periods (the current one last) is standardized
/// against the `baseline_periods` before them, x = (NPS̃ₜ − NPS̃_ref) /
/// √(V_ref/nₜ′) (0 for a period without scores), and a two-sided CUSUM
/// with k = 0.5 and h = 4 runs over them; a lower sum above h alerts too.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = rule.organization_id, rule_id = rule.id))]
pub async fn evaluate(
    db: &DatabaseConnection,
    rule: &Rule,
    as_of: NaiveDate,
) -> DomainResult<Evaluation> {
    if rule.kind != RuleKind::Drop {
        return Err(DomainError::invalid(
            "id",
            "only a drop rule is evaluated; a detractor rule acts as encounters are recorded",
        ));
    }
    let n = rule.baseline_periods as usize;
    // The CUSUM's reference is the n periods before its n monitored ones.
    let count = if rule.cusum { 2 * n } else { n + 1 };
    let (starts, end) = period_starts(rule.period, count, as_of);
    let periods = Periods {
        baseline_start: starts[count - 1 - n],
        start: starts[count - 1],
        end,
    };
    let organization_id = rule.organization_id;
    let min = MinGroupSize::of(db, organization_id).await?;
    let series = tallies(db, rule, &starts, end).await?;
    let txn = crate::domain::begin_write(db).await?;
    // Alerts and their events are written under the organization's lock,
    // as every event is (see `webhooks::endpoints::lock_organization`).
    lock_organization(&txn, organization_id).await?;
    let now = crate::domain::now();
    let unresolved = raised::unresolved_by_group(&txn, rule.id).await?;
    let mut evaluation = Evaluation {
        periods: Some(periods),
        ..Default::default()
    };
    let enough = |t: &Tally| t.scored >= i64::from(rule.min_scores) && !min.withholds(t.scored);
    let mut new = Vec::new();
    for (group, by_period) in &series {
        let current = by_period[count - 1];
        let before = sum(&by_period[count - 1 - n..count - 1]);
        if !enough(&current) || !enough(&before) {
            continue;
        }
        let (Some(period_nps), Some(baseline_nps)) = (current.nps(), before.nps()) else {
            continue;
        };
        evaluation.groups_tested += 1;
        let p_value = AdjustedNps::drop_p_value(&baseline_nps, &period_nps);
        let z = AdjustedNps::change_z(&baseline_nps, &period_nps);
        let dropped = is_significant(p_value) && period_nps.nps < baseline_nps.nps;
        let drift = if rule.cusum {
            let reference = sum(&by_period[..n]);
            reference
                .nps()
                .filter(|_| enough(&reference))
                .map(|reference| {
                    let standardized: Vec<f64> = by_period[n..]
                        .iter()
                        .map(|t| match t.nps() {
                            Some(nps) => {
                                (nps.nps - reference.nps) / (reference.variance / nps.n).sqrt()
                            }
                            None => 0.0,
                        })
                        .collect();
                    cusum(&standardized)
                })
        } else {
            None
        };
        let drifted = drift.is_some_and(|(lower, _)| lower > CUSUM_H);
        if dropped || drifted {
            let signal = match (dropped, drifted) {
                (true, true) => "z+cusum",
                (true, false) => "z",
                _ => "cusum",
            };
            new.push(NewAlert {
                rule_id: rule.id,
                rule_kind: RuleKind::Drop,
                group_key: group.clone(),
                period_start: periods.start,
                encounter_id: None,
                details: json!({
                    "signal": signal,
                    "group_by": rule.group_by.as_str(),
                    "period": rule.period.as_str(),
                    "period_end": date_of_day(periods.end).to_string(),
                    "baseline_start": date_of_day(periods.baseline_start).to_string(),
                    "scored": current.scored,
                    "cnps": cnps(current.promoters, current.detractors, current.scored),
                    "baseline_scored": before.scored,
                    "baseline_cnps": cnps(before.promoters, before.detractors, before.scored),
                    "z": round_to(z, 4),
                    "p_value": p_value,
                    "cusum_lower": drift.map(|(lower, _)| round_to(lower, 4)),
                    "cusum_upper": drift.map(|(_, upper)| round_to(upper, 4)),
                }),
            });
        } else if let Some(open) = unresolved.get(group) {
            // No drop now: the group's earlier drop alerts are over.
            for earlier in open.iter().filter(|a| a.period_start < periods.start) {
                let closed = raised::close(
                    &txn,
                    organization_id,
                    earlier.clone(),
                    Status::Resolved,
                    now,
                    RuleKind::Drop,
                )
                .await?;
                evaluation.resolved.push(closed);
            }
        }
    }
    evaluation.opened = raised::open(&txn, organization_id, now, new).await?;
    txn.commit().await?;
    Ok(evaluation)
}

/// Each group's counts in each period (as `starts` orders them; the last
/// ends at `end`), from the rollups and the encounters not yet in them.
async fn tallies(
    db: &DatabaseConnection,
    rule: &Rule,
    starts: &[i32],
    end: i32,
) -> DomainResult<BTreeMap<String, Vec<Tally>>> {
    let (txn, tail) = tail::snapshot(db, rule.organization_id).await?;
    let window = Window::new(date_of_day(starts[0]), date_of_day(end))?;
    let mut sql = Sql::new(&txn);
    sql.push(
        "SELECT pd.touchpoint_id, pd.day, pd.scored, pd.promoters, pd.detractors, \
         t.kind, t.channel, t.stage",
    );
    reports::from_daily_rollups(&mut sql, &tail, rule.organization_id, &window);
    sql.push(" AND pd.scored > 0");
    let rows = sql.all(&txn).await?;
    txn.commit().await?;
    let mut groups: BTreeMap<String, Vec<Tally>> = BTreeMap::new();
    for row in rows {
        let touchpoint_id: i64 = row.try_get("", "touchpoint_id")?;
        let kind_text: String = row.try_get("", "kind")?;
        let stage_text: String = row.try_get("", "stage")?;
        let channel: String = row.try_get("", "channel")?;
        use sea_orm::ActiveEnum;
        let corrupt = || DomainError::internal("a touchpoint's kind or stage does not read");
        let kind = entity::enums::Kind::try_from_value(&kind_text).map_err(|_| corrupt())?;
        let stage = entity::enums::Stage::try_from_value(&stage_text).map_err(|_| corrupt())?;
        if !rule.watches(touchpoint_id, kind, stage) {
            continue;
        }
        let group = match rule.group_by {
            Grouping::All => "all".to_owned(),
            Grouping::Touchpoint => touchpoint_id.to_string(),
            Grouping::Kind => kind_text,
            Grouping::Channel => channel,
            Grouping::Stage => stage_text,
        };
        let day: i32 = row.try_get("", "day")?;
        // The period holding the day: the last start not after it.
        let index = starts.partition_point(|start| *start <= day) - 1;
        let tally = Tally {
            scored: row.try_get("", "scored")?,
            promoters: row.try_get("", "promoters")?,
            detractors: row.try_get("", "detractors")?,
        };
        groups
            .entry(group)
            .or_insert_with(|| vec![Tally::default(); starts.len()])[index]
            .add(&tally);
    }
    Ok(groups)
}

/// Evaluates every enabled drop rule of every organization for the last
/// complete period before today; how many alerts it opened. Safe with
/// several instances: an alert is unique per rule, group and period.
pub async fn evaluate_all(db: &DatabaseConnection) -> DomainResult<usize> {
    let today = chrono::Utc::now().date_naive();
    let mut opened = 0;
    for rule in crate::domain::alerts::rules::enabled(db, None, RuleKind::Drop).await? {
        opened += evaluate(db, &rule, today).await?.opened.len();
    }
    Ok(opened)
}

/// Evaluates the drop rules every `interval`, from the service's start.
pub async fn evaluate_periodically(db: DatabaseConnection, interval: std::time::Duration) {
    loop {
        match evaluate_all(&db).await {
            Ok(0) => {}
            Ok(opened) => tracing::info!(opened, "drop alerts opened"),
            Err(err) => tracing::warn!(error = %err, "evaluating drop alerts failed; will retry"),
        }
        tokio::time::sleep(interval).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cusum_sums_shortfalls_beyond_the_allowance() {
        assert_eq!(cusum(&[]), (0.0, 0.0));
        // Each −1.5 adds 1.0 to the lower sum: 4 periods reach 4.
        let (lower, upper) = cusum(&[-1.5, -1.5, -1.5, -1.5]);
        assert!((lower - 4.0).abs() < 1e-12 && upper == 0.0);
        // Noise around 0 decays.
        let (lower, upper) = cusum(&[0.4, -0.4, 0.4, -0.4]);
        assert!(lower < 1e-12 && upper < 1e-12);
        let (lower, upper) = cusum(&[2.0, 2.0]);
        assert!(lower == 0.0 && (upper - 3.0).abs() < 1e-12);
    }

    #[test]
    fn periods_are_the_last_complete_ones() {
        // Thursday 2026-11-26.
        let as_of = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let week = periods(Period::Week, 4, as_of);
        assert_eq!(date_of_day(week.start).to_string(), "2026-11-16");
        assert_eq!(date_of_day(week.end).to_string(), "2026-11-23");
        assert_eq!(date_of_day(week.baseline_start).to_string(), "2026-10-19");
        let day = periods(Period::Day, 7, as_of);
        assert_eq!(date_of_day(day.start).to_string(), "2026-11-25");
        assert_eq!(date_of_day(day.baseline_start).to_string(), "2026-11-18");
        let month = periods(Period::Month, 3, as_of);
        assert_eq!(date_of_day(month.start).to_string(), "2026-10-01");
        assert_eq!(date_of_day(month.end).to_string(), "2026-11-01");
        assert_eq!(date_of_day(month.baseline_start).to_string(), "2026-07-01");
    }
}
