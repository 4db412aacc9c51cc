//! Replaces the index of encounters by time (`organization_id,
//! occurred_at`) with one in list order (`organization_id, id,
//! occurred_at`).
//!
//! Imports carry encounters from all over the past, so each insert landed
//! on a random page of the time index: on SQLite it was half the cost of
//! writing a batch (5,000 encounters into a table of 200,000: 83 ms with
//! it, 24 ms without, insert and commit). Since the reports read rollups,
//! only the encounter list's `from`/`to` filter used it. The list pages by
//! id: it now walks the new index, which grows at its end as encounters are
//! recorded, in page order and checks the time in the index itself (a
//! window of one day among 1,000,000 encounters over a year: about 37,000
//! index entries for a page of 100). Without an index in id order, SQLite
//! sorted all of the organization's encounters for every page.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Encounters {
    Table,
    OrganizationId,
    Id,
    OccurredAt,
}

const TIME: &str = "idx_encounters_time";
const LIST: &str = "idx_encounters_list";

fn drop_index(name: &str) -> IndexDropStatement {
    Index::drop().name(name).table(Encounters::Table).to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(LIST)
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::Id)
                    .col(Encounters::OccurredAt)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(drop_index(TIME)).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name(TIME)
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::OccurredAt)
                    .to_owned(),
            )
            .await?;
        manager.drop_index(drop_index(LIST)).await
    }
}
