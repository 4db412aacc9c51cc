//! Builds the application: database, migrations, listener, routes.

use std::{future::Future, net::SocketAddr, time::Duration};

use anyhow::Context;
use sea_orm::DatabaseConnection;
use tokio::{net::TcpListener, task::JoinHandle};

use crate::{
    api::{self, health::Worker},
    config::{
        DashboardSettings, Limits, RetentionPolicy, Settings, SurveySettings, WebhookSettings,
    },
    db,
    domain::{
        alerts::drop,
        analytics, idempotency, organizations,
        privacy::retention,
        surveys::mail::Mailer,
        webhooks::delivery::{DeliverySettings, Dispatcher},
    },
    server::{self, ServerSettings},
};

/// In-flight requests get this long to finish after a shutdown signal.
const GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// A scrape in progress at shutdown gets this long.
const METRICS_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(1);

pub struct Application {
    listener: TcpListener,
    address: SocketAddr,
    /// The metrics listener and its address, when `metrics_bind` is set.
    metrics: Option<(TcpListener, SocketAddr)>,
    database: db::Database,
    limits: Limits,
    retention: Option<RetentionPolicy>,
    server: ServerSettings,
    surveys: SurveySettings,
    webhooks: WebhookSettings,
    dashboard: DashboardSettings,
    projector_paused: bool,
}

impl Application {
    /// Connects, migrates and binds; the server starts with
    /// [`Application::run_until`].
    pub async fn build(settings: &Settings) -> anyhow::Result<Self> {
        // A wrong SMTP_URL or SMTP_FROM stops the start, before anything.
        if let Some(smtp) = &settings.surveys.smtp {
            Mailer::new(smtp, "http://localhost")?;
        }
        let pool = db::connect(&settings.database).await?;
        migrate(&pool).await?;
        let database = db::Database::open(&settings.database, pool).await?;
        let listener = TcpListener::bind(settings.bind)
            .await
            .with_context(|| format!("binding {}", settings.bind))?;
        let address = listener
            .local_addr()
            .context("the listener has no socket address")?;
        let metrics = match settings.metrics_bind {
            Some(bind) => {
                let listener = TcpListener::bind(bind)
                    .await
                    .with_context(|| format!("binding {bind} for metrics"))?;
                let address = listener
                    .local_addr()
                    .context("the metrics listener has no socket address")?;
                Some((listener, address))
            }
            None => None,
        };
        Ok(Application {
            listener,
            address,
            metrics,
            database,
            limits: settings.limits.clone(),
            retention: settings.retention,
            server: settings.server,
            surveys: settings.surveys.clone(),
            webhooks: settings.webhooks.clone(),
            dashboard: settings.dashboard,
            projector_paused: settings.projector_paused,
        })
    }

    /// The bound address (the port is the OS's choice when asked for 0).
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The metrics listener's bound address, if there is one.
    pub fn metrics_address(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|(_, address)| *address)
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.database.pool
    }

    /// Serves until `shutdown` completes, then lets in-flight requests finish.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
        let db = &self.database.pool;
        if organizations::count(db).await.unwrap_or(0) == 0 {
            tracing::info!(
                "no organization yet; create one and an admin key with: \
                 touchpoint-tracker org create <slug> <name> && \
                 touchpoint-tracker key create --org <slug> --role admin"
            );
        }
        tracing::info!(address = %self.address, docs = %format!("http://{}/docs", self.address), "listening");
        let purge = tokio::spawn(idempotency::purge_periodically(db.clone()));
        let retention = self.retention.map(|policy| {
            tracing::info!(
                days = policy.days,
                every_seconds = policy.interval.as_secs(),
                "retention policy on"
            );
            tokio::spawn(retention::enforce_periodically(
                db.clone(),
                policy,
                std::sync::Arc::new(api::personal_data::StoredAnswerRedactor),
            ))
        });
        let mut workers = vec![watch("idempotency purge", &purge)];
        if let Some(retention) = &retention {
            workers.push(watch("retention job", retention));
        }
        let public_url = self
            .surveys
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.address));
        let mailer = match &self.surveys.smtp {
            Some(smtp) => match Mailer::new(smtp, &public_url) {
                Ok(mailer) => Some(mailer),
                Err(err) => {
                    // Checked at build time already: cannot happen here.
                    tracing::error!(error = %err, "survey e-mail is off");
                    None
                }
            },
            None => None,
        };
        let sender = mailer.clone().map(|mailer| {
            tracing::info!("survey invitations are e-mailed (SMTP_URL is set)");
            tokio::spawn(mailer.run(db.clone()))
        });
        if let Some(sender) = &sender {
            workers.push(watch("survey e-mail sender", sender));
        }
        let metrics = std::sync::Arc::new(crate::metrics::Metrics::new());
        let dispatcher = Dispatcher::new(
            DeliverySettings::from(&self.webhooks),
            metrics.webhook_deliveries(),
        );
        let dispatching = tokio::spawn(dispatcher.clone().run(db.clone()));
        workers.push(watch("webhook dispatcher", &dispatching));
        let evaluating = tokio::spawn(drop::evaluate_periodically(
            db.clone(),
            self.webhooks.alert_evaluation,
        ));
        workers.push(watch("alert evaluation", &evaluating));
        let wiring = api::Wiring {
            public_url,
            mailer,
            page_rate: self.surveys.page_rate,
            dispatcher,
            metrics,
            session_lifetime: self.dashboard.session_lifetime,
            projector_paused: self.projector_paused,
        };
        let service = api::routes(self.database.clone(), &self.limits, wiring, workers);
        let metrics = self.metrics.map(|(listener, address)| {
            tracing::info!(address = %address, "serving metrics at /metrics");
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let serving = tokio::spawn(server::serve(
                listener,
                service.metrics,
                self.server,
                async {
                    let _ = stopped.await;
                },
                METRICS_SHUTDOWN_TIMEOUT,
            ));
            (stop, serving)
        });
        let result = server::serve(
            self.listener,
            service.api,
            self.server,
            shutdown,
            GRACEFUL_SHUTDOWN_TIMEOUT,
        )
        .await;
        if let Some((stop, serving)) = metrics {
            let _ = stop.send(());
            let _ = serving.await;
        }
        purge.abort();
        // A delivery cut off here is sent again after its claim lapses.
        dispatching.abort();
        // Each rule is evaluated in its own transaction.
        evaluating.abort();
        if let Some(sender) = sender {
            // Each message is claimed, sent and recorded on its own: a
            // message cut off here is claimed again after its lease.
            sender.abort();
        }
        if let Some(retention) = retention {
            // Each erasure is one transaction: stopping between them is safe.
            retention.abort();
        }
        // The writer's own SQLite connection closes with its last handle,
        // when the writer has finished its queue; on PostgreSQL it is `db`.
        let _ = self.database.pool.close().await;
        result
    }
}

/// Brings the schema up to date, then rebuilds the perception rollups an
/// older version built (see `ROLLUP_VERSION`), once per upgrade.
pub async fn migrate(db: &DatabaseConnection) -> anyhow::Result<()> {
    db::migrate_then(db, || async {
        analytics::rebuild::rebuild_outdated(db)
            .await
            .context("rebuilding perception rollups")
    })
    .await
}

/// A worker for `/healthz` to watch: running until its task ends.
fn watch(name: &'static str, task: &JoinHandle<()>) -> Worker {
    let task = task.abort_handle();
    Worker {
        name,
        running: Box::new(move || !task.is_finished()),
    }
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        _ = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
