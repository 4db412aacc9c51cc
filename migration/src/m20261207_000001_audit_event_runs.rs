//! One audit event for a run of resources created together: a batch or an
//! import chunk records one `create` event for its encounters (and one for
//! the candidates it creates) instead of one a row. Writing an audit row
//! per encounter was a third of what SQLite alone takes to store a batch
//! (`scripts/sqlite-bulk-floor.py`).
//!
//! `last_resource_id` is the last id of the run, which holds every id from
//! `resource_id` to it; `NULL` on an event about one resource, as every
//! event written before this migration is. Runs are disjoint (a resource
//! is created once), so the run holding an id is the nearest one starting
//! at or before it; the partial index finds it in one probe and costs
//! nothing to the events about one resource.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    LastResourceId,
}

// Partial indexes are written the same way on both backends.
const RUN_INDEX: &str = "CREATE INDEX idx_audit_events_runs \
     ON audit_events (organization_id, resource_type, resource_id) \
     WHERE last_resource_id IS NOT NULL";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(big_integer_null(AuditEvents::LastResourceId))
                    .to_owned(),
            )
            .await?;
        manager
            .get_connection()
            .execute_unprepared(RUN_INDEX)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_audit_events_runs")
                    .table(AuditEvents::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .drop_column(AuditEvents::LastResourceId)
                    .to_owned(),
            )
            .await
    }
}
