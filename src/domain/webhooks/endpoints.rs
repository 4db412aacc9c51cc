//! Webhook endpoints: where an organization's events go. Admins create,
//! change, rotate the secret of, and delete them; the secret is shown when
//! it is made and never again.

use std::collections::BTreeSet;

use chrono::Duration;
use entity::{
    enums::AuditAction, organization, outbox_event, webhook_delivery, webhook_endpoint,
    webhook_redelivery,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    EntityTrait, PaginatorTrait, QueryFilter, QuerySelect, Set,
};

use crate::domain::{
    pagination::{Page, PageRequest},
    patch::Patch,
    privacy::audit::{self, Actor, Event},
    webhooks::{
        address::check_scheme,
        address::{self, AllowList},
        events::EventType,
        signature,
    },
    DomainError, DomainResult,
};

/// The longest endpoint URL.
pub const URL_MAX: usize = 2000;
/// The most endpoints an organization may have.
pub const ENDPOINTS_MAX: u64 = 50;
/// The longest overlap of a secret rotation.
pub const ROTATION_OVERLAP_MAX: Duration = Duration::days(7);

/// An endpoint to create.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    pub url: String,
    pub description: Option<String>,
    pub event_types: BTreeSet<EventType>,
    pub enabled: bool,
    pub include_personal_data: bool,
}

/// Changes to an endpoint.
#[derive(Debug, Default)]
pub struct EndpointChanges {
    pub url: Patch<String>,
    pub description: Patch<Option<String>>,
    pub event_types: Patch<BTreeSet<EventType>>,
    pub enabled: Patch<bool>,
    pub include_personal_data: Patch<bool>,
}

/// What URL rules need: whether `http://` is allowed, and the networks a
/// literal address may be in.
#[derive(Debug, Clone, Copy)]
pub struct UrlRules<'a> {
    pub allow_http: bool,
    pub allowed_networks: &'a AllowList,
}

fn stored_types(types: &BTreeSet<EventType>) -> String {
    serde_json::to_string(&types.iter().map(|t| t.as_str()).collect::<Vec<_>>())
        .expect("strings serialize")
}

/// Checks a URL: absolute, `https` (or `http` when allowed), a host, no
/// fragment; a literal address must be public or allowed. (A host name is
/// checked when it is resolved, at each delivery.)
pub fn check_url(url: &str, rules: UrlRules<'_>) -> DomainResult<String> {
    let url = url.trim();
    if url.len() > URL_MAX {
        return Err(DomainError::invalid(
            "url",
            format!("must be at most {URL_MAX} characters"),
        ));
    }
    let parsed = url::Url::parse(url)
        .map_err(|_| DomainError::invalid("url", "must be an absolute https:// URL"))?;
    check_scheme(&parsed, rules.allow_http)?;
    if parsed.fragment().is_some() {
        return Err(DomainError::invalid("url", "must have no #fragment"));
    }
    let host = parsed
        .host_str()
        .ok_or_else(|| DomainError::invalid("url", "must name a host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<std::net::IpAddr>() {
        if !rules.allowed_networks.allows(ip) {
            if let Some(why) = address::forbidden(ip) {
                return Err(DomainError::invalid(
                    "url",
                    format!("{ip} is {why}; deliveries go to public addresses only"),
                ));
            }
        }
    }
    Ok(parsed.to_string())
}

fn check_types(types: &BTreeSet<EventType>) -> DomainResult<()> {
    if types.is_empty() {
        return Err(DomainError::invalid(
            "event_types",
            "must name at least one event type",
        ));
    }
    Ok(())
}

/// Takes the organization's write lock (its row on PostgreSQL; SQLite's
/// write transaction already holds the only one): events get their ids in
/// the order their transactions commit only while every transaction that
/// writes them, or reads where an endpoint starts, holds it.
pub(crate) async fn lock_organization(
    txn: &DatabaseTransaction,
    organization_id: i64,
) -> DomainResult<()> {
    organization::Entity::find_by_id(organization_id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "organization",
        })?;
    Ok(())
}

