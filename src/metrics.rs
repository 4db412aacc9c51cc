//! The service's metrics, served as `GET /metrics` in the OpenMetrics text
//! format (the Prometheus text format as standardized; Prometheus asks for
//! it by default) on the metrics listener (`--metrics-bind`).
//!
//! Why `prometheus-client` (the Prometheus project's own crate) rather than
//! `metrics` + `metrics-exporter-prometheus`: its registry is a value, so
//! each [`Metrics`] counts only its own service. The `metrics` macros write
//! to one process-wide recorder, so the test suite, which runs many services
//! in one process, could not tell their counts apart, and the domain would
//! write through a global. Label sets are typed structs, so a label with
//! unbounded values (a raw path, an id) cannot slip in; and it brings four
//! small dependencies where the exporter brings a dozen.
//!
//! Series (the suffixes `_total`, `_seconds`, `_bucket`, `_sum` and `_count`
//! are the format's):
//! - `http_requests_total{operation,status}` and
//!   `http_request_duration_seconds{operation,status}` (histogram, until the
//!   answer's head is ready): `operation` is the OpenAPI operation id, or
//!   `other` for a request that reached no operation (an unknown path, a
//!   refused id spelling, `/docs`, `/openapi.json`), never the raw path;
//! - `encounter_writer_queue_depth` (gauge): writes waiting for the
//!   encounter writer; `encounter_writer_group_size` (histogram): requests
//!   per group-committed transaction;
//! - `db_pool_connections{state="idle"|"in_use"}` and
//!   `db_pool_max_connections` (gauges): the shared connection pool;
//! - `webhook_deliveries_total{outcome="delivered"|"failed"}`: delivery
//!   attempts this instance made; `webhook_oldest_undelivered_seconds`
//!   (gauge): the age of the oldest event an enabled endpoint still waits
//!   for (0 when none), read from the database at the scrape;
//! - `alerts_open{kind="detractor"|"drop"}` (gauge) and
//!   `alerts_opened` (gauge: every alert raised and kept, all instances),
//!   read at the scrape.
//!
//! Gauges that describe a state (queue depth, pool use) are read when the
//! metrics are scraped, so they never drift from what they describe.

use std::time::Duration;

use prometheus_client::{
    encoding::{text, EncodeLabelSet},
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::{Registry, Unit},
};

/// The `operation` label of a request that reached no operation.
pub const NO_OPERATION: &str = "other";

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Latency buckets, in seconds: from a point read (a millisecond or less)
/// to a long export (seconds).
const LATENCY_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    operation: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

/// Webhook delivery attempts by outcome. Cheap to clone: the clones share
/// one family.
#[derive(Clone, Debug, Default)]
pub struct WebhookDeliveries(Family<OutcomeLabels, Counter>);

impl WebhookDeliveries {
    /// Counts one attempt.
    pub fn count(&self, delivered: bool) {
        let outcome = if delivered { "delivered" } else { "failed" };
        self.0.get_or_create(&OutcomeLabels { outcome }).inc();
    }
}

/// What monitoring looks like at the scrape, read from the database.
#[derive(Debug, Clone, Default)]
pub struct MonitoringSnapshot {
    /// Seconds since the oldest event an enabled endpoint waits for.
    pub oldest_undelivered_seconds: f64,
    /// Alerts open or acknowledged, by rule kind.
    pub alerts_open: Vec<(String, i64)>,
    /// Alerts raised and kept.
    pub alerts_opened: i64,
    /// Encounters recorded and not yet projected into the rollups.
    pub rollup_pending: i64,
}

type LatencyFamily = Family<RequestLabels, Histogram, fn() -> Histogram>;

/// The registry and its series. One per running service; share it in an
/// `Arc`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
    queue_depth: Gauge,
    group_sizes: GroupSizes,
    pool_connections: Family<PoolLabels, Gauge>,
    pool_max: Gauge,
    webhook_deliveries: WebhookDeliveries,
    oldest_undelivered: Gauge<f64, std::sync::atomic::AtomicU64>,
    alerts_open: Family<KindLabels, Gauge>,
    alerts_opened: Gauge,
    rollup_pending: Gauge,
}

/// The connection pool's use at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolUse {
    /// Connections open, idle or in use.
    pub open: u32,
    pub idle: u32,
    /// The most the pool opens.
    pub max: u32,
}

/// What the scrape reads at the moment it is made.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Writes waiting for the encounter writer.
    pub queue_depth: usize,
    pub pool: PoolUse,
    pub monitoring: MonitoringSnapshot,
}

/// The encounter writer's group sizes (requests per transaction). Cheap to
/// clone: the clones share one histogram.
#[derive(Clone, Debug)]
pub struct GroupSizes(Histogram);

