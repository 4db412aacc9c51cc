//! Whose turn it is to write a SQLite file, within this process.
//!
//! SQLite lets one connection write at a time. The encounter writer and the
//! rollup projector share one connection and take turns on it through the
//! file's [`WriteGate`], a fair queue. Every other write (keys, webhooks,
//! alerts, sessions, surveys, ...) goes through the shared sqlx pool, whose
//! connections meet the gate's holder at SQLite's lock. SQLite's own busy
//! handler sleeps and tries again (1, 2, 5, ... up to 100 ms at a time), so
//! a pool write found the lock taken each time it woke while the writer and
//! the projector handed it to each other without a gap: once the WAL
//! checkpoints left their commits (`db::checkpoint`), the webhook
//! dispatcher's claim waited 1 to 3.4 s, 5 to 8 times a run, and could
//! have reached the busy timeout and failed.
//!
//! So each pool connection on a SQLite file gets a busy handler of its own
//! ([`PoolWaits`]): it says it is waiting and sleeps until a turn ends
//! (woken at once), then tries again; and a turn that begins while a pool
//! write waits lets it go first ([`POOL_FIRST`]). The busy timeout still
//! bounds the wait. A pool write waiting behind another pool write or
//! another process is not woken by a turn's end: it polls every
//! [`POLL`].

use std::{
    collections::HashMap,
    ffi::{c_int, c_void},
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, Condvar, Mutex, OnceLock, Weak,
    },
    time::{Duration, Instant},
};

use libsqlite3_sys as ffi;

/// How long a turn that begins while a pool write waits holds back, so the
/// pool write (woken when the last turn ended) takes the lock first.
pub const POOL_FIRST: Duration = Duration::from_millis(1);
/// How often a waiting pool write tries again when no turn ends.
pub const POLL: Duration = Duration::from_millis(5);

/// The write turn of one SQLite file, shared by every writer of it in this
/// process (see [`WriteGate::of_file`]). Taken around each write transaction
/// by the tasks sharing one connection (the encounter writer, the rollup
/// projector), in the order they ask. (With a connection each, they met at
/// SQLite's lock, where one that finds it taken sleeps in SQLite's busy
/// handler up to 100 ms at a time, however soon the lock is free: single
/// writes waited behind a projection step for 100 ms and more, p99 239 ms
/// against 10 ms at p50.)
#[derive(Clone, Default)]
pub struct WriteGate(Arc<Shared>);

#[derive(Default)]
struct Shared {
    /// Held for the whole of a write transaction on the shared connection.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// Counts the turns that ended; waiting pool writes sleep on it.
    ended: Mutex<u64>,
    turn_ended: Condvar,
    /// Pool writes in their busy handler now.
    pool_waiting: AtomicUsize,
    /// Callers of [`WriteGate::turn`] (and the blocking one) not yet
    /// holding the turn.
    turn_waiting: AtomicUsize,
}

/// A turn, held until it drops.
pub struct Turn {
    _held: tokio::sync::OwnedMutexGuard<()>,
    gate: WriteGate,
}

