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
use sea_orm::{ConnectionTrait, DatabaseConnection};
use serde_json::json;

use crate::db::sql::Sql;
use crate::domain::{
    alerts::{
        lifecycle::{self as raised, NewAlert, Status},
        rules::{Grouping, Period, Rule, RuleKind},
    },
    analytics::{
        perception::{cnps, date_of_day, day_of_date, month_of, month_start, round_to, week_of},
        reports::MinGroupSize,
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

/// The last complete period before `as_of`, and the `baseline` periods
/// before it.
pub fn periods(period: Period, baseline: i32, as_of: NaiveDate) -> Periods {
    let today = day_of_date(as_of);
    match period {
        Period::Day => Periods {
            baseline_start: today - 1 - baseline,
            start: today - 1,
            end: today,
        },
        Period::Week => {
            let this_week = week_of(today);
            Periods {
                baseline_start: this_week - 7 - 7 * baseline,
                start: this_week - 7,
                end: this_week,
            }
        }
        Period::Month => {
            let this_month = month_of(today);
            Periods {
                baseline_start: month_start(this_month - 1 - baseline),
                start: month_start(this_month - 1),
                end: month_start(this_month),
            }
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    scored: i64,
    promoters: i64,
    detractors: i64,
}

impl Tally {
    fn add(&mut self, scored: i64, promoters: i64, detractors: i64) {
        self.scored += scored;
        self.promoters += promoters;
        self.detractors += detractors;
    }
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
    let periods = periods(rule.period, rule.baseline_periods, as_of);
    let organization_id = rule.organization_id;
    let min = MinGroupSize::of(db, organization_id).await?;
    let (current, baseline) = tallies(db, rule, &periods).await?;
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
    let mut new = Vec::new();
    for (group, now_tally) in &current {
        let Some(before) = baseline.get(group) else {
            continue;
        };
        let enough = |t: &Tally| t.scored >= i64::from(rule.min_scores) && !min.withholds(t.scored);
        if !enough(now_tally) || !enough(before) {
            continue;
        }
        let (Some(period_nps), Some(baseline_nps)) = (
            AdjustedNps::new(now_tally.promoters, now_tally.detractors, now_tally.scored),
            AdjustedNps::new(before.promoters, before.detractors, before.scored),
        ) else {
            continue;
        };
        evaluation.groups_tested += 1;
        let p_value = AdjustedNps::drop_p_value(&baseline_nps, &period_nps);
        let z = AdjustedNps::change_z(&baseline_nps, &period_nps);
        if is_significant(p_value) && period_nps.nps < baseline_nps.nps {
            new.push(NewAlert {
                rule_id: rule.id,
                rule_kind: RuleKind::Drop,
                group_key: group.clone(),
                period_start: periods.start,
                encounter_id: None,
                details: json!({
                    "group_by": rule.group_by.as_str(),
                    "period": rule.period.as_str(),
                    "period_start": date_of_day(periods.start).to_string(),
                    "period_end": date_of_day(periods.end).to_string(),
                    "baseline_start": date_of_day(periods.baseline_start).to_string(),
                    "scored": now_tally.scored,
                    "cnps": cnps(now_tally.promoters, now_tally.detractors, now_tally.scored),
                    "baseline_scored": before.scored,
                    "baseline_cnps": cnps(before.promoters, before.detractors, before.scored),
                    "z": round_to(z, 4),
                    "p_value": p_value,
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

/// The period's and the baseline's counts per group, from the rollups.
async fn tallies(
    db: &impl ConnectionTrait,
    rule: &Rule,
    periods: &Periods,
) -> DomainResult<(BTreeMap<String, Tally>, BTreeMap<String, Tally>)> {
    let mut sql = Sql::new(db);
    sql.push(
        "SELECT pd.touchpoint_id, pd.day, pd.scored, pd.promoters, pd.detractors, \
         t.kind, t.channel, t.stage \
         FROM perception_daily pd JOIN touchpoints t ON t.id = pd.touchpoint_id \
         WHERE pd.organization_id = ",
    )
    .bind(rule.organization_id)
    .push(" AND pd.day >= ")
    .bind(periods.baseline_start)
    .push(" AND pd.day < ")
    .bind(periods.end)
    .push(" AND pd.scored > 0");
    let mut current: BTreeMap<String, Tally> = BTreeMap::new();
    let mut baseline: BTreeMap<String, Tally> = BTreeMap::new();
    for row in sql.all(db).await? {
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
        let scored: i64 = row.try_get("", "scored")?;
        let promoters: i64 = row.try_get("", "promoters")?;
        let detractors: i64 = row.try_get("", "detractors")?;
        let into = if day >= periods.start {
            &mut current
        } else {
            &mut baseline
        };
        into.entry(group)
            .or_default()
            .add(scored, promoters, detractors);
    }
    Ok((current, baseline))
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
