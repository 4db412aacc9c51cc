//! Webhook endpoints (`/api/v1/webhooks`), their delivery log, and the
//! events they receive (`/api/v1/webhook-events`), with the schema of each
//! event type.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use poem::web::Data;
use poem_openapi::types::{Example, MaybeUndefined};
use poem_openapi::{
    param::{Path, Query},
    payload::Json,
    ApiResponse, Enum, Object, OpenApi, Union,
};
use sea_orm::DatabaseConnection;
use serde::Deserialize;

use super::{
    alerts::AlertDetails,
    error::ApiError,
    nullable::Nullable,
    page::{page_request, page_type},
    patch::{change, nullable_change, required},
    payload::JsonBody,
    security::ApiKeyAuth,
    vocabulary::Source,
    ApiTags,
};
use crate::domain::{
    access::auth::Capability,
    webhooks::{
        delivery::{Attempt, Dispatcher},
        endpoints::{self, EndpointChanges, NewEndpoint, UrlRules},
        events::{self, EventType},
    },
    DomainError,
};

/// An event type a webhook endpoint can subscribe to.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum WebhookEventType {
    /// An encounter was recorded (by any path: single, batch, import, a
    /// confidential survey answer).
    #[oai(rename = "encounter.created")]
    #[serde(rename = "encounter.created")]
    EncounterCreated,
    /// An encounter was changed.
    #[oai(rename = "encounter.updated")]
    #[serde(rename = "encounter.updated")]
    EncounterUpdated,
    /// An encounter was deleted.
    #[oai(rename = "encounter.deleted")]
    #[serde(rename = "encounter.deleted")]
    EncounterDeleted,
    /// A candidate's personal data was erased: erase your copies too.
    #[oai(rename = "candidate.erased")]
    #[serde(rename = "candidate.erased")]
    CandidateErased,
    /// A survey invitation was answered.
    #[oai(rename = "survey.answered")]
    #[serde(rename = "survey.answered")]
    SurveyAnswered,
    /// An alert rule raised an alert.
    #[oai(rename = "alert.opened")]
    #[serde(rename = "alert.opened")]
    AlertOpened,
    /// An alert was resolved.
    #[oai(rename = "alert.resolved")]
    #[serde(rename = "alert.resolved")]
    AlertResolved,
}

impl From<WebhookEventType> for EventType {
    fn from(value: WebhookEventType) -> Self {
        match value {
            WebhookEventType::EncounterCreated => EventType::EncounterCreated,
            WebhookEventType::EncounterUpdated => EventType::EncounterUpdated,
            WebhookEventType::EncounterDeleted => EventType::EncounterDeleted,
            WebhookEventType::CandidateErased => EventType::CandidateErased,
            WebhookEventType::SurveyAnswered => EventType::SurveyAnswered,
            WebhookEventType::AlertOpened => EventType::AlertOpened,
            WebhookEventType::AlertResolved => EventType::AlertResolved,
        }
    }
}

impl From<EventType> for WebhookEventType {
    fn from(value: EventType) -> Self {
        match value {
            EventType::EncounterCreated => WebhookEventType::EncounterCreated,
            EventType::EncounterUpdated => WebhookEventType::EncounterUpdated,
            EventType::EncounterDeleted => WebhookEventType::EncounterDeleted,
            EventType::CandidateErased => WebhookEventType::CandidateErased,
            EventType::SurveyAnswered => WebhookEventType::SurveyAnswered,
            EventType::AlertOpened => WebhookEventType::AlertOpened,
            EventType::AlertResolved => WebhookEventType::AlertResolved,
        }
    }
}

