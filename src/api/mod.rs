//! The HTTP layer: one module per resource, `error` for the error shape, and
//! [`openapi_service`], the single builder used by the server, the tests
//! and the `openapi` command.

pub mod alerts;
pub mod audit_events;
pub mod candidate_exports;
pub mod candidates;
mod dashboard;
mod document;
mod documented_paths;
pub mod encounter_imports;
pub mod encounters;
pub mod error;
pub mod exports;
pub mod flat_json;
pub mod health;
mod idempotency;
pub mod journeys;
pub mod keys;
mod metrics_endpoint;
pub mod nullable;
pub mod organization;
mod page;
mod page_headers;
mod patch;
pub mod payload;
pub mod personal_data;
pub mod public_url;
pub mod rate_limit;
pub mod reports;
pub mod request_span;
pub mod security;
pub mod sessions;
pub mod streamed_json;
mod strict_json;
pub mod survey_page;
pub mod surveys;
mod time;
pub mod touchpoints;
pub mod vocabulary;
pub mod webhooks;

use std::sync::Arc;

use poem::{
    endpoint::BoxEndpoint, middleware::CookieJarManager, Endpoint, EndpointExt, IntoEndpoint,
    IntoResponse, Request, Response, Route,
};
use poem_openapi::{ContactObject, LicenseObject, OpenApiService, OperationId, ServerObject, Tags};

use crate::{
    config::{Limits, RateLimit},
    db::Database,
    domain::{
        access::key_cache::KeyCache, analytics::projector::Projector,
        encounters::group_commit::EncounterWriter, surveys::mail::Mailer,
        webhooks::delivery::Dispatcher,
    },
    metrics::Metrics,
};
pub use document::NoAuth;
use health::{Worker, Workers};
use rate_limit::RateLimiter;

/// The groups operations are listed under.
#[derive(Tags)]
pub enum ApiTags {
    /// Liveness and database reachability.
    Health,
    /// The catalog of touchpoints: employer-created, true and unexpected.
    Touchpoints,
    /// The people tracked, and their journeys.
    Candidates,
    /// Candidates meeting touchpoints, with perception scores.
    Encounters,
    /// API keys and their roles.
    Keys,
    /// The organization's settings: small-group suppression in reports.
    Organization,
    /// Incremental export for reporting jobs.
    Exports,
    /// Perception trends, cNPS, shifts and touchpoint impact. Groups smaller
    /// than the organization's `min_group_size` are `suppressed`. A report
    /// counts every encounter recorded before it was asked for. Recorded
    /// encounters are added to the reports' rollups in the background (in
    /// well under a second); a report adds those not yet added as it reads,
    /// up to 20,000 of them. With more waiting (a large import moments
    /// ago), it waits for them up to 10 seconds, then answers 503
    /// `unavailable`: retry shortly.
    Reports,
    /// The audit trail: who changed what, and when.
    Audit,
    /// Candidate pulse surveys: invitations to answer the 0-10 recommend
    /// question about one touchpoint, on a page this service serves at
    /// `/s/{token}` (public, rate-limited per client address, Vietnamese or
    /// English), optionally e-mailed by this service.
    Surveys,
    /// Webhooks: endpoints that receive the organization's events, signed
    /// as Standard Webhooks says, at least once and in order; their
    /// delivery log; the events and their schemas.
    Webhooks,
    /// Alert rules (a detractor's score, a significant drop of a group's
    /// cNPS) and the alerts they raise.
    Alerts,
    /// The HR dashboard's sign-in (`/app`): an API key exchanged for a
    /// session cookie.
    Sessions,
}

// Nested tuples: poem-openapi combines tuples of APIs, and `Default` is
// implemented for tuples of at most 12.
type Apis = document::Adjusted<(
    (
        health::HealthApi,
        touchpoints::TouchpointsApi,
        candidates::CandidatesApi,
        candidate_exports::CandidateExportsApi,
        encounters::EncountersApi,
        encounter_imports::EncounterImportsApi,
        journeys::JourneysApi,
    ),
    (
        keys::KeysApi,
        sessions::SessionsApi,
        organization::OrganizationApi,
        exports::ExportsApi,
        reports::ReportsApi,
        audit_events::AuditEventsApi,
        surveys::SurveysApi,
        surveys::AnonymousCommentsApi,
        webhooks::WebhooksApi,
        webhooks::WebhookEventsApi,
        alerts::AlertsApi,
    ),
)>;

const DESCRIPTION: &str = "Tracks the touchpoints where candidates meet an employer \
(employer-created, true and unexpected), the candidates' encounters with them, and \
how each candidate's perception of the employer as a place to work (a 0-10 \
recommend score) shifts along the journey.\n\n\
Authenticate with `Authorization: Bearer <token>`. Every error response has the \
shape `{\"error\": {\"code\", \"message\", \"field\"}}`. Lists return \
`{items, next_cursor}`; pass `next_cursor` back as `cursor` for the next page.\n\n\
Every answer carries an `X-Request-Id` header, which names the request in the \
service's logs: the caller's own `X-Request-Id` when it is 1 to 128 characters of \
`A-Z a-z 0-9 . _ : -`, otherwise one the service made.";

/// The one server: the service itself, wherever it runs. A relative URL, so
/// the document does not change with the environment.
const SERVER: &str = "This service, in every environment (local, staging or \
production): the address it listens on (`--bind`, by default \
`http://127.0.0.1:8080`).";

/// The OpenAPI service: every operation of the API and its document.
pub fn openapi_service() -> OpenApiService<Apis, ()> {
    OpenApiService::new(
        Apis::default(),
        "touchpoint-tracker",
        env!("CARGO_PKG_VERSION"),
    )
    .description(DESCRIPTION)
    .server(ServerObject::new("/").description(SERVER))
    .license(LicenseObject::new(env!("CARGO_PKG_LICENSE")).url("https://spdx.org/licenses/"))
    .contact(ContactObject::new().name("touchpoint-tracker maintainers"))
}

