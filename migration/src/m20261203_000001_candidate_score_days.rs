//! Each candidate's scored days: for every day with a score, the day's
//! first and latest score and the touchpoint of the latest, packed in one
//! value per candidate. Windows are whole days, so the perception-shift
//! report finds any window's first and latest score of a candidate in it,
//! instead of two index seeks per candidate into their encounters (see
//! `src/domain/analytics/reports/shift.rs`). A derived rollup, kept by
//! the projector like the others; the rollups' version moves to 3, so
//! every organization is rebuilt, and this table filled, on the first
//! start after the upgrade.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Candidates {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum CandidateScoreDays {
    Table,
    CandidateId,
    OrganizationId,
    Days,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CandidateScoreDays::Table)
                    .col(big_integer(CandidateScoreDays::CandidateId).primary_key())
                    .col(big_integer(CandidateScoreDays::OrganizationId))
                    .col(blob(CandidateScoreDays::Days))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CandidateScoreDays::Table, CandidateScoreDays::CandidateId)
                            .to(Candidates::Table, Candidates::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                CandidateScoreDays::Table,
                                CandidateScoreDays::OrganizationId,
                            )
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_candidate_score_days_organization")
                    .table(CandidateScoreDays::Table)
                    .col(CandidateScoreDays::OrganizationId)
                    .col(CandidateScoreDays::CandidateId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CandidateScoreDays::Table).to_owned())
            .await
    }
}
