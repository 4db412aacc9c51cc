//! What the reports' intervals and the perception gap need from the rollups.
//!
//! - `score_sq_sum` and `attributed_sq_sum` in `perception_daily` and
//!   `perception_monthly`: with the count and the sum, the sum of squares
//!   gives a variance, so a mean gets its interval without a scan. The
//!   covering index of `perception_daily` is rebuilt to hold them.
//! - `perception_source_daily` and `perception_source_monthly`: the same
//!   counters split by the encounter's `source` (recruiter observation,
//!   candidate survey, review import, other), for the perception-gap
//!   report. Kept apart so the other reports read no more rows than before.
//! - `idx_encounters_candidate` is replaced by
//!   `idx_encounters_candidate_source`, the same columns and `source`, so
//!   reading a candidate's encounters for the rollups still touches no
//!   table rows.
//!
//! The new counters start at 0: the service raises the rollups' version
//! with this change, so every organization is rebuilt from its encounters
//! when the service starts.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Touchpoints {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Encounters {
    Table,
    Id,
    OrganizationId,
    CandidateId,
    OccurredAt,
    Score,
    TouchpointId,
    Source,
}

#[derive(DeriveIden, Clone, Copy)]
enum PerceptionDaily {
    Table,
    OrganizationId,
    TouchpointId,
    Day,
    Week,
    Month,
}

#[derive(DeriveIden, Clone, Copy)]
enum PerceptionMonthly {
    Table,
}

/// The counters both tables gain.
#[derive(DeriveIden, Clone, Copy)]
enum SquareSums {
    ScoreSqSum,
    AttributedSqSum,
}

#[derive(DeriveIden, Clone, Copy)]
enum PerceptionSourceDaily {
    Table,
    Id,
    OrganizationId,
    TouchpointId,
    Day,
    Month,
    Source,
}

#[derive(DeriveIden, Clone, Copy)]
enum PerceptionSourceMonthly {
    Table,
    Id,
    OrganizationId,
    TouchpointId,
    Month,
    Source,
}

#[derive(DeriveIden, Clone, Copy)]
enum Timestamps {
    CreatedAt,
    UpdatedAt,
}

/// The counters of every rollup table from here on, in the order of the
/// service's `Counters`.
const COUNTERS: [&str; 10] = [
    "encounters",
    "scored",
    "score_sum",
    "score_sq_sum",
    "promoters",
    "passives",
    "detractors",
    "attributed_sum",
    "attributed_sq_sum",
    "attributions",
];

fn with_counters_and_timestamps(mut table: TableCreateStatement) -> TableCreateStatement {
    for name in COUNTERS {
        let column = Alias::new(name);
        if name.starts_with("attributed_s") {
            table.col(double(column));
        } else {
            table.col(big_integer(column));
        }
    }
    table
        .col(timestamp_with_time_zone(Timestamps::CreatedAt))
        .col(timestamp_with_time_zone(Timestamps::UpdatedAt));
    table
}

