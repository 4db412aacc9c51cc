//! Monitoring: the event outbox, webhook endpoints and their delivery log,
//! alert rules and alerts.
//!
//! - `outbox_events`: one row per event (`encounter.created`, ...),
//!   written in the transaction of the change that caused it, so an event
//!   exists exactly when its change committed. `payload` holds no personal
//!   data; an endpoint that opted in gets it added when the event is sent,
//!   from the data as it is then (so an erased candidate's never leaves).
//! - `webhook_endpoints`: where events go, with the signing secret (and the
//!   previous one during a rotation), the position in the outbox up to
//!   which events were handled (`cursor_event_id`: events go out in order),
//!   the retry state of the event at the head, and a claim so one instance
//!   at a time delivers an endpoint's events.
//! - `webhook_deliveries`: every attempt (time, status, latency, error, a
//!   short prefix of the answer).
//! - `webhook_redeliveries`: events asked to be sent again.
//! - `alert_rules`, `alerts`: the rules the service evaluates and the
//!   alerts they raised; an alert is unique per rule, group and period.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden, Clone, Copy)]
enum Organizations {
    Table,
    Id,
}

#[derive(DeriveIden, Clone, Copy)]
enum OutboxEvents {
    Table,
    Id,
    OrganizationId,
    EventType,
    SubjectCandidateId,
    Payload,
    CreatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookEndpoints {
    Table,
    Id,
    OrganizationId,
    Url,
    Description,
    EventTypes,
    Enabled,
    IncludePersonalData,
    Secret,
    PreviousSecret,
    PreviousSecretExpiresAt,
    CursorEventId,
    Attempts,
    NextAttemptAt,
    ConsecutiveFailures,
    DisabledReason,
    ClaimedUntil,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookDeliveries {
    Table,
    Id,
    OrganizationId,
    EndpointId,
    EventId,
    AttemptedAt,
    StatusCode,
    LatencyMs,
    Error,
    ResponsePrefix,
}

#[derive(DeriveIden, Clone, Copy)]
enum WebhookRedeliveries {
    Table,
    Id,
    EndpointId,
    EventId,
    RequestedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum AlertRules {
    Table,
    Id,
    OrganizationId,
    Name,
    Kind,
    Enabled,
    Threshold,
    GroupBy,
    TouchpointIds,
    Kinds,
    Stages,
    Period,
    BaselinePeriods,
    MinScores,
    Cusum,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden, Clone, Copy)]
enum Alerts {
    Table,
    Id,
    OrganizationId,
    RuleId,
    GroupKey,
    PeriodStart,
    EncounterId,
    Status,
    Details,
    OpenedAt,
    AcknowledgedAt,
    ResolvedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let organization = |table: DynIden, column: DynIden| {
            ForeignKey::create()
                .from(table, column)
                .to(Organizations::Table, Organizations::Id)
                .on_delete(ForeignKeyAction::Cascade)
                .to_owned()
        };
        manager
            .create_table(
                Table::create()
                    .table(OutboxEvents::Table)
                    .col(big_pk_auto(OutboxEvents::Id))
                    .col(big_integer(OutboxEvents::OrganizationId))
                    .col(string_len(OutboxEvents::EventType, 32))
                    .col(big_integer_null(OutboxEvents::SubjectCandidateId))
                    .col(text(OutboxEvents::Payload))
                    .col(timestamp_with_time_zone(OutboxEvents::CreatedAt))
                    .foreign_key(&mut organization(
                        OutboxEvents::Table.into_iden(),
                        OutboxEvents::OrganizationId.into_iden(),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_outbox_events_org_id")
                    .table(OutboxEvents::Table)
                    .col(OutboxEvents::OrganizationId)
                    .col(OutboxEvents::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookEndpoints::Table)
                    .col(big_pk_auto(WebhookEndpoints::Id))
                    .col(big_integer(WebhookEndpoints::OrganizationId))
                    .col(text(WebhookEndpoints::Url))
                    .col(text_null(WebhookEndpoints::Description))
                    .col(text(WebhookEndpoints::EventTypes))
                    .col(boolean(WebhookEndpoints::Enabled))
                    .col(boolean(WebhookEndpoints::IncludePersonalData))
                    .col(string_len(WebhookEndpoints::Secret, 100))
                    .col(string_len_null(WebhookEndpoints::PreviousSecret, 100))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::PreviousSecretExpiresAt,
                    ))
                    .col(big_integer(WebhookEndpoints::CursorEventId))
                    .col(integer(WebhookEndpoints::Attempts).default(0))
                    .col(timestamp_with_time_zone(WebhookEndpoints::NextAttemptAt))
                    .col(integer(WebhookEndpoints::ConsecutiveFailures).default(0))
                    .col(text_null(WebhookEndpoints::DisabledReason))
                    .col(timestamp_with_time_zone_null(
                        WebhookEndpoints::ClaimedUntil,
                    ))
                    .col(timestamp_with_time_zone(WebhookEndpoints::CreatedAt))
                    .col(timestamp_with_time_zone(WebhookEndpoints::UpdatedAt))
                    .foreign_key(&mut organization(
                        WebhookEndpoints::Table.into_iden(),
                        WebhookEndpoints::OrganizationId.into_iden(),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookDeliveries::Table)
                    .col(big_pk_auto(WebhookDeliveries::Id))
                    .col(big_integer(WebhookDeliveries::OrganizationId))
                    .col(big_integer(WebhookDeliveries::EndpointId))
                    .col(big_integer_null(WebhookDeliveries::EventId))
                    .col(timestamp_with_time_zone(WebhookDeliveries::AttemptedAt))
                    .col(integer_null(WebhookDeliveries::StatusCode))
                    .col(integer(WebhookDeliveries::LatencyMs))
                    .col(text_null(WebhookDeliveries::Error))
                    .col(text_null(WebhookDeliveries::ResponsePrefix))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookDeliveries::Table, WebhookDeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_webhook_deliveries_endpoint")
                    .table(WebhookDeliveries::Table)
                    .col(WebhookDeliveries::EndpointId)
                    .col(WebhookDeliveries::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebhookRedeliveries::Table)
                    .col(big_pk_auto(WebhookRedeliveries::Id))
                    .col(big_integer(WebhookRedeliveries::EndpointId))
                    .col(big_integer(WebhookRedeliveries::EventId))
                    .col(timestamp_with_time_zone(WebhookRedeliveries::RequestedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebhookRedeliveries::Table, WebhookRedeliveries::EndpointId)
                            .to(WebhookEndpoints::Table, WebhookEndpoints::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(AlertRules::Table)
                    .col(big_pk_auto(AlertRules::Id))
                    .col(big_integer(AlertRules::OrganizationId))
                    .col(string_len(AlertRules::Name, 200))
                    .col(string_len(AlertRules::Kind, 16))
                    .col(boolean(AlertRules::Enabled))
                    .col(integer(AlertRules::Threshold))
                    .col(string_len(AlertRules::GroupBy, 16))
                    .col(text(AlertRules::TouchpointIds))
                    .col(text(AlertRules::Kinds))
                    .col(text(AlertRules::Stages))
                    .col(string_len(AlertRules::Period, 8))
                    .col(integer(AlertRules::BaselinePeriods))
                    .col(integer(AlertRules::MinScores))
                    .col(boolean(AlertRules::Cusum).default(false))
                    .col(timestamp_with_time_zone(AlertRules::CreatedAt))
                    .col(timestamp_with_time_zone(AlertRules::UpdatedAt))
                    .foreign_key(&mut organization(
                        AlertRules::Table.into_iden(),
                        AlertRules::OrganizationId.into_iden(),
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Alerts::Table)
                    .col(big_pk_auto(Alerts::Id))
                    .col(big_integer(Alerts::OrganizationId))
                    .col(big_integer(Alerts::RuleId))
                    .col(string_len(Alerts::GroupKey, 64))
                    .col(integer(Alerts::PeriodStart))
                    .col(big_integer_null(Alerts::EncounterId))
                    .col(string_len(Alerts::Status, 16))
                    .col(text(Alerts::Details))
                    .col(timestamp_with_time_zone(Alerts::OpenedAt))
                    .col(timestamp_with_time_zone_null(Alerts::AcknowledgedAt))
                    .col(timestamp_with_time_zone_null(Alerts::ResolvedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(Alerts::Table, Alerts::RuleId)
                            .to(AlertRules::Table, AlertRules::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // An alert never repeats for the same rule, group and period (a
        // detractor alert's group is its encounter).
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_rule_group_period")
                    .table(Alerts::Table)
                    .col(Alerts::RuleId)
                    .col(Alerts::GroupKey)
                    .col(Alerts::PeriodStart)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_alerts_org_id")
                    .table(Alerts::Table)
                    .col(Alerts::OrganizationId)
                    .col(Alerts::Id)
                    .to_owned(),
            )
            .await
    }
}
