//! WAL checkpoints of a SQLite file, on a thread of their own.
//!
//! In WAL mode a commit appends pages to the `-wal` file, and a checkpoint
//! copies them back into the database file. By default the connection
//! whose commit takes the WAL past 1,000 pages runs it, inside that commit:
//! here the encounter writer's connection, which the writer and the
//! projector take turns on. Under single POSTs spread over a year of days
//! each projection step rewrote a few thousand rollup pages, and the
//! checkpoints in its commits took 16% of its time while the POSTs
//! waited. So the writer's connection never checkpoints
//! (`wal_autocheckpoint = 0`), and a thread with a connection of its own
//! runs a passive checkpoint every [`EVERY`]: it copies pages while the
//! writer goes on appending.
//!
//! A passive checkpoint never waits, so under writes without pause it may
//! not reach the end of the WAL, and the WAL only starts again from its
//! beginning after one that did. Past [`LIMIT_FRAMES`] the checkpointer
//! takes the write turn (the writer's gate) and restarts the WAL: it
//! copies what is left and the next commit writes from the file's start
//! again, which bounds the file. Writes wait meanwhile, so this is kept
//! rare and short. Truncating the file instead held the turn 55 to 68 ms
//! on average (the file is cut, synced, then grown again page by page)
//! against 27 to 43 ms, and past 16,384 frames it came 16 to 18 times in
//! 10 s of single POSTs: their p99 was 68 to 96 ms, and 24 to 39 ms
//! restarting past 65,536 frames. Past 65,536 frames, on a faster machine,
//! single POSTs filled the WAL again in under a second, and each restart
//! held the turn 15 to 24 ms (10 or 11 in 10 s): p99 21.5 to 31.5 ms,
//! against 15.7 to 21.0 ms past 262,144 (2 or 3 restarts), at the same
//! rate. Once writes stop for [`QUIET_ROUNDS`] rounds, the WAL is
//! truncated, so an idle service keeps no large file.
//!
//! A restart with the writers stopped is kept short in two ways. Past half
//! the limit it is tried each round, but only when no reader uses the
//! WAL; waiting for one (a projection step's read of one candidate's long
//! history, 150 to 190 ms) held the writers 113 to 146 ms, and single
//! POSTs on one candidate had a p99 of 35 to 44 ms. And the database file
//! is synced before the turn is taken: the restart syncs it once it has
//! copied the rest, and that sync flushed all the passive checkpoints had
//! copied since the last one; another passive checkpoint then copies
//! what came during the sync. Restarts then held the writers 5 to 15 ms,
//! against 22 to 137 ms, twice as often; an attempt that finds a reader,
//! under 1 ms.

use std::{
    path::Path,
    sync::{Mutex, Weak},
    time::Duration,
};

use libsqlite3_sys as ffi;

use super::write_turn::WriteGate;

/// How often the checkpointer runs.
pub const EVERY: Duration = Duration::from_millis(100);
/// WAL frames (pages, 4 KiB by default) past which the checkpointer stops
/// the writers to restart the WAL, waiting for its readers: 1 GiB of disk,
/// under sustained writes. Past half of it, it restarts the WAL whenever
/// no reader uses it.
pub const LIMIT_FRAMES: i64 = 262_144;
/// Rounds without a new frame after which the checkpointer truncates the
/// WAL (about a second).
pub const QUIET_ROUNDS: u32 = 10;
/// How long the truncating checkpoint waits for readers of the WAL (it
/// holds the write turn meanwhile); it tries again at the next round.
const READERS_TIMEOUT: Duration = Duration::from_millis(100);

/// What a checkpoint reported: frames in the WAL, and of them copied into
/// the database file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpointed {
    pub busy: bool,
    pub frames: i64,
    pub copied: i64,
}

/// Runs one checkpoint (`PASSIVE`, `TRUNCATE`, ...) on `connection`.
pub fn checkpoint(connection: &rusqlite::Connection, mode: &str) -> rusqlite::Result<Checkpointed> {
    connection.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Checkpointed {
            busy: row.get::<_, i64>(0)? != 0,
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    })
}

/// Starts checkpointing the database file at `path` for the writer whose
/// connection `writer` is (it must have `wal_autocheckpoint = 0`), every
/// `every`; the thread ends when that connection is dropped.
pub fn start(
    path: &Path,
    writer: Weak<Mutex<rusqlite::Connection>>,
    gate: Option<WriteGate>,
    every: Duration,
    limit_frames: i64,
) -> anyhow::Result<()> {
    super::disable_sqlite_memory_statistics();
    let connection = rusqlite::Connection::open(path)?;
    connection.busy_timeout(READERS_TIMEOUT)?;
    std::thread::Builder::new()
        .name("wal-checkpointer".to_owned())
        .spawn(move || {
            let mut quiet = Quiet::default();
            while writer.strong_count() > 0 {
                std::thread::sleep(every);
                if let Err(err) = round(&connection, gate.as_ref(), limit_frames, &mut quiet) {
                    tracing::warn!(error = %err, "checkpointing the SQLite WAL failed; will retry");
                }
            }
        })?;
    Ok(())
}

