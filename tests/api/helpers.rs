//! `spawn_app()`: the real service on a temporary SQLite file and an
//! OS-assigned port, with two organizations and their keys bootstrapped
//! through the same domain functions the CLI uses.

use std::sync::Once;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tempfile::TempDir;
use touchpoint_tracker::{
    config::{DatabaseSettings, LogFormat, Settings},
    domain::{access::keys, organizations, privacy::audit::Actor},
    startup::Application,
    telemetry,
};

static TRACING: Once = Once::new();

pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    /// Keys of the first organization, "acme".
    pub admin: String,
    pub recruiter: String,
    pub reporter: String,
    /// The admin key of a second organization, "globex".
    pub other_admin: String,
    pub db: sea_orm::DatabaseConnection,
    /// The service's database, for the command line on the same data.
    pub database: TestDatabase,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A response: its status and JSON body (`Value::Null` when empty).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub content_type: Option<String>,
}

impl Reply {
    /// Asserts the documented error shape, with this status, code and field.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str, field: Option<&str>) {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self:?}");
        assert_eq!(
            self.content_type.as_deref(),
            Some("application/json; charset=utf-8"),
            "{self:?}"
        );
        let error = &self.body["error"];
        assert_eq!(error["code"], code, "unexpected code: {self:?}");
        assert!(
            error["message"].as_str().is_some_and(|m| !m.is_empty()),
            "error without message: {self:?}"
        );
        match field {
            Some(field) => assert_eq!(error["field"], field, "unexpected field: {self:?}"),
            None => assert!(error["field"].is_null(), "unexpected field: {self:?}"),
        }
    }

    #[track_caller]
    pub fn assert_status(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected status: {self:?}");
        &self.body
    }

    pub fn id(&self) -> i64 {
        self.body["id"].as_i64().expect("response has an id")
    }
}

/// A client for one service (a [`TestApp`] or a [`ServiceProcess`]) with
/// one key: what tests that check a service over HTTP alone need.
#[derive(Clone)]
pub struct ApiClient {
    pub base_url: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl ApiClient {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// Sends a request with the key and an optional JSON body.
    pub async fn request(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        TestApp::reply(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.request(Method::GET, path, None).await
    }
}

/// A database of one test's own: a temporary SQLite file, or, when
/// `TEST_DATABASE_URL` names a PostgreSQL server (see
/// `scripts/test-postgres.sh`), a new database on it.
pub struct TestDatabase {
    pub url: String,
    _dir: TempDir,
}

pub async fn fresh_database() -> TestDatabase {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = match std::env::var("TEST_DATABASE_URL") {
        Ok(server) if server.starts_with("postgres") => create_postgres_database(&server).await,
        _ => format!("sqlite://{}/touchpoints.db", dir.path().display()),
    };
    TestDatabase { url, _dir: dir }
}

async fn create_postgres_database(server_url: &str) -> String {
    use rand::Rng;
    use sea_orm::{ConnectionTrait, Database, Statement};
    let name = format!("tt_test_{:016x}", rand::rng().random::<u64>());
    let admin = Database::connect(server_url)
        .await
        .expect("TEST_DATABASE_URL answers");
    admin
        .execute_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("CREATE DATABASE \"{name}\""),
        ))
        .await
        .expect("test database created");
    let _ = admin.close().await;
    let (base, _) = server_url
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL ends with /<database>");
    format!("{base}/{name}")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Default::default()).await
}

/// A test service with these request limits.
pub async fn spawn_app_with(limits: touchpoint_tracker::config::Limits) -> TestApp {
    spawn_app_configured(AppOptions {
        limits,
        ..Default::default()
    })
    .await
}

/// A test service with these webhook settings.
pub async fn spawn_app_with_webhooks(
    webhooks: touchpoint_tracker::config::WebhookSettings,
) -> TestApp {
    spawn_app_configured(AppOptions {
        webhooks,
        ..Default::default()
    })
    .await
}

