//! Delivering events to webhook endpoints: at least once, in order per
//! endpoint, signed (Standard Webhooks), with retries, through anything.
//!
//! - The dispatcher claims one endpoint at a time for a lease (a
//!   conditional update only one instance wins), delivers its queued
//!   redeliveries, then its events after `cursor_event_id` in order: the
//!   cursor moves past an event only once it was delivered (or given up
//!   after the last retry), so a crash at any moment sends it again after
//!   the lease, never loses it. A receiver sees a repeat with the same
//!   `webhook-id`.
//! - A failure (no answer, or a status outside 2xx) is retried after the
//!   Standard Webhooks schedule ([`RETRY_SCHEDULE`]); the events behind it
//!   wait, to keep the order. `410 Gone` disables the endpoint at once; so
//!   does a run of failed attempts (`WEBHOOK_DISABLE_AFTER_FAILURES`).
//! - Every attempt is logged (time, status, latency, error, the first
//!   [`RESPONSE_PREFIX`] bytes of the answer).
//! - The address is checked after resolution (see `address`), the
//!   connection made to it, and redirects are not followed.

use std::{
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use chrono::{DateTime, Duration, Utc};
use entity::{
    candidate, encounter, outbox_event, webhook_delivery, webhook_endpoint, webhook_redelivery,
};
use sea_orm::{
    sea_query::{Expr, ExprTrait, Query},
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::db::store::Executor;
use crate::domain::{
    webhooks::{
        address::{self, check_scheme, AllowList},
        events::{subscribed_types, EventType},
        signature,
    },
    DomainError, DomainResult,
};
use crate::metrics::WebhookDeliveries;

/// The waits after the first, second, ... failed attempt at one event (the
/// Standard Webhooks schedule); after the last, it is given up.
pub const RETRY_SCHEDULE: [Duration; 9] = [
    Duration::seconds(5),
    Duration::minutes(5),
    Duration::minutes(30),
    Duration::hours(2),
    Duration::hours(5),
    Duration::hours(10),
    Duration::hours(14),
    Duration::hours(20),
    Duration::hours(24),
];
/// Events delivered per claim, so other endpoints get their turn.
const EVENTS_PER_CLAIM: u64 = 100;
/// How much of a receiver's answer the log keeps.
pub const RESPONSE_PREFIX: usize = 256;
/// How long the dispatcher sleeps when nothing wakes it.
const POLL: StdDuration = StdDuration::from_secs(1);
/// How long events and delivery attempts are kept (and so can be
/// redelivered or read): after the last retry (about 4 days) and then some.
pub const KEPT: Duration = Duration::days(30);
/// How often what is older than [`KEPT`] is deleted.
const PURGE_EVERY: StdDuration = StdDuration::from_secs(3600);

/// What deliveries may do.
#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// `http://` endpoints are accepted (development only).
    pub allow_http: bool,
    /// Non-public networks deliveries may reach.
    pub allowed_networks: AllowList,
    /// Failed attempts in a row after which an endpoint is disabled.
    pub disable_after_failures: u32,
    /// The longest one delivery may take.
    pub timeout: StdDuration,
}

impl From<&crate::config::WebhookSettings> for DeliverySettings {
    fn from(settings: &crate::config::WebhookSettings) -> Self {
        DeliverySettings {
            allow_http: settings.allow_http,
            allowed_networks: AllowList(settings.allowed_networks.clone()),
            disable_after_failures: settings.disable_after_failures,
            timeout: settings.timeout,
        }
    }
}

/// The outcome of one attempt.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub status_code: Option<u16>,
    pub latency_ms: i32,
    pub error: Option<String>,
    pub response_prefix: Option<String>,
}

impl Attempt {
    pub fn succeeded(&self) -> bool {
        self.status_code
            .is_some_and(|code| (200..300).contains(&code))
    }
}

/// The webhook dispatcher.
#[derive(Clone)]
pub struct Dispatcher {
    settings: Arc<DeliverySettings>,
    wake: Arc<Notify>,
    counted: WebhookDeliveries,
}

impl Dispatcher {
    pub fn new(settings: DeliverySettings, counted: WebhookDeliveries) -> Self {
        Dispatcher {
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
            counted,
        }
    }

    pub fn settings(&self) -> &DeliverySettings {
        &self.settings
    }