/// A webhook endpoint. Its signing secret is shown only when it is made.
#[derive(Object)]
pub struct WebhookEndpoint {
    /// The endpoint's id.
    pub id: i64,
    /// Where events are POSTed.
    #[oai(validator(max_length = 2000))]
    pub url: String,
    /// What it is for.
    #[oai(validator(max_length = 200))]
    pub description: Nullable<String>,
    /// The event types it receives.
    #[oai(validator(max_items = 7))]
    pub event_types: Vec<WebhookEventType>,
    /// Whether events are delivered to it. The service turns it off after
    /// `410 Gone` or a run of failures, and says why in `disabled_reason`.
    pub enabled: bool,
    /// Whether its events carry the candidate's personal data
    /// (`candidate`: external_ref, display_name, email; an encounter's
    /// `note`), as it is when the event is sent: never an erased
    /// candidate's.
    pub include_personal_data: bool,
    /// Why the service disabled it; `null` otherwise.
    #[oai(validator(max_length = 200))]
    pub disabled_reason: Nullable<String>,
    /// Failed attempts in a row.
    pub consecutive_failures: i32,
    /// Attempts at the event it is retrying (0 when none is failing).
    pub attempts: i32,
    /// When the next attempt is due.
    pub next_attempt_at: DateTime<Utc>,
    /// Events not yet delivered to it.
    pub backlog: u64,
    /// During a secret rotation, until when the previous secret also signs.
    pub previous_secret_expires_at: Nullable<DateTime<Utc>>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last changed.
    pub updated_at: DateTime<Utc>,
}

impl WebhookEndpoint {
    fn new(model: entity::webhook_endpoint::Model, backlog: u64) -> Self {
        WebhookEndpoint {
            id: model.id,
            event_types: events::subscribed_types(&model.event_types)
                .into_iter()
                .map(Into::into)
                .collect(),
            url: model.url,
            description: model.description.into(),
            enabled: model.enabled,
            include_personal_data: model.include_personal_data,
            disabled_reason: model.disabled_reason.into(),
            consecutive_failures: model.consecutive_failures,
            attempts: model.attempts,
            next_attempt_at: model.next_attempt_at,
            backlog,
            previous_secret_expires_at: model.previous_secret_expires_at.into(),
            created_at: model.created_at,
            updated_at: model.updated_at,
        }
    }
}

/// A new webhook endpoint.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// An `https://` URL (`http://` only when the service allows it, for
    /// development), at most 2,000 characters. It must reach a public
    /// address: loopback, private, link-local and metadata addresses are
    /// refused, at creation for a literal address and at each delivery
    /// after resolving a name, unless `WEBHOOK_ALLOWED_NETWORKS` names them.
    #[oai(validator(min_length = 1, max_length = 2000))]
    pub url: String,
    /// What it is for, up to 200 characters.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub description: Option<String>,
    /// The event types to receive: at least one.
    #[oai(validator(min_items = 1, max_items = 7))]
    pub event_types: Vec<WebhookEventType>,
    /// Default `true`.
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub enabled: Option<bool>,
    /// Add the candidate's personal data to events (default `false`).
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub include_personal_data: Option<bool>,
}

impl Example for CreateWebhookEndpoint {
    fn example() -> Self {
        CreateWebhookEndpoint {
            url: "https://hooks.example.com/touchpoint-tracker".to_owned(),
            description: Some("ATS sync".to_owned()),
            event_types: vec![
                WebhookEventType::EncounterCreated,
                WebhookEventType::CandidateErased,
            ],
            enabled: None,
            include_personal_data: None,
        }
    }
}

/// Changes to an endpoint; absent fields stay as they are.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookEndpoint {
    /// A new URL, as at creation.
    #[oai(validator(min_length = 1, max_length = 2000))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub url: Option<String>,
    /// `null` clears it.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    #[oai(nullable)]
    pub description: MaybeUndefined<String>,
    /// The event types to receive: at least one.
    #[oai(validator(min_items = 1, max_items = 7))]
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub event_types: Option<Vec<WebhookEventType>>,
    /// Enabling a disabled endpoint clears `disabled_reason` and its
    /// failures; it goes on from the event it stopped at.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub enabled: Option<bool>,
    /// Add the candidate's personal data to its events.
    #[serde(default, deserialize_with = "required")]
    #[oai(skip_serializing_if_is_none)]
    pub include_personal_data: Option<bool>,
}

