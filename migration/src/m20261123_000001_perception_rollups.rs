//! Perception rollups: what the reports read instead of scanning encounters.
//!
//! - `perception_daily`: per organization, touchpoint and UTC day, the
//!   counters of the encounters that occurred that day (scores, cNPS classes,
//!   attributed shift). Days, ISO weeks and months are stored as integers so
//!   bucketing is the same plain `GROUP BY` on SQLite and PostgreSQL.
//! - `perception_monthly`: the same counters per calendar month, so a
//!   year-long report reads twelve rows per touchpoint (plus the days of
//!   partial months at its edges) instead of 365.
//! - `touchpoint_reach`: per touchpoint and day or month, the set of
//!   candidates who met it, as a serialized roaring bitmap, for exact
//!   distinct-candidate counts over any window.
//! - `encounter_tombstones` and the `change_seq` columns: the incremental
//!   export's change log.
//!
//! Existing data is not rolled up here (that needs the service's domain
//! code): `organizations.rollup_version` starts at 0 and the service
//! rebuilds every organization below its current version at start.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
    ChangeSeq,
    RollupVersion,
}

#[derive(DeriveIden, Clone, Copy)]
enum Touchpoints {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum Encounters {
    Table,
    OrganizationId,
    ChangeSeq,
}

#[derive(DeriveIden, Clone, Copy)]
enum EncounterTombstones {
    Table,
    Id,
    OrganizationId,
    EncounterId,
    CandidateId,
    ChangeSeq,
    DeletedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum PerceptionDaily {
    Table,
    Id,
    OrganizationId,
    TouchpointId,
    Day,
    Week,
    Month,
}

#[derive(DeriveIden, Clone, Copy)]
enum PerceptionMonthly {
    Table,
    Id,
    OrganizationId,
    TouchpointId,
    Month,
}

#[derive(DeriveIden, Clone, Copy)]
enum TouchpointReach {
    Table,
    Id,
    OrganizationId,
    TouchpointId,
    Span,
    Period,
    Candidates,
}

#[derive(DeriveIden, Clone, Copy)]
enum Timestamps {
    CreatedAt,
    UpdatedAt,
}

fn with_timestamps(mut table: TableCreateStatement) -> TableCreateStatement {
    table
        .col(timestamp_with_time_zone(Timestamps::CreatedAt))
        .col(timestamp_with_time_zone(Timestamps::UpdatedAt));
    table
}

/// The counters `perception_daily` and `perception_monthly` share.
const COUNTERS: [&str; 8] = [
    "encounters",
    "scored",
    "score_sum",
    "promoters",
    "passives",
    "detractors",
    "attributed_sum",
    "attributions",
];

fn with_counters(mut table: TableCreateStatement) -> TableCreateStatement {
    for name in COUNTERS {
        let column = Alias::new(name);
        if name == "attributed_sum" {
            table.col(double(column));
        } else {
            table.col(big_integer(column));
        }
    }
    table
}

fn references<T: IntoIden + 'static, U: IntoIden + 'static, V: IntoIden + 'static>(
    table: T,
    column: U,
    target: V,
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
        for column in [
            big_integer(Organizations::ChangeSeq).default(0).to_owned(),
            integer(Organizations::RollupVersion).default(0).to_owned(),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Organizations::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Encounters::Table)
                    .add_column(big_integer(Encounters::ChangeSeq).default(0))
                    .to_owned(),
            )
            .await?;
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
        // The perception-shift report looks up each candidate's first and
        // latest score in a window; only scored rows belong in that index.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE INDEX idx_encounters_candidate_scored \
                 ON encounters (organization_id, candidate_id, occurred_at, id, score, touchpoint_id) \
                 WHERE score IS NOT NULL",
            )
            .await?;

        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(EncounterTombstones::Table)
                    .col(big_pk_auto(EncounterTombstones::Id))
                    .col(big_integer(EncounterTombstones::OrganizationId))
                    .col(big_integer(EncounterTombstones::EncounterId))
                    .col(big_integer(EncounterTombstones::CandidateId))
                    .col(big_integer(EncounterTombstones::ChangeSeq))
                    .col(timestamp_with_time_zone(EncounterTombstones::DeletedAt))
                    .foreign_key(&mut references(
                        EncounterTombstones::Table,
                        EncounterTombstones::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_encounter_tombstones_change_seq")
                    .table(EncounterTombstones::Table)
                    .col(EncounterTombstones::OrganizationId)
                    .col(EncounterTombstones::ChangeSeq)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(with_timestamps(with_counters(
                Table::create()
                    .table(PerceptionDaily::Table)
                    .col(big_pk_auto(PerceptionDaily::Id))
                    .col(big_integer(PerceptionDaily::OrganizationId))
                    .col(big_integer(PerceptionDaily::TouchpointId))
                    .col(integer(PerceptionDaily::Day))
                    .col(integer(PerceptionDaily::Week))
                    .col(integer(PerceptionDaily::Month))
                    .foreign_key(&mut references(
                        PerceptionDaily::Table,
                        PerceptionDaily::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                    ))
                    .foreign_key(&mut references(
                        PerceptionDaily::Table,
                        PerceptionDaily::TouchpointId,
                        Touchpoints::Table,
                        Touchpoints::Id,
                    ))
                    .to_owned(),
            )))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_perception_daily_touchpoint_day")
                    .table(PerceptionDaily::Table)
                    .col(PerceptionDaily::OrganizationId)
                    .col(PerceptionDaily::TouchpointId)
                    .col(PerceptionDaily::Day)
                    .unique()
                    .to_owned(),
            )
            .await?;
        // Covering: reports read the counters from the index alone.
        let mut by_day = Index::create();
        by_day
            .name("idx_perception_daily_day")
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
            .create_table(with_timestamps(with_counters(
                Table::create()
                    .table(PerceptionMonthly::Table)
                    .col(big_pk_auto(PerceptionMonthly::Id))
                    .col(big_integer(PerceptionMonthly::OrganizationId))
                    .col(big_integer(PerceptionMonthly::TouchpointId))
                    .col(integer(PerceptionMonthly::Month))
                    .foreign_key(&mut references(
                        PerceptionMonthly::Table,
                        PerceptionMonthly::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                    ))
                    .foreign_key(&mut references(
                        PerceptionMonthly::Table,
                        PerceptionMonthly::TouchpointId,
                        Touchpoints::Table,
                        Touchpoints::Id,
                    ))
                    .to_owned(),
            )))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_perception_monthly_touchpoint_month")
                    .table(PerceptionMonthly::Table)
                    .col(PerceptionMonthly::OrganizationId)
                    .col(PerceptionMonthly::TouchpointId)
                    .col(PerceptionMonthly::Month)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_perception_monthly_month")
                    .table(PerceptionMonthly::Table)
                    .col(PerceptionMonthly::OrganizationId)
                    .col(PerceptionMonthly::Month)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(TouchpointReach::Table)
                    .col(big_pk_auto(TouchpointReach::Id))
                    .col(big_integer(TouchpointReach::OrganizationId))
                    .col(big_integer(TouchpointReach::TouchpointId))
                    .col(string_len(TouchpointReach::Span, 8))
                    .col(integer(TouchpointReach::Period))
                    .col(blob(TouchpointReach::Candidates))
                    .foreign_key(&mut references(
                        TouchpointReach::Table,
                        TouchpointReach::OrganizationId,
                        Organizations::Table,
                        Organizations::Id,
                    ))
                    .foreign_key(&mut references(
                        TouchpointReach::Table,
                        TouchpointReach::TouchpointId,
                        Touchpoints::Table,
                        Touchpoints::Id,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_touchpoint_reach_period")
                    .table(TouchpointReach::Table)
                    .col(TouchpointReach::OrganizationId)
                    .col(TouchpointReach::Span)
                    .col(TouchpointReach::Period)
                    .col(TouchpointReach::TouchpointId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