/// Creates an endpoint; it receives the events after this moment. Returns
/// it with its secret (shown once).
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn create(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    new: NewEndpoint,
    rules: UrlRules<'_>,
) -> DomainResult<webhook_endpoint::Model> {
    let url = check_url(&new.url, rules)?;
    check_types(&new.event_types)?;
    let description = crate::domain::validate::optional_text(
        "description",
        new.description,
        crate::domain::validate::NAME_MAX,
    )?;
    let txn = crate::domain::begin_write(db).await?;
    lock_organization(&txn, organization_id).await?;
    let count = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OrganizationId.eq(organization_id))
        .count(&txn)
        .await?;
    if count >= ENDPOINTS_MAX {
        return Err(DomainError::invalid(
            "url",
            format!("an organization has at most {ENDPOINTS_MAX} webhook endpoints"),
        ));
    }
    let latest_event: Option<i64> = outbox_event::Entity::find()
        .select_only()
        .column_as(outbox_event::Column::Id.max(), "latest")
        .filter(outbox_event::Column::OrganizationId.eq(organization_id))
        .into_tuple::<Option<i64>>()
        .one(&txn)
        .await?
        .flatten();
    let now = crate::domain::now();
    let created = webhook_endpoint::ActiveModel {
        organization_id: Set(organization_id),
        url: Set(url),
        description: Set(description),
        event_types: Set(stored_types(&new.event_types)),
        enabled: Set(new.enabled),
        include_personal_data: Set(new.include_personal_data),
        secret: Set(signature::new_secret()),
        previous_secret: Set(None),
        previous_secret_expires_at: Set(None),
        cursor_event_id: Set(latest_event.unwrap_or(0)),
        attempts: Set(0),
        next_attempt_at: Set(now),
        consecutive_failures: Set(0),
        disabled_reason: Set(None),
        claimed_until: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(&txn)
    .await?;
    let event = Event::webhook_endpoint(created.id, AuditAction::Create).fields([
        "url",
        "event_types",
        "enabled",
        "include_personal_data",
        "secret",
    ]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(created)
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn get(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
) -> DomainResult<webhook_endpoint::Model> {
    webhook_endpoint::Entity::find_by_id(id)
        .filter(webhook_endpoint::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "webhook endpoint",
        })
}

#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn list(
    db: &impl ConnectionTrait,
    organization_id: i64,
    page: PageRequest,
) -> DomainResult<Page<webhook_endpoint::Model>> {
    let select = webhook_endpoint::Entity::find()
        .filter(webhook_endpoint::Column::OrganizationId.eq(organization_id));
    page.fetch(db, select, webhook_endpoint::Column::Id, |row| row.id)
        .await
}