impl Example for UpdateWebhookEndpoint {
    fn example() -> Self {
        UpdateWebhookEndpoint {
            url: None,
            description: MaybeUndefined::Undefined,
            event_types: None,
            enabled: Some(true),
            include_personal_data: None,
        }
    }
}

/// An endpoint with its signing secret, shown this once.
#[derive(Object)]
pub struct WebhookEndpointWithSecret {
    pub endpoint: WebhookEndpoint,
    /// `whsec_` and the base64 of 32 random bytes: verify deliveries with
    /// it (Standard Webhooks).
    #[oai(validator(max_length = 100))]
    pub secret: String,
}

/// A secret rotation.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecret {
    /// Seconds the current secret keeps signing beside the new one, 0 to
    /// 604,800 (7 days); default 86,400.
    #[oai(validator(minimum(value = "0"), maximum(value = "604800")))]
    #[serde(default)]
    #[oai(skip_serializing_if_is_none)]
    pub overlap_seconds: Option<i64>,
}

impl Example for RotateWebhookSecret {
    fn example() -> Self {
        RotateWebhookSecret {
            overlap_seconds: Some(3600),
        }
    }
}

/// An event to deliver again.
#[derive(Object, Deserialize)]
#[oai(deny_unknown_fields, example)]
#[serde(deny_unknown_fields)]
pub struct Redelivery {
    /// The event's id (`webhook-id` is `evt_` and this id).
    pub event_id: i64,
}

impl Example for Redelivery {
    fn example() -> Self {
        Redelivery { event_id: 42 }
    }
}

/// One delivery attempt.
#[derive(Object)]
pub struct WebhookDelivery {
    /// The attempt's id.
    pub id: i64,
    /// The event delivered; `null` for a ping.
    pub event_id: Nullable<i64>,
    /// When it was made.
    pub attempted_at: DateTime<Utc>,
    /// The receiver's HTTP status; `null` when none came.
    pub status_code: Nullable<i32>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: i32,
    /// What went wrong; `null` on success.
    #[oai(validator(max_length = 500))]
    pub error: Nullable<String>,
    /// The first 256 bytes of the answer, as text.
    #[oai(validator(max_length = 1024))]
    pub response_prefix: Nullable<String>,
}

impl From<entity::webhook_delivery::Model> for WebhookDelivery {
    fn from(model: entity::webhook_delivery::Model) -> Self {
        WebhookDelivery {
            id: model.id,
            event_id: model.event_id.into(),
            attempted_at: model.attempted_at,
            status_code: model.status_code.into(),
            latency_ms: model.latency_ms,
            error: model.error.into(),
            response_prefix: model.response_prefix.into(),
        }
    }
}

/// The outcome of a ping.
#[derive(Object)]
pub struct PingResult {
    /// Whether the receiver answered 2xx.
    pub delivered: bool,
    /// The receiver's HTTP status; `null` when none came.
    pub status_code: Nullable<i32>,
    /// Milliseconds until the answer (or the failure).
    pub latency_ms: i32,
    /// What went wrong; `null` on success.
    #[oai(validator(max_length = 500))]
    pub error: Nullable<String>,
}

impl From<Attempt> for PingResult {
    fn from(attempt: Attempt) -> Self {
        PingResult {
            delivered: attempt.succeeded(),
            status_code: attempt.status_code.map(i32::from).into(),
            latency_ms: attempt.latency_ms,
            error: attempt.error.into(),
        }
    }
}

page_type! {
    /// One page of webhook endpoints.
    WebhookEndpointPage of WebhookEndpoint
}

page_type! {
    /// One page of delivery attempts.
    WebhookDeliveryPage of WebhookDelivery
}

#[derive(ApiResponse)]
pub enum EndpointCreated {
    /// The endpoint, with its secret (shown once).
    #[oai(status = 201)]
    Created(Json<WebhookEndpointWithSecret>),
}

