//! The benchmark: seeds a fresh database, starts the real service (release
//! build) on it and measures it over HTTP. Two parts, both by default:
//! `reports` (the reports and the export at 100k and 1M encounters) and
//! `ingest` (single POSTs under load with wrk, bulk imports; see `ingest_load.rs`).
//!
//!     cargo bench --bench reports                      # both parts, SQLite
//!     cargo bench --bench reports -- ingest            # one part
//!     cargo bench --bench reports -- --database-url postgres://user@host/postgres
//!     cargo bench --bench reports -- reports --sizes 20000 --iterations 5
//!     cargo bench --bench reports -- reports --sizes 1000000 --keep   # keep the SQLite file
//!
//! Each size gets its own database: 10,000 candidates, 60 touchpoints (20 of
//! each kind), encounters spread over the last 12 months, about 60% scored,
//! from four sources (55% candidate surveys, 30% recruiter observations, 10%
//! review imports, 5% other; drawn from a random stream of their own, so the
//! encounters are otherwise those of earlier versions of this benchmark).
//! Seeding goes through the same domain write path as the API (batches of
//! whole candidates), and the service's projector then builds the rollups
//! from them exactly as in production (its rate is a row of the table);
//! the reports are measured once it has caught up.
//! With a PostgreSQL URL, a database is created per size on that server and
//! dropped afterwards.

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use chrono::{Datelike, Duration as Days, NaiveDate, Utc};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sea_orm::{ConnectionTrait, DatabaseConnection, Statement};
use touchpoint_tracker::{
    config::DatabaseSettings,
    db,
    domain::{
        access::keys,
        candidates, catalog,
        encounters::ingest::{self, CandidateRef, EncounterInput, TouchpointRef},
        organizations,
        privacy::audit::{Actor, KeyActor},
    },
};

/// Who the audit trail says seeded the benchmark's data.
const BENCH: Actor = Actor::System("benchmark seed");

const CANDIDATES: usize = 10_000;
const TOUCHPOINTS_PER_KIND: usize = 20;
/// Encounters per seeding transaction.
const SEED_BATCH: usize = 20_000;

mod ingest_load;

struct Options {
    /// Which parts to run: reports, ingest.
    parts: Vec<String>,
    database_url: Option<String>,
    sizes: Vec<usize>,
    iterations: usize,
    /// Keep each SQLite database (and print its path) for inspection.
    keep: bool,
}

fn options() -> Options {
    let mut options = Options {
        parts: Vec::new(),
        database_url: None,
        sizes: vec![100_000, 1_000_000],
        iterations: 30,
        keep: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--database-url" => options.database_url = args.next(),
            "--sizes" => {
                options.sizes = args
                    .next()
                    .expect("--sizes N,N")
                    .split(',')
                    .map(|s| s.replace('_', "").parse().expect("a number"))
                    .collect()
            }
            "--iterations" => {
                options.iterations = args.next().expect("--iterations N").parse().unwrap()
            }
            "--keep" => options.keep = true,
            "reports" | "ingest" => options.parts.push(arg),
            // `cargo bench` passes --bench; filters are not used here.
            _ => {}
        }
    }
    if options.parts.is_empty() {
        options.parts = vec!["reports".to_owned(), "ingest".to_owned()];
    }
    options
}

/// One line of the results table: a label and a value per size.
type Table = BTreeMap<usize, (String, Vec<String>)>;

fn main() -> anyhow::Result<()> {
    let options = options();
    let runtime = tokio::runtime::Runtime::new()?;
    if options.parts.iter().any(|p| p == "reports") {
        reports(&options, &runtime)?;
    }
    if options.parts.iter().any(|p| p == "ingest") {
        runtime.block_on(ingest_load::run(&options))?;
    }
    Ok(())
}