    /// Tells the dispatcher there may be something to deliver.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Delivers what is due, then sleeps until woken or [`POLL`] passed;
    /// every hour, forgets what is older than [`KEPT`].
    pub async fn run(self, db: DatabaseConnection) {
        let mut purged_at: Option<Instant> = None;
        loop {
            if let Err(err) = self.deliver_due(&db).await {
                tracing::warn!(error = %err, "webhook dispatcher: will retry");
            }
            if purged_at.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                match purge(&db, Utc::now() - KEPT).await {
                    Ok(()) => purged_at = Some(Instant::now()),
                    Err(err) => tracing::warn!(error = %err, "webhook purge: will retry"),
                }
            }
            let _ = tokio::time::timeout(POLL, self.wake.notified()).await;
        }
    }

    /// How long an instance holds an endpoint it delivers to: three
    /// delivery timeouts and a margin. It stops starting deliveries one
    /// timeout before the end, so a claim is never used past its end; an
    /// instance killed holding one delays that endpoint by at most this.
    fn lease(&self) -> Duration {
        Duration::from_std(self.settings.timeout * 3).unwrap_or(Duration::minutes(3))
            + Duration::seconds(5)
    }

    /// Serves every endpoint with something due, one claim at a time.
    pub async fn deliver_due(&self, db: &DatabaseConnection) -> DomainResult<()> {
        while let Some((endpoint, until)) = claim(db, self.lease()).await? {
            let result = self.serve(db, endpoint.clone(), until).await;
            release(db, endpoint.id, until).await?;
            result?;
        }
        Ok(())
    }

    async fn serve(
        &self,
        db: &DatabaseConnection,
        mut endpoint: webhook_endpoint::Model,
        until: DateTime<Utc>,
    ) -> DomainResult<()> {
        // Redeliveries asked for, each sent once, out of order.
        let asked = webhook_redelivery::Entity::find()
            .filter(webhook_redelivery::Column::EndpointId.eq(endpoint.id))
            .order_by_asc(webhook_redelivery::Column::Id)
            .limit(EVENTS_PER_CLAIM)
            .all(db)
            .await?;
        for redelivery in asked {
            if let Some(event) = outbox_event::Entity::find_by_id(redelivery.event_id)
                .one(db)
                .await?
            {
                let attempt = self.send_event(db, &endpoint, &event).await?;
                log_attempt(db, &endpoint, Some(event.id), &attempt).await?;
            }
            webhook_redelivery::Entity::delete_by_id(redelivery.id)
                .exec(db)
                .await?;
        }
        let types = subscribed_types(&endpoint.event_types);
        let events = outbox_event::Entity::find()
            .filter(outbox_event::Column::OrganizationId.eq(endpoint.organization_id))
            .filter(outbox_event::Column::Id.gt(endpoint.cursor_event_id))
            .order_by_asc(outbox_event::Column::Id)
            .limit(EVENTS_PER_CLAIM)
            .all(db)
            .await?;
        // Events of types the endpoint does not take are passed over with
        // one update for a run of them, not one each.
        let mut passed_over: Option<i64> = None;
        for event in events {
            let margin = Duration::from_std(self.settings.timeout).unwrap_or_default()
                + Duration::seconds(1);
            if Utc::now() + margin > until {
                break; // the lease is nearly over: the next claim goes on
            }
            let wanted = EventType::parse(&event.event_type).is_some_and(|t| types.contains(&t));
            if !wanted {
                passed_over = Some(event.id);
                continue;
            }
            if let Some(last) = passed_over.take() {
                advance(db, &endpoint, last, until).await?;
                endpoint.cursor_event_id = last;
            }
            let attempt = self.send_event(db, &endpoint, &event).await?;
            log_attempt(db, &endpoint, Some(event.id), &attempt).await?;
            if attempt.succeeded() {
                advance(db, &endpoint, event.id, until).await?;
                endpoint.cursor_event_id = event.id;
                endpoint.consecutive_failures = 0;
                endpoint.attempts = 0;
                continue;
            }
            self.failed(db, &endpoint, event.id, &attempt, until)
                .await?;
            return Ok(());
        }
        if let Some(last) = passed_over {
            advance(db, &endpoint, last, until).await?;
        }
        Ok(())
    }

    /// Records a failed attempt at the head event: a retry later, the
    /// event given up after the last one, or the endpoint disabled.
    async fn failed(
        &self,
        db: &DatabaseConnection,
        endpoint: &webhook_endpoint::Model,
        event_id: i64,
        attempt: &Attempt,
        until: DateTime<Utc>,
    ) -> DomainResult<()> {
        let now = crate::domain::now();
        let failures = endpoint.consecutive_failures + 1;
        let attempts = endpoint.attempts + 1;
        let disabled = if attempt.status_code == Some(410) {
            Some("the receiver answered 410 Gone".to_owned())
        } else if failures as u32 >= self.settings.disable_after_failures {
            Some(format!("{failures} delivery attempts failed in a row"))
        } else {
            None
        };
        let mut update = Query::update();
        update
            .table(webhook_endpoint::Entity)
            .value(webhook_endpoint::Column::ConsecutiveFailures, failures)
            .value(webhook_endpoint::Column::UpdatedAt, now)
            .and_where(webhook_endpoint::Column::Id.eq(endpoint.id))
            .and_where(webhook_endpoint::Column::ClaimedUntil.eq(until));
        if let Some(reason) = &disabled {
            tracing::warn!(endpoint_id = endpoint.id, "webhook endpoint disabled");
            update
                .value(webhook_endpoint::Column::Enabled, false)
                .value(webhook_endpoint::Column::DisabledReason, reason.clone())
                .value(webhook_endpoint::Column::Attempts, attempts);
        } else {
            match RETRY_SCHEDULE.get(attempts as usize - 1) {
                Some(wait) => {
                    update
                        .value(webhook_endpoint::Column::Attempts, attempts)
                        .value(webhook_endpoint::Column::NextAttemptAt, now + *wait);
                }
                None => {
                    // Given up: the log keeps every attempt; the next event
                    // goes now.
                    update
                        .value(webhook_endpoint::Column::Attempts, 0)
                        .value(webhook_endpoint::Column::CursorEventId, event_id)
                        .value(webhook_endpoint::Column::NextAttemptAt, now);
                }
            }
        }
        db.execute(&update).await?;
        Ok(())
    }

    /// One signed POST of an outbox event.
    async fn send_event(
        &self,
        db: &DatabaseConnection,
        endpoint: &webhook_endpoint::Model,
        event: &outbox_event::Model,
    ) -> DomainResult<Attempt> {
        let body = envelope(db, endpoint, event).await?;
        Ok(self
            .post(endpoint, &format!("evt_{}", event.id), &body)
            .await)
    }

    /// A `webhook.ping` to the endpoint, now, logged like any delivery.
    pub async fn ping(
        &self,
        db: &DatabaseConnection,
        endpoint: &webhook_endpoint::Model,
    ) -> DomainResult<Attempt> {
        let now = crate::domain::now();
        let body = json!({
            "type": "webhook.ping",
            "timestamp": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            "data": {"endpoint_id": endpoint.id},
        })
        .to_string();
        let id = format!(
            "ping_{}",
            crate::domain::access::secret::random_token("")[..16].to_owned()
        );
        let attempt = self.post(endpoint, &id, &body).await;
        log_attempt(db, endpoint, None, &attempt).await?;
        Ok(attempt)
    }

    /// POSTs a body to the endpoint, signed with its secrets.
    async fn post(&self, endpoint: &webhook_endpoint::Model, id: &str, body: &str) -> Attempt {
        let started = Instant::now();
        let result = self.try_post(endpoint, id, body).await;
        let latency_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
        self.counted
            .count(matches!(&result, Ok((status, _)) if (200..300).contains(status)));
        match result {
            Ok((status, prefix)) => Attempt {
                status_code: Some(status),
                latency_ms,
                error: (!(200..300).contains(&status)).then(|| match status {
                    300..=399 => {
                        format!("the receiver answered {status}: redirects are not followed")
                    }
                    _ => format!("the receiver answered {status}"),
                }),
                response_prefix: prefix,
            },
            Err(error) => Attempt {
                status_code: None,
                latency_ms,
                error: Some(error),
                response_prefix: None,
            },
        }
    }

    async fn try_post(
        &self,
        endpoint: &webhook_endpoint::Model,
        id: &str,
        body: &str,
    ) -> Result<(u16, Option<String>), String> {
        let url = url::Url::parse(&endpoint.url).map_err(|err| format!("bad URL: {err}"))?;
        check_scheme(&url, self.settings.allow_http).map_err(|err| err.to_string())?;
        let host = url.host_str().ok_or("the URL has no host")?.to_owned();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let bare_host = host.trim_start_matches('[').trim_end_matches(']');
        let target = address::resolve(bare_host, port, &self.settings.allowed_networks).await?;
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(self.settings.timeout)
            .resolve(bare_host, target)
            .user_agent(concat!(
                "touchpoint-tracker-webhooks/",
                env!("CARGO_PKG_VERSION")
            ))
            .build()
            .map_err(|err| format!("the HTTP client could not be built: {err}"))?;
        let timestamp = Utc::now().timestamp();
        let secrets = secrets_now(endpoint);
        let signature = signature::header(&secrets, id, timestamp, body.as_bytes())
            .map_err(|err| err.to_string())?;
        let response = client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_owned())
            .send()
            .await
            .map_err(|err| describe(&err))?;
        let status = response.status().as_u16();
        let prefix = read_prefix(response).await;
        Ok((status, prefix))
    }
}

