//! Touchpoint impact: every touchpoint met in the window with its figures
//! and distinct candidates, the ones that hurt perception most first.

use std::collections::HashMap;

use entity::touchpoint;
use roaring::{MultiOps, RoaringTreemap};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter};

use super::{from_rollups, tail, Figures, Grain, MinGroupSize, RollupRead, Tail, Window};
use crate::db::sql::{unpack_blobs, Sql};
use crate::domain::{
    analytics::perception::{Counters, Span},
    analytics::rollups::decode_bitmap,
    analytics::statistics::benjamini_hochberg,
    DomainError, DomainResult,
};

/// The most touchpoints the impact report and the summary read for one
/// window: about 1 KiB each, and their candidates' bitmaps.
pub const MAX_TOUCHPOINTS: usize = 20_000;

pub struct TouchpointImpact {
    pub touchpoint: touchpoint::Model,
    pub figures: Figures,
    /// Distinct candidates who met the touchpoint in the window.
    pub candidates: u64,
    /// Whether the mean attributed shift differs from 0 after the
    /// Benjamini–Hochberg correction across the rows of the answer (a false
    /// discovery rate of 5%); `None` where it has no p-value (suppressed,
    /// or fewer than two attributions).
    pub significant: Option<bool>,
}

/// Every touchpoint with encounters in the window, the ones that hurt
/// perception most first: by mean attributed shift ascending (those
/// without one shown last), ties by encounters descending. The order uses
/// the shown mean only, so a withheld one cannot be read off a row's place.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn touchpoint_impact(
    db: &DatabaseConnection,
    organization_id: i64,
    window: &Window,
) -> DomainResult<Vec<TouchpointImpact>> {
    let (txn, tail) = tail::snapshot(db, organization_id).await?;
    let min = MinGroupSize::of(&txn, organization_id).await?;
    let (rows, _) = touchpoint_counters(&txn, &tail, organization_id, window).await?;
    txn.commit().await?;
    Ok(impact_rows(rows, min))
}

/// Refuses a report of more than [`MAX_TOUCHPOINTS`] touchpoints met in
/// its window, naming `from`; `advice` says what else narrows it.
pub(super) fn check_touchpoints_met(met: usize, advice: &str) -> DomainResult<()> {
    if met <= MAX_TOUCHPOINTS {
        return Ok(());
    }
    Err(DomainError::invalid(
        "from",
        format!(
            "{met} touchpoints were met in the window, more than the {MAX_TOUCHPOINTS} a \
             report reads; {advice}"
        ),
    ))
}

/// One touchpoint's counters in a window, before suppression.
pub(super) struct TouchpointCounters {
    touchpoint: touchpoint::Model,
    pub(super) counters: Counters,
    candidates: u64,
}