impl GroupSizes {
    /// Counts one group of `requests`.
    pub fn observe(&self, requests: usize) {
        self.0.observe(requests as f64);
    }
}

impl Default for GroupSizes {
    /// A histogram of its own, counted nowhere: for a writer started
    /// without [`Metrics`].
    fn default() -> Self {
        GroupSizes(group_size_histogram())
    }
}

fn group_size_histogram() -> Histogram {
    // 1, 2, 4, ... 1024: the writer's largest group (MAX_GROUP).
    Histogram::new(exponential_buckets(1.0, 2.0, 11))
}

fn latency_histogram() -> Histogram {
    Histogram::new(LATENCY_BUCKETS)
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by OpenAPI operation id and status",
            requests.clone(),
        );
        let latency = LatencyFamily::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "http_request_duration",
            "Time from a request's arrival to its answer's head, by operation and status",
            Unit::Seconds,
            latency.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "encounter_writer_queue_depth",
            "Writes waiting for the encounter writer",
            queue_depth.clone(),
        );
        let group_sizes = GroupSizes(group_size_histogram());
        registry.register(
            "encounter_writer_group_size",
            "Requests whose encounters were committed in one transaction",
            group_sizes.0.clone(),
        );
        let pool_connections = Family::<PoolLabels, Gauge>::default();
        registry.register(
            "db_pool_connections",
            "Connections of the shared database pool, idle or in use",
            pool_connections.clone(),
        );
        let pool_max = Gauge::default();
        registry.register(
            "db_pool_max_connections",
            "The most connections the shared database pool opens",
            pool_max.clone(),
        );
        let webhook_deliveries = WebhookDeliveries::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by this instance, by outcome",
            webhook_deliveries.0.clone(),
        );
        let oldest_undelivered = Gauge::<f64, std::sync::atomic::AtomicU64>::default();
        registry.register_with_unit(
            "webhook_oldest_undelivered",
            "Age of the oldest event an enabled webhook endpoint still waits for",
            Unit::Seconds,
            oldest_undelivered.clone(),
        );
        let alerts_open = Family::<KindLabels, Gauge>::default();
        registry.register(
            "alerts_open",
            "Alerts open or acknowledged, by rule kind",
            alerts_open.clone(),
        );
        let alerts_opened = Gauge::default();
        registry.register(
            "alerts_opened",
            "Alerts raised (and not deleted with their rule), all instances",
            alerts_opened.clone(),
        );
        let rollup_pending = Gauge::default();
        registry.register(
            "rollup_pending_encounters",
            "Encounters recorded and not yet projected into the rollups (reports add them as they read), all instances",
            rollup_pending.clone(),
        );
        Metrics {
            rollup_pending,
            registry,
            requests,
            latency,
            queue_depth,
            group_sizes,
            pool_connections,
            pool_max,
            webhook_deliveries,
            oldest_undelivered,
            alerts_open,
            alerts_opened,
        }
    }

    /// Counts one answered request.
    pub fn record_request(&self, operation: &'static str, status: u16, elapsed: Duration) {
        let labels = RequestLabels { operation, status };
        self.requests.get_or_create(&labels).inc();
        self.latency
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// The histogram the encounter writer fills.
    pub fn group_sizes(&self) -> GroupSizes {
        self.group_sizes.clone()
    }

    /// The counters the webhook dispatcher fills.
    pub fn webhook_deliveries(&self) -> WebhookDeliveries {
        self.webhook_deliveries.clone()
    }

    /// Every series as OpenMetrics text, the gauges set from `now`.
    pub fn render(&self, now: Snapshot) -> String {
        self.queue_depth
            .set(i64::try_from(now.queue_depth).unwrap_or(i64::MAX));
        let in_use = now.pool.open.saturating_sub(now.pool.idle);
        self.pool_connections
            .get_or_create(&PoolLabels { state: "idle" })
            .set(i64::from(now.pool.idle));
        self.pool_connections
            .get_or_create(&PoolLabels { state: "in_use" })
            .set(i64::from(in_use));
        self.pool_max.set(i64::from(now.pool.max));
        self.oldest_undelivered
            .set(now.monitoring.oldest_undelivered_seconds);
        for kind in ["detractor", "drop"] {
            let open = now
                .monitoring
                .alerts_open
                .iter()
                .find(|(k, _)| k == kind)
                .map_or(0, |(_, n)| *n);
            self.alerts_open
                .get_or_create(&KindLabels {
                    kind: kind.to_owned(),
                })
                .set(open);
        }
        self.alerts_opened.set(now.monitoring.alerts_opened);
        self.rollup_pending.set(now.monitoring.rollup_pending);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = text::encode(&mut text, &self.registry);
        text
    }
}