impl WriteGate {
    /// The gate of the SQLite file at `path`: the same one for every caller
    /// in this process while any holds it.
    pub fn of_file(path: &Path) -> WriteGate {
        static GATES: OnceLock<Mutex<HashMap<PathBuf, Weak<Shared>>>> = OnceLock::new();
        // The same file under two spellings shares a gate, whether it
        // exists yet or not (the pool creates it).
        let key = match (path.parent(), path.file_name()) {
            (Some(dir), Some(name)) => {
                let dir = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir
                };
                std::fs::canonicalize(dir).map_or_else(|_| path.to_path_buf(), |d| d.join(name))
            }
            _ => path.to_path_buf(),
        };
        let mut gates = GATES.get_or_init(Default::default).lock().unwrap();
        gates.retain(|_, gate| gate.strong_count() > 0);
        if let Some(shared) = gates.get(&key).and_then(Weak::upgrade) {
            return WriteGate(shared);
        }
        let gate = WriteGate::default();
        gates.insert(key, Arc::downgrade(&gate.0));
        gate
    }

    /// Waits for the turn; a pool write waiting then goes first.
    pub async fn turn(&self) -> Turn {
        let waiting = Waiting::count(&self.0.turn_waiting);
        let held = self.0.turn.clone().lock_owned().await;
        drop(waiting);
        if self.0.pool_waiting.load(Ordering::Acquire) > 0 {
            tokio::time::sleep(POOL_FIRST).await;
        }
        Turn {
            _held: held,
            gate: self.clone(),
        }
    }

    /// Waits for the turn from a thread outside the runtime (the WAL
    /// checkpointer).
    pub fn blocking_turn(&self) -> Turn {
        let waiting = Waiting::count(&self.0.turn_waiting);
        let held = self.0.turn.clone().blocking_lock_owned();
        drop(waiting);
        if self.0.pool_waiting.load(Ordering::Acquire) > 0 {
            std::thread::sleep(POOL_FIRST);
        }
        Turn {
            _held: held,
            gate: self.clone(),
        }
    }

    /// Pool writes waiting for the lock now.
    pub fn pool_waiting(&self) -> usize {
        self.0.pool_waiting.load(Ordering::Acquire)
    }

    /// Whether a write waits for the turn or the lock now: the holder of a
    /// long turn (the projector) ends it early then.
    pub fn awaited(&self) -> bool {
        self.0.turn_waiting.load(Ordering::Acquire) > 0 || self.pool_waiting() > 0
    }

    fn turn_ended(&self) {
        *self.0.ended.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        self.0.turn_ended.notify_all();
    }
}

