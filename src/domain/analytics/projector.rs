//! The projector: the background worker that applies recorded encounters
//! to the rollups (see `projection` for what it keeps true).
//!
//! It wakes when this instance's encounter writer commits, and every
//! [`POLL`] for writes made elsewhere (another instance, a survey answer,
//! the command line), but starts a round at most every [`COALESCE`] while
//! it keeps up, so that a stream of single writes is applied in batches.
//! Each step projects at most [`STEP`] encounters of one organization:
//! it reads what they change in a snapshot, outside the write turn, then
//! applies that in parts ([`PART_ROWS`] rollup keys), each only if the
//! mark and the step's stored progress have not moved meanwhile. A
//! transaction takes parts until a write waits for the turn (SQLite) or
//! it holds [`TXN_ROWS`] keys, so the database's write lock is held only
//! to write, and a write waits behind one group of parts at most; while
//! behind, it loops without pause.
//!
//! On a SQLite file it writes through the encounter writer's connection,
//! taking turns with it (`db::store::WriteGate`), and reads through a
//! read-only connection of its own, on a thread of its own:
//! its statements run directly and would otherwise block the runtime's
//! workers. On PostgreSQL it is a task on the pool,
//! and of several instances one projects an organization at a time
//! (`projection::lock`); the others skip it.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Weak,
    },
    time::Duration,
};

use tokio::sync::Notify;

use crate::db::store::WriterConnection;
use crate::domain::{
    analytics::projection::{self, Applied, Projected},
    DomainResult,
};

/// How often the projector looks for writes it was not told about.
pub const POLL: Duration = Duration::from_millis(200);
/// Encounters per projection step (whole writes; one write may hold more).
/// A step is read outside the write turn and applied a part at a time
/// ([`PART_ROWS`]), so its size bounds the memory it takes, not how long
/// writes wait.
pub const STEP: u64 = 20_000;
/// Rollup keys (a touchpoint's day or month, and its reach) of a group of
/// parts (`projection::Part`), which a transaction applies one after
/// another. A transaction holds SQLite's one write lock; it ends after the
/// group during which a write began to wait for it, so a single write
/// waits behind one group, not the whole step. (Groups that doubled while
/// no write waited made a sequence of 5,000-encounter batches wait behind
/// up to 4,000 keys: 36,000 and 42,000 encounters/s against 51,000 and
/// 52,000.)
pub const PART_ROWS: usize = 250;
/// Rollup keys after which a transaction ends even when no write waits
/// (on PostgreSQL, where none waits for the projector, always). Each
/// transaction checks the mark and stores the step's progress once: with
/// a transaction for each group, the projector caught up with a backlog
/// of 100,000 encounters at about 31,500 encounters/s, and at about
/// 40,500 with this (1,000,000: 27,000 to 30,000 either way; one group and
/// transaction per step did 41,000 to 43,000, but a write would wait
/// behind the whole step).
pub const TXN_ROWS: usize = 8_000;
/// How long the projector waits after a failure.
const RETRY: Duration = Duration::from_secs(1);
/// Encounters projected after which the projector refreshes PostgreSQL's
/// planner statistics once it has caught up (`WriteTxn::analyze_encounters`,
/// in the step's transaction), at most every [`ANALYZE_EVERY`].
const ANALYZE_AFTER: u64 = 10_000;
const ANALYZE_EVERY: Duration = Duration::from_secs(10);
/// The least time between the starts of two rounds while the projector
/// keeps up: what arrives meanwhile is applied in one step. Each step
/// rewrites every rollup page it touches (SQLite's WAL takes whole pages),
/// so under a stream of single writes a step per commit cost more than the
/// writes themselves (55% of the service's CPU, the writer 25%). The more
/// a step holds, the fewer times each page is written: under single POSTs
/// over a year of days, with steps applied in parts, 100 ms between rounds
/// served 5,500 to 6,100 POSTs/s and 500 ms about 8,500, p99 81 to 88 ms
/// in both. Reports add what is pending as they read, so this only delays
/// the rollups (and the tail a report merges grows with it).
pub const COALESCE: Duration = Duration::from_millis(500);

/// The running projector: what the encounter writer wakes and `/healthz`
/// watches.
#[derive(Clone)]
pub struct Projector {
    wake: Arc<Notify>,
    running: Arc<AtomicBool>,
}

impl Projector {
    /// Starts the projector on `db` (see the module's notes); `paused`
    /// starts none (a test hook, and a way to stop projection for
    /// maintenance: reports stay exact, writes pile up behind the mark).
    pub fn start(db: WriterConnection, paused: bool) -> Self {
        let projector = Projector {
            wake: Arc::new(Notify::new()),
            running: Arc::new(AtomicBool::new(true)),
        };
        if paused {
            tracing::warn!("the rollup projector is paused (PROJECTOR_PAUSED)");
            return projector;
        }
        let guard = Running(projector.running.clone());
        // Not a handle: the projector ends once the service has dropped
        // every one (a test's service, in a process that goes on).
        let wake = Arc::downgrade(&projector.wake);
        if !db.is_own_thread() {
            tokio::spawn(async move {
                let _running = guard;
                run(db, wake).await
            });
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime for the projector");
            std::thread::Builder::new()
                .name("rollup-projector".to_owned())
                .spawn(move || {
                    let _running = guard;
                    runtime.block_on(run(db, wake))
                })
                .expect("a thread for the projector");
        }
        projector
    }