/// How long the WAL has stayed as it is, all of it copied.
#[derive(Default)]
struct Quiet {
    frames: i64,
    rounds: u32,
}

fn round(
    connection: &rusqlite::Connection,
    gate: Option<&WriteGate>,
    limit_frames: i64,
    quiet: &mut Quiet,
) -> rusqlite::Result<()> {
    let passive = checkpoint(connection, "PASSIVE")?;
    let unchanged = passive.frames > 0 && passive.copied == passive.frames;
    quiet.rounds = if unchanged && passive.frames == quiet.frames {
        quiet.rounds + 1
    } else {
        0
    };
    quiet.frames = passive.frames;
    let Some((mode, readers_timeout)) = plan(passive.frames, limit_frames, quiet) else {
        return Ok(());
    };
    // What the passive checkpoints copied is flushed, and what came
    // meanwhile copied, while the writers go on, so that the checkpoint
    // below, which copies the rest and then syncs the file, has little of
    // either to do with them stopped.
    let flushing = std::time::Instant::now();
    sync_database_file(connection)?;
    checkpoint(connection, "PASSIVE")?;
    let flushed = flushing.elapsed();
    // No writer appends while the turn is held.
    let asked = std::time::Instant::now();
    let _turn = gate.map(WriteGate::blocking_turn);
    let waited = asked.elapsed();
    connection.busy_timeout(readers_timeout)?;
    let done = checkpoint(connection, mode);
    connection.busy_timeout(READERS_TIMEOUT)?;
    let done = done?;
    tracing::debug!(
        mode,
        frames = passive.frames,
        busy = done.busy,
        readers_timeout_ms = readers_timeout.as_millis() as u64,
        flushed_ms = flushed.as_secs_f64() * 1000.0,
        waited_ms = waited.as_secs_f64() * 1000.0,
        held_ms = (asked.elapsed() - waited).as_secs_f64() * 1000.0,
        "checkpointed the SQLite WAL with the writers stopped"
    );
    Ok(())
}

/// The checkpoint that stops the writers, if one is due with `frames` in
/// the WAL, and how long it waits for readers that use the WAL.
fn plan(frames: i64, limit_frames: i64, quiet: &Quiet) -> Option<(&'static str, Duration)> {
    if frames > limit_frames {
        Some(("RESTART", READERS_TIMEOUT))
    } else if frames > limit_frames / 2 {
        // Only if no reader is using the WAL: a reader's snapshot (a
        // projection step's read, a report's tail) may last 100 ms and
        // more, and the writers would wait with it. Past the limit, the
        // restart waits for them.
        Some(("RESTART", Duration::ZERO))
    } else if quiet.rounds >= QUIET_ROUNDS {
        Some(("TRUNCATE", READERS_TIMEOUT))
    } else {
        None
    }
}