/// A test service with these survey settings (SMTP, page rate limit).
pub async fn spawn_app_with_surveys(
    surveys: touchpoint_tracker::config::SurveySettings,
) -> TestApp {
    spawn_app_configured(AppOptions {
        surveys,
        ..Default::default()
    })
    .await
}

/// A test service that applies this retention policy on its schedule.
pub async fn spawn_app_with_retention(
    policy: touchpoint_tracker::config::RetentionPolicy,
) -> TestApp {
    spawn_app_configured(AppOptions {
        retention: Some(policy),
        ..Default::default()
    })
    .await
}

/// A test service whose dashboard sessions last this long.
pub async fn spawn_app_with_dashboard(
    dashboard: touchpoint_tracker::config::DashboardSettings,
) -> TestApp {
    spawn_app_configured(AppOptions {
        dashboard,
        ..Default::default()
    })
    .await
}

/// A test service that starts no rollup projector: every recorded
/// encounter stays behind the rollups' high-water mark until a test
/// projects it (`PROJECTOR_PAUSED`).
pub async fn spawn_app_with_projector_paused() -> TestApp {
    spawn_app_configured(AppOptions {
        projector_paused: true,
        ..Default::default()
    })
    .await
}

/// What a test service is configured with beyond its database: the
/// command line's defaults unless a test says otherwise.
#[derive(Default)]
struct AppOptions {
    limits: touchpoint_tracker::config::Limits,
    retention: Option<touchpoint_tracker::config::RetentionPolicy>,
    surveys: touchpoint_tracker::config::SurveySettings,
    webhooks: touchpoint_tracker::config::WebhookSettings,
    dashboard: touchpoint_tracker::config::DashboardSettings,
    projector_paused: bool,
}