#[derive(ApiResponse)]
pub enum EndpointWithSecretResponse {
    /// The endpoint, with its new secret (shown once).
    #[oai(status = 200)]
    Ok(Json<WebhookEndpointWithSecret>),
}

#[derive(ApiResponse)]
pub enum EndpointResponse {
    /// The endpoint.
    #[oai(status = 200)]
    Ok(Json<WebhookEndpoint>),
}

#[derive(ApiResponse)]
pub enum EndpointList {
    /// One page of endpoints, in creation order.
    #[oai(status = 200)]
    Ok(Json<WebhookEndpointPage>),
}

#[derive(ApiResponse)]
pub enum EndpointDeleted {
    /// Deleted, with its delivery log.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum RedeliveryQueued {
    /// Queued: it goes out within seconds, with its `webhook-id`.
    #[oai(status = 202)]
    Accepted,
}

#[derive(ApiResponse)]
pub enum PingResponse {
    /// The ping was sent (whether it was delivered is in the body).
    #[oai(status = 200)]
    Ok(Json<PingResult>),
}

#[derive(ApiResponse)]
pub enum DeliveryList {
    /// One page of attempts, newest first.
    #[oai(status = 200)]
    Ok(Json<WebhookDeliveryPage>),
}

fn types_of(types: Vec<WebhookEventType>) -> BTreeSet<EventType> {
    types.into_iter().map(Into::into).collect()
}

/// The body's JSON is read with serde, so the document's `minItems` and
/// `maxItems` are checked here.
fn check_types(types: &[WebhookEventType]) -> Result<(), ApiError> {
    if types.is_empty() || types.len() > 7 {
        return Err(ApiError::validation(
            "event_types",
            "must hold 1 to 7 event types",
        ));
    }
    Ok(())
}

fn rules(dispatcher: &Dispatcher) -> UrlRules<'_> {
    UrlRules {
        allow_http: dispatcher.settings().allow_http,
        allowed_networks: &dispatcher.settings().allowed_networks,
    }
}

async fn view(
    db: &DatabaseConnection,
    model: entity::webhook_endpoint::Model,
) -> Result<WebhookEndpoint, ApiError> {
    let backlog = endpoints::backlog(db, &model).await?;
    Ok(WebhookEndpoint::new(model, backlog))
}