/// Flushes the database file of `connection` to the disk, through
/// SQLite's own handle of it. (Opening the file a second time would not
/// do: closing that handle would drop every lock this process holds on
/// the file.)
fn sync_database_file(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    let failed = |rc| rusqlite::Error::SqliteFailure(ffi::Error::new(rc), None);
    let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
    // SAFETY: the connection is open and used by this thread only while
    // it is borrowed; FILE_POINTER writes one pointer to `file`, to a
    // handle that lives as long as the connection.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            connection.handle(),
            c"main".as_ptr(),
            ffi::SQLITE_FCNTL_FILE_POINTER,
            (&mut file as *mut *mut ffi::sqlite3_file).cast(),
        )
    };
    if rc != ffi::SQLITE_OK {
        return Err(failed(rc));
    }
    // SAFETY: a non-null `file` is the open handle of the main database;
    // an open handle has its methods.
    let sync = unsafe { file.as_ref() }
        .and_then(|file| unsafe { file.pMethods.as_ref() })
        .and_then(|methods| methods.xSync);
    let Some(sync) = sync else {
        // A database with no file (in memory) has nothing to flush.
        return Ok(());
    };
    // SAFETY: `file` is open (above); syncing reads no state another
    // connection changes.
    match unsafe { sync(file, ffi::SQLITE_SYNC_NORMAL) } {
        ffi::SQLITE_OK => Ok(()),
        rc => Err(failed(rc)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::store::{Executor, SqliteConnection};
    use sea_orm::sea_query::{Alias, Query};

    /// Commits `rows` rows of 8 KiB each through `writer`.
    async fn write(writer: &SqliteConnection, first: i64, rows: i64) {
        let txn = writer.begin_write().await.unwrap();
        for id in first..first + rows {
            let insert = Query::insert()
                .into_table(Alias::new("t"))
                .columns([Alias::new("id"), Alias::new("b")])
                .values_panic([id.into(), vec![7u8; 8192].into()])
                .to_owned();
            Executor::execute(&txn, &insert).await.unwrap();
        }
        txn.commit().await.unwrap();
    }

    /// Whether `done` holds within 10 s (100 of the thread's rounds).
    async fn eventually(done: impl Fn() -> bool) -> bool {
        for _ in 0..100 {
            if done() {
                return true;
            }
            tokio::time::sleep(EVERY).await;
        }
        done()
    }

    /// The frames in the WAL of the database at `path` (a passive
    /// checkpoint's count, which copies what it can and waits for nothing).
    /// While the thread checkpoints, SQLite refuses a second checkpoint and
    /// reports -1 frames, which would pass for an empty WAL: ask again.
    fn frames_in_wal(path: &Path) -> i64 {
        let connection = rusqlite::Connection::open(path).unwrap();
        for _ in 0..1000 {
            let frames = checkpoint(&connection, "PASSIVE").unwrap().frames;
            if frames >= 0 {
                return frames;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("the WAL stayed busy for a second");
    }

    fn size(path: &Path) -> u64 {
        std::fs::metadata(path).map_or(0, |m| m.len())
    }

    /// A database file in WAL mode with a table `t`, and its writer.
    fn database(dir: &Path) -> (std::path::PathBuf, SqliteConnection) {
        let path = dir.join("t.db");
        // Before any connection of the process, as `db::connect` does.
        crate::db::disable_sqlite_memory_statistics();
        let setup = rusqlite::Connection::open(&path).unwrap();
        setup
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)",
            )
            .unwrap();
        let writer = SqliteConnection::open(&path, Duration::from_secs(1))
            .unwrap()
            .with_gate(WriteGate::default());
        (path, writer)
    }

    #[tokio::test]
    async fn the_writer_leaves_checkpoints_to_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = database(dir.path());
        // A thread that would not run for an hour.
        writer
            .checkpoint_elsewhere(&path, Duration::from_secs(3600), i64::MAX)
            .unwrap();
        let before = size(&path);
        // About 1,800 pages: past SQLite's own threshold of 1,000, at which
        // the writer's commit would have copied them.
        write(&writer, 0, 600).await;
        assert_eq!(size(&path), before, "the commit copied nothing");
        assert!(size(&path.with_extension("db-wal")) > 600 * 8192);
    }

    #[tokio::test]
    async fn the_thread_copies_the_pages_restarts_the_wal_past_its_limit_and_truncates_it_when_quiet(
    ) {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = database(dir.path());
        let wal = path.with_extension("db-wal");
        writer.checkpoint_elsewhere(&path, EVERY, 400).unwrap();
        let before = size(&path);
        write(&writer, 0, 100).await;
        // Some rounds of the thread, however loaded the machine.
        let copied = eventually(|| size(&path) > before + 100 * 8192).await;
        assert!(copied, "the thread copied the pages");
        assert!(size(&wal) > 0, "a passive checkpoint keeps the WAL");

        // Past the limit the WAL restarts, with the writer's turn held: the
        // file stays, and the next commit writes from its start.
        write(&writer, 100, 300).await;
        let mut rows = 400;
        for _ in 0..100 {
            write(&writer, rows, 1).await;
            rows += 1;
            if frames_in_wal(&path) < 10 {
                break;
            }
            tokio::time::sleep(EVERY).await;
        }
        assert!(frames_in_wal(&path) < 10, "restarted past the limit");
        let full = size(&wal);
        write(&writer, rows, 5).await;
        rows += 5;
        assert_eq!(size(&wal), full, "written over the file's start");

        // Once writes stop, it is truncated.
        let truncated = eventually(|| size(&wal) == 0).await;
        assert!(truncated, "truncated once quiet");
        write(&writer, rows, 1).await;
        let check = rusqlite::Connection::open(&path).unwrap();
        let stored: i64 = check
            .query_row("SELECT count(*) FROM t", [], |row| row.get(0))
            .unwrap();
        assert_eq!(stored, rows + 1);
    }

    #[test]
    fn past_half_its_limit_the_wal_is_restarted_if_no_reader_uses_it_and_past_it_in_any_case() {
        let quiet = |rounds| Quiet { frames: 0, rounds };
        assert_eq!(plan(500, 1_000, &quiet(0)), None);
        assert_eq!(
            plan(501, 1_000, &quiet(0)),
            Some(("RESTART", Duration::ZERO))
        );
        assert_eq!(
            plan(1_000, 1_000, &quiet(0)),
            Some(("RESTART", Duration::ZERO))
        );
        assert_eq!(
            plan(1_001, 1_000, &quiet(0)),
            Some(("RESTART", READERS_TIMEOUT))
        );
        assert_eq!(
            plan(10, 1_000, &quiet(QUIET_ROUNDS)),
            Some(("TRUNCATE", READERS_TIMEOUT))
        );
        assert_eq!(plan(10, 1_000, &quiet(QUIET_ROUNDS - 1)), None);
    }

    #[test]
    fn the_database_file_is_synced_through_sqlites_own_handle() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _writer) = database(dir.path());
        let connection = rusqlite::Connection::open(&path).unwrap();
        sync_database_file(&connection).unwrap();
        // A database in memory has no file, and nothing to sync.
        sync_database_file(&rusqlite::Connection::open_in_memory().unwrap()).unwrap();
    }
}
