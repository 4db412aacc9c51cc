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
    metrics::{self, Metrics, PoolUse, Snapshot},
};

/// The metrics listener's routes: `GET /metrics`; anything else is a 404
/// (405 for another method) in the one error shape.
pub fn endpoint(
    db: DatabaseConnection,
    writer: WriterMonitor,
    metrics: Arc<Metrics>,
) -> impl Endpoint<Output = Response> {
    let scrape = make(move |_request| {
        let now = Snapshot {
            queue_depth: writer.queue_depth(),
            pool: db::pool_use(&db).unwrap_or(PoolUse {
                open: 0,
                idle: 0,
                max: 0,
            }),
        };
        let text = metrics.render(now);
        async move {
            Response::builder()
                .header(header::CONTENT_TYPE, metrics::CONTENT_TYPE)
                .body(text)
        }
    });
    Route::new()
        .at("/metrics", poem::get(scrape))
        .catch_all_error(error::render_error)
}