/// The counters of every touchpoint with encounters in the window, and the
/// distinct candidates with any encounter in it.
pub(super) async fn touchpoint_counters(
    db: &impl ConnectionTrait,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
) -> DomainResult<(Vec<TouchpointCounters>, u64)> {
    let mut sql = Sql::new(db);
    sql.push("SELECT pd.touchpoint_id AS touchpoint_id, ")
        .push(RollupRead::TOUCHPOINT_ALL.sums());
    from_rollups(
        &mut sql,
        RollupRead::TOUCHPOINT_ALL,
        tail,
        organization_id,
        window,
        Grain::Months,
        false,
    );
    sql.push(" GROUP BY pd.touchpoint_id");
    let mut counters: HashMap<i64, Counters> = HashMap::new();
    for row in sql.all(db).await? {
        let id: i64 = row.try_get("", "touchpoint_id")?;
        let row_counters = RollupRead::TOUCHPOINT_ALL.counters_of(&row)?;
        if row_counters.encounters > 0 {
            counters.insert(id, row_counters);
        }
    }
    // Refused before the touchpoints and their candidates' bitmaps are read.
    check_touchpoints_met(counters.len(), "choose a shorter window")?;
    let touchpoints = touchpoint::Entity::find()
        .filter(touchpoint::Column::OrganizationId.eq(organization_id))
        .filter(touchpoint::Column::Id.is_in(counters.keys().copied()))
        .all(db)
        .await?;
    let (reach, everyone) = reach(db, tail, organization_id, window).await?;
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
pub(super) fn impact_rows(
    rows: Vec<TouchpointCounters>,
    min: MinGroupSize,
) -> Vec<TouchpointImpact> {
    let mut rows: Vec<TouchpointImpact> = rows
        .into_iter()
        .map(|row| TouchpointImpact {
            figures: Figures::new(&row.counters, min),
            candidates: row.candidates,
            touchpoint: row.touchpoint,
            significant: None,
        })
        .collect();
    flag_significant(&mut rows);
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

/// Sets `significant` on every row with a p-value: the Benjamini–Hochberg
/// decisions over all of them.
fn flag_significant(rows: &mut [TouchpointImpact]) {
    let tested: Vec<(usize, f64)> = rows
        .iter()
        .enumerate()
        .filter_map(|(index, row)| Some((index, row.figures.mean_attributed_shift_p_value?)))
        .collect();
    let p_values: Vec<f64> = tested.iter().map(|(_, p)| *p).collect();
    for ((index, _), rejected) in tested.iter().zip(benjamini_hochberg(&p_values)) {
        rows[*index].significant = Some(rejected);
    }
}

/// The candidates who met each touchpoint in the window, and all of them:
/// the union of the monthly bitmaps of the months wholly inside the window
/// and the daily bitmaps of the days around them, and the candidates the
/// tail adds.
async fn reach(
    db: &impl ConnectionTrait,
    tail: &Tail,
    organization_id: i64,
    window: &Window,
) -> DomainResult<(HashMap<i64, RoaringTreemap>, RoaringTreemap)> {
    let cover = window.cover();
    let mut ranges: Vec<(Span, i32, i32)> = Vec::new();
    if let Some((first, end)) = cover.months {
        ranges.push((Span::Month, first, end));
    }
    for (from, to) in cover.days.into_iter().filter(|(from, to)| from < to) {
        ranges.push((Span::Day, from, to));
    }
    // A row per range, its bitmaps packed (see `Sql::push_packed_blobs`):
    // each range is read from the index in order (an `OR` of the ranges
    // read every bitmap of the organization, and grouping the rows by
    // touchpoint sorted them), and a row per bitmap was handed over from
    // the driver's thread one by one.
    let mut sql = Sql::new(db);
    for (index, (span, from, to)) in ranges.iter().enumerate() {
        if index > 0 {
            sql.push(" UNION ALL ");
        }
        sql.push("SELECT ")
            .push_packed_blobs("touchpoint_id", "candidates")
            .push(" AS packed FROM touchpoint_reach WHERE organization_id = ")
            .bind(organization_id)
            .push(" AND span = ")
            .bind(span.as_str())
            .push(" AND period >= ")
            .bind(*from)
            .push(" AND period < ")
            .bind(*to);
    }
    let rows = if ranges.is_empty() {
        Vec::new()
    } else {
        sql.all(db).await?
    };
    let mut periods_of: HashMap<i64, Vec<RoaringTreemap>> = HashMap::new();
    for row in rows {
        // NULL where the range holds no bitmap.
        let Some(packed) = row.try_get::<Option<Vec<u8>>>("", "packed")? else {
            continue;
        };
        let bitmaps = unpack_blobs(&packed)
            .ok_or_else(|| DomainError::internal("unreadable packed reach bitmaps"))?;
        for (touchpoint_id, bitmap) in bitmaps {
            periods_of
                .entry(touchpoint_id)
                .or_default()
                .push(decode_bitmap(bitmap)?);
        }
    }
    // Each touchpoint's bitmaps are united at once (`MultiOps::union`),
    // not one after another: uniting them pairwise built a new array for
    // every small bitmap met, a quarter of the report's time.
    let mut by_touchpoint: HashMap<i64, RoaringTreemap> = periods_of
        .into_iter()
        .map(|(touchpoint_id, bitmaps)| (touchpoint_id, bitmaps.union()))
        .collect();
    for (touchpoint_id, candidate_id) in tail.reach_in(window) {
        by_touchpoint
            .entry(touchpoint_id)
            .or_default()
            .insert(candidate_id as u64);
    }
    let everyone = by_touchpoint.values().union();
    Ok((by_touchpoint, everyone))
}
