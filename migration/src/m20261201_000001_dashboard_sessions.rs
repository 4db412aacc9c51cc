//! Dashboard sessions: an API key exchanged once for a session the browser
//! holds in an `HttpOnly` cookie (see `src/domain/access/sessions.rs`).
//!
//! Only the SHA-256 hash of the session's token is stored, like a key's.
//! A session is the key's: deleting the key (or its organization) deletes
//! it, and authentication checks the key on every request, so revoking
//! the key ends the session at once.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ApiKeys {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum DashboardSessions {
    Table,
    Id,
    OrganizationId,
    ApiKeyId,
    TokenHash,
    CreatedAt,
    ExpiresAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DashboardSessions::Table)
                    .col(big_pk_auto(DashboardSessions::Id))
                    .col(big_integer(DashboardSessions::OrganizationId))
                    .col(big_integer(DashboardSessions::ApiKeyId))
                    .col(string_len_uniq(DashboardSessions::TokenHash, 64))
                    .col(timestamp_with_time_zone(DashboardSessions::CreatedAt))
                    .col(timestamp_with_time_zone(DashboardSessions::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(DashboardSessions::Table, DashboardSessions::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(DashboardSessions::Table, DashboardSessions::ApiKeyId)
                            .to(ApiKeys::Table, ApiKeys::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // Revoking a key deletes its sessions; sign-in purges the expired.
        manager
            .create_index(
                Index::create()
                    .name("idx_dashboard_sessions_key")
                    .table(DashboardSessions::Table)
                    .col(DashboardSessions::ApiKeyId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_dashboard_sessions_expiry")
                    .table(DashboardSessions::Table)
                    .col(DashboardSessions::ExpiresAt)
                    .to_owned(),
            )
            .await
    }
}
