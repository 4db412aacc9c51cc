//! `GET /metrics`, served only on the metrics listener (`--metrics-bind`),
//! never on the API's. The metrics describe the whole instance: every
//! organization's traffic. An API key belongs to one organization, so no
//! key may read them; whoever reaches the metrics listener may. It is off
//! unless configured, and meant to be bound where only the scraper
//! reaches. Not part of the API, so not in the OpenAPI document.

use std::sync::Arc;

use poem::{endpoint::make, http::header, Endpoint, EndpointExt, Response, Route};
use sea_orm::DatabaseConnection;

use super::error;
use crate::{
    db,
    domain::encounters::group_commit::WriterMonitor,
    metrics::{self, Metrics, MonitoringSnapshot, PoolUse, Snapshot},
};

/// Webhook, alert and projection figures read from the database; zeros
/// (and a warning) when they cannot be read, so the other series still go
/// out.
async fn monitoring(db: &DatabaseConnection) -> MonitoringSnapshot {
    use crate::domain::{alerts::lifecycle, analytics::projection, webhooks::delivery};
    let oldest = delivery::oldest_undelivered(db).await;
    let alerts = lifecycle::counts(db).await;
    let pending = projection::pending_encounters(db).await;
    match (oldest, alerts, pending) {
        (Ok(oldest), Ok((alerts_open, alerts_opened)), Ok(rollup_pending)) => MonitoringSnapshot {
            oldest_undelivered_seconds: oldest.map_or(0.0, |at| {
                (chrono::Utc::now() - at).num_milliseconds().max(0) as f64 / 1000.0
            }),
            alerts_open,
            alerts_opened,
            rollup_pending,
        },
        (Err(err), _, _) | (_, Err(err), _) | (_, _, Err(err)) => {
            tracing::warn!(error = %err, "monitoring metrics not read");
            MonitoringSnapshot::default()
        }
    }
}

/// The metrics listener's routes: `GET /metrics`; anything else is a 404
/// (405 for another method) in the one error shape.
pub fn endpoint(
    db: DatabaseConnection,
    writer: WriterMonitor,
    metrics: Arc<Metrics>,
) -> impl Endpoint<Output = Response> {
    let scrape = make(move |_request| {
        let db = db.clone();
        let writer = writer.clone();
        let metrics = metrics.clone();
        async move {
            let now = Snapshot {
                queue_depth: writer.queue_depth(),
                pool: db::pool_use(&db).unwrap_or(PoolUse {
                    open: 0,
                    idle: 0,
                    max: 0,
                }),
                monitoring: monitoring(&db).await,
            };
            Response::builder()
                .header(header::CONTENT_TYPE, metrics::CONTENT_TYPE)
                .body(metrics.render(now))
        }
    });
    Route::new()
        .at("/metrics", poem::get(scrape))
        .catch_all_error(error::render_error)
}