#[derive(Default)]
pub struct WebhooksApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhooksApi {
    /// Create a webhook endpoint
    ///
    /// Events of the chosen types, from now on, are POSTed to the URL,
    /// signed as Standard Webhooks says (`webhook-id`, `webhook-timestamp`,
    /// `webhook-signature`), at least once and in order. The answer holds
    /// the signing secret, shown once. Admin only.
    #[oai(path = "/webhooks", method = "post", operation_id = "create_webhook")]
    async fn create(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        dispatcher: Data<&Dispatcher>,
        /// The endpoint to create.
        body: JsonBody<CreateWebhookEndpoint>,
    ) -> Result<EndpointCreated, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let body = body.0;
        check_types(&body.event_types)?;
        let created = endpoints::create(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            NewEndpoint {
                url: body.url,
                description: body.description,
                event_types: types_of(body.event_types),
                enabled: body.enabled.unwrap_or(true),
                include_personal_data: body.include_personal_data.unwrap_or(false),
            },
            rules(&dispatcher),
        )
        .await?;
        let secret = created.secret.clone();
        Ok(EndpointCreated::Created(Json(WebhookEndpointWithSecret {
            endpoint: view(*db, created).await?,
            secret,
        })))
    }

    /// List webhook endpoints
    ///
    /// The organization's endpoints, without their secrets. Admin only.
    #[oai(path = "/webhooks", method = "get", operation_id = "list_webhooks")]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<EndpointList, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let page =
            endpoints::list(*db, auth.0.organization_id, page_request(&cursor, &limit)?).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for model in page.items {
            items.push(view(*db, model).await?);
        }
        Ok(EndpointList::Ok(Json(WebhookEndpointPage {
            items,
            next_cursor: page.next_cursor.into(),
        })))
    }

    /// Get a webhook endpoint
    ///
    /// One endpoint, with its state (`enabled`, `disabled_reason`, the
    /// failures and the backlog). Admin only.
    #[oai(path = "/webhooks/:id", method = "get", operation_id = "get_webhook")]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Webhook endpoint id.
        id: Path<i64>,
    ) -> Result<EndpointResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let model = endpoints::get(*db, auth.0.organization_id, id.0).await?;
        Ok(EndpointResponse::Ok(Json(view(*db, model).await?)))
    }

    /// Update a webhook endpoint
    ///
    /// Changes the fields present in the body. Admin only.
    #[oai(
        path = "/webhooks/:id",
        method = "patch",
        operation_id = "update_webhook"
    )]
    async fn update(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        dispatcher: Data<&Dispatcher>,
        /// Webhook endpoint id.
        id: Path<i64>,
        /// The fields to change.
        body: JsonBody<UpdateWebhookEndpoint>,
    ) -> Result<EndpointResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let body = body.0;
        if let Some(types) = &body.event_types {
            check_types(types)?;
        }
        let changes = EndpointChanges {
            url: change(body.url),
            description: nullable_change(body.description),
            event_types: change(body.event_types.map(types_of)),
            enabled: change(body.enabled),
            include_personal_data: change(body.include_personal_data),
        };
        let updated = endpoints::update(
            *db,
            &auth.actor(),
            auth.0.organization_id,
            id.0,
            changes,
            rules(&dispatcher),
        )
        .await?;
        dispatcher.wake();
        Ok(EndpointResponse::Ok(Json(view(*db, updated).await?)))
    }

    /// Delete a webhook endpoint
    ///
    /// No more events go to it; its delivery log goes too. Admin only.
    #[oai(
        path = "/webhooks/:id",
        method = "delete",
        operation_id = "delete_webhook"
    )]
    async fn delete(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Webhook endpoint id.
        id: Path<i64>,
    ) -> Result<EndpointDeleted, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        endpoints::delete(*db, &auth.actor(), auth.0.organization_id, id.0).await?;
        Ok(EndpointDeleted::NoContent)
    }

    /// Rotate a webhook endpoint's secret
    ///
    /// Makes a new signing secret, shown this once. For `overlap_seconds`
    /// (default a day) deliveries carry two signatures, one per secret, so
    /// the receiver can switch to the new one without missing a delivery.
    /// Admin only.
    #[oai(
        path = "/webhooks/:id/rotate-secret",
        method = "post",
        operation_id = "rotate_webhook_secret"
    )]
    async fn rotate(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Webhook endpoint id.
        id: Path<i64>,
        /// The overlap.
        body: JsonBody<RotateWebhookSecret>,
    ) -> Result<EndpointWithSecretResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let overlap = Duration::seconds(body.0.overlap_seconds.unwrap_or(86_400));
        let rotated =
            endpoints::rotate_secret(*db, &auth.actor(), auth.0.organization_id, id.0, overlap)
                .await?;
        let secret = rotated.secret.clone();
        Ok(EndpointWithSecretResponse::Ok(Json(
            WebhookEndpointWithSecret {
                endpoint: view(*db, rotated).await?,
                secret,
            },
        )))
    }

    /// Ping a webhook endpoint
    ///
    /// Sends a signed `webhook.ping` event now and answers with the
    /// outcome; it is logged like any delivery. Admin only.
    #[oai(
        path = "/webhooks/:id/ping",
        method = "post",
        operation_id = "ping_webhook"
    )]
    async fn ping(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        dispatcher: Data<&Dispatcher>,
        /// Webhook endpoint id.
        id: Path<i64>,
    ) -> Result<PingResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let endpoint = endpoints::get(*db, auth.0.organization_id, id.0).await?;
        let attempt = dispatcher.ping(*db, &endpoint).await?;
        Ok(PingResponse::Ok(Json(attempt.into())))
    }

    /// Redeliver an event
    ///
    /// Queues one event of the organization to be sent to the endpoint
    /// again, with its `webhook-id`, whatever its earlier outcome (out of
    /// order). Admin only.
    #[oai(
        path = "/webhooks/:id/redeliveries",
        method = "post",
        operation_id = "redeliver_webhook_event"
    )]
    async fn redeliver(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        dispatcher: Data<&Dispatcher>,
        /// Webhook endpoint id.
        id: Path<i64>,
        /// The event.
        body: JsonBody<Redelivery>,
    ) -> Result<RedeliveryQueued, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        endpoints::redeliver(*db, auth.0.organization_id, id.0, body.0.event_id).await?;
        dispatcher.wake();
        Ok(RedeliveryQueued::Accepted)
    }

    /// List an endpoint's deliveries
    ///
    /// Every attempt, newest first: time, status, latency, error and the
    /// first 256 bytes of the answer. Admin only.
    #[oai(
        path = "/webhooks/:id/deliveries",
        method = "get",
        operation_id = "list_webhook_deliveries"
    )]
    async fn deliveries(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Webhook endpoint id.
        id: Path<i64>,
        /// Only the attempts at this event.
        event_id: Query<Option<i64>>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<DeliveryList, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let page = endpoints::deliveries(
            *db,
            auth.0.organization_id,
            id.0,
            event_id.0,
            page_request(&cursor, &limit)?,
        )
        .await?;
        Ok(DeliveryList::Ok(Json(page.into())))
    }
}

