//! The perception gap: per group of touchpoints, the scores of each source
//! (recruiters' observations, candidates' own surveys, review imports,
//! other), and how far recruiters' view of candidates' perception is from
//! what candidates report themselves.

use std::collections::{BTreeMap, HashMap};

use entity::enums::{Kind, Source, Stage};
use sea_orm::{ActiveEnum, ConnectionTrait, DatabaseConnection, Iterable};

use super::{
    from_rollups, impact::check_touchpoints_met, tail, touchpoint_ids_in_order, vocabulary,
    Figures, Grain, MinGroupSize, RollupRead, Tail, Window,
};
use crate::db::sql::Sql;
use crate::domain::{
    analytics::{perception::Counters, statistics::WelchDifference},
    DomainError, DomainResult,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GapGrouping {
    None,
    Kind,
    Stage,
    Touchpoint,
}

impl GapGrouping {
    /// The expression naming a rollup row's group; `None` for the one
    /// group `all` (PostgreSQL refuses a constant in `GROUP BY`).
    fn column(self) -> Option<&'static str> {
        match self {
            GapGrouping::None => None,
            GapGrouping::Kind => Some("t.kind"),
            GapGrouping::Stage => Some("t.stage"),
            // Cast so both backends hand back text, like the other groupings.
            GapGrouping::Touchpoint => Some("CAST(pd.touchpoint_id AS VARCHAR(20))"),
        }
    }

    /// The groups shown even where they have no data; `None` for
    /// touchpoints, which are those with data.
    fn fixed_groups(self) -> Option<Vec<String>> {
        match self {
            GapGrouping::None => Some(vec!["all".to_owned()]),
            GapGrouping::Kind => Some(vocabulary::<Kind>()),
            GapGrouping::Stage => Some(vocabulary::<Stage>()),
            GapGrouping::Touchpoint => None,
        }
    }
}

/// One source's figures in a group, suppressed as every report's are.
pub struct SourceFigures {
    pub source: Source,
    pub figures: Figures,
}

pub struct GapGroup {
    /// The kind or stage value, the touchpoint id, or `all`.
    pub group: String,
    /// Every source, in the vocabulary's order.
    pub sources: Vec<SourceFigures>,
    /// Recruiters' mean score minus candidates' own, with Welch's interval
    /// and test; `None` unless both sources show at least two scores.
    pub gap: Option<WelchDifference>,
    /// Recruiters' cNPS minus candidates'; `None` unless both show one.
    pub cnps_gap: Option<f64>,
}

/// The perception gap of every group in the window.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn perception_gap(
    db: &DatabaseConnection,
    organization_id: i64,
    window: &Window,
    grouping: GapGrouping,
) -> DomainResult<Vec<GapGroup>> {
    let (txn, tail) = tail::snapshot(db, organization_id).await?;
    let groups = gap_in(&txn, &tail, organization_id, window, grouping).await?;
    txn.commit().await?;
    Ok(groups)
}

async fn gap_in(
    db: &impl ConnectionTrait,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
    grouping: GapGrouping,
) -> DomainResult<Vec<GapGroup>> {
    let mut sql = Sql::new(db);
    sql.push("SELECT ")
        .push(grouping.column().unwrap_or("'all'"))
        .push(" AS grp, pd.source AS source, ")
        .push(RollupRead::SOURCE_SCORES.sums());
    let join = matches!(grouping, GapGrouping::Kind | GapGrouping::Stage);
    from_rollups(
        &mut sql,
        RollupRead::SOURCE_SCORES,
        tail,
        organization_id,
        window,
        Grain::Months,
        join,
    );
    sql.push(" GROUP BY pd.source");
    if let Some(column) = grouping.column() {
        sql.push(", ").push(column);
    }
    let mut data: BTreeMap<String, HashMap<Source, Counters>> = BTreeMap::new();
    for row in sql.all(db).await? {
        let group: String = row.try_get("", "grp")?;
        let source: String = row.try_get("", "source")?;
        let source = Source::try_from_value(&source)
            .map_err(|_| DomainError::internal(format!("unknown source {source:?}")))?;
        data.entry(group)
            .or_default()
            .insert(source, RollupRead::SOURCE_SCORES.counters_of(&row)?);
    }
    let groups = match grouping.fixed_groups() {
        Some(groups) => groups,
        None => {
            check_touchpoints_met(data.len(), "choose a shorter window or another group_by")?;
            touchpoint_ids_in_order(data.keys())
        }
    };
    let min = MinGroupSize::of(db, organization_id).await?;
    Ok(groups
        .into_iter()
        .map(|group| {
            let mut counters = data.remove(&group).unwrap_or_default();
            gap_group(group, &mut counters, min)
        })
        .collect())
}

fn gap_group(
    group: String,
    counters: &mut HashMap<Source, Counters>,
    min: MinGroupSize,
) -> GapGroup {
    let sources: Vec<SourceFigures> = Source::iter()
        .map(|source| SourceFigures {
            source,
            figures: Figures::new(&counters.remove(&source).unwrap_or_default(), min),
        })
        .collect();
    let figures_of = |wanted: Source| {
        sources
            .iter()
            .find(|s| s.source == wanted)
            .map(|s| &s.figures)
            .filter(|f| !f.suppressed)
    };
    let (recruiters, candidates) = (
        figures_of(Source::RecruiterObservation),
        figures_of(Source::CandidateSurvey),
    );
    let (gap, cnps_gap) = match (recruiters, candidates) {
        (Some(r), Some(c)) => (
            r.score_moments
                .zip(c.score_moments)
                .and_then(|(r, c)| WelchDifference::new(&r, &c)),
            r.cnps.zip(c.cnps).map(|(r, c)| r - c),
        ),
        _ => (None, None),
    };
    GapGroup {
        group,
        sources,
        gap,
        cnps_gap,
    }
}
