//! Each candidate's first and latest score: what the perception-shift
//! report reads for every candidate whose scores all fall inside its
//! window, instead of two index seeks per candidate into their encounters
//! (see `src/domain/analytics/reports/shift.rs`). A derived rollup, kept
//! by the projector like the others; the rollups' version moves to 3, so
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
enum CandidateScoreEnds {
    Table,
    CandidateId,
    OrganizationId,
    Scores,
    FirstDay,
    FirstScore,
    LatestDay,
    LatestScore,
    LatestTouchpointId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CandidateScoreEnds::Table)
                    .col(big_integer(CandidateScoreEnds::CandidateId).primary_key())
                    .col(big_integer(CandidateScoreEnds::OrganizationId))
                    .col(big_integer(CandidateScoreEnds::Scores))
                    .col(integer(CandidateScoreEnds::FirstDay))
                    .col(integer(CandidateScoreEnds::FirstScore))
                    .col(integer(CandidateScoreEnds::LatestDay))
                    .col(integer(CandidateScoreEnds::LatestScore))
                    .col(big_integer(CandidateScoreEnds::LatestTouchpointId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(CandidateScoreEnds::Table, CandidateScoreEnds::CandidateId)
                            .to(Candidates::Table, Candidates::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(
                                CandidateScoreEnds::Table,
                                CandidateScoreEnds::OrganizationId,
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
                    .name("idx_candidate_score_ends_first_day")
                    .table(CandidateScoreEnds::Table)
                    .col(CandidateScoreEnds::OrganizationId)
                    .col(CandidateScoreEnds::FirstDay)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CandidateScoreEnds::Table).to_owned())
            .await
    }
}