/// The candidate's personal data, added to deliveries for endpoints with
/// `include_personal_data`, as it is when the event is sent.
#[derive(Object)]
pub struct EventCandidate {
    /// The applicant-tracking system's id.
    #[oai(validator(max_length = 200))]
    pub external_ref: String,
    /// The candidate's name.
    #[oai(validator(max_length = 200))]
    pub display_name: Nullable<String>,
    /// The candidate's e-mail address.
    #[oai(validator(max_length = 320))]
    pub email: Nullable<String>,
}

/// The `data` of `encounter.created` and `encounter.updated`.
#[derive(Object)]
pub struct EncounterEventData {
    /// The encounter.
    pub encounter_id: i64,
    /// Its candidate.
    pub candidate_id: i64,
    /// Its touchpoint.
    pub touchpoint_id: i64,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    pub source: Source,
    /// Its score, 0 to 10; `null` when not measured.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    pub score: Nullable<i32>,
    /// Whether it has a note (the note itself is personal data).
    pub has_note: bool,
    /// Only in deliveries to endpoints with `include_personal_data`: the
    /// candidate, or `null` once erased. Absent otherwise, and here.
    #[oai(skip_serializing_if_is_none)]
    pub candidate: Option<EventCandidate>,
    /// Only in deliveries to endpoints with `include_personal_data`: the
    /// note as it is when sent (`null`: none). Absent otherwise, and here.
    #[oai(validator(max_length = 4000), skip_serializing_if_is_none)]
    pub note: Option<String>,
}

/// The `data` of `encounter.deleted`.
#[derive(Object)]
pub struct EncounterDeletedEventData {
    /// The encounter deleted.
    pub encounter_id: i64,
    /// Its candidate.
    pub candidate_id: i64,
    /// Its touchpoint.
    pub touchpoint_id: i64,
    /// As in `EncounterEventData`.
    #[oai(skip_serializing_if_is_none)]
    pub candidate: Option<EventCandidate>,
}

/// The `data` of `candidate.erased`: erase every copy of the candidate's
/// personal data.
#[derive(Object)]
pub struct CandidateErasedEventData {
    /// The candidate erased.
    pub candidate_id: i64,
    /// When.
    pub erased_at: DateTime<Utc>,
    /// To endpoints with `include_personal_data`, `null`: nothing personal
    /// is left to send. Absent otherwise, and here.
    #[oai(skip_serializing_if_is_none)]
    pub candidate: Option<EventCandidate>,
}

