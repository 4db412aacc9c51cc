//! The rollups' high-water mark: how far each organization's encounters
//! have been projected into the rollups (see
//! `src/domain/analytics/projection.rs`). Requests only append encounters;
//! a background projector applies what they change to the rollups, in
//! order of `change_seq`, and moves the mark in the same transaction.
//!
//! Until now every write brought the rollups up to date itself, so each
//! existing organization starts with its mark at its current `change_seq`.
//!
//! The projector and every report read the candidates of the encounters
//! past the mark: the change-log index of encounters now holds the
//! candidate too, so that read touches no table row.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    ChangeSeq,
}

#[derive(DeriveIden)]
enum Encounters {
    Table,
    OrganizationId,
    ChangeSeq,
    CandidateId,
}

#[derive(DeriveIden)]
enum RollupMarks {
    Table,
    OrganizationId,
    ProjectedSeq,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RollupMarks::Table)
                    .col(big_integer(RollupMarks::OrganizationId).primary_key())
                    .col(big_integer(RollupMarks::ProjectedSeq).default(0))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RollupMarks::Table, RollupMarks::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        let existing = Query::insert()
            .into_table(RollupMarks::Table)
            .columns([RollupMarks::OrganizationId, RollupMarks::ProjectedSeq])
            .select_from(
                Query::select()
                    .columns([Organizations::Id, Organizations::ChangeSeq])
                    .from(Organizations::Table)
                    .to_owned(),
            )
            .map_err(|err| DbErr::Migration(err.to_string()))?
            .to_owned();
        manager.exec_stmt(existing).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_encounters_change_seq_candidate")
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::ChangeSeq)
                    .col(Encounters::CandidateId)
                    .to_owned(),
            )
            .await?;
        // Its prefix serves the export's cursor, which the old one did.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_encounters_change_seq")
                    .table(Encounters::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("idx_encounters_change_seq")
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::ChangeSeq)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("idx_encounters_change_seq_candidate")
                    .table(Encounters::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(RollupMarks::Table).to_owned())
            .await
    }
}