fn reports(options: &Options, runtime: &tokio::runtime::Runtime) -> anyhow::Result<()> {
    let mut table: Table = BTreeMap::new();
    for &size in &options.sizes {
        let rows = runtime.block_on(run(size, options))?;
        for (index, (label, value)) in rows.into_iter().enumerate() {
            table
                .entry(index)
                .or_insert_with(|| (label, Vec::new()))
                .1
                .push(value);
        }
    }
    let backend = match &options.database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL",
        _ => "SQLite",
    };
    println!(
        "\n## Reports benchmark ({backend}, {} iterations per report)\n",
        options.iterations
    );
    let header: Vec<String> = options
        .sizes
        .iter()
        .map(|s| format!("{} encounters", thousands(*s)))
        .collect();
    println!("| measurement | {} |", header.join(" | "));
    println!("|---|{}", "---|".repeat(header.len()));
    for (label, values) in table.values() {
        println!("| {label} | {} |", values.join(" | "));
    }
    Ok(())
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A database of its own for one size.
struct BenchDatabase {
    url: String,
    server: Option<String>,
    name: String,
    _dir: tempfile::TempDir,
}

async fn create_database(options: &Options, size: usize) -> anyhow::Result<BenchDatabase> {
    let dir = tempfile::tempdir()?;
    let name = format!("tt_bench_{size}_{:08x}", rand::rng().random::<u32>());
    match &options.database_url {
        Some(server) if server.starts_with("postgres") => {
            let admin = sea_orm::Database::connect(server.as_str()).await?;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("CREATE DATABASE \"{name}\""),
                ))
                .await?;
            admin.close().await?;
            let (base, _) = server.rsplit_once('/').expect("URL ends with /<database>");
            Ok(BenchDatabase {
                url: format!("{base}/{name}"),
                server: Some(server.clone()),
                name,
                _dir: dir,
            })
        }
        _ => Ok(BenchDatabase {
            url: format!("sqlite://{}/bench.db", dir.path().display()),
            server: None,
            name,
            _dir: dir,
        }),
    }
}

impl BenchDatabase {
    async fn drop_database(&self) -> anyhow::Result<()> {
        if let Some(server) = &self.server {
            let admin = sea_orm::Database::connect(server.as_str()).await?;
            admin
                .execute_raw(Statement::from_string(
                    admin.get_database_backend(),
                    format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name),
                ))
                .await?;
            admin.close().await?;
        }
        Ok(())
    }
}