/// Changes an endpoint. Enabling a disabled one clears why it was
/// disabled and its failures; it goes on from the event it stopped at.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn update(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    changes: EndpointChanges,
    rules: UrlRules<'_>,
) -> DomainResult<webhook_endpoint::Model> {
    let url = changes.url.try_map(|url| check_url(&url, rules))?;
    let event_types = changes.event_types.try_map(|types| {
        check_types(&types)?;
        Ok::<_, DomainError>(types)
    })?;
    let description = changes.description.try_map(|d| {
        crate::domain::validate::optional_text("description", d, crate::domain::validate::NAME_MAX)
    })?;
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    let types_now = match &event_types {
        Patch::Set(types) => stored_types(types),
        Patch::Keep => current.event_types.clone(),
    };
    let event = Event::webhook_endpoint(id, AuditAction::Update)
        .field_if(url.changes(&current.url), "url")
        .field_if(description.changes(&current.description), "description")
        .field_if(types_now != current.event_types, "event_types")
        .field_if(changes.enabled.changes(&current.enabled), "enabled")
        .field_if(
            changes
                .include_personal_data
                .changes(&current.include_personal_data),
            "include_personal_data",
        );
    let was_enabled = current.enabled;
    let mut active: webhook_endpoint::ActiveModel = current.into();
    if let Patch::Set(url) = url {
        active.url = Set(url);
    }
    if let Patch::Set(description) = description {
        active.description = Set(description);
    }
    active.event_types = Set(types_now);
    if let Patch::Set(enabled) = changes.enabled {
        active.enabled = Set(enabled);
        if enabled && !was_enabled {
            active.disabled_reason = Set(None);
            active.consecutive_failures = Set(0);
            active.attempts = Set(0);
            active.next_attempt_at = Set(crate::domain::now());
        }
    }
    if let Patch::Set(personal) = changes.include_personal_data {
        active.include_personal_data = Set(personal);
    }
    let now = crate::domain::now();
    active.updated_at = Set(now);
    let updated = active.update(&txn).await?;
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes an endpoint, its delivery log and its pending redeliveries.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
) -> DomainResult<()> {
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    webhook_redelivery::Entity::delete_many()
        .filter(webhook_redelivery::Column::EndpointId.eq(current.id))
        .exec(&txn)
        .await?;
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::EndpointId.eq(current.id))
        .exec(&txn)
        .await?;
    webhook_endpoint::Entity::delete_by_id(current.id)
        .exec(&txn)
        .await?;
    let now = crate::domain::now();
    audit::record(
        &txn,
        organization_id,
        actor,
        now,
        Event::webhook_endpoint(id, AuditAction::Delete),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

/// A new secret; the current one stays valid (deliveries carry both
/// signatures) for `overlap`, so receivers can switch without missing one.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn rotate_secret(
    db: &DatabaseConnection,
    actor: &Actor,
    organization_id: i64,
    id: i64,
    overlap: Duration,
) -> DomainResult<webhook_endpoint::Model> {
    if overlap < Duration::zero() || overlap > ROTATION_OVERLAP_MAX {
        return Err(DomainError::invalid(
            "overlap_seconds",
            format!(
                "must be between 0 and {} seconds",
                ROTATION_OVERLAP_MAX.num_seconds()
            ),
        ));
    }
    let txn = crate::domain::begin_write(db).await?;
    let current = get(&txn, organization_id, id).await?;
    let now = crate::domain::now();
    let previous = current.secret.clone();
    let mut active: webhook_endpoint::ActiveModel = current.into();
    active.secret = Set(signature::new_secret());
    active.previous_secret = Set(Some(previous));
    active.previous_secret_expires_at = Set(Some(now + overlap));
    active.updated_at = Set(now);
    let rotated = active.update(&txn).await?;
    let event = Event::webhook_endpoint(id, AuditAction::Update).fields(["secret"]);
    audit::record(&txn, organization_id, actor, now, event).await?;
    txn.commit().await?;
    Ok(rotated)
}

/// Queues an event of the organization to be delivered to the endpoint
/// again (out of order, with its `webhook-id`), whatever its earlier
/// outcome.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn redeliver(
    db: &DatabaseConnection,
    organization_id: i64,
    id: i64,
    event_id: i64,
) -> DomainResult<()> {
    let endpoint = get(db, organization_id, id).await?;
    let event = outbox_event::Entity::find_by_id(event_id)
        .filter(outbox_event::Column::OrganizationId.eq(organization_id))
        .one(db)
        .await?
        .ok_or(DomainError::NotFound { resource: "event" })?;
    webhook_redelivery::ActiveModel {
        endpoint_id: Set(endpoint.id),
        event_id: Set(event.id),
        requested_at: Set(crate::domain::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The endpoint's delivery attempts, newest first.
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
pub async fn deliveries(
    db: &impl ConnectionTrait,
    organization_id: i64,
    id: i64,
    event_id: Option<i64>,
    page: PageRequest,
) -> DomainResult<Page<webhook_delivery::Model>> {
    let endpoint = get(db, organization_id, id).await?;
    let mut select = webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::EndpointId.eq(endpoint.id));
    if let Some(event_id) = event_id {
        select = select.filter(webhook_delivery::Column::EventId.eq(event_id));
    }
    page.fetch_newest_first(db, select, webhook_delivery::Column::Id, |row| row.id)
        .await
}

/// Events not yet delivered to the endpoint (behind its cursor).
pub async fn backlog(
    db: &impl ConnectionTrait,
    endpoint: &webhook_endpoint::Model,
) -> DomainResult<u64> {
    Ok(outbox_event::Entity::find()
        .filter(outbox_event::Column::OrganizationId.eq(endpoint.organization_id))
        .filter(outbox_event::Column::Id.gt(endpoint.cursor_event_id))
        .count(db)
        .await?)
}
