//! The ingest benchmark: single-encounter POSTs under 64 keep-alive
//! connections (spread over 1,000 candidates, then all on one), measured
//! with `wrk` beside the same load on `GET /app` (a route touching nothing:
//! the HTTP ceiling of this machine), on `GET /healthz` (one database round
//! trip) and on the same POST refused by validation (the request path
//! without the write), the spread POSTs again while a report is read every
//! 250 ms (what a dashboard sees during the load), then bulk import
//! through the batch and NDJSON endpoints. After each write load it waits
//! for the rollup projector to catch up and prints how long that took.
//! Last, on a fresh database with the projector paused, the spread POSTs
//! once more: what the write alone serves.
//! Every write goes through the real service.

use std::{
    fmt::Write as _,
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use touchpoint_tracker::{
    config::DatabaseSettings,
    db,
    domain::{access::keys, candidates, catalog, organizations},
};

use super::{
    create_database, projector_lag, thousands, BenchDatabase, Options, Service, BENCH, LOG_LEVEL,
};

/// Candidates the load spreads its encounters over.
const CANDIDATES: usize = 1_000;
const TOUCHPOINTS: usize = 60;
const CONNECTIONS: usize = 64;
const LOAD_SECONDS: u64 = 10;
/// Encounters imported through each bulk endpoint.
const BULK_ENCOUNTERS: usize = 200_000;
const BATCH_SIZE: usize = 5_000;
/// How often a report is read during the load with reports: a dashboard
/// open while candidates answer.
const REPORT_EVERY: Duration = Duration::from_millis(250);

/// What `wrk` measured.
struct Load {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    requests: u64,
    failed: u64,
}

pub async fn run(options: &Options) -> anyhow::Result<()> {
    which_wrk()?;
    let (database, token, candidate_ids, touchpoint_ids) = seeded_database(options, 0).await?;

    let service = Service::start(&database.url).await?;
    let script_dir = tempfile::tempdir()?;
    let nothing = wrk(&service.base_url, "/app", None, &script_dir)?;
    let health = wrk(&service.base_url, "/healthz", None, &script_dir)?;
    // The same POST refused by validation (a score of 11): authentication,
    // JSON and validation, without the write. Every one must be refused,
    // and none may have been recorded. Measured before the writes, as R0
    // is: after them the service and the disk are still busy with them
    // (R1 was 59,000 to 78,000 requests/s there, 82,500 on an idle
    // service), which would flatter R2 / R1.
    let refused = wrk(
        &service.base_url,
        "/api/v1/encounters",
        Some(&refused_script(&token, candidate_ids, touchpoint_ids)),
        &script_dir,
    )?;
    anyhow::ensure!(
        refused.failed >= refused.requests,
        "{} of {} invalid POSTs were accepted",
        refused.requests.saturating_sub(refused.failed),
        refused.requests
    );
    anyhow::ensure!(
        count_encounters(&database.url).await? == 0,
        "an invalid POST was recorded"
    );
    let posts = wrk(
        &service.base_url,
        "/api/v1/encounters",
        Some(&post_script(&token, candidate_ids, touchpoint_ids)),
        &script_dir,
    )?;
    let posts_lag = projector_lag(&database.url).await?;
    let recorded_by_posts = settled_count(&database.url).await?;
    anyhow::ensure!(posts.failed == 0, "{} POSTs failed", posts.failed);
    answered(&posts, recorded_by_posts)?;
    // The same load with every POST naming one candidate: each write reads
    // and changes one journey, the worst case for the derived work.
    let one_candidate = wrk(
        &service.base_url,
        "/api/v1/encounters",
        Some(&post_script(
            &token,
            (candidate_ids.0, candidate_ids.0),
            touchpoint_ids,
        )),
        &script_dir,
    )?;
    anyhow::ensure!(
        one_candidate.failed == 0,
        "{} POSTs failed",
        one_candidate.failed
    );
    let one_candidate_lag = projector_lag(&database.url).await?;
    let recorded_by_one = settled_count(&database.url).await?;
    answered(&one_candidate, recorded_by_one - recorded_by_posts)?;
    // R2 again, with a report read meanwhile every `REPORT_EVERY`: it
    // merges what the projector has not applied yet, or waits for it.
    let stop = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn(read_reports(
        reqwest::Client::new(),
        service.base_url.clone(),
        token.clone(),
        stop.clone(),
    ));
    let with_reports = wrk(
        &service.base_url,
        "/api/v1/encounters",
        Some(&post_script(&token, candidate_ids, touchpoint_ids)),
        &script_dir,
    );
    stop.store(true, Ordering::Release);
    let reads = reader.await??;
    let with_reports = with_reports?;
    anyhow::ensure!(
        with_reports.failed == 0,
        "{} POSTs failed",
        with_reports.failed
    );
    let with_reports_lag = projector_lag(&database.url).await?;
    let recorded_by_both = settled_count(&database.url).await?;
    answered(&with_reports, recorded_by_both - recorded_by_one)?;
    let client = reqwest::Client::new();
    let batch_rate = batches(&client, &service.base_url, &token).await?;
    let batch_lag = projector_lag(&database.url).await?;
    eprintln!("batch import: {batch_rate:.0} encounters/s");
    let import_rate = ndjson(&client, &service.base_url, &token).await?;
    let import_lag = projector_lag(&database.url).await?;
    eprintln!("NDJSON import: {import_rate:.0} encounters/s");
    let expected = recorded_by_both + 2 * BULK_ENCOUNTERS as u64;
    let recorded = count_encounters(&database.url).await?;
    anyhow::ensure!(
        recorded == expected,
        "{recorded} encounters, expected {expected}"
    );
    let rss = service.peak_rss_mib()?;
    drop(service);
    database.drop_database().await?;
    let append_only = append_only(options).await?;

    let backend = if database.server.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let mut table = String::new();
    writeln!(
        table,
        "\n## Ingest benchmark ({backend}, wrk, {CONNECTIONS} connections, {LOAD_SECONDS} s, RUST_LOG={LOG_LEVEL})\n"
    )?;
    writeln!(
        table,
        "| measurement | requests/s | p50 (ms) | p99 (ms) | projector lag after (ms) |"
    )?;
    writeln!(table, "|---|---|---|---|---|")?;
    let ms = |lag: Option<Duration>| {
        lag.map_or_else(
            || "n/a (in the request)".to_owned(),
            |lag| format!("{:.0}", lag.as_secs_f64() * 1000.0),
        )
    };
    let with_reports_label = format!(
        "R2 with a report read every {} ms (below)",
        REPORT_EVERY.as_millis()
    );
    for (label, load, lag) in [
        (
            "R0: GET /app, the dashboard's page shell (no key, no database: the HTTP ceiling)",
            &nothing,
            None,
        ),
        ("GET /healthz (one database round trip)", &health, None),
        (
            "R1: POST /api/v1/encounters refused by validation (422): the request path without the write",
            &refused,
            None,
        ),
        (
            "R2: POST /api/v1/encounters, over 1,000 candidates",
            &posts,
            Some(posts_lag),
        ),
        (
            "R2': POST /api/v1/encounters, all on one candidate",
            &one_candidate,
            Some(one_candidate_lag),
        ),
        (
            &with_reports_label,
            &with_reports,
            Some(with_reports_lag),
        ),
        (
            "R2 with the projector paused (a fresh database): the write alone, the encounter and its audit event",
            &append_only,
            None,
        ),
    ] {
        writeln!(
            table,
            "| {label} | {} | {:.2} | {:.2} | {} |",
            thousands(load.requests_per_second as usize),
            load.p50_ms,
            load.p99_ms,
            lag.map_or_else(String::new, ms)
        )?;
    }
    let ratio = |a: &Load, b: &Load| a.requests_per_second / b.requests_per_second;
    writeln!(
        table,
        "\nR1/R0 = {:.2}; R2/R1 = {:.2} (one candidate: {:.2}; the write alone: {:.2}). {} encounters recorded by the POSTs, none failed.\n",
        ratio(&refused, &nothing),
        ratio(&posts, &refused),
        ratio(&one_candidate, &refused),
        ratio(&append_only, &refused),
        thousands(recorded_by_both as usize)
    )?;
    let answered = match reads.latencies_ms.len() {
        0 => "none answered".to_owned(),
        n => format!(
            "{n} answered, p50 {:.0} ms, max {:.0} ms",
            percentile(&reads.latencies_ms, 0.5),
            percentile(&reads.latencies_ms, 1.0)
        ),
    };
    writeln!(
        table,
        "The reports read during R2 (touchpoint impact, last 365 days, one every {} ms): {answered}; {} answered 503 (the projector too far behind).\n",
        REPORT_EVERY.as_millis(),
        reads.unavailable
    )?;
    writeln!(
        table,
        "| bulk import of {} survey answers (10 per new candidate, by reference) | encounters/s | projector lag after (ms) |",
        thousands(BULK_ENCOUNTERS)
    )?;
    writeln!(table, "|---|---|---|")?;
    writeln!(
        table,
        "| `POST /api/v1/encounters/batch`, {} per request | {} | {} |",
        thousands(BATCH_SIZE),
        thousands(batch_rate as usize),
        ms(batch_lag)
    )?;
    writeln!(
        table,
        "| `POST /api/v1/encounters/import`, one NDJSON stream | {} | {} |",
        thousands(import_rate as usize),
        ms(import_lag)
    )?;
    writeln!(table, "\nService peak RSS over the run: {rss:.0} MiB.")?;
    println!("{table}");
    Ok(())
}

/// R2 on a fresh database with the projector paused, after the other
/// loads (so the machine is not shared with their service): what the
/// write alone serves, the encounter and its audit event committed and
/// nothing derived, the rollups left behind the mark.
async fn append_only(options: &Options) -> anyhow::Result<Load> {
    let (database, token, candidate_ids, touchpoint_ids) = seeded_database(options, 1).await?;
    let service = Service::start_with(&database.url, &[("PROJECTOR_PAUSED", "true")]).await?;
    let script_dir = tempfile::tempdir()?;
    let load = wrk(
        &service.base_url,
        "/api/v1/encounters",
        Some(&post_script(&token, candidate_ids, touchpoint_ids)),
        &script_dir,
    )?;
    anyhow::ensure!(load.failed == 0, "{} POSTs failed", load.failed);
    drop(service);
    // Nothing is left in flight once the service has stopped.
    answered(&load, count_encounters(&database.url).await?)?;
    database.drop_database().await?;
    Ok(load)
}

/// Whether the database holds what `wrk` saw answered. It stops with
/// requests in flight: they may be recorded, not counted.
fn answered(load: &Load, recorded: u64) -> anyhow::Result<()> {
    anyhow::ensure!(
        recorded >= load.requests && recorded <= load.requests + CONNECTIONS as u64,
        "wrk saw {} answered POSTs, the database holds {recorded}",
        load.requests
    );
    Ok(())
}

/// What the report reader saw.
struct Reads {
    /// Of the reports answered 200, in the order read.
    latencies_ms: Vec<f64>,
    /// Reports answered 503: the projector was too far behind.
    unavailable: u64,
}

/// Reads the touchpoint impact of the last 365 days every `REPORT_EVERY`
/// until `stop`; anything but 200 or 503 is an error.
async fn read_reports(
    client: reqwest::Client,
    base_url: String,
    token: String,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Reads> {
    let today = chrono::Utc::now().date_naive();
    let url = format!(
        "{base_url}/api/v1/reports/touchpoint-impact?from={}&to={}",
        today - chrono::Days::new(364),
        today + chrono::Days::new(1)
    );
    let mut reads = Reads {
        latencies_ms: Vec::new(),
        unavailable: 0,
    };
    while !stop.load(Ordering::Acquire) {
        let started = Instant::now();
        let response = client.get(&url).bearer_auth(&token).send().await?;
        let status = response.status();
        response.bytes().await?;
        match status.as_u16() {
            200 => reads
                .latencies_ms
                .push(started.elapsed().as_secs_f64() * 1000.0),
            503 => reads.unavailable += 1,
            other => anyhow::bail!("a report during the load answered {other}"),
        }
        tokio::time::sleep(REPORT_EVERY).await;
    }
    Ok(reads)
}

/// The `q` quantile (nearest rank) of `values`, which are not empty.
fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    sorted[((n as f64 * q).ceil() as usize).clamp(1, n) - 1]
}

fn which_wrk() -> anyhow::Result<()> {
    let found = Command::new("wrk").arg("--version").output();
    anyhow::ensure!(
        found.is_ok(),
        "the ingest benchmark drives the service with wrk: apt-get install wrk"
    );
    Ok(())
}

type Ids = (i64, i64);

/// A fresh database, migrated and seeded (`seed`).
async fn seeded_database(
    options: &Options,
    size: usize,
) -> anyhow::Result<(BenchDatabase, String, Ids, Ids)> {
    let database = create_database(options, size).await?;
    let conn = db::connect(&DatabaseSettings::new(database.url.clone())).await?;
    touchpoint_tracker::startup::migrate(&conn).await?;
    let (token, candidate_ids, touchpoint_ids) = seed(&conn).await?;
    conn.close().await?;
    Ok((database, token, candidate_ids, touchpoint_ids))
}

/// An organization with a recruiter key, the touchpoints and the candidates;
/// returns the token and the (contiguous) id ranges.
async fn seed(conn: &sea_orm::DatabaseConnection) -> anyhow::Result<(String, Ids, Ids)> {
    use entity::enums::{Channel, Kind, Role, Stage};
    let org = organizations::create(conn, &BENCH, "bench", "Bench Corp").await?;
    let key = keys::create(conn, &BENCH, org.id, Role::Recruiter, "bench", None).await?;
    let kinds = [Kind::EmployerCreated, Kind::True, Kind::Unexpected];
    let mut touchpoint_ids = Vec::new();
    for n in 0..TOUCHPOINTS {
        let created = catalog::create(
            conn,
            &BENCH,
            org.id,
            catalog::NewTouchpoint {
                name: format!("Touchpoint {n}"),
                kind: kinds[n % 3],
                channel: Channel::Interview,
                stage: Stage::Interview,
                description: None,
            },
        )
        .await?;
        touchpoint_ids.push(created.id);
    }
    let mut candidate_ids = Vec::new();
    for n in 0..CANDIDATES {
        let created = candidates::create(
            conn,
            &BENCH,
            org.id,
            candidates::NewCandidate {
                external_ref: format!("ATS-{n}"),
                display_name: None,
                email: None,
                stage: Stage::Interview,
            },
        )
        .await?;
        candidate_ids.push(created.id);
    }
    let range = |ids: &[i64]| -> anyhow::Result<Ids> {
        let (first, last) = (ids[0], ids[ids.len() - 1]);
        anyhow::ensure!(
            last - first + 1 == ids.len() as i64,
            "ids are not contiguous"
        );
        Ok((first, last))
    };
    Ok((key.token, range(&candidate_ids)?, range(&touchpoint_ids)?))
}

/// A wrk script posting a random encounter (candidate, touchpoint, time in
/// the last year, score 60% of the time) per request.
fn post_script(token: &str, candidates: Ids, touchpoints: Ids) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
local now = os.time()
request = function()
  local score = ""
  if math.random() < 0.6 then score = string.format(', "score": %d', math.random(0, 10)) end
  local body = string.format(
    '{{"candidate_id": %d, "touchpoint_id": %d, "occurred_at": "%s"%s}}',
    math.random({c0}, {c1}), math.random({t0}, {t1}),
    os.date("!%Y-%m-%dT%H:%M:%SZ", now - math.random(0, 365 * 86400)), score)
  return wrk.format(nil, nil, nil, body)
end
"#,
        c0 = candidates.0,
        c1 = candidates.1,
        t0 = touchpoints.0,
        t1 = touchpoints.1,
    )
}