/// The secrets a delivery is signed with now: the current one, and the
/// previous one until its overlap ends.
fn secrets_now(endpoint: &webhook_endpoint::Model) -> Vec<&str> {
    let mut secrets = vec![endpoint.secret.as_str()];
    if let (Some(previous), Some(until)) = (
        &endpoint.previous_secret,
        endpoint.previous_secret_expires_at,
    ) {
        if until > Utc::now() {
            secrets.push(previous.as_str());
        }
    }
    secrets
}

/// A transport error, without the URL (it may hold a token of the
/// receiver's).
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "no answer within the timeout".to_owned()
    } else if err.is_connect() {
        "the connection failed".to_owned()
    } else {
        "the request failed".to_owned()
    }
}

/// The first [`RESPONSE_PREFIX`] bytes of the answer, as text; the rest is
/// not read.
async fn read_prefix(mut response: reqwest::Response) -> Option<String> {
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_PREFIX {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(RESPONSE_PREFIX);
    (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned())
}

/// The JSON an event is delivered as: `type`, `timestamp` and `data`; with
/// the candidate's personal data (and an encounter's note) added, as they
/// are now, for an endpoint that opted in.
async fn envelope(
    db: &DatabaseConnection,
    endpoint: &webhook_endpoint::Model,
    event: &outbox_event::Model,
) -> DomainResult<String> {
    let mut data: Value = serde_json::from_str(&event.payload)
        .map_err(|_| DomainError::internal("an outbox event's payload is not JSON"))?;
    if endpoint.include_personal_data {
        if let (Some(candidate_id), Value::Object(fields)) = (event.subject_candidate_id, &mut data)
        {
            let person = candidate::Entity::find_by_id(candidate_id).one(db).await?;
            let person = person.filter(|c| c.erased_at.is_none());
            fields.insert(
                "candidate".to_owned(),
                match person {
                    Some(c) => json!({
                        "external_ref": c.external_ref,
                        "display_name": c.display_name,
                        "email": c.email,
                    }),
                    None => Value::Null,
                },
            );
            if let Some(encounter_id) = fields.get("encounter_id").and_then(Value::as_i64) {
                if matches!(
                    event.event_type.as_str(),
                    "encounter.created" | "encounter.updated"
                ) {
                    let note = encounter::Entity::find_by_id(encounter_id)
                        .select_only()
                        .column(encounter::Column::Note)
                        .into_tuple::<Option<String>>()
                        .one(db)
                        .await?
                        .flatten();
                    fields.insert("note".to_owned(), json!(note));
                }
            }
        }
    }
    Ok(json!({
        "type": event.event_type,
        "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "data": data,
    })
    .to_string())
}

/// Claims the endpoint due first that has something to deliver.
async fn claim(
    db: &DatabaseConnection,
    lease: Duration,
) -> DomainResult<Option<(webhook_endpoint::Model, DateTime<Utc>)>> {
    use webhook_endpoint::Column as E;
    let now = crate::domain::now();
    let until = now + lease;
    let free = || {
        Expr::col((webhook_endpoint::Entity, E::ClaimedUntil))
            .is_null()
            .or(Expr::col((webhook_endpoint::Entity, E::ClaimedUntil)).lte(now))
    };
    let pending_events = Query::select()
        .expr(Expr::val(1))
        .from(outbox_event::Entity)
        .and_where(
            Expr::col((outbox_event::Entity, outbox_event::Column::OrganizationId))
                .equals((webhook_endpoint::Entity, E::OrganizationId)),
        )
        .and_where(
            Expr::col((outbox_event::Entity, outbox_event::Column::Id))
                .gt(Expr::col((webhook_endpoint::Entity, E::CursorEventId))),
        )
        .to_owned();
    let pending_redeliveries = Query::select()
        .expr(Expr::val(1))
        .from(webhook_redelivery::Entity)
        .and_where(
            Expr::col((
                webhook_redelivery::Entity,
                webhook_redelivery::Column::EndpointId,
            ))
            .equals((webhook_endpoint::Entity, E::Id)),
        )
        .to_owned();
    let due = Query::select()
        .column((webhook_endpoint::Entity, E::Id))
        .from(webhook_endpoint::Entity)
        .and_where(Expr::col((webhook_endpoint::Entity, E::Enabled)).eq(true))
        .and_where(Expr::col((webhook_endpoint::Entity, E::NextAttemptAt)).lte(now))
        .and_where(free())
        .and_where(Expr::exists(pending_events).or(Expr::exists(pending_redeliveries)))
        .order_by(
            (webhook_endpoint::Entity, E::NextAttemptAt),
            sea_orm::Order::Asc,
        )
        .limit(1)
        .to_owned();
    let update = Query::update()
        .table(webhook_endpoint::Entity)
        .value(E::ClaimedUntil, until)
        .and_where(Expr::col(E::Id).in_subquery(due))
        .and_where(
            Expr::col(E::ClaimedUntil)
                .is_null()
                .or(Expr::col(E::ClaimedUntil).lte(now)),
        )
        .returning_col(E::Id)
        .to_owned();
    let rows = db.query(&update).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let id: i64 = row.get(E::Id)?;
    let endpoint = webhook_endpoint::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(|| DomainError::internal("a claimed endpoint is missing"))?;
    Ok(Some((endpoint, until)))
}

async fn release(db: &DatabaseConnection, id: i64, until: DateTime<Utc>) -> DomainResult<()> {
    let update = Query::update()
        .table(webhook_endpoint::Entity)
        .value(
            webhook_endpoint::Column::ClaimedUntil,
            Option::<DateTime<Utc>>::None,
        )
        .and_where(webhook_endpoint::Column::Id.eq(id))
        .and_where(webhook_endpoint::Column::ClaimedUntil.eq(until))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

/// Moves the endpoint's cursor past a delivered (or unsubscribed) event.
async fn advance(
    db: &DatabaseConnection,
    endpoint: &webhook_endpoint::Model,
    event_id: i64,
    until: DateTime<Utc>,
) -> DomainResult<()> {
    let update = Query::update()
        .table(webhook_endpoint::Entity)
        .value(webhook_endpoint::Column::CursorEventId, event_id)
        .value(webhook_endpoint::Column::Attempts, 0)
        .value(webhook_endpoint::Column::ConsecutiveFailures, 0)
        .and_where(webhook_endpoint::Column::Id.eq(endpoint.id))
        .and_where(webhook_endpoint::Column::ClaimedUntil.eq(until))
        .and_where(webhook_endpoint::Column::CursorEventId.lt(event_id))
        .to_owned();
    db.execute(&update).await?;
    Ok(())
}

async fn log_attempt(
    db: &DatabaseConnection,
    endpoint: &webhook_endpoint::Model,
    event_id: Option<i64>,
    attempt: &Attempt,
) -> DomainResult<()> {
    webhook_delivery::ActiveModel {
        organization_id: Set(endpoint.organization_id),
        endpoint_id: Set(endpoint.id),
        event_id: Set(event_id),
        attempted_at: Set(crate::domain::now()),
        status_code: Set(attempt.status_code.map(i32::from)),
        latency_ms: Set(attempt.latency_ms),
        error: Set(attempt.error.clone()),
        response_prefix: Set(attempt.response_prefix.clone()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// When the oldest event an enabled endpoint still waits for was written
/// (`None` when every endpoint is up to date): for the metrics.
pub async fn oldest_undelivered(db: &DatabaseConnection) -> DomainResult<Option<DateTime<Utc>>> {
    let mut sql = crate::db::sql::Sql::new(db);
    sql.push(
        "SELECT MIN(o.created_at) AS oldest FROM outbox_events o \
         JOIN webhook_endpoints e ON e.organization_id = o.organization_id \
         AND o.id > e.cursor_event_id WHERE e.enabled = ",
    )
    .bind(true);
    let rows = sql.all(db).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    Ok(row.try_get::<Option<DateTime<Utc>>>("", "oldest")?)
}

/// Deletes the events and delivery attempts written before `before`. An
/// endpoint still behind them (disabled for a month) skips them.
pub async fn purge(db: &DatabaseConnection, before: DateTime<Utc>) -> DomainResult<()> {
    webhook_delivery::Entity::delete_many()
        .filter(webhook_delivery::Column::AttemptedAt.lt(before))
        .exec(db)
        .await?;
    let old_events = Query::select()
        .column(outbox_event::Column::Id)
        .from(outbox_event::Entity)
        .and_where(outbox_event::Column::CreatedAt.lt(before))
        .to_owned();
    webhook_redelivery::Entity::delete_many()
        .filter(webhook_redelivery::Column::EventId.in_subquery(old_events))
        .exec(db)
        .await?;
    outbox_event::Entity::delete_many()
        .filter(outbox_event::Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(())
}
