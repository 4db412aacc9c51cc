//! Typed configuration from flags and environment variables.

use std::{net::SocketAddr, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::server::ServerSettings;

pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/touchpoints.db";
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
/// Failed authentications per second and at once a client address may make:
/// generous for a misconfigured client, a wall for a token-guessing flood.
const DEFAULT_AUTH_FAILURE_RATE: f64 = 10.0;
const DEFAULT_AUTH_FAILURE_BURST: f64 = 100.0;

/// touchpoint-tracker: candidate touchpoints and employer perception.
#[derive(Parser, Debug)]
#[command(name = "touchpoint-tracker", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
pub struct GlobalArgs {
    /// Database: `sqlite://path/to/file.db` (created if missing) or
    /// `postgres://user:pass@host/db`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL, global = true)]
    pub database_url: String,
    /// Address the HTTP server listens on.
    #[arg(long = "bind", env = "BIND_ADDR", default_value = DEFAULT_BIND, global = true)]
    pub bind: SocketAddr,
    /// Address of a second listener that serves only `GET /metrics`
    /// (Prometheus). Off when not set; the main listener never serves
    /// metrics. Bind it where only the scraper reaches, e.g. 127.0.0.1:9090.
    #[arg(long = "metrics-bind", env = "METRICS_BIND_ADDR", global = true)]
    pub metrics_bind: Option<SocketAddr>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(flatten)]
    pub retention: RetentionArgs,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub surveys: SurveyArgs,
    #[command(flatten)]
    pub webhooks: WebhookArgs,
    #[command(flatten)]
    pub dashboard: DashboardArgs,
    /// Log line format. Log levels come from `RUST_LOG` (default `info`).
    #[arg(
        long,
        value_enum,
        env = "LOG_FORMAT",
        default_value = "pretty",
        global = true
    )]
    pub log_format: LogFormat,
}

/// Connection pool and timeouts.
#[derive(Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// Most database connections this instance opens.
    #[arg(long, env = "DB_MAX_CONNECTIONS", default_value_t = 10, global = true)]
    pub db_max_connections: u32,
    /// Seconds to wait for a connection (opening one, or from the pool)
    /// before a request fails with 503.
    #[arg(long, env = "DB_CONNECT_TIMEOUT", default_value_t = 5, global = true)]
    pub db_connect_timeout: u64,
    /// Seconds a single SQL statement may run before PostgreSQL cancels it
    /// (0: no limit). SQLite has no statement timeout.
    #[arg(
        long,
        env = "DB_STATEMENT_TIMEOUT",
        default_value_t = 30,
        global = true
    )]
    pub db_statement_timeout: u64,
    /// Seconds to keep retrying, with backoff, when the database is
    /// unreachable at start (0: retry forever).
    #[arg(long, env = "DB_STARTUP_TIMEOUT", default_value_t = 120, global = true)]
    pub db_startup_timeout: u64,
    /// Start no rollup projector: recorded encounters wait behind the
    /// rollups' high-water mark (reports stay exact, but each merges
    /// everything pending, and waits once that is more than it merges).
    /// For tests and maintenance; another instance may still project.
    #[arg(long, env = "PROJECTOR_PAUSED", default_value_t = false, global = true)]
    pub projector_paused: bool,
}

/// Request limits.
#[derive(Args, Debug, Clone)]
pub struct LimitArgs {
    /// Largest JSON request body, in bytes; larger ones are refused (413).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024, global = true)]
    pub max_body_bytes: usize,
    /// Largest body of `POST /api/v1/encounters/batch`, in bytes.
    #[arg(
        long,
        env = "MAX_BATCH_BODY_BYTES",
        default_value_t = 16 * 1024 * 1024,
        global = true
    )]
    pub max_batch_body_bytes: usize,
    /// Longest line of an NDJSON import, in bytes (the stream is unbounded).
    #[arg(
        long,
        env = "MAX_IMPORT_LINE_BYTES",
        default_value_t = 64 * 1024,
        global = true
    )]
    pub max_import_line_bytes: usize,
    /// Requests per second each API key may make on average; beyond, 429
    /// with `Retry-After` (0: no limit).
    #[arg(
        long,
        env = "RATE_LIMIT_PER_SECOND",
        default_value_t = 0.0,
        global = true
    )]
    pub rate_limit_per_second: f64,
    /// Requests a key may make at once, above its average (default: one
    /// second's worth, at least 1).
    #[arg(long, env = "RATE_LIMIT_BURST", global = true)]
    pub rate_limit_burst: Option<f64>,
    /// Failed authentications per second a client address (an IPv6 /64) may
    /// make on average; beyond, 429 before its token is looked up (0: no
    /// limit). Behind a reverse proxy every client has the proxy's address.
    #[arg(
        long,
        env = "AUTH_FAILURE_RATE_PER_SECOND",
        default_value_t = DEFAULT_AUTH_FAILURE_RATE,
        global = true
    )]
    pub auth_failure_rate_per_second: f64,
    /// Failed authentications a client address may make at once, above its
    /// average.
    #[arg(
        long,
        env = "AUTH_FAILURE_BURST",
        default_value_t = DEFAULT_AUTH_FAILURE_BURST,
        global = true
    )]
    pub auth_failure_burst: f64,
}

