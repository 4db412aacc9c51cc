//! Connecting to the database (SQLite or PostgreSQL) and bringing its schema
//! up to date. What differs between the two backends lives here.

use std::{ffi::c_int, path::Path, sync::Once, time::Duration};

use anyhow::Context;
use backon::{ExponentialBuilder, Retryable};
use migration::{Migrator, MigratorTrait};
use sea_orm::{AccessMode, IsolationLevel};
use sea_orm::{
    ConnectOptions, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

pub mod changes;
pub mod checkpoint;
pub mod error;
pub mod postgres_txn;
pub mod sql;
pub mod store;
pub mod write_turn;

pub use error::{is_unavailable, StorageError, StorageResult};

use crate::config::DatabaseSettings;
use store::{InlineReader, SqliteConnection, WriterConnection};
use write_turn::{PoolWaits, WriteGate};

/// The log levels of the database drivers, for the default log filter:
/// their per-statement lines off (statements may carry personal data).
pub const DRIVER_LOG_FILTER: &str = "sqlx=warn,sea_orm=warn";

/// How long a SQLite writer waits for the lock before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// Backoff between connection attempts at start: doubling, capped.
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
const MAX_RETRY_DELAY: Duration = Duration::from_secs(10);

/// Connects, retrying with backoff while the database is unreachable (a
/// database container that starts after the service is normal), up to
/// `settings.startup_timeout`. The schedule is backon's exponential one,
/// without jitter (one service, not a herd); a retry that would start past
/// the timeout is not made.
pub async fn connect(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    // A local SQLite file does not come up later by itself.
    let local = sqlite_path(&settings.url).is_some();
    let started = tokio::time::Instant::now();
    let mut attempt = 1u32;
    let backoff = ExponentialBuilder::new()
        .with_min_delay(FIRST_RETRY_DELAY)
        .with_max_delay(MAX_RETRY_DELAY)
        .with_factor(2.0)
        .without_max_times();
    let connected = (|| connect_once(settings))
        .retry(backoff)
        .sleep(tokio::time::sleep)
        .when(|_| !local)
        .adjust(|_, delay| {
            let delay = delay?;
            let waited = started.elapsed();
            let late = settings
                .startup_timeout
                .is_some_and(|limit| waited + delay > limit);
            (!late).then_some(delay)
        })
        .notify(|err, delay| {
            tracing::warn!(
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                error = %format!("{err:#}"),
                "database unreachable; retrying"
            );
            attempt += 1;
        })
        .await;
    connected.map_err(|err| {
        if local {
            return err;
        }
        err.context(format!(
            "the database stayed unreachable for {}s",
            started.elapsed().as_secs()
        ))
    })
}

async fn connect_once(settings: &DatabaseSettings) -> anyhow::Result<DatabaseConnection> {
    let url = &settings.url;
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .sqlx_logging_level(tracing::log::LevelFilter::Debug)
        .max_connections(settings.max_connections)
        .connect_timeout(settings.connect_timeout)
        .acquire_timeout(settings.connect_timeout);
    if let Some(path) = sqlite_path(url) {
        disable_sqlite_memory_statistics();
        if let Some(parent) = Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating directory {}", parent.display()))?;
            }
        }
        options.map_sqlx_sqlite_opts(move |opts| {
            opts.create_if_missing(true)
                .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                .foreign_keys(true)
        });
        // Writes through the pool wait for the end of the writer's turn,
        // not in SQLite's sleeps (see `write_turn`).
        let gate = WriteGate::of_file(Path::new(path));
        options.map_sqlx_sqlite_pool_opts(move |pool| {
            let gate = gate.clone();
            pool.after_connect(move |connection, _| {
                let waits = PoolWaits::new(gate.clone(), SQLITE_BUSY_TIMEOUT);
                Box::pin(async move {
                    let mut handle = connection.lock_handle().await?;
                    // SAFETY: the handle is locked out of the connection's
                    // worker thread while this runs.
                    unsafe { waits.install(handle.as_raw_handle().as_ptr()) }
                        .map_err(|err| sea_orm::sqlx::Error::Configuration(err.into()))
                })
            })
        });
    } else if let Some(timeout) = settings.statement_timeout {
        let millis = timeout.as_millis().to_string();
        options.map_sqlx_postgres_opts(move |opts| {
            opts.options([("statement_timeout", millis.as_str())])
        });
    }
    sea_orm::Database::connect(options)
        .await
        .with_context(|| format!("connecting to {}", redact(url)))
}

