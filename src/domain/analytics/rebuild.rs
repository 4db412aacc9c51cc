//! Rebuilding an organization's rollups from its encounters: when the
//! rollups' definition changes ([`ROLLUP_VERSION`]), and on demand. The
//! anonymous survey answers count too (see `surveys::answers`).

use entity::{
    candidate_score_day, encounter, organization, perception_daily, perception_monthly,
    perception_source_daily, perception_source_monthly, touchpoint_reach,
};
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QuerySelect,
};

use crate::domain::{
    analytics::{
        perception::{Contribution, RollupDelta},
        rollups::{self, ROLLUP_VERSION},
    },
    encounters::write::EncounterWrite,
    DomainResult,
};

/// Rebuilds one organization's rollups from its encounters, and marks them
/// as built with [`ROLLUP_VERSION`].
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn rebuild(db: &DatabaseConnection, organization_id: i64) -> DomainResult<()> {
    let write = EncounterWrite::begin(db, organization_id).await?;
    perception_daily::Entity::delete_many()
        .filter(perception_daily::Column::OrganizationId.eq(organization_id))
        .exec(write.txn())
        .await?;
    perception_monthly::Entity::delete_many()
        .filter(perception_monthly::Column::OrganizationId.eq(organization_id))
        .exec(write.txn())
        .await?;
    perception_source_daily::Entity::delete_many()
        .filter(perception_source_daily::Column::OrganizationId.eq(organization_id))
        .exec(write.txn())
        .await?;
    perception_source_monthly::Entity::delete_many()
        .filter(perception_source_monthly::Column::OrganizationId.eq(organization_id))
        .exec(write.txn())
        .await?;
    touchpoint_reach::Entity::delete_many()
        .filter(touchpoint_reach::Column::OrganizationId.eq(organization_id))
        .exec(write.txn())
        .await?;
    candidate_score_day::Entity::delete_many()
        .filter(candidate_score_day::Column::OrganizationId.eq(organization_id))
        .exec(write.txn())
        .await?;
    let candidate_ids: Vec<i64> = encounter::Entity::find()
        .select_only()
        .column(encounter::Column::CandidateId)
        .distinct()
        .filter(encounter::Column::OrganizationId.eq(organization_id))
        .into_tuple()
        .all(write.txn())
        .await?;
    // With the rollups emptied, every candidate starts from nothing. A
    // chunk of candidates at a time keeps memory flat however many there are.
    let empty = Contribution::default();
    for chunk in candidate_ids.chunks(REBUILD_CHUNK) {
        let after = rollups::load_contributions(write.txn(), organization_id, chunk).await?;
        let mut delta = RollupDelta::default();
        for (id, contribution) in &after {
            delta.record(*id, &empty, contribution);
        }
        rollups::apply(write.txn(), organization_id, &delta, write.now()).await?;
    }
    let anonymous = rollups::anonymous_delta(write.txn(), organization_id).await?;
    rollups::apply(write.txn(), organization_id, &anonymous, write.now()).await?;
    organization::Entity::update_many()
        .col_expr(
            organization::Column::RollupVersion,
            Expr::value(ROLLUP_VERSION),
        )
        .filter(organization::Column::Id.eq(organization_id))
        .exec(write.txn())
        .await?;
    // Nothing was touched through `touch`: commit applies no further delta.
    write.commit().await
}

/// Candidates per step of a rebuild.
const REBUILD_CHUNK: usize = 1_000;

/// Rebuilds the rollups of every organization built with an older version.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn rebuild_outdated(db: &DatabaseConnection) -> DomainResult<()> {
    let outdated: Vec<(i64, String)> = organization::Entity::find()
        .select_only()
        .columns([organization::Column::Id, organization::Column::Slug])
        .filter(organization::Column::RollupVersion.lt(ROLLUP_VERSION))
        .into_tuple()
        .all(db)
        .await?;
    for (id, slug) in outdated {
        tracing::info!(organization = %slug, "rebuilding perception rollups");
        rebuild(db, id).await?;
    }
    Ok(())
}
