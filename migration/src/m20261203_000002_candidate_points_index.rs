//! The covering index of each candidate's encounters also holds
//! `change_seq`: the projector reads a candidate's encounters with it (to
//! tell the projected from the pending, see
//! `src/domain/analytics/projection.rs`), and without it every encounter
//! read cost a lookup of its table row. It replaces the index it extends,
//! so a write still maintains as many indexes.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Encounters {
    Table,
    OrganizationId,
    CandidateId,
    OccurredAt,
    Id,
    Score,
    TouchpointId,
    Source,
    ChangeSeq,
}

fn candidate_index(name: &str, with_change_seq: bool) -> IndexCreateStatement {
    let mut index = Index::create();
    index
        .name(name)
        .table(Encounters::Table)
        .col(Encounters::OrganizationId)
        .col(Encounters::CandidateId)
        .col(Encounters::OccurredAt)
        .col(Encounters::Id)
        .col(Encounters::Score)
        .col(Encounters::TouchpointId)
        .col(Encounters::Source);
    if with_change_seq {
        index.col(Encounters::ChangeSeq);
    }
    index
}

fn drop_index(name: &str) -> IndexDropStatement {
    Index::drop().name(name).table(Encounters::Table).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(candidate_index("idx_encounters_candidate_points", true))
            .await?;
        manager
            .drop_index(drop_index("idx_encounters_candidate_source"))
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(candidate_index("idx_encounters_candidate_source", false))
            .await?;
        manager
            .drop_index(drop_index("idx_encounters_candidate_points"))
            .await
    }
}