/// The storage the service runs on, opened once at start: the backend is
/// chosen here, from the URL, and nowhere else.
#[derive(Clone)]
pub struct Database {
    /// The shared pool, for everything but what follows.
    pub pool: DatabaseConnection,
    /// What the encounter writer writes through (see [`writer_connection`]).
    pub writer: WriterConnection,
    /// What authentication and idempotency lookups read through (see
    /// [`inline_reader`]).
    pub reader: InlineReader,
    /// What the rollup projector writes through: the writer's connection
    /// (on a SQLite file, taking turns with the writer through its gate,
    /// with a read-only connection of its own for what it reads first).
    pub projector: WriterConnection,
}

impl Database {
    /// The writer's and readers' connections beside `pool`, a pool that
    /// [`connect`] opened with `settings`.
    pub async fn open(
        settings: &DatabaseSettings,
        pool: DatabaseConnection,
    ) -> anyhow::Result<Self> {
        // On a SQLite file the projector writes through the writer's own
        // connection, taking turns with it through the gate: with a
        // connection each, every commit of one emptied the other's page
        // cache (WAL mode), and the projector spent most of its time
        // reading the same pages back (59% of the service's CPU). The gate
        // is the file's: the pool's writes wait on it too.
        let gate = sqlite_path(&settings.url).map_or_else(WriteGate::default, |path| {
            WriteGate::of_file(Path::new(path))
        });
        let writer = writer_connection(settings, &pool, &gate).await?;
        // The projector reads what it applies outside its turn, in a
        // snapshot of its own (`analytics::projector`).
        let projector = match sqlite_path(&settings.url) {
            Some(path) if writer.is_own_thread() => writer.clone().with_reader(
                SqliteConnection::open_reader(Path::new(path), SQLITE_BUSY_TIMEOUT)
                    .with_context(|| format!("opening {path} for the rollup projector"))?,
            ),
            _ => writer.clone(),
        };
        let reader = inline_reader(settings, &pool)?;
        Ok(Database {
            pool,
            writer,
            reader,
            projector,
        })
    }
}

/// The connection the encounter writer (group commit) uses. On SQLite, a
/// connection of its own that the writer drives directly on its thread
/// (see `crate::db::store`): SQLite has one writer at a time anyway, and the
/// writer must not queue behind a busy pool of readers for each commit. On
/// PostgreSQL, the shared pool.
async fn writer_connection(
    settings: &DatabaseSettings,
    shared: &DatabaseConnection,
    gate: &WriteGate,
) -> anyhow::Result<WriterConnection> {
    if is_postgres(shared) {
        return Ok(WriterConnection::Pool(shared.clone()));
    }
    match sqlite_path(&settings.url) {
        Some(path) => {
            let connection = SqliteConnection::open(Path::new(path), SQLITE_BUSY_TIMEOUT)
                .with_context(|| format!("opening {path} for the encounter writer"))?
                .with_gate(gate.clone());
            connection
                .checkpoint_elsewhere(Path::new(path), checkpoint::EVERY, checkpoint::LIMIT_FRAMES)
                .with_context(|| format!("starting the WAL checkpointer of {path}"))?;
            Ok(WriterConnection::sqlite(connection))
        }
        // An in-memory database exists only on its pool's connection.
        None => Ok(WriterConnection::Pool(shared.clone())),
    }
}

/// The connections point reads on the request path run on (see
/// `crate::db::store::InlineReader`): on a SQLite file, one read-only
/// connection per runtime worker; otherwise the shared pool.
fn inline_reader(
    settings: &DatabaseSettings,
    shared: &DatabaseConnection,
) -> anyhow::Result<InlineReader> {
    match sqlite_path(&settings.url) {
        Some(path) if !is_postgres(shared) => {
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            InlineReader::sqlite(Path::new(path), SQLITE_BUSY_TIMEOUT, workers)
                .with_context(|| format!("opening {path} for reading keys"))
        }
        _ => Ok(InlineReader::Pool(shared.clone())),
    }
}

/// Turns SQLite's memory statistics (`SQLITE_CONFIG_MEMSTATUS`) off before
/// the first SQLite connection opens. With them on, every allocation and
/// free inside SQLite takes one process-wide mutex, and reading rows takes
/// it from two threads at once: the sqlx driver copies each value of each
/// row on its worker thread, and the task reading the rows frees them. A
/// full export of 1M encounters took about a third less CPU time without
/// it. Nothing here reads the statistics (`sqlite3_memory_used`, a soft
/// heap limit). Every SQLite connection of the process calls it before
/// opening (the pool's here, the writer's and readers' in `store`).
pub(crate) fn disable_sqlite_memory_statistics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let off: c_int = 0;
        // SAFETY: `sqlite3_config` must run before SQLite initializes, while
        // no other thread is in SQLite. Every SQLite connection of this
        // process is opened by `connect`, which comes here first, and
        // `call_once` holds the other callers until this returns. After
        // SQLite initialized, it only returns SQLITE_MISUSE.
        let rc =
            unsafe { libsqlite3_sys::sqlite3_config(libsqlite3_sys::SQLITE_CONFIG_MEMSTATUS, off) };
        if rc != libsqlite3_sys::SQLITE_OK {
            tracing::warn!(rc, "could not turn SQLite memory statistics off");
        }
    });
}