async fn run(size: usize, options: &Options) -> anyhow::Result<Vec<(String, String)>> {
    eprintln!("== {} encounters", thousands(size));
    let database = create_database(options, size).await?;
    let conn = db::connect(&DatabaseSettings::new(database.url.clone())).await?;
    touchpoint_tracker::startup::migrate(&conn).await?;
    let seeded = Instant::now();
    let token = seed(&conn, size).await?;
    let seed_time = seeded.elapsed();
    conn.close().await?;
    eprintln!("seeded in {:.1}s", seed_time.as_secs_f64());

    let mut service = Service::start(&database.url).await?;
    // Seeding recorded the encounters; the service's projector applies
    // them to the rollups, as it does after any import.
    let projection = projector_lag(&database.url).await?;
    if let Some(projection) = projection {
        eprintln!("projected in {:.1}s", projection.as_secs_f64());
    }
    let client = reqwest::Client::new();
    let today = Utc::now().date_naive();
    let month_start = today.with_day(1).unwrap();
    let next_month = add_months(month_start, 1);
    let year_ago = add_months(next_month, -12);
    let monday = today - Days::days(today.weekday().num_days_from_monday().into());
    let mut rows = vec![
        (
            "seed time (s)".to_owned(),
            format!("{:.1}", seed_time.as_secs_f64()),
        ),
        (
            "seed rate, incl. candidates (encounters/s)".to_owned(),
            thousands((size as f64 / seed_time.as_secs_f64()) as usize),
        ),
        (
            "the service's projector on the seed (encounters/s)".to_owned(),
            projection.map_or_else(
                || "n/a (the seed wrote the rollups)".to_owned(),
                |lag| thousands((size as f64 / lag.as_secs_f64()) as usize),
            ),
        ),
    ];
    let reports = [
        (
            "(a) trend, 12 months by kind, p50 / p95 (ms)",
            format!("/api/v1/reports/perception-trend?from={year_ago}&to={next_month}&bucket=month&group_by=kind"),
        ),
        (
            "(b) trend, 12 weeks by touchpoint, p50 / p95 (ms)",
            format!(
                "/api/v1/reports/perception-trend?from={}&to={}&bucket=week&group_by=touchpoint",
                monday - Days::weeks(11),
                monday + Days::weeks(1)
            ),
        ),
        (
            "(c) touchpoint impact, 12 calendar months, p50 / p95 (ms)",
            format!("/api/v1/reports/touchpoint-impact?from={year_ago}&to={next_month}"),
        ),
        (
            "(c') touchpoint impact, last 365 days, p50 / p95 (ms)",
            format!(
                "/api/v1/reports/touchpoint-impact?from={}&to={}",
                today - Days::days(364),
                today + Days::days(1)
            ),
        ),
        (
            "(d) summary, last 6 months vs the 6 before, p50 / p95 (ms)",
            format!(
                "/api/v1/reports/summary?from={}&to={next_month}",
                add_months(next_month, -6)
            ),
        ),
        (
            "perception shift, 12 months by kind, p50 / p95 (ms)",
            format!("/api/v1/reports/perception-shift?from={year_ago}&to={next_month}&group_by=kind"),
        ),
        (
            // A window that cuts through every candidate's journey (each
            // spans the year here).
            "perception shift, last 90 days by kind, p50 / p95 (ms)",
            format!(
                "/api/v1/reports/perception-shift?from={}&to={}&group_by=kind",
                today - Days::days(89),
                today + Days::days(1)
            ),
        ),
        (
            "trend, 12 months by kind, each month tested against the one before, p50 / p95 (ms)",
            format!("/api/v1/reports/perception-trend?from={year_ago}&to={next_month}&bucket=month&group_by=kind&compare_to=previous_bucket"),
        ),
        (
            "perception gap, 12 months by kind, p50 / p95 (ms)",
            format!("/api/v1/reports/perception-gap?from={year_ago}&to={next_month}&group_by=kind"),
        ),
        (
            "perception gap, last 365 days by touchpoint, p50 / p95 (ms)",
            format!(
                "/api/v1/reports/perception-gap?from={}&to={}&group_by=touchpoint",
                today - Days::days(364),
                today + Days::days(1)
            ),
        ),
        (
            // No index holds encounters by time: the list walks
            // `idx_encounters_list` in page order and keeps the day's.
            "encounter list, one day's, first page of 100, p50 / p95 (ms)",
            format!(
                "/api/v1/encounters?from={}T00:00:00Z&to={}T00:00:00Z&limit=100",
                today - Days::days(100),
                today - Days::days(99)
            ),
        ),
    ];
    for (label, path) in &reports {
        let url = format!("{}{path}", service.base_url);
        let (p50, p95) = latency(&client, &url, &token, options.iterations).await?;
        eprintln!("{label}: {p50:.1} / {p95:.1}");
        rows.push((label.to_string(), format!("{p50:.1} / {p95:.1}")));
    }

    let (exported, elapsed) = export(&client, &service.base_url, &token).await?;
    anyhow::ensure!(
        exported == size,
        "the export returned {exported} of {size} encounters"
    );
    let rate = exported as f64 / elapsed.as_secs_f64();
    eprintln!("export: {exported} rows in {:.2}s", elapsed.as_secs_f64());
    rows.push((
        "(e) full NDJSON export (rows/s)".to_owned(),
        thousands(rate as usize),
    ));
    rows.push((
        "service peak RSS, whole run (MiB)".to_owned(),
        format!("{:.0}", service.peak_rss_mib()?),
    ));
    service.stop();
    if options.keep && database.server.is_none() {
        let dir = database._dir.keep();
        eprintln!("kept {}", dir.join("bench.db").display());
    } else {
        database.drop_database().await?;
    }
    Ok(rows)
}

