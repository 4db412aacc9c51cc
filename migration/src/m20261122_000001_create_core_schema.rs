//! The foundation: organizations, API keys, the touchpoint catalog,
//! candidates and their encounters.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
    Slug,
    Name,
}

#[derive(DeriveIden, Clone, Copy)]
enum ApiKeys {
    Table,
    Id,
    OrganizationId,
    Name,
    Role,
    TokenHash,
    TokenPrefix,
    LastUsedAt,
    RevokedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Touchpoints {
    Table,
    Id,
    OrganizationId,
    Name,
    Kind,
    Channel,
    Stage,
    Description,
    ArchivedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Candidates {
    Table,
    Id,
    OrganizationId,
    ExternalRef,
    DisplayName,
    Email,
    Stage,
}

#[derive(DeriveIden, Clone, Copy)]
enum Encounters {
    Table,
    Id,
    OrganizationId,
    CandidateId,
    TouchpointId,
    OccurredAt,
    Source,
    Score,
    Note,
    RecordedByKeyId,
}

#[derive(DeriveIden, Clone, Copy)]
enum Timestamps {
    CreatedAt,
    UpdatedAt,
}

/// `created_at` and `updated_at`, on every table.
fn with_timestamps(mut table: TableCreateStatement) -> TableCreateStatement {
    table
        .col(timestamp_with_time_zone(Timestamps::CreatedAt))
        .col(timestamp_with_time_zone(Timestamps::UpdatedAt));
    table
}

fn belongs_to_organization<T: IntoIden + 'static>(
    table: T,
    column: T,
) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, column)
        .to(Organizations::Table, Organizations::Id)
        .on_delete(ForeignKeyAction::Restrict)
        .to_owned()
}

fn index<T: IntoIden + Copy + 'static>(
    name: &str,
    table: T,
    columns: &[T],
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table);
    for column in columns {
        index.col(*column);
    }
    index
}

fn unique_index<T: IntoIden + Copy + 'static>(
    name: &str,
    table: T,
    columns: &[T],
) -> IndexCreateStatement {
    let mut index = index(name, table, columns);
    index.unique();
    index
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(Organizations::Table)
                    .col(big_pk_auto(Organizations::Id))
                    .col(string_len_uniq(Organizations::Slug, 64))
                    .col(string_len(Organizations::Name, 200))
                    .to_owned(),
            ))
            .await?;

        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(ApiKeys::Table)
                    .col(big_pk_auto(ApiKeys::Id))
                    .col(big_integer(ApiKeys::OrganizationId))
                    .col(string_len(ApiKeys::Name, 200))
                    .col(string_len(ApiKeys::Role, 16))
                    .col(string_len_uniq(ApiKeys::TokenHash, 64))
                    .col(string_len(ApiKeys::TokenPrefix, 16))
                    .col(timestamp_with_time_zone_null(ApiKeys::LastUsedAt))
                    .col(timestamp_with_time_zone_null(ApiKeys::RevokedAt))
                    .foreign_key(&mut belongs_to_organization(
                        ApiKeys::Table,
                        ApiKeys::OrganizationId,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(index(
                "idx_api_keys_organization",
                ApiKeys::Table,
                &[ApiKeys::OrganizationId, ApiKeys::Id],
            ))
            .await?;

        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(Touchpoints::Table)
                    .col(big_pk_auto(Touchpoints::Id))
                    .col(big_integer(Touchpoints::OrganizationId))
                    .col(string_len(Touchpoints::Name, 200))
                    .col(string_len(Touchpoints::Kind, 32))
                    .col(string_len(Touchpoints::Channel, 32))
                    .col(string_len(Touchpoints::Stage, 32))
                    .col(text_null(Touchpoints::Description))
                    .col(timestamp_with_time_zone_null(Touchpoints::ArchivedAt))
                    .foreign_key(&mut belongs_to_organization(
                        Touchpoints::Table,
                        Touchpoints::OrganizationId,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(unique_index(
                "uq_touchpoints_organization_name",
                Touchpoints::Table,
                &[Touchpoints::OrganizationId, Touchpoints::Name],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_touchpoints_organization_kind",
                Touchpoints::Table,
                &[Touchpoints::OrganizationId, Touchpoints::Kind],
            ))
            .await?;

        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(Candidates::Table)
                    .col(big_pk_auto(Candidates::Id))
                    .col(big_integer(Candidates::OrganizationId))
                    .col(string_len(Candidates::ExternalRef, 200))
                    .col(string_len_null(Candidates::DisplayName, 200))
                    .col(string_len_null(Candidates::Email, 320))
                    .col(string_len(Candidates::Stage, 32))
                    .foreign_key(&mut belongs_to_organization(
                        Candidates::Table,
                        Candidates::OrganizationId,
                    ))
                    .to_owned(),
            ))
            .await?;
        manager
            .create_index(unique_index(
                "uq_candidates_organization_external_ref",
                Candidates::Table,
                &[Candidates::OrganizationId, Candidates::ExternalRef],
            ))
            .await?;
        manager
            .create_index(index(
                "idx_candidates_organization_stage",
                Candidates::Table,
                &[Candidates::OrganizationId, Candidates::Stage],
            ))
            .await?;

        manager
            .create_table(with_timestamps(
                Table::create()
                    .table(Encounters::Table)
                    .col(big_pk_auto(Encounters::Id))
                    .col(big_integer(Encounters::OrganizationId))
                    .col(big_integer(Encounters::CandidateId))
                    .col(big_integer(Encounters::TouchpointId))
                    .col(timestamp_with_time_zone(Encounters::OccurredAt))
                    .col(string_len(Encounters::Source, 32))
                    .col(integer_null(Encounters::Score))
                    .col(text_null(Encounters::Note))
                    .col(big_integer(Encounters::RecordedByKeyId))
                    .check(
                        Expr::col(Encounters::Score)
                            .is_null()
                            .or(Expr::col(Encounters::Score).between(0, 10)),
                    )
                    .foreign_key(&mut belongs_to_organization(
                        Encounters::Table,
                        Encounters::OrganizationId,
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Encounters::Table, Encounters::CandidateId)
                            .to(Candidates::Table, Candidates::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Encounters::Table, Encounters::TouchpointId)
                            .to(Touchpoints::Table, Touchpoints::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Encounters::Table, Encounters::RecordedByKeyId)
                            .to(ApiKeys::Table, ApiKeys::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            ))
            .await?;
        for (name, columns) in [
            (
                "idx_encounters_candidate_time",
                &[
                    Encounters::OrganizationId,
                    Encounters::CandidateId,
                    Encounters::OccurredAt,
                ][..],
            ),
            (
                "idx_encounters_touchpoint",
                &[Encounters::OrganizationId, Encounters::TouchpointId],
            ),
            (
                "idx_encounters_time",
                &[Encounters::OrganizationId, Encounters::OccurredAt],
            ),
        ] {
            manager
                .create_index(index(name, Encounters::Table, columns))
                .await?;
        }
        Ok(())
    }
}
