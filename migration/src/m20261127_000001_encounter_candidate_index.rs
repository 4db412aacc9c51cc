//! One covering index of each candidate's encounters in time order,
//! replacing two: `idx_encounters_candidate_time` (organization, candidate,
//! time) and the partial `idx_encounters_candidate_scored` (the same plus
//! id, score and touchpoint, scored rows only).
//!
//! Every recorded encounter reads all of its candidate's encounters (to
//! update the perception rollups) and inserts one entry into each index.
//! With this index the read touches no table rows, and each insert changes
//! one page fewer. The perception-shift report, which the partial index
//! served, skips unscored entries of the same index.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Encounters {
    Table,
    Id,
    OrganizationId,
    CandidateId,
    OccurredAt,
    Score,
    TouchpointId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_encounters_candidate")
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::CandidateId)
                    .col(Encounters::OccurredAt)
                    .col(Encounters::Id)
                    .col(Encounters::Score)
                    .col(Encounters::TouchpointId)
                    .to_owned(),
            )
            .await?;
        for replaced in [
            "idx_encounters_candidate_time",
            "idx_encounters_candidate_scored",
        ] {
            manager
                .drop_index(
                    Index::drop()
                        .name(replaced)
                        .table(Encounters::Table)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