/// Applies pending migrations, then runs `then`: work that must see the
/// new schema and run once per upgrade (the service rebuilds outdated
/// rollups there, see `startup::migrate`). On PostgreSQL, instances starting
/// together take turns under an advisory lock, so each runs once.
pub async fn migrate_then<F, Fut>(db: &DatabaseConnection, then: F) -> anyhow::Result<()>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let upgrade = || async {
        Migrator::up(db, None)
            .await
            .context("applying migrations")?;
        then().await
    };
    if !is_postgres(db) {
        return upgrade().await;
    }
    // Session-level advisory locks belong to one connection: hold it on a
    // dedicated one while the pool runs the migrations.
    let mut lock_conn = db.get_postgres_connection_pool().acquire().await?;
    sea_orm::sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *lock_conn)
        .await
        .context("taking the migration lock")?;
    let result = upgrade().await;
    sea_orm::sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK_KEY)
        .execute(&mut *lock_conn)
        .await
        .context("releasing the migration lock")?;
    result
}

/// An arbitrary constant naming this application's migration lock.
const MIGRATION_LOCK_KEY: i64 = 0x7470_7472_6163_6b31; // "tptrack1"

/// How much of the shared connection pool is in use, for `/metrics`.
/// `None` for a connection without a pool. On a SQLite file the encounter
/// writer and the inline readers have connections of their own, outside it.
pub fn pool_use(db: &DatabaseConnection) -> Option<crate::metrics::PoolUse> {
    use sea_orm::DatabaseConnectionType as Connection;
    let (open, idle, max) = match &db.inner {
        Connection::SqlxPostgresPoolConnection(_) => {
            let pool = db.get_postgres_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        Connection::SqlxSqlitePoolConnection(_) => {
            let pool = db.get_sqlite_connection_pool();
            (
                pool.size(),
                pool.num_idle(),
                pool.options().get_max_connections(),
            )
        }
        _ => return None,
    };
    Some(crate::metrics::PoolUse {
        open,
        idle: u32::try_from(idle).unwrap_or(u32::MAX),
        max,
    })
}

/// Whether the connection is to PostgreSQL (otherwise SQLite).
pub fn is_postgres(db: &impl sea_orm::ConnectionTrait) -> bool {
    db.get_database_backend() == DbBackend::Postgres
}

/// The file path of a `sqlite:` URL, without its query string.
fn sqlite_path(database_url: &str) -> Option<&str> {
    let rest = database_url
        .strip_prefix("sqlite://")
        .or_else(|| database_url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// The URL with its password (and a `password` query parameter) replaced,
/// for log lines. A URL that does not parse is shown only if it has no
/// user part that could hold a password.
pub fn redact(database_url: &str) -> String {
    let Ok(mut url) = url::Url::parse(database_url) else {
        return if database_url.contains('@') {
            "(a database URL that does not parse)".to_owned()
        } else {
            database_url.to_owned()
        };
    };
    let query_password = url.query_pairs().any(|(name, _)| name == "password");
    if url.password().is_none() && !query_password {
        return database_url.to_owned();
    }
    if url.password().is_some() {
        // Only a URL that cannot have a host refuses; these have one.
        let _ = url.set_password(Some("***"));
    }
    if query_password {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(name, value)| {
                let value = if name == "password" {
                    "***".into()
                } else {
                    value
                };
                (name.into_owned(), value.into_owned())
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    url.to_string()
}

/// Where a change runs in a transaction of its own, with its audit event:
/// the pool (a transaction), or a caller's transaction (a savepoint in it),
/// as `demo seed` does to write its catalog in one transaction.
pub trait Connection:
    ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>
{
}

impl<C: ConnectionTrait + TransactionTrait<Transaction = DatabaseTransaction>> Connection for C {}

/// Begins a transaction that is going to write. On SQLite it takes the write
/// lock at once (`BEGIN IMMEDIATE`), waiting for it under the busy timeout:
/// a deferred transaction that reads first and then writes cannot wait, and
/// fails with "database is locked" when another writer got there first.
/// Inside a transaction, it is a savepoint.
pub async fn begin_write(db: &impl Connection) -> StorageResult<DatabaseTransaction> {
    Ok(db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?)
}

/// A read-only transaction that sees one snapshot of the database from its
/// first statement to its end: what a streamed answer is read in, so that
/// all of its parts, and every page of them, agree. SQLite (in WAL mode)
/// keeps a read transaction's snapshot; PostgreSQL's default (read
/// committed) takes one per statement, so there it is repeatable read.
/// It holds a pooled connection until it ends: a client that stops reading
/// is cut off by the send timeout.
pub async fn snapshot(db: &DatabaseConnection) -> StorageResult<DatabaseTransaction> {
    Ok(match db.get_database_backend() {
        DbBackend::Postgres => {
            db.begin_with_config(
                Some(IsolationLevel::RepeatableRead),
                Some(AccessMode::ReadOnly),
            )
            .await?
        }
        _ => db.begin().await?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sqlite_keeps_no_memory_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = connect(&DatabaseSettings::new(url)).await.unwrap();
        migrate_then(&db, || async { Ok(()) }).await.unwrap();
        // SAFETY: reads a counter; callable from any thread.
        let used = unsafe { libsqlite3_sys::sqlite3_memory_used() };
        assert_eq!(used, 0, "SQLite counts its memory");
    }

    /// The writer's connection taken turn after turn without a gap (as the
    /// encounter writer and the projector do under load, with the WAL
    /// checkpoints out of their commits): a write through the pool, in a
    /// transaction or a statement of its own, still gets the lock. With
    /// SQLite's own busy handler it slept through every gap and failed
    /// with "database is locked" at the busy timeout.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pool_writes_get_their_turn_between_the_writers_turns() {
        use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
        use std::sync::Arc;

        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let settings = DatabaseSettings::new(url);
        let pool = connect(&settings).await.unwrap();
        pool.execute_unprepared(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER); INSERT INTO t VALUES (1, 0)",
        )
        .await
        .unwrap();
        let database = Database::open(&settings, pool.clone()).await.unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let turns = Arc::new(AtomicU64::new(0));
        let writers: Vec<_> = [database.writer.clone(), database.projector.clone()]
            .into_iter()
            .map(|writer| {
                let (stop, turns) = (stop.clone(), turns.clone());
                tokio::spawn(async move {
                    let insert = sea_orm::sea_query::Query::insert()
                        .into_table(sea_orm::sea_query::Alias::new("t"))
                        .columns([sea_orm::sea_query::Alias::new("n")])
                        .values_panic([1.into()])
                        .to_owned();
                    while !stop.load(Ordering::Acquire) {
                        let txn = writer.begin_write().await.unwrap();
                        store::Executor::execute(&txn, &insert).await.unwrap();
                        tokio::time::sleep(Duration::from_millis(3)).await;
                        txn.commit().await.unwrap();
                        turns.fetch_add(1, Ordering::AcqRel);
                    }
                })
            })
            .collect();
        while turns.load(Ordering::Acquire) < 10 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        for n in 1..=20 {
            if n % 2 == 0 {
                let txn = begin_write(&pool).await.unwrap();
                txn.execute_unprepared(&format!("UPDATE t SET n = {n} WHERE id = 1"))
                    .await
                    .unwrap();
                txn.commit().await.unwrap();
            } else {
                pool.execute_unprepared(&format!("UPDATE t SET n = {n} WHERE id = 1"))
                    .await
                    .unwrap();
            }
        }
        stop.store(true, Ordering::Release);
        for writer in writers {
            writer.await.unwrap();
        }
        let row = pool
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Sqlite,
                "SELECT n FROM t WHERE id = 1",
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 20);
    }

    #[test]
    fn sqlite_paths() {
        assert_eq!(sqlite_path("sqlite://data/t.db"), Some("data/t.db"));
        assert_eq!(
            sqlite_path("sqlite:///tmp/t.db?mode=rwc"),
            Some("/tmp/t.db")
        );
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x"), None);
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:secret@db:5432/tt"),
            "postgres://app:***@db:5432/tt"
        );
        assert_eq!(redact("sqlite://data/t.db"), "sqlite://data/t.db");
        assert_eq!(redact("sqlite::memory:"), "sqlite::memory:");
        assert_eq!(
            redact("postgres://app@db/tt?sslmode=require"),
            "postgres://app@db/tt?sslmode=require"
        );
        // An `@` in the password, and a password in the query.
        assert_eq!(
            redact("postgres://app:p@ss@db/tt"),
            "postgres://app:***@db/tt"
        );
        assert_eq!(
            redact("postgres://app@db/tt?password=secret&sslmode=require"),
            "postgres://app@db/tt?password=***&sslmode=require"
        );
        // Unparsable: shown only without a user part.
        let bad = redact("postgres://app:secret@db:99999/tt");
        assert!(!bad.contains("secret"), "{bad}");
        assert_eq!(redact("sqlite://my data/t.db"), "sqlite://my data/t.db");
    }
}