/// The OpenAPI document, as committed in `openapi/openapi.json`.
pub fn openapi_document() -> String {
    document::finish(&openapi_service())
}

/// What the routes share with the background workers: where survey links
/// point, the e-mail sender (if SMTP is configured), the survey pages' rate
/// limit per client address, the webhook dispatcher and the metrics.
pub struct Wiring {
    pub public_url: String,
    pub mailer: Option<Mailer>,
    pub page_rate: Option<RateLimit>,
    /// The webhook dispatcher (its API wakes it and reads its settings).
    pub dispatcher: Dispatcher,
    /// The instance's metrics, which the workers count into too.
    pub metrics: Arc<Metrics>,
    /// How long a dashboard sign-in lasts.
    pub session_lifetime: std::time::Duration,
    /// Start no rollup projector (`PROJECTOR_PAUSED`).
    pub projector_paused: bool,
}

/// What the service serves: the API on its listener, the metrics on theirs.
pub struct Service {
    /// Every operation, the documents and `/healthz`.
    pub api: BoxEndpoint<'static, Response>,
    /// `GET /metrics` (see `metrics_endpoint`).
    pub metrics: BoxEndpoint<'static, Response>,
}

/// Every route of the service, with the database, the encounter writer, the
/// inline reader and the limits attached, errors rendered in the one JSON
/// shape, a span, a log line and metrics per request. Starts the encounter
/// writer on `database.writer`: call it on the runtime. `/healthz` watches
/// the writer and `workers`.
pub fn routes(
    database: Database,
    limits: &Limits,
    wiring: Wiring,
    mut workers: Vec<Worker>,
) -> Service {
    let Database {
        pool: db,
        writer: writer_db,
        reader,
        projector: projector_db,
    } = database;
    let service = openapi_service();
    let docs = document::docs_endpoint(&service);
    let spec = document::spec_endpoint(&service);
    let metrics = wiring.metrics.clone();
    let projector = Projector::start(projector_db, wiring.projector_paused);
    workers.push(Worker {
        name: "rollup projector",
        running: Box::new(projector.watch()),
    });
    let writer =
        EncounterWriter::start(writer_db, reader.clone(), metrics.group_sizes(), projector);
    let monitor = writer.monitor();
    workers.push(Worker {
        name: "encounter writer",
        running: Box::new({
            let monitor = monitor.clone();
            move || monitor.is_running()
        }),
    });
    let key_cache = KeyCache::new();
    let revalidating = tokio::spawn(key_cache.clone().revalidate_periodically(reader.clone()));
    workers.push(Worker {
        name: "API key revalidation",
        running: Box::new(move || !revalidating.is_finished()),
    });
    let metrics_endpoint = metrics_endpoint::endpoint(db.clone(), monitor, metrics.clone()).boxed();
    let rate_limiter = limits
        .rate
        .map(|rate| Arc::new(RateLimiter::<i64>::new(rate)));
    let auth_failure_limiter = limits
        .auth_failures
        .map(|rate| Arc::new(rate_limit::AuthFailureLimiter::new(rate)));
    let page_limiter = wiring
        .page_rate
        .map(|rate| Arc::new(survey_page::SurveyPageLimiter(RateLimiter::new(rate))));
    let session_lifetime = sessions::SessionLifetime(
        chrono::Duration::from_std(wiring.session_lifetime).unwrap_or(chrono::Duration::hours(8)),
    );
    let api = dashboard::add_routes(survey_page::add_routes(Route::new()))
        .nest("/", service)
        .nest("/docs", docs)
        .at("/openapi.json", spec)
        .data(db)
        .data(writer)
        .data(reader)
        .data(key_cache)
        .data(limits.body)
        .data(Workers::new(workers))
        .data_opt(rate_limiter)
        .data_opt(auth_failure_limiter)
        .data_opt(page_limiter)
        .data(public_url::PublicUrl(wiring.public_url))
        .data(wiring.mailer)
        .data(wiring.dispatcher)
        .data(session_lifetime)
        // Boxed here, or the type of the stacked layers outgrows the
        // compiler's query depth.
        .boxed()
        .with(CookieJarManager::new())
        .catch_all_error(render_error)
        .around(check_documented_path)
        .around(move |next, req| request_span::trace(next, req, metrics.clone()))
        .into_endpoint()
        .boxed();
    Service {
        api,
        metrics: metrics_endpoint,
    }
}

/// [`error::render_error`], keeping the operation id poem-openapi put on the
/// error, so that a refused request is counted under its operation.
async fn render_error(err: poem::Error) -> Response {
    let operation = err.data::<OperationId>().copied();
    let mut response = error::render_error(err).await;
    if let Some(operation) = operation {
        response.set_data(operation);
    }
    response
}

/// A 405 names the methods the path accepts (`Allow`, RFC 9110); an id
/// given in another spelling than its canonical one is no resource (404).
async fn check_documented_path<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    if documented_paths::has_non_canonical_integer(&path) {
        return Ok(error::ApiError::new(
            error::ErrorCode::NotFound,
            "no such resource: an id is written in decimal digits, without a sign or leading zeros",
            None,
        )
        .into_response());
    }
    let mut response = next.call(req).await?.into_response();
    if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
        if let Some(methods) = documented_paths::allowed_methods(&path) {
            if let Ok(value) = poem::http::HeaderValue::from_str(&methods) {
                response
                    .headers_mut()
                    .insert(poem::http::header::ALLOW, value);
            }
        }
    }
    Ok(response)
}
