//! The rollups' high-water mark: how far each organization's encounters
//! have been projected into the rollups (see
//! `src/domain/analytics/projection.rs`). Requests only append encounters;
//! a background projector applies what they change to the rollups, in
//! order of `change_seq`, and moves the mark in the same transaction.
//!
//! Until now every write brought the rollups up to date itself, so each
//! existing organization starts with its mark at its current `change_seq`.

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
        manager.exec_stmt(existing).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RollupMarks::Table).to_owned())
            .await
    }
}
