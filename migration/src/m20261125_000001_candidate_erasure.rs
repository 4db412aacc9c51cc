//! `candidates.erased_at`: when the candidate's personal data was erased
//! (`DELETE /api/v1/candidates/{id}`); `NULL` while it is kept.
//!
//! `external_ref` stays `NOT NULL` and unique per organization: an erased
//! candidate's is replaced by a placeholder that names nobody (see
//! `domain::candidates::erased_external_ref`). Making the column nullable
//! instead would need the `candidates` table rebuilt on SQLite (it cannot
//! drop a `NOT NULL`), under the foreign keys of `encounters`; a placeholder
//! needs no schema change and keeps the unique index as it is.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Candidates {
    Table,
    ErasedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Candidates::Table)
                    .add_column(timestamp_with_time_zone_null(Candidates::ErasedAt))
                    .to_owned(),
            )
            .await
    }
}