/// Connections: timeouts and the cap, so that idle, slow or numerous
/// clients cannot exhaust the service.
#[derive(Args, Debug, Clone)]
pub struct ServerArgs {
    /// Seconds a request's head (request line and headers) may take to
    /// arrive once its first byte is in; then the connection is closed.
    #[arg(
        long,
        env = "HEADER_READ_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub header_read_timeout_seconds: u64,
    /// Seconds a connection may wait for a request without receiving a
    /// byte, after it opens or after an answer; then it is closed.
    #[arg(
        long,
        env = "KEEP_ALIVE_IDLE_SECONDS",
        default_value_t = 75,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub keep_alive_idle_seconds: u64,
    /// Seconds a request body may go without sending a byte; then the
    /// request fails and its connection is closed.
    #[arg(
        long,
        env = "BODY_READ_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub body_read_timeout_seconds: u64,
    /// Seconds to wait for a client that has stopped reading its answer;
    /// then its connection is closed.
    #[arg(
        long,
        env = "SEND_TIMEOUT_SECONDS",
        default_value_t = 30,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub send_timeout_seconds: u64,
    /// Most connections open at once (default: the open-files limit less
    /// 64, at most 10000). Beyond, the connections idle the longest are
    /// closed to make room.
    #[arg(
        long,
        env = "MAX_CONNECTIONS",
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    pub max_connections: Option<u64>,
}

impl From<&ServerArgs> for ServerSettings {
    fn from(args: &ServerArgs) -> Self {
        ServerSettings {
            header_read_timeout: Duration::from_secs(args.header_read_timeout_seconds),
            keep_alive_idle: Duration::from_secs(args.keep_alive_idle_seconds),
            body_read_timeout: Duration::from_secs(args.body_read_timeout_seconds),
            send_timeout: Duration::from_secs(args.send_timeout_seconds),
            max_connections: args
                .max_connections
                .map(|cap| usize::try_from(cap).unwrap_or(usize::MAX)),
        }
    }
}

/// Candidate surveys: their links, their e-mail, their pages' rate limit.
#[derive(Args, Debug, Clone)]
pub struct SurveyArgs {
    /// The address candidates reach this service at, which survey links
    /// start with (e.g. `https://careers-feedback.example.com`). Default:
    /// `http://` and the bound address, right only for local use.
    #[arg(long, env = "PUBLIC_URL", global = true, value_parser = parse_public_url)]
    pub public_url: Option<String>,
    /// The SMTP server invitations are e-mailed through:
    /// `smtps://user:pass@host:465` (TLS), `smtp://user:pass@host:587?tls=required`
    /// (STARTTLS) or `smtp://host:25` (plain, for a local relay). Without it,
    /// nothing is e-mailed and the API returns the link for another tool to send.
    #[arg(long, env = "SMTP_URL", global = true)]
    pub smtp_url: Option<String>,
    /// The sender of invitation e-mails, e.g. `Acme Careers <surveys@acme.example>`.
    #[arg(long, env = "SMTP_FROM", global = true)]
    pub smtp_from: Option<String>,
    /// Requests per minute one client address (an IPv6 /64) may make to
    /// the survey pages (`/s/...`) on average; beyond, 429 (0: no limit).
    #[arg(
        long,
        env = "SURVEY_RATE_PER_MINUTE",
        default_value_t = 30.0,
        global = true
    )]
    pub survey_rate_per_minute: f64,
    /// Survey page requests a client address may make at once.
    #[arg(long, env = "SURVEY_RATE_BURST", default_value_t = 20.0, global = true)]
    pub survey_rate_burst: f64,
}

