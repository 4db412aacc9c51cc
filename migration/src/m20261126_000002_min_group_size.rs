//! `organizations.min_group_size`: small-group suppression. A report point
//! or row backed by fewer scored encounters than this shows its counts but
//! not the figures that would reveal individual scores. 0, the default,
//! turns suppression off, so existing organizations' reports are unchanged.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    MinGroupSize,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Organizations::Table)
                    .add_column(integer(Organizations::MinGroupSize).default(0))
                    .to_owned(),
            )
            .await
    }
}