fn references(
    table: impl IntoIden + 'static,
    column: impl IntoIden + 'static,
    target: impl IntoIden + 'static,
    target_id: impl IntoIden + 'static,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(target, target_id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        for table in [
            PerceptionDaily::Table.into_iden(),
            PerceptionMonthly::Table.into_iden(),
        ] {
            for column in [
                big_integer(SquareSums::ScoreSqSum).default(0).to_owned(),
                double(SquareSums::AttributedSqSum).default(0.0).to_owned(),
            ] {
                manager
                    .alter_table(
                        Table::alter()
                            .table(table.clone())
                            .add_column(column)
                            .to_owned(),
                    )
                    .await?;
            }
        }
        manager
            .drop_index(
                Index::drop()
                    .name("idx_perception_daily_day")
                    .table(PerceptionDaily::Table)
                    .to_owned(),
            )
            .await?;
        // Covering: reports read the counters from the index alone. A new
        // name: a pooled SQLite connection may still hold the statement
        // that created the old one.
        let mut by_day = Index::create();
        by_day
            .name("idx_perception_daily_day_counters")
            .table(PerceptionDaily::Table);
        for column in [
            PerceptionDaily::OrganizationId,
            PerceptionDaily::Day,
            PerceptionDaily::TouchpointId,
            PerceptionDaily::Week,
            PerceptionDaily::Month,
        ] {
            by_day.col(column);
        }
        for name in COUNTERS {
            by_day.col(Alias::new(name));
        }
        manager.create_index(by_day).await?;

        manager
            .create_table(with_counters_and_timestamps(
                Table::create()
                    .table(PerceptionSourceDaily::Table)
                    .col(big_pk_auto(PerceptionSourceDaily::Id))
                    .col(big_integer(PerceptionSourceDaily::OrganizationId))
                    .col(big_integer(PerceptionSourceDaily::TouchpointId))
                    .col(integer(PerceptionSourceDaily::Day))
                    .col(integer(PerceptionSourceDaily::Month))
                    .col(string_len(PerceptionSourceDaily::Source, 32))
                    .foreign_key(&mut references(
                        PerceptionSourceDaily::Table,
                        PerceptionSourceDaily::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                    ))
                    .foreign_key(&mut references(
                        PerceptionSourceDaily::Table,
                        PerceptionSourceDaily::TouchpointId,
                        Touchpoints::Table,
                        Touchpoints::Id,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_perception_source_daily_key")
                    .table(PerceptionSourceDaily::Table)
                    .col(PerceptionSourceDaily::OrganizationId)
                    .col(PerceptionSourceDaily::TouchpointId)
                    .col(PerceptionSourceDaily::Day)
                    .col(PerceptionSourceDaily::Source)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Covering for the gap report, which reads the score counters only.
        let mut by_day = Index::create();
        by_day
            .name("idx_perception_source_daily_day")
            .table(PerceptionSourceDaily::Table);
        for column in [
            PerceptionSourceDaily::OrganizationId,
            PerceptionSourceDaily::Day,
            PerceptionSourceDaily::TouchpointId,
            PerceptionSourceDaily::Source,
            PerceptionSourceDaily::Month,
        ] {
            by_day.col(column);
        }
        for name in COUNTERS.iter().filter(|name| !name.starts_with("attribut")) {
            by_day.col(Alias::new(*name));
        }
        manager.create_index(by_day).await?;

        manager
            .create_table(with_counters_and_timestamps(
                Table::create()
                    .table(PerceptionSourceMonthly::Table)
                    .col(big_pk_auto(PerceptionSourceMonthly::Id))
                    .col(big_integer(PerceptionSourceMonthly::OrganizationId))
                    .col(big_integer(PerceptionSourceMonthly::TouchpointId))
                    .col(integer(PerceptionSourceMonthly::Month))
                    .col(string_len(PerceptionSourceMonthly::Source, 32))
                    .foreign_key(&mut references(
                        PerceptionSourceMonthly::Table,
                        PerceptionSourceMonthly::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                    ))
                    .foreign_key(&mut references(
                        PerceptionSourceMonthly::Table,
                        PerceptionSourceMonthly::TouchpointId,
                        Touchpoints::Table,
                        Touchpoints::Id,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_perception_source_monthly_key")
                    .table(PerceptionSourceMonthly::Table)
                    .col(PerceptionSourceMonthly::OrganizationId)
                    .col(PerceptionSourceMonthly::TouchpointId)
                    .col(PerceptionSourceMonthly::Month)
                    .col(PerceptionSourceMonthly::Source)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_perception_source_monthly_month")
                    .table(PerceptionSourceMonthly::Table)
                    .col(PerceptionSourceMonthly::OrganizationId)
                    .col(PerceptionSourceMonthly::Month)
                    .to_owned(),
            )
            .await?;

        // A candidate's encounters, source included, from the index alone.
        manager
            .drop_index(
                Index::drop()
                    .name("idx_encounters_candidate")
                    .table(Encounters::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_encounters_candidate_source")
                    .table(Encounters::Table)
                    .col(Encounters::OrganizationId)
                    .col(Encounters::CandidateId)
                    .col(Encounters::OccurredAt)
                    .col(Encounters::Id)
                    .col(Encounters::Score)
                    .col(Encounters::TouchpointId)
                    .col(Encounters::Source)
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