/// Webhook deliveries.
#[derive(Args, Debug, Clone)]
pub struct WebhookArgs {
    /// Accept `http://` webhook endpoints (development only; production
    /// endpoints must be `https://`).
    #[arg(long, env = "WEBHOOK_ALLOW_HTTP", global = true)]
    pub webhook_allow_http: bool,
    /// Networks webhooks may be delivered to although they are not public,
    /// comma-separated (e.g. `127.0.0.1/32,10.1.2.0/24`). By default
    /// loopback, private, link-local and metadata addresses are refused.
    #[arg(
        long,
        env = "WEBHOOK_ALLOWED_NETWORKS",
        global = true,
        value_delimiter = ',',
        value_parser = parse_network
    )]
    pub webhook_allowed_networks: Vec<ipnet::IpNet>,
    /// Failed delivery attempts in a row after which an endpoint is
    /// disabled (it says why; an admin enables it again).
    #[arg(
        long,
        env = "WEBHOOK_DISABLE_AFTER_FAILURES",
        default_value_t = 15,
        global = true,
        value_parser = clap::value_parser!(u32).range(1..=1000)
    )]
    pub webhook_disable_after_failures: u32,
    /// Seconds a delivery may take before it counts as failed.
    #[arg(
        long,
        env = "WEBHOOK_TIMEOUT_SECONDS",
        default_value_t = 10,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..=60)
    )]
    pub webhook_timeout_seconds: u64,
    /// Seconds between evaluations of the drop alert rules (each period
    /// is evaluated again until it is over; an alert opens once).
    #[arg(
        long,
        env = "ALERT_EVALUATION_SECONDS",
        default_value_t = 3600,
        global = true,
        value_parser = clap::value_parser!(u64).range(10..)
    )]
    pub alert_evaluation_seconds: u64,
}

/// The HR dashboard at `/app`.
#[derive(Args, Debug, Clone)]
pub struct DashboardArgs {
    /// Hours a dashboard sign-in lasts (or until its key expires, if
    /// sooner); then the key is asked for again.
    #[arg(
        long,
        env = "DASHBOARD_SESSION_HOURS",
        default_value_t = 8,
        global = true,
        value_parser = clap::value_parser!(u32).range(1..=720)
    )]
    pub dashboard_session_hours: u32,
}

