//! `audit_events`: the audit trail. Every change (create, update, delete,
//! archive, erase, revoke) writes one row in the transaction of the change.
//! Rows hold the names of the changed fields, never their values.
//!
//! Two secondary indexes only, because every encounter write also writes
//! here: `(organization_id, id)` lists an organization's events newest
//! first (the actor and time filters scan it), and `(organization_id,
//! resource_type, resource_id)` finds a resource's history, and through the
//! candidate's and its encounters' ids, a candidate's events. Both grow at
//! their right edge as rows arrive (ids and encounter ids increase), so a
//! batch's rows share their index pages; an index on the subject candidate
//! would cost a page of its own per encounter.
//!
//! `actor_key_id` has no foreign key: keys are never deleted, and the check
//! would cost a lookup per row on the ingest path.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum AuditEvents {
    Table,
    Id,
    OrganizationId,
    OccurredAt,
    ActorKeyId,
    ActorName,
    ResourceType,
    ResourceId,
    Action,
    ChangedFields,
    SubjectCandidateId,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(AuditEvents::Table)
                    .col(big_pk_auto(AuditEvents::Id))
                    .col(big_integer(AuditEvents::OrganizationId))
                    .col(timestamp_with_time_zone(AuditEvents::OccurredAt))
                    .col(big_integer_null(AuditEvents::ActorKeyId))
                    .col(string_len(AuditEvents::ActorName, 200))
                    .col(string_len(AuditEvents::ResourceType, 32))
                    .col(big_integer(AuditEvents::ResourceId))
                    .col(string_len(AuditEvents::Action, 16))
                    .col(text(AuditEvents::ChangedFields))
                    .col(big_integer_null(AuditEvents::SubjectCandidateId))
                    .foreign_key(
                        ForeignKey::create()
                            .from(AuditEvents::Table, AuditEvents::OrganizationId)
                            .to(Organizations::Table, Organizations::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_organization")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::OrganizationId)
                    .col(AuditEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_audit_events_resource")
                    .table(AuditEvents::Table)
                    .col(AuditEvents::OrganizationId)
                    .col(AuditEvents::ResourceType)
                    .col(AuditEvents::ResourceId)
                    .to_owned(),
            )
            .await
    }
}