fn add_months(date: NaiveDate, months: i32) -> NaiveDate {
    let total = date.year() * 12 + date.month0() as i32 + months;
    NaiveDate::from_ymd_opt(total.div_euclid(12), total.rem_euclid(12) as u32 + 1, 1).unwrap()
}

/// Creates the organization, a reporter key, the catalog, the candidates and
/// `size` encounters; returns the key's token.
async fn seed(conn: &DatabaseConnection, size: usize) -> anyhow::Result<String> {
    use entity::enums::{Channel, Kind, Role, Source, Stage};
    let org = organizations::create(conn, &BENCH, "bench", "Bench Corp").await?;
    let key = keys::create(conn, &BENCH, org.id, Role::Reporter, "bench", None).await?;
    let recorder = KeyActor {
        key_id: key.key.id,
        key_name: key.key.name.clone(),
    };
    let mut rng = StdRng::seed_from_u64(size as u64);
    let mut sources = StdRng::seed_from_u64(!(size as u64));

    let kinds = [
        (Kind::EmployerCreated, Channel::Interview, Stage::Interview),
        (Kind::True, Channel::ReviewSite, Stage::Consideration),
        (Kind::Unexpected, Channel::Event, Stage::Awareness),
    ];
    // Each touchpoint nudges scores up or down, so the impact report has
    // something to find.
    let mut catalog = Vec::new();
    for (kind, channel, stage) in kinds {
        for n in 0..TOUCHPOINTS_PER_KIND {
            let touchpoint = catalog::create(
                conn,
                &BENCH,
                org.id,
                catalog::NewTouchpoint {
                    name: format!("{kind:?} {n}"),
                    kind,
                    channel,
                    stage,
                    description: None,
                },
            )
            .await?;
            catalog.push((touchpoint.id, rng.random_range(-2..=2)));
        }
    }
    let mut people = Vec::with_capacity(CANDIDATES);
    for n in 0..CANDIDATES {
        let candidate = candidates::create(
            conn,
            &BENCH,
            org.id,
            candidates::NewCandidate {
                external_ref: format!("ATS-{n}"),
                display_name: None,
                email: None,
                stage: Stage::Awareness,
            },
        )
        .await?;
        people.push(candidate.id);
    }

    let end = Utc::now() - Days::minutes(1);
    let span_seconds = 365 * 86_400;
    let per_candidate = size / CANDIDATES;
    let mut remainder = size % CANDIDATES;
    let mut batch = Vec::with_capacity(SEED_BATCH + per_candidate + 1);
    let started = Instant::now();
    let mut written = 0usize;
    for candidate in people {
        let count = per_candidate + usize::from(remainder > 0);
        remainder = remainder.saturating_sub(1);
        let mut mood: i32 = rng.random_range(3..=9);
        for _ in 0..count {
            let (touchpoint_id, effect) = catalog[rng.random_range(0..catalog.len())];
            mood = (mood + effect + rng.random_range(-1..=1)).clamp(0, 10);
            batch.push(EncounterInput {
                candidate: CandidateRef::Id(candidate),
                touchpoint: TouchpointRef::Id(touchpoint_id),
                occurred_at: end - Days::seconds(rng.random_range(0..span_seconds)),
                source: match sources.random_range(0..100) {
                    0..55 => Source::CandidateSurvey,
                    55..85 => Source::RecruiterObservation,
                    85..95 => Source::ReviewImport,
                    _ => Source::Other,
                },
                score: rng.random_bool(0.6).then_some(mood),
                note: None,
            });
        }
        if batch.len() >= SEED_BATCH {
            written += batch.len();
            ingest::record_all(conn, org.id, &recorder, std::mem::take(&mut batch), None).await?;
            eprint!(
                "\rseeding: {written} encounters, {:.0}/s   ",
                written as f64 / started.elapsed().as_secs_f64()
            );
        }
    }
    if !batch.is_empty() {
        ingest::record_all(conn, org.id, &recorder, batch, None).await?;
    }
    eprintln!();
    Ok(key.token)
}