/// The `data` of `survey.answered`. For an anonymous invitation only
/// `mode` and `touchpoint_id`: nothing that could link the answer.
#[derive(Object)]
pub struct SurveyAnsweredEventData {
    /// `confidential` or `anonymous`.
    #[oai(validator(max_length = 16))]
    pub mode: String,
    /// The touchpoint asked about.
    pub touchpoint_id: i64,
    /// The invitation; `null` for an anonymous one.
    pub invitation_id: Nullable<i64>,
    /// The candidate; `null` for an anonymous one.
    pub candidate_id: Nullable<i64>,
    /// The encounter recorded; `null` for an anonymous one.
    pub encounter_id: Nullable<i64>,
    /// The score; `null` for an anonymous one.
    #[oai(validator(minimum(value = "0"), maximum(value = "10")))]
    pub score: Nullable<i32>,
    /// As in `EncounterEventData` (never for an anonymous one).
    #[oai(skip_serializing_if_is_none)]
    pub candidate: Option<EventCandidate>,
}

/// The `data` of `alert.opened` and `alert.resolved`.
#[derive(Object)]
pub struct AlertEventData {
    /// The alert.
    pub alert_id: i64,
    /// The rule that raised it.
    pub rule_id: i64,
    /// `detractor` or `drop`.
    #[oai(validator(max_length = 16))]
    pub rule_kind: String,
    /// `encounter:<id>` for a detractor alert; for a drop, the group (a
    /// touchpoint id, kind, channel or stage, or `all`).
    #[oai(validator(max_length = 64))]
    pub group: String,
    /// The first day of the period it is about.
    pub period_start: NaiveDate,
    /// The encounter of a detractor alert; `null` for a drop.
    pub encounter_id: Nullable<i64>,
    /// `open`, `acknowledged` or `resolved`.
    #[oai(validator(max_length = 16))]
    pub status: String,
    /// The figures behind it, as `GET /api/v1/alerts/{id}` shows them.
    pub details: AlertDetails,
}

/// An event's `data`: its schema follows from `type`.
#[derive(Union)]
#[oai(one_of)]
pub enum WebhookEventData {
    Encounter(EncounterEventData),
    EncounterDeleted(EncounterDeletedEventData),
    CandidateErased(CandidateErasedEventData),
    SurveyAnswered(SurveyAnsweredEventData),
    Alert(Box<AlertEventData>),
}

/// An event, as it is delivered: the body of each POST to an endpoint is
/// `{type, timestamp, data}`; its `webhook-id` header is `evt_` and `id`.
#[derive(Object)]
pub struct WebhookEvent {
    /// The event's id.
    pub id: i64,
    /// What happened: `encounter.created` and `encounter.updated` carry
    /// `EncounterEventData`, `encounter.deleted`
    /// `EncounterDeletedEventData`, `candidate.erased`
    /// `CandidateErasedEventData`, `survey.answered`
    /// `SurveyAnsweredEventData`, `alert.opened` and `alert.resolved`
    /// `AlertEventData`.
    #[oai(rename = "type")]
    pub event_type: WebhookEventType,
    /// When its change committed.
    pub timestamp: DateTime<Utc>,
    pub data: WebhookEventData,
}

