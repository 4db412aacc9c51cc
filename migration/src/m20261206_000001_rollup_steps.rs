//! A projection step applied in parts (see
//! `src/domain/analytics/projection.rs`): the projector applies a large
//! step to the rollups in several short transactions, one group of rollup
//! keys (month and touchpoint) at a time, so that writes never wait behind
//! the whole step. Until its last part moves the mark, the step's end and
//! the parts already applied are kept here, in the transaction of each
//! part, so reports know which rollup rows already hold the step and a
//! restarted projector resumes it.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum RollupSteps {
    Table,
    OrganizationId,
    Upto,
    AppliedParts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RollupSteps::Table)
                    .col(big_integer(RollupSteps::OrganizationId).primary_key())
                    .col(big_integer(RollupSteps::Upto))
                    .col(blob(RollupSteps::AppliedParts))
                    .foreign_key(
                        ForeignKey::create()
                            .from(RollupSteps::Table, RollupSteps::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(RollupSteps::Table).to_owned())
            .await
    }
}