/// p50 and p95 of `iterations` sequential requests, after three warm-ups.
async fn latency(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    iterations: usize,
) -> anyhow::Result<(f64, f64)> {
    for _ in 0..3 {
        client
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        client
            .get(url)
            .bearer_auth(token)
            .send()
            .await?
            .error_for_status()?
            .bytes()
            .await?;
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    samples.sort_by(f64::total_cmp);
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    Ok((at(0.50), at(0.95)))
}

/// Streams a full NDJSON export; returns the encounters it held and the time.
async fn export(
    client: &reqwest::Client,
    base_url: &str,
    token: &str,
) -> anyhow::Result<(usize, Duration)> {
    let started = Instant::now();
    let mut response = client
        .get(format!(
            "{base_url}/api/v1/exports/encounters?format=ndjson"
        ))
        .bearer_auth(token)
        .send()
        .await?
        .error_for_status()?;
    let (mut lines, mut tail) = (0usize, Vec::new());
    while let Some(chunk) = response.chunk().await? {
        lines += chunk.iter().filter(|b| **b == b'\n').count();
        tail.extend_from_slice(&chunk);
        if tail.len() > 4096 {
            tail.drain(..tail.len() - 4096);
        }
    }
    let elapsed = started.elapsed();
    let text = String::from_utf8_lossy(&tail);
    let last = text.trim_end().rsplit('\n').next().unwrap_or_default();
    anyhow::ensure!(
        last.contains("\"end\""),
        "the export did not end with its end record"
    );
    // Every line but the end record is one encounter.
    Ok((lines - 1, elapsed))
}

/// The log level the service runs at.
const LOG_LEVEL: &str = "warn";

/// How long after it is called every recorded encounter is in the rollups:
/// the projector's lag at the end of a load (read from the database every
/// 5 ms). `None` for a build without a projector (no `rollup_marks`: each
/// write updated the rollups itself), so this harness also measures the
/// builds before it.
///
/// It asks whether an organization has an encounter past its mark (one
/// index seek each), not how many: counting a backlog of 1,000,000 every
/// 5 ms took PostgreSQL 0.1 to 0.4 s a time, in parallel workers, and the
/// probe took the CPU of the projector it measured.
async fn projector_lag(url: &str) -> anyhow::Result<Option<Duration>> {
    const BEHIND: &str = "SELECT COUNT(*) AS n FROM organizations o \
         LEFT JOIN rollup_marks m ON m.organization_id = o.id \
         WHERE EXISTS (SELECT 1 FROM encounters e WHERE e.organization_id = o.id \
         AND e.change_seq > COALESCE(m.projected_seq, 0))";
    let started = Instant::now();
    let conn = db::connect(&DatabaseSettings::new(url.to_owned())).await?;
    loop {
        let statement = Statement::from_string(conn.get_database_backend(), BEHIND);
        let behind: i64 = match conn.query_one_raw(statement).await {
            Ok(Some(row)) => row.try_get("", "n")?,
            Ok(None) => 0,
            Err(_) => {
                conn.close().await?;
                return Ok(None);
            }
        };
        if behind == 0 {
            conn.close().await?;
            return Ok(Some(started.elapsed()));
        }
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "the projector did not catch up: {behind} organizations behind"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The service binary, built with the bench profile, as a child process.
struct Service {
    child: Child,
    base_url: String,
}

impl Service {
    async fn start(database_url: &str) -> anyhow::Result<Self> {
        Self::start_with(database_url, &[]).await
    }

    /// Starts the service with these environment variables set as well.
    async fn start_with(database_url: &str, env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_touchpoint-tracker"))
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .env("DATABASE_URL", database_url)
            .env("RUST_LOG", LOG_LEVEL)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        let service = Service {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let health = reqwest::get(format!("{}/healthz", service.base_url)).await;
            if health.is_ok_and(|r| r.status().is_success()) {
                return Ok(service);
            }
            anyhow::ensure!(Instant::now() < deadline, "the service did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The largest resident set the process has had (VmHWM).
    fn peak_rss_mib(&self) -> anyhow::Result<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))?;
        let kib: f64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("no VmHWM in /proc status"))?;
        Ok(kib / 1024.0)
    }

    fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}