    /// Tells the projector that encounters were recorded.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Whether its thread (or task) still runs; holds no handle, so it
    /// does not keep the projector running (`/healthz` watches this).
    pub fn watch(&self) -> impl Fn() -> bool + Send + Sync + 'static {
        let running = self.running.clone();
        move || running.load(Ordering::Acquire)
    }
}

/// Held by the projector's thread or task: marks it stopped when it ends.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
        if std::thread::panicking() {
            tracing::error!("the rollup projector panicked; reports stay exact but slow down");
        }
    }
}

/// Projects until every [`Projector`] handle is dropped.
async fn run(db: WriterConnection, wake: Weak<Notify>) {
    let mut statistics = Statistics::default();
    while wake.strong_count() > 0 {
        let started = tokio::time::Instant::now();
        match project_all(&db, &mut statistics).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(err) => {
                tracing::warn!(error = %err, "projecting encounters into the rollups failed; will retry");
                tokio::time::sleep(RETRY).await;
            }
        }
        let Some(wake) = wake.upgrade() else {
            break;
        };
        let _ = tokio::time::timeout(POLL, wake.notified()).await;
        drop(wake);
        tokio::time::sleep_until(started + COALESCE).await;
    }
}

/// When the planner's statistics were last refreshed, and how many
/// encounters were projected since.
#[derive(Default)]
struct Statistics {
    projected: u64,
    refreshed: Option<tokio::time::Instant>,
}

impl Statistics {
    /// Whether a step that caught up after projecting `encounters`
    /// refreshes them (see `WriteTxn::analyze_encounters`).
    fn due(&mut self, encounters: u64, caught_up: bool) -> bool {
        self.projected += encounters;
        let due = caught_up
            && self.projected >= ANALYZE_AFTER
            && self
                .refreshed
                .is_none_or(|at| at.elapsed() >= ANALYZE_EVERY);
        if due {
            self.projected = 0;
            self.refreshed = Some(tokio::time::Instant::now());
        }
        due
    }
}

/// One step for each organization behind: the encounters projected, and
/// whether one is still behind.
async fn project_all(db: &WriterConnection, statistics: &mut Statistics) -> DomainResult<bool> {
    // Read in a transaction of the connection's own: on SQLite it is the
    // encounter writer's, which may be in the middle of one.
    let txn = db.begin_write().await?;
    let organizations = projection::behind(&txn).await?;
    txn.commit().await?;
    let mut behind = false;
    for organization_id in organizations {
        behind |= !step_with(db, organization_id, Some(&mut *statistics))
            .await?
            .caught_up;
    }
    Ok(behind)
}

/// Projects up to [`STEP`] encounters of one organization; caught up when
/// nothing is left (or another instance is projecting it).
pub async fn step(db: &WriterConnection, organization_id: i64) -> DomainResult<Projected> {
    step_with(db, organization_id, None).await
}

async fn step_with(
    db: &WriterConnection,
    organization_id: i64,
    statistics: Option<&mut Statistics>,
) -> DomainResult<Projected> {
    let started = std::time::Instant::now();
    // What to apply is read before the write turn: reading the candidates'
    // encounters and working out their contributions took most of a step,
    // and grows with their histories, while writes waited for the turn.
    let read = db.begin_read().await?;
    let step = projection::read_step(&read, organization_id, Some(STEP)).await?;
    read.commit().await?;
    let Some(mut step) = step else {
        return Ok(Projected {
            encounters: 0,
            caught_up: true,
        });
    };
    let read_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut turns = 0;
    let projected = loop {
        turns += 1;
        let txn = db.begin_write().await?;
        if !projection::lock(&txn, db.is_postgres(), organization_id, false).await? {
            // Another instance is projecting it; the transaction rolls back.
            return Ok(Projected {
                encounters: 0,
                caught_up: true,
            });
        }
        // Groups of parts go on into the same transaction while no write
        // waits for it.
        let no_write_waits = || !txn.write_awaited();
        let limit = projection::Limit {
            rows: PART_ROWS,
            total: TXN_ROWS,
            go_on: &no_write_waits,
        };
        let applied = projection::apply_step(
            &txn,
            organization_id,
            &mut step,
            Some(limit),
            crate::domain::now(),
        )
        .await?;
        match applied {
            Applied::Part => txn.commit().await?,
            Applied::Step(projected) => {
                if let Some(statistics) = statistics {
                    if statistics.due(projected.encounters, projected.caught_up) {
                        txn.analyze_encounters().await?;
                    }
                }
                txn.commit().await?;
                break projected;
            }
            // Read again at once.
            Applied::Stale => {
                return Ok(Projected {
                    encounters: 0,
                    caught_up: false,
                })
            }
        }
    };
    tracing::debug!(
        organization_id,
        encounters = projected.encounters,
        caught_up = projected.caught_up,
        read_ms,
        turns,
        elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
        "projected"
    );
    Ok(projected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseSettings;

    #[tokio::test]
    async fn the_projector_ends_once_every_handle_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("p.db").display());
        let db = crate::db::connect(&DatabaseSettings::new(url))
            .await
            .unwrap();
        crate::startup::migrate(&db).await.unwrap();
        let projector = Projector::start(WriterConnection::Pool(db), false);
        let running = projector.watch();
        let handle = projector.clone();
        drop(projector);
        tokio::time::sleep(2 * COALESCE).await;
        assert!(running(), "runs while a handle is held");
        drop(handle);
        let deadline = tokio::time::Instant::now() + 4 * COALESCE;
        while running() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "still running with no handle left"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