impl WebhookEvent {
    fn new(model: entity::outbox_event::Model) -> Result<Self, ApiError> {
        use poem_openapi::types::{ParseFromJSON, ToJSON};
        let event_type = EventType::parse(&model.event_type)
            .ok_or_else(|| DomainError::internal("an outbox event of an unknown type"))?;
        let mut value: serde_json::Value = serde_json::from_str(&model.payload)
            .map_err(|_| DomainError::internal("an outbox event's payload is not JSON"))?;
        if let serde_json::Value::Object(fields) = &mut value {
            // Here, never personal data (deliveries add it, for endpoints
            // that opted in).
            fields.remove("candidate");
            fields.remove("note");
            if event_type == EventType::SurveyAnswered {
                for key in ["invitation_id", "candidate_id", "encounter_id", "score"] {
                    fields.entry(key).or_insert(serde_json::Value::Null);
                }
            }
        }
        fn unreadable<E>(_: E) -> DomainError {
            DomainError::internal("an outbox event's payload does not read")
        }
        let data = match event_type {
            EventType::EncounterCreated | EventType::EncounterUpdated => {
                WebhookEventData::Encounter(
                    EncounterEventData::parse_from_json(Some(value)).map_err(unreadable)?,
                )
            }
            EventType::EncounterDeleted => WebhookEventData::EncounterDeleted(
                EncounterDeletedEventData::parse_from_json(Some(value)).map_err(unreadable)?,
            ),
            EventType::CandidateErased => WebhookEventData::CandidateErased(
                CandidateErasedEventData::parse_from_json(Some(value)).map_err(unreadable)?,
            ),
            EventType::SurveyAnswered => WebhookEventData::SurveyAnswered(
                SurveyAnsweredEventData::parse_from_json(Some(value)).map_err(unreadable)?,
            ),
            EventType::AlertOpened | EventType::AlertResolved => {
                let details = value
                    .as_object_mut()
                    .and_then(|fields| fields.remove("details"))
                    .unwrap_or(serde_json::Value::Null);
                let details = AlertDetails::from_value(details)?;
                if let serde_json::Value::Object(fields) = &mut value {
                    fields.insert("details".to_owned(), details.to_json().unwrap_or_default());
                }
                WebhookEventData::Alert(Box::new(
                    AlertEventData::parse_from_json(Some(value)).map_err(unreadable)?,
                ))
            }
        };
        Ok(WebhookEvent {
            id: model.id,
            event_type: event_type.into(),
            timestamp: model.created_at,
            data,
        })
    }
}

page_type! {
    /// One page of events.
    WebhookEventPage of WebhookEvent
}

#[derive(ApiResponse)]
pub enum EventResponse {
    /// The event.
    #[oai(status = 200)]
    Ok(Json<WebhookEvent>),
}

#[derive(ApiResponse)]
pub enum EventList {
    /// One page of events, oldest first.
    #[oai(status = 200)]
    Ok(Json<WebhookEventPage>),
}

#[derive(Default)]
pub struct WebhookEventsApi;

#[OpenApi(prefix_path = "/api/v1", tag = "ApiTags::Webhooks")]
impl WebhookEventsApi {
    /// List webhook events
    ///
    /// The organization's events, oldest first, as endpoints receive them
    /// (without personal data). Events are kept only while the
    /// organization has a webhook endpoint. Admin only.
    #[oai(
        path = "/webhook-events",
        method = "get",
        operation_id = "list_webhook_events"
    )]
    async fn list(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// The `next_cursor` of the previous page.
        #[oai(validator(max_length = 128))]
        cursor: Query<Option<String>>,
        /// Page size, 1 to 500 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "500")))]
        limit: Query<Option<u64>>,
    ) -> Result<EventList, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let page =
            events::list(*db, auth.0.organization_id, page_request(&cursor, &limit)?).await?;
        let mut items = Vec::with_capacity(page.items.len());
        for model in page.items {
            items.push(WebhookEvent::new(model)?);
        }
        Ok(EventList::Ok(Json(WebhookEventPage {
            items,
            next_cursor: page.next_cursor.into(),
        })))
    }

    /// Get a webhook event
    ///
    /// One event, as endpoints receive it (without personal data). Admin
    /// only.
    #[oai(
        path = "/webhook-events/:id",
        method = "get",
        operation_id = "get_webhook_event"
    )]
    async fn get(
        &self,
        auth: ApiKeyAuth,
        db: Data<&DatabaseConnection>,
        /// Event id.
        id: Path<i64>,
    ) -> Result<EventResponse, ApiError> {
        auth.0.require(Capability::ManageMonitoring)?;
        let model = events::get(*db, auth.0.organization_id, id.0).await?;
        Ok(EventResponse::Ok(Json(WebhookEvent::new(model)?)))
    }
}