/// A network (`10.0.0.0/8`) or a single address (`127.0.0.1`).
fn parse_network(value: &str) -> Result<ipnet::IpNet, String> {
    let value = value.trim();
    value
        .parse::<ipnet::IpNet>()
        .or_else(|_| value.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
        .map_err(|_| format!("{value:?} is not an address or a network (a.b.c.d/n)"))
}

/// A public URL: `http` or `https`, with a host, without a query or a
/// fragment; kept without its trailing `/`.
fn parse_public_url(value: &str) -> Result<String, String> {
    let url = url::Url::parse(value).map_err(|err| err.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("an http:// or https:// URL with a host".into());
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("no query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// How long candidate data is kept.
#[derive(Args, Debug, Clone)]
pub struct RetentionArgs {
    /// Erase candidates whose latest encounter (or, without one, creation)
    /// is older than this many days. Off when not set.
    #[arg(
        long,
        env = "RETENTION_DAYS",
        global = true,
        value_parser = clap::value_parser!(u32).range(1..=36_500)
    )]
    pub retention_days: Option<u32>,
    /// How often `serve` applies the retention policy, in seconds.
    #[arg(
        long,
        env = "RETENTION_INTERVAL_SECONDS",
        default_value_t = 3600,
        global = true,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub retention_interval_seconds: u64,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP service (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Print the OpenAPI document.
    Openapi,
    /// Manage organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Manage API keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Demo data, to see the reports at work.
    #[command(subcommand)]
    Demo(DemoCommand),
    /// The retention policy (`--retention-days`).
    #[command(subcommand)]
    Retention(RetentionCommand),
}

#[derive(Subcommand, Debug)]
pub enum DemoCommand {
    /// Fill an organization (created if missing) with a catalog, candidates
    /// and a year of encounters. Deterministic for a seed and a day.
    Seed {
        /// The organization's slug; it must have no candidates yet.
        #[arg(long)]
        org: String,
        /// How many candidates.
        #[arg(long, default_value_t = 3000)]
        candidates: usize,
        /// Seed of the random journeys.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum OrgCommand {
    /// Create an organization (an employer).
    Create {
        /// Short identifier: lowercase letters, digits and dashes.
        slug: String,
        /// Display name.
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum RetentionCommand {
    /// Erase now the candidates the policy (`--retention-days`) says are
    /// due; prints each one erased on stdout.
    Run {
        /// Print the candidates that would be erased, and erase nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Create an API key; prints only the token on stdout.
    Create {
        /// The organization's slug.
        #[arg(long)]
        org: String,
        /// The key's role.
        #[arg(long, value_enum)]
        role: CliRole,
        /// What the key is for.
        #[arg(long)]
        name: Option<String>,
        /// Days until the key expires; without it the key is valid until
        /// revoked.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_in_days: Option<u32>,
    },
}

#[derive(ValueEnum, Debug, Clone, Copy)]
pub enum CliRole {
    Admin,
    Recruiter,
    Reporter,
}

impl From<CliRole> for entity::enums::Role {
    fn from(role: CliRole) -> Self {
        match role {
            CliRole::Admin => Self::Admin,
            CliRole::Recruiter => Self::Recruiter,
            CliRole::Reporter => Self::Reporter,
        }
    }
}

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database: DatabaseSettings,
    pub bind: SocketAddr,
    /// Where `GET /metrics` is served; `None`: nowhere.
    pub metrics_bind: Option<SocketAddr>,
    pub limits: Limits,
    /// `None`: candidate data is kept until erased on request.
    pub retention: Option<RetentionPolicy>,
    /// Connection timeouts and cap.
    pub server: ServerSettings,
    /// Survey links, e-mail and pages.
    pub surveys: SurveySettings,
    /// Webhook deliveries.
    pub webhooks: WebhookSettings,
    /// The dashboard's sessions.
    pub dashboard: DashboardSettings,
    /// Start no rollup projector (see `PROJECTOR_PAUSED`).
    pub projector_paused: bool,
}

/// The HR dashboard at `/app`.
#[derive(Debug, Clone, Copy)]
pub struct DashboardSettings {
    /// How long a sign-in lasts (at most until its key expires).
    pub session_lifetime: Duration,
}

impl Default for DashboardSettings {
    /// As the command line's defaults.
    fn default() -> Self {
        DashboardSettings {
            session_lifetime: Duration::from_secs(8 * 3600),
        }
    }
}

/// Webhook deliveries.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    pub allow_http: bool,
    pub allowed_networks: Vec<ipnet::IpNet>,
    pub disable_after_failures: u32,
    pub timeout: Duration,
    /// How often the drop alert rules are evaluated.
    pub alert_evaluation: Duration,
}

impl Default for WebhookSettings {
    /// As the command line's defaults.
    fn default() -> Self {
        WebhookSettings {
            allow_http: false,
            allowed_networks: Vec::new(),
            disable_after_failures: 15,
            timeout: Duration::from_secs(10),
            alert_evaluation: Duration::from_secs(3600),
        }
    }
}

/// Survey links, e-mail and pages.
#[derive(Debug, Clone)]
pub struct SurveySettings {
    /// What survey links start with; `None`: `http://` and the bound address.
    pub public_url: Option<String>,
    /// `None`: invitations are not e-mailed.
    pub smtp: Option<SmtpSettings>,
    /// Requests to the survey pages per client address; `None`: no limit.
    pub page_rate: Option<RateLimit>,
}

impl Default for SurveySettings {
    /// As the command line's defaults.
    fn default() -> Self {
        SurveySettings {
            public_url: None,
            smtp: None,
            page_rate: Some(RateLimit {
                per_second: 0.5,
                burst: 20.0,
            }),
        }
    }
}

/// Where invitation e-mails go out.
#[derive(Debug, Clone)]
pub struct SmtpSettings {
    /// The SMTP server's URL (it may hold a password: never logged).
    pub url: String,
    /// The sender.
    pub from: String,
}

/// How much a request and a key may ask.
#[derive(Debug, Clone)]
pub struct Limits {
    pub body: BodyLimits,
    /// `None`: no rate limit.
    pub rate: Option<RateLimit>,
    /// Failed authentications per client address; `None`: no limit.
    pub auth_failures: Option<RateLimit>,
}

/// Where the database is and how to talk to it.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    pub url: String,
    pub max_connections: u32,
    pub connect_timeout: Duration,
    /// `None`: no limit.
    pub statement_timeout: Option<Duration>,
    /// `None`: retry forever.
    pub startup_timeout: Option<Duration>,
}

impl DatabaseSettings {
    /// The defaults of the command line, for `url`.
    pub fn new(url: impl Into<String>) -> Self {
        DatabaseSettings {
            url: url.into(),
            max_connections: 10,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Some(Duration::from_secs(30)),
            startup_timeout: Some(Duration::from_secs(120)),
        }
    }
}

fn seconds_or_unlimited(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

impl From<&GlobalArgs> for Settings {
    fn from(args: &GlobalArgs) -> Self {
        let db = &args.database;
        Settings {
            database: DatabaseSettings {
                url: args.database_url.clone(),
                max_connections: db.db_max_connections.max(1),
                connect_timeout: Duration::from_secs(db.db_connect_timeout.max(1)),
                statement_timeout: seconds_or_unlimited(db.db_statement_timeout),
                startup_timeout: seconds_or_unlimited(db.db_startup_timeout),
            },
            bind: args.bind,
            metrics_bind: args.metrics_bind,
            limits: Limits::from(&args.limits),
            retention: args.retention.retention_days.map(|days| RetentionPolicy {
                days,
                interval: Duration::from_secs(args.retention.retention_interval_seconds),
            }),
            server: ServerSettings::from(&args.server),
            surveys: SurveySettings::from(&args.surveys),
            webhooks: WebhookSettings {
                allow_http: args.webhooks.webhook_allow_http,
                allowed_networks: args.webhooks.webhook_allowed_networks.clone(),
                disable_after_failures: args.webhooks.webhook_disable_after_failures,
                timeout: Duration::from_secs(args.webhooks.webhook_timeout_seconds),
                alert_evaluation: Duration::from_secs(args.webhooks.alert_evaluation_seconds),
            },
            dashboard: DashboardSettings {
                session_lifetime: Duration::from_secs(
                    u64::from(args.dashboard.dashboard_session_hours) * 3600,
                ),
            },
            projector_paused: db.projector_paused,
        }
    }
}

impl From<&SurveyArgs> for SurveySettings {
    fn from(args: &SurveyArgs) -> Self {
        SurveySettings {
            public_url: args.public_url.clone(),
            smtp: args.smtp_url.as_ref().map(|url| SmtpSettings {
                url: url.clone(),
                from: args
                    .smtp_from
                    .clone()
                    .unwrap_or_else(|| "touchpoint-tracker <surveys@localhost>".to_owned()),
            }),
            page_rate: (args.survey_rate_per_minute > 0.0).then(|| RateLimit {
                per_second: args.survey_rate_per_minute / 60.0,
                burst: args.survey_rate_burst.max(1.0),
            }),
        }
    }
}

/// As the command line's defaults.
impl Default for Limits {
    fn default() -> Self {
        Limits {
            body: BodyLimits::default(),
            rate: None,
            auth_failures: Some(RateLimit {
                per_second: DEFAULT_AUTH_FAILURE_RATE,
                burst: DEFAULT_AUTH_FAILURE_BURST,
            }),
        }
    }
}

impl From<&LimitArgs> for Limits {
    fn from(args: &LimitArgs) -> Self {
        let per_second = args.rate_limit_per_second;
        Limits {
            body: BodyLimits {
                json_bytes: args.max_body_bytes.max(1),
                batch_bytes: args.max_batch_body_bytes.max(1),
                import_line_bytes: args.max_import_line_bytes.max(1),
            },
            rate: (per_second > 0.0).then(|| RateLimit {
                per_second,
                burst: args.rate_limit_burst.unwrap_or(per_second).max(1.0),
            }),
            auth_failures: (args.auth_failure_rate_per_second > 0.0).then(|| RateLimit {
                per_second: args.auth_failure_rate_per_second,
                burst: args.auth_failure_burst.max(1.0),
            }),
        }
    }
}

/// How large request bodies may be; attached to every route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// A JSON body of a single resource.
    pub json_bytes: usize,
    /// A batch of encounters (`POST /api/v1/encounters/batch`).
    pub batch_bytes: usize,
    /// One line of a streamed NDJSON import; the stream itself is unbounded.
    pub import_line_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            json_bytes: 1024 * 1024,
            batch_bytes: 16 * 1024 * 1024,
            import_line_bytes: 64 * 1024,
        }
    }
}

/// A key's allowance: `per_second` requests on average, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

/// How long candidate data is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// Days after a candidate's latest encounter before they are erased.
    pub days: u32,
    /// How often the service applies the policy.
    pub interval: Duration,
}

impl RetentionPolicy {
    /// Candidates whose last activity is before this are due at `now`.
    pub fn cutoff(&self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        now - chrono::Duration::days(i64::from(self.days))
    }
}
