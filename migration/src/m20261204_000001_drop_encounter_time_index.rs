//! Drops the index of encounters by time (`organization_id, occurred_at`).
//! Imports carry encounters from all over the past, so each insert landed
//! on a random page of it: on SQLite it was half the cost of writing a
//! batch (5,000 encounters into a table of 200,000: 83 ms with it, 24 ms
//! without, insert and commit). Since the reports read rollups, only the
//! encounter list's `from`/`to` filter used it; that list pages by id and
//! now finds the window's rows walking the table in id order.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Encounters {
    Table,
    OrganizationId,
    OccurredAt,
}

const NAME: &str = "idx_encounters_time";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(Index::drop().name(NAME).table(Encounters::Table).to_owned())
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(NAME)
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::OccurredAt)
                    .to_owned(),
            )
            .await
    }
}