/// A wrk script posting the same encounter with a score of 11, which
/// validation refuses.
fn refused_script(token: &str, candidates: Ids, touchpoints: Ids) -> String {
    format!(
        r#"wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.body = '{{"candidate_id": {c}, "touchpoint_id": {t}, "occurred_at": "2026-01-05T10:00:00Z", "score": 11}}'
"#,
        c = candidates.0,
        t = touchpoints.0,
    )
}

/// Runs wrk for `LOAD_SECONDS` with `CONNECTIONS` keep-alive connections.
fn wrk(
    base_url: &str,
    path: &str,
    script: Option<&str>,
    dir: &tempfile::TempDir,
) -> anyhow::Result<Load> {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{CONNECTIONS}"),
        &format!("-d{LOAD_SECONDS}s"),
        "--latency",
        "--timeout",
        "10s",
    ]);
    if let Some(script) = script {
        let path = dir.path().join("post.lua");
        std::fs::write(&path, script)?;
        command.arg("-s").arg(path);
    }
    let output = command.arg(format!("{base_url}{path}")).output()?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    anyhow::ensure!(output.status.success(), "wrk failed: {text}");
    eprintln!("{text}");
    parse_wrk(&text).with_context(|| format!("reading wrk's output:\n{text}"))
}

fn parse_wrk(text: &str) -> Option<Load> {
    let field = |prefix: &str| {
        text.lines()
            .find_map(|line| line.trim().strip_prefix(prefix))
            .map(str::trim)
    };
    let millis = |value: &str| -> Option<f64> {
        let unit_at = value.find(|c: char| c.is_ascii_alphabetic())?;
        let (number, unit) = value.split_at(unit_at);
        let number: f64 = number.parse().ok()?;
        Some(match unit {
            "us" => number / 1000.0,
            "ms" => number,
            "s" => number * 1000.0,
            "m" => number * 60_000.0,
            _ => return None,
        })
    };
    let requests = text
        .lines()
        .find(|line| line.contains("requests in"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let failed = field("Non-2xx or 3xx responses:")
        .map(|n| n.parse().unwrap_or(u64::MAX))
        .unwrap_or(0)
        + text
            .lines()
            .find_map(|line| line.trim().strip_prefix("Socket errors:"))
            .map(|errors| {
                errors
                    .split(',')
                    .filter_map(|part| part.split_whitespace().last()?.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
    Some(Load {
        requests_per_second: field("Requests/sec:")?.parse().ok()?,
        p50_ms: millis(field("50%")?)?,
        p99_ms: millis(field("99%")?)?,
        requests,
        failed,
    })
}

/// The `n`th encounter of a survey export: respondents named by their
/// reference (ten answers each, so the import creates a candidate per ten
/// lines), touchpoints by name, dates over ten months.
fn item(source: &str, n: usize) -> serde_json::Value {
    json!({
        "candidate_external_ref": format!("{source}-{}", n / 10),
        "touchpoint_name": format!("Touchpoint {}", n % TOUCHPOINTS),
        "occurred_at": format!("2026-{:02}-{:02}T{:02}:00:00Z", 1 + n % 10, 1 + n % 28, n % 24),
        "score": (n % 5 != 0).then_some(n % 11),
    })
}

/// Imports `BULK_ENCOUNTERS` through the batch endpoint; encounters/s.
async fn batches(client: &reqwest::Client, base_url: &str, token: &str) -> anyhow::Result<f64> {
    let bodies: Vec<String> = (0..BULK_ENCOUNTERS / BATCH_SIZE)
        .map(|b| {
            let items: Vec<_> = (0..BATCH_SIZE)
                .map(|n| item("BATCH", b * BATCH_SIZE + n))
                .collect();
            serde_json::to_string(&items).expect("JSON")
        })
        .collect();
    let started = Instant::now();
    for body in bodies {
        let response = client
            .post(format!("{base_url}/api/v1/encounters/batch"))
            .bearer_auth(token)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await?;
        anyhow::ensure!(
            response.status() == 201,
            "batch: {}",
            response.text().await?
        );
    }
    Ok(BULK_ENCOUNTERS as f64 / started.elapsed().as_secs_f64())
}

/// Imports `BULK_ENCOUNTERS` as one NDJSON stream; encounters/s.
async fn ndjson(client: &reqwest::Client, base_url: &str, token: &str) -> anyhow::Result<f64> {
    let mut body = String::new();
    for n in 0..BULK_ENCOUNTERS {
        body.push_str(&item("NDJSON", n).to_string());
        body.push('\n');
    }
    let started = Instant::now();
    let response = client
        .post(format!("{base_url}/api/v1/encounters/import"))
        .bearer_auth(token)
        .header("Content-Type", "application/x-ndjson")
        .body(body)
        .timeout(Duration::from_secs(600))
        .send()
        .await?;
    anyhow::ensure!(
        response.status() == 200,
        "import: {}",
        response.text().await?
    );
    let report: serde_json::Value = response.json().await?;
    anyhow::ensure!(
        report["encounters_created"] == BULK_ENCOUNTERS,
        "import: {report}"
    );
    Ok(BULK_ENCOUNTERS as f64 / started.elapsed().as_secs_f64())
}

/// The encounter count once the requests wrk left in flight have committed.
async fn settled_count(url: &str) -> anyhow::Result<u64> {
    let mut last = count_encounters(url).await?;
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = count_encounters(url).await?;
        if now == last {
            return Ok(now);
        }
        last = now;
    }
}

async fn count_encounters(url: &str) -> anyhow::Result<u64> {
    let conn = db::connect(&DatabaseSettings::new(url.to_owned())).await?;
    let row = conn
        .query_one_raw(Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) AS n FROM encounters",
        ))
        .await?
        .context("a count")?;
    let n: i64 = row.try_get("", "n")?;
    conn.close().await?;
    Ok(n as u64)
}
