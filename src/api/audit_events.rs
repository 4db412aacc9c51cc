//! `GET /api/v1/audit-events`: the audit trail, for admins.

use chrono::{DateTime, Utc};
use poem::web::Data;
use poem_openapi::{param::Query, payload::Json, ApiResponse, Object, OpenApi};
use sea_orm::DatabaseConnection;

use super::{
    error::ApiError,
    nullable::Nullable,
    page::{page_request, page_type},
    security::ApiKeyAuth,
    time::QueryTime,
    vocabulary::{AuditAction, AuditResource},
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    privacy::audit::{self, EventFilter},
};

/// One change to the organization's data: who made it, to what, when, and
/// which fields it changed. The names of the fields only, never their
/// values, so the trail holds no personal data.
#[derive(Object)]
pub struct AuditEvent {
    /// The event's id; higher ids were recorded later.
    pub id: i64,
    /// When the change was made (UTC).
    pub occurred_at: DateTime<Utc>,
    /// The API key that made the change; `null` when the service itself
    /// did (the command line, `demo seed`).
    pub actor_key_id: Nullable<i64>,
    /// The key's name when it made the change, or what the service was
    /// doing (`command line`, `demo seed`).
    #[oai(validator(max_length = 200))]
    pub actor_name: String,
    pub resource_type: AuditResource,
    /// The id of the touchpoint, candidate, encounter, API key or
    /// organization changed; on an event about a run of resources, the
    /// first.
    pub resource_id: i64,
    /// The last id of the resources the event is about: `resource_id`
    /// itself, unless the event records a run of candidates or encounters
    /// one request created together (a batch, an import chunk): then every
    /// id from `resource_id` to this one, each created by that request.
    pub last_resource_id: i64,
    pub action: AuditAction,
    /// The names of the fields the change set or changed (on create: the
    /// fields given a value; on a run, those given a value on at least one
    /// of its resources); empty for a delete.
    #[oai(validator(max_items = 16, max_length = 64))]
    pub changed_fields: Vec<String>,
    /// The candidate the change is about: set on candidate and encounter
    /// events (on a run, when all of it is about one candidate), `null` on
    /// the others.
    pub subject_candidate_id: Nullable<i64>,
}

impl From<entity::audit_event::Model> for AuditEvent {
    fn from(model: entity::audit_event::Model) -> Self {
        AuditEvent {
            changed_fields: audit::changed_fields(&model),
            id: model.id,
            occurred_at: model.occurred_at,
            actor_key_id: model.actor_key_id.into(),
            actor_name: model.actor_name,
            resource_type: model.resource_type.into(),
            resource_id: model.resource_id,
            last_resource_id: model.last_resource_id.unwrap_or(model.resource_id),
            action: model.action.into(),
            subject_candidate_id: model.subject_candidate_id.into(),
        }
    }
}

page_type! {
    /// One page of audit events.
    AuditEventPage of AuditEvent
}

#[derive(ApiResponse)]
pub enum AuditEventList {
    /// One page of audit events, newest first.
    #[oai(status = 200)]
    Ok(Json<AuditEventPage>),
}

#[derive(Default)]
pub struct AuditEventsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Audit")]
impl AuditEventsApi {
    /// List audit events
    ///
    /// The organization's audit trail, newest first: every create, update,
    /// delete, archive, erasure, key creation and revocation, with the key
    /// that made it and the names of the fields it changed. What one
    /// batch or import chunk creates is one event per run of consecutive
    /// ids (`resource_id` to `last_resource_id`). Filter by resource
    /// (`resource_type`, and `resource_id` with it: the events about that
    /// resource, and the run that created it), by the key that acted, and
    /// by time (`from` inclusive, `to` exclusive). Admin only.
    #[oai(
        path = "/audit-events",
        method = "get",
        operation_id = "list_audit_events"
    )]
    #[allow(clippy::too_many_arguments)]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Only events about this kind of resource.
        resource_type: Query<Option<AuditResource>>,
        /// Only events about the resource with this id, the run that
        /// created it included (needs `resource_type`).
        resource_id: Query<Option<i64>>,
        /// Only changes made by this API key.
        actor_key_id: Query<Option<i64>>,
        /// Only events at or after this moment (RFC 3339).
        from: Query<Option<QueryTime>>,
        /// Only events before this moment (RFC 3339); after `from`.
        to: Query<Option<QueryTime>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<AuditEventList, ApiError> {
        auth.0.require(Capability::ReadAuditTrail)?;
        let filter = EventFilter {
            resource_type: resource_type.0.map(Into::into),
            resource_id: resource_id.0,
            actor_key_id: actor_key_id.0,
            from: from.0.map(|at| at.0),
            to: to.0.map(|at| at.0),
        };
        let page = audit::list(
            *db,
            auth.0.organization_id,
            filter,
            page_request(&cursor, &limit)?,
        )
        .await?;
        Ok(AuditEventList::Ok(Json(page.into())))
    }
}