/// One caller counted as waiting for the turn until it drops (also when
/// its future is dropped while it waits).
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn count(waiting: &'a AtomicUsize) -> Self {
        waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(waiting)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Turn {
    /// Whether a write waits for this turn to end (see
    /// [`WriteGate::awaited`]).
    pub fn awaited(&self) -> bool {
        self.gate.awaited()
    }
}

impl Drop for Turn {
    /// Wakes the pool writes waiting: the turn's transaction has ended, so
    /// the lock is free. (The next turn's holder, if any, sees them waiting
    /// and lets them go first.)
    fn drop(&mut self) {
        self.gate.turn_ended();
    }
}

/// The busy handler of a pool connection: waits for the end of a turn of
/// `gate`, up to `timeout` in all for one statement.
pub struct PoolWaits {
    gate: WriteGate,
    timeout: Duration,
    /// When the statement now waiting first found the lock taken.
    since: Mutex<Option<Instant>>,
}

impl PoolWaits {
    pub fn new(gate: WriteGate, timeout: Duration) -> Self {
        PoolWaits {
            gate,
            timeout,
            since: Mutex::new(None),
        }
    }

    /// Whether to try again: SQLite calls this with `count` 0 the first
    /// time a statement finds the lock taken, then 1, 2, ...
    fn wait(&self, count: c_int) -> bool {
        let now = Instant::now();
        let since = {
            let mut since = self.since.lock().unwrap_or_else(|e| e.into_inner());
            if count == 0 || since.is_none() {
                *since = Some(now);
            }
            since.unwrap_or(now)
        };
        let Some(left) = self
            .timeout
            .checked_sub(now - since)
            .filter(|d| !d.is_zero())
        else {
            return false;
        };
        let shared = &self.gate.0;
        shared.pool_waiting.fetch_add(1, Ordering::AcqRel);
        let ended = shared.ended.lock().unwrap_or_else(|e| e.into_inner());
        let seen = *ended;
        let _ = shared
            .turn_ended
            .wait_timeout_while(ended, left.min(POLL), |ended| *ended == seen);
        shared.pool_waiting.fetch_sub(1, Ordering::AcqRel);
        true
    }

    /// Makes this the busy handler of the connection `db`, in place of the
    /// busy timeout; it is freed when the connection closes.
    ///
    /// # Safety
    /// `db` must be an open connection that no other thread uses meanwhile.
    pub unsafe fn install(self, db: *mut ffi::sqlite3) -> Result<(), String> {
        unsafe extern "C" fn busy(waits: *mut c_void, count: c_int) -> c_int {
            // SAFETY: `waits` is the `PoolWaits` installed below, alive
            // until the connection closes.
            let waits = unsafe { &*(waits as *const PoolWaits) };
            c_int::from(waits.wait(count))
        }
        unsafe extern "C" fn free(waits: *mut c_void) {
            // SAFETY: the pointer came from `Box::into_raw` below, and SQLite
            // calls this once, when the connection closes.
            drop(unsafe { Box::from_raw(waits as *mut PoolWaits) });
        }
        let waits = Box::into_raw(Box::new(self)) as *mut c_void;
        // SAFETY: `db` is open and ours for now (the caller's promise); the
        // client data owns `waits` from here on and frees it at close.
        let rc = unsafe {
            ffi::sqlite3_set_clientdata(db, c"touchpoint_pool_waits".as_ptr(), waits, Some(free))
        };
        if rc != ffi::SQLITE_OK {
            // SAFETY: not handed to SQLite.
            unsafe { free(waits) };
            return Err(format!("sqlite3_set_clientdata failed ({rc})"));
        }
        // SAFETY: as above; `waits` lives as long as the connection.
        let rc = unsafe { ffi::sqlite3_busy_handler(db, Some(busy), waits) };
        if rc != ffi::SQLITE_OK {
            return Err(format!("sqlite3_busy_handler failed ({rc})"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_gate_per_file_while_it_is_held() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.db");
        let first = WriteGate::of_file(&a);
        std::fs::write(&a, b"").unwrap();
        let again = WriteGate::of_file(&dir.path().join(".").join("a.db"));
        assert!(Arc::ptr_eq(&first.0, &again.0), "same file, same gate");
        drop((first, again));
        let fresh = WriteGate::of_file(&a);
        assert_eq!(
            Arc::strong_count(&fresh.0),
            1,
            "a new gate once none is held"
        );
        let other = WriteGate::of_file(&dir.path().join("b.db"));
        assert!(
            !Arc::ptr_eq(&fresh.0, &other.0),
            "another file, another gate"
        );
    }

    #[test]
    fn a_pool_write_waits_counted_and_gives_up_at_its_timeout() {
        let gate = WriteGate::default();
        let turn = gate.blocking_turn();
        let waits = Arc::new(PoolWaits::new(gate.clone(), Duration::from_millis(500)));
        let waiter = {
            let waits = waits.clone();
            std::thread::spawn(move || {
                let mut count = 0;
                while waits.wait(count) {
                    count += 1;
                }
                count
            })
        };
        // Counted while it waits, so the next turn would let it go first.
        while gate.pool_waiting() == 0 {
            assert!(!waiter.is_finished(), "never seen waiting");
            std::thread::yield_now();
        }
        let tries = waiter.join().unwrap();
        assert!(tries >= 1, "it tried again before giving up");
        assert_eq!(gate.pool_waiting(), 0, "no waiter left counted");
        drop(turn);

        // A new statement (count 0) starts a new wait.
        assert!(waits.wait(0));
    }

    #[tokio::test]
    async fn a_turn_knows_when_a_write_waits_for_it() {
        let gate = WriteGate::default();
        let turn = gate.turn().await;
        assert!(!turn.awaited(), "nobody waits yet");
        let next = tokio::spawn({
            let gate = gate.clone();
            async move { gate.turn().await.awaited() }
        });
        while !turn.awaited() {
            assert!(!next.is_finished(), "never seen waiting");
            tokio::task::yield_now().await;
        }
        drop(turn);
        assert!(
            !next.await.unwrap(),
            "the waiter, holding the turn, is no longer counted"
        );

        // A wait given up (its future dropped) is no longer counted either.
        let turn = gate.turn().await;
        let given_up = tokio::time::timeout(Duration::from_millis(10), gate.turn()).await;
        assert!(given_up.is_err(), "the turn was held");
        assert!(!turn.awaited());
    }
}