async fn spawn_app_configured(options: AppOptions) -> TestApp {
    let AppOptions {
        limits,
        retention,
        surveys,
        webhooks,
        dashboard,
        projector_paused,
    } = options;
    TRACING.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            telemetry::init(LogFormat::Pretty);
        }
    });
    let database = fresh_database().await;
    let settings = Settings {
        database: DatabaseSettings::new(database.url.clone()),
        bind: "127.0.0.1:0".parse().unwrap(),
        metrics_bind: None,
        limits,
        retention,
        server: Default::default(),
        surveys,
        webhooks,
        dashboard,
        projector_paused,
    };
    let app = Application::build(&settings)
        .await
        .expect("application builds");
    let db = app.db().clone();
    assert_eq!(
        touchpoint_tracker::db::is_postgres(&db),
        database.url.starts_with("postgres"),
        "the suite runs on the backend it was asked for"
    );
    let base_url = format!("http://{}", app.address());

    let acme = organizations::create(&db, &Actor::COMMAND_LINE, "acme", "Acme Corp")
        .await
        .unwrap();
    let globex = organizations::create(&db, &Actor::COMMAND_LINE, "globex", "Globex")
        .await
        .unwrap();
    use entity::enums::Role;
    let token = |org, role| {
        let db = db.clone();
        async move {
            keys::create(&db, &Actor::COMMAND_LINE, org, role, "test key", None)
                .await
                .unwrap()
                .token
        }
    };
    let admin = token(acme.id, Role::Admin).await;
    let recruiter = token(acme.id, Role::Recruiter).await;
    let reporter = token(acme.id, Role::Reporter).await;
    let other_admin = token(globex.id, Role::Admin).await;

    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async {
        let _ = stopped.await;
    }));

    TestApp {
        base_url,
        client: reqwest::Client::new(),
        admin,
        recruiter,
        reporter,
        other_admin,
        db,
        database,
        _shutdown: shutdown,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }

    /// A client for this service with one of its keys.
    pub fn api(&self, token: &str) -> ApiClient {
        ApiClient {
            base_url: self.base_url.clone(),
            token: token.to_owned(),
            client: self.client.clone(),
        }
    }

    /// Sends a request with an optional bearer token and JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        Self::reply(request.send().await.expect("request sent")).await
    }

    pub async fn reply(response: reqwest::Response) -> Reply {
        let status = response.status();
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = response.text().await.expect("body read");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Reply {
            status,
            body,
            content_type,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.request(Method::DELETE, path, Some(token), None).await
    }

    /// Sends a raw body with the given content type.
    pub async fn post_raw(&self, path: &str, token: &str, content_type: &str, body: &str) -> Reply {
        let response = self
            .client
            .post(self.url(path))
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body.to_owned())
            .send()
            .await
            .expect("request sent");
        Self::reply(response).await
    }

    /// Creates a touchpoint as the admin and returns its id.
    pub async fn touchpoint(&self, name: &str, kind: &str, channel: &str, stage: &str) -> i64 {
        self.post(
            "/api/v1/touchpoints",
            &self.admin,
            json!({"name": name, "kind": kind, "channel": channel, "stage": stage}),
        )
        .await
        .assert_status(201)["id"]
            .as_i64()
            .unwrap()
    }

    /// Creates a candidate as the recruiter and returns its id.
    pub async fn candidate(&self, external_ref: &str) -> i64 {
        self.post(
            "/api/v1/candidates",
            &self.recruiter,
            json!({"external_ref": external_ref}),
        )
        .await
        .assert_status(201)["id"]
            .as_i64()
            .unwrap()
    }

    /// Logs an encounter as the recruiter and returns its id.
    pub async fn encounter(
        &self,
        candidate_id: i64,
        touchpoint_id: i64,
        occurred_at: &str,
        score: Option<i32>,
    ) -> i64 {
        self.post(
            "/api/v1/encounters",
            &self.recruiter,
            json!({
                "candidate_id": candidate_id,
                "touchpoint_id": touchpoint_id,
                "occurred_at": occurred_at,
                "score": score,
            }),
        )
        .await
        .assert_status(201)["id"]
            .as_i64()
            .unwrap()
    }

    /// Counts the rows of a table, to prove a rejected request wrote nothing.
    pub async fn count(&self, table: &str) -> i64 {
        use sea_orm::{ConnectionTrait, Statement};
        let row = self
            .db
            .query_one_raw(Statement::from_string(
                self.db.get_database_backend(),
                format!("SELECT COUNT(*) AS n FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get::<i64>("", "n").unwrap()
    }
}

/// The service binary started as a separate process (`serve`), for tests of
/// what crosses process boundaries: several instances, signals, restarts.
pub struct ServiceProcess {
    pub api: String,
    pub child: std::process::Child,
}

pub const BIN: &str = env!("CARGO_BIN_EXE_touchpoint-tracker");

impl ServiceProcess {
    /// Starts `touchpoint-tracker serve` on a free loopback port, without
    /// waiting for it to be healthy.
    pub fn start(database_url: &str, extra_env: &[(&str, &str)]) -> Self {
        let log_to_terminal = std::env::var_os("TEST_LOG").is_some();
        let log = if log_to_terminal {
            std::process::Stdio::inherit()
        } else {
            std::process::Stdio::null()
        };
        Self::start_logging_to(database_url, extra_env, log)
    }

    /// Starts `touchpoint-tracker serve` with its log (stderr) sent to `log`.
    pub fn start_logging_to(
        database_url: &str,
        extra_env: &[(&str, &str)],
        log: impl Into<std::process::Stdio>,
    ) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(BIN)
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .envs(extra_env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("service starts");
        ServiceProcess {
            api: format!("http://127.0.0.1:{port}"),
            child,
        }
    }

    /// Starts the service and waits until `/healthz` answers 200.
    pub async fn start_healthy(database_url: &str) -> Self {
        let process = Self::start(database_url, &[]);
        process.wait_for_health(200).await;
        process
    }

    /// Waits (up to 30 s) until `/healthz` answers `status`.
    pub async fn wait_for_health(&self, status: u16) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            let answer = client
                .get(format!("{}/healthz", self.api))
                .timeout(std::time::Duration::from_secs(5))
                .send()
                .await
                .map(|r| r.status().as_u16());
            if answer.as_ref().ok() == Some(&status) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "/healthz never answered {status} (last: {answer:?})"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().expect("process status").is_none()
    }

    /// Sends SIGTERM and waits (up to 30 s) for the exit status.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no exit after SIGTERM"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs a bootstrap subcommand of the binary on `database_url`; returns stdout.
pub fn run_cli(database_url: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(BIN)
        .args(args)
        .env("DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .output()
        .expect("binary runs");
    assert!(output.status.success(), "{args:?} failed: {output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .trim_end()
        .to_owned()
}

/// Service processes sharing one fresh database, with the organization
/// `acme` and an admin key of it.
pub struct Cluster {
    pub database: TestDatabase,
    pub services: Vec<ServiceProcess>,
    pub token: String,
}

/// Starts `count` service processes with `env` on a fresh database, healthy,
/// and creates `acme` and an admin key. SQLite is migrated by the first
/// command; PostgreSQL by the instances, which start together and take
/// turns migrating.
pub async fn start_cluster(count: usize, env: &[(&str, &str)]) -> Cluster {
    let database = fresh_database().await;
    let url = database.url.clone();
    let postgres = url.starts_with("postgres");
    if !postgres {
        run_cli(&url, &["org", "create", "acme", "Acme"]);
    }
    let services: Vec<ServiceProcess> = (0..count)
        .map(|_| ServiceProcess::start(&url, env))
        .collect();
    for service in &services {
        service.wait_for_health(200).await;
    }
    if postgres {
        run_cli(&url, &["org", "create", "acme", "Acme"]);
    }
    let token = run_cli(&url, &["key", "create", "--org", "acme", "--role", "admin"]);
    Cluster {
        database,
        services,
        token,
    }
}

/// The rollups' high-water mark of the organization `acme` in the database
/// at `url`, and its latest write: equal once everything is projected.
/// Taken by the tests that time an answer on this loaded 2-core machine
/// and by those that load it most, so that they never run at once: the
/// two idle floods (1,100 sockets each), the ten seconds of 64 writers and
/// the crash test's projecting services. Run together, one's load made the
/// other's one-second bound miss (the flood's `/healthz`, in CI).
pub static MACHINE_LOAD: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn projection_state(url: &str) -> (i64, i64) {
    let (mark, latest, _) = projection_progress(url).await;
    (mark, latest)
}

/// The same, with how many parts of a step begun are applied (see
/// `projection::apply_step`).
pub async fn projection_progress(url: &str) -> (i64, i64, usize) {
    use sea_orm::EntityTrait;
    let conn = touchpoint_tracker::db::connect(&DatabaseSettings::new(url.to_owned()))
        .await
        .unwrap();
    let org = organizations::find_by_slug(&conn, "acme")
        .await
        .unwrap()
        .unwrap();
    let mark = entity::rollup_mark::Entity::find_by_id(org.id)
        .one(&conn)
        .await
        .unwrap()
        .map_or(0, |mark| mark.projected_seq);
    let parts = entity::rollup_step::Entity::find_by_id(org.id)
        .one(&conn)
        .await
        .unwrap()
        .map_or(0, |step| step.applied_parts.len() / 12);
    conn.close().await.unwrap();
    (mark, org.change_seq, parts)
}

/// Waits (up to two minutes) until a projector has applied every encounter
/// of `acme` to the rollups.
pub async fn wait_until_projected(url: &str) {
    let started = std::time::Instant::now();
    loop {
        let (mark, latest) = projection_state(url).await;
        if mark == latest {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(120),
            "the projector never caught up ({mark} of {latest})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
