//! The summary: a window's totals against the previous window's, whether
//! its cNPS changed beyond chance, and the touchpoints of the impact report
//! that move perception most, among those whose shift is significant.

use sea_orm::DatabaseConnection;

use super::{
    impact::{impact_rows, touchpoint_counters, TouchpointImpact},
    tail, totals, Figures, MinGroupSize, Window,
};
use crate::domain::{
    analytics::{perception::Counters, statistics::AdjustedNps},
    DomainResult,
};

pub struct Summary {
    /// Distinct candidates with an encounter in the window.
    pub candidates: u64,
    pub current: Figures,
    pub previous_window: Window,
    pub previous: Figures,
    /// The two-sided p-value of the z test of the cNPS change on the
    /// adjusted-Wald figures; `None` unless both windows show a cNPS.
    pub cnps_change_p_value: Option<f64>,
    /// Touchpoints whose mean attributed shift was tested (those with a
    /// p-value in the impact report), and how many of them are significant.
    pub touchpoints_tested: usize,
    pub touchpoints_significant: usize,
    /// Up to three significant touchpoints with the highest positive mean
    /// attributed shift, best first.
    pub most_positive: Vec<TouchpointImpact>,
    /// Up to three significant touchpoints with the lowest negative mean
    /// attributed shift, worst first.
    pub most_negative: Vec<TouchpointImpact>,
}

/// How many touchpoints each end of the summary lists.
const SUMMARY_TOP: usize = 3;

/// The window's totals against the previous window's, and the touchpoints
/// that move perception most. Only touchpoints whose mean attributed shift
/// is shown and significant are listed, so being listed reveals nothing
/// withheld, and noise is not news.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn summary(
    db: &DatabaseConnection,
    organization_id: i64,
    window: &Window,
) -> DomainResult<Summary> {
    let previous_window = window.previous()?;
    let (txn, tail) = tail::snapshot(db, organization_id).await?;
    let min = MinGroupSize::of(&txn, organization_id).await?;
    let (rows, candidates) = touchpoint_counters(&txn, &tail, organization_id, window).await?;
    let current = rows.iter().fold(Counters::default(), |mut sum, row| {
        sum.add(&row.counters, 1);
        sum
    });
    let previous = totals(&txn, &tail, organization_id, &previous_window).await?;
    txn.commit().await?;
    // Sorted by shown mean attributed shift ascending, unknown last.
    let rows = impact_rows(rows, min);
    let touchpoints_tested = rows.iter().filter(|r| r.significant.is_some()).count();
    let touchpoints_significant = rows.iter().filter(|r| r.significant == Some(true)).count();
    let mut most_negative: Vec<TouchpointImpact> = Vec::new();
    let mut positive: Vec<TouchpointImpact> = Vec::new();
    for row in rows.into_iter().filter(|r| r.significant == Some(true)) {
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
    let current = Figures::new(&current, min);
    let previous = Figures::new(&previous, min);
    let cnps_change_p_value = current
        .adjusted_nps
        .zip(previous.adjusted_nps)
        .map(|(now, before)| AdjustedNps::change_p_value(&before, &now));
    Ok(Summary {
        candidates,
        current,
        previous_window,
        previous,
        cnps_change_p_value,
        touchpoints_tested,
        touchpoints_significant,
        most_positive: positive,
        most_negative,
    })
}
