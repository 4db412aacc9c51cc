//! Group commit for single-encounter writes.
//!
//! A commit costs a disk flush; one transaction per request caps the write
//! rate at the flushes per second and makes concurrent requests queue for
//! SQLite's single write lock. Instead, requests hand their encounter to
//! one writer task, which takes everything that arrived meanwhile and
//! records it in one transaction per organization. Each request is answered
//! only after the transaction holding its encounter committed, so an
//! acknowledged encounter is as durable as with a commit of its own.
//!
//! Each encounter's audit event, naming the key of its own request, is
//! written in the shared transaction with it.
//!
//! One item's refusal (an unknown candidate, an archived touchpoint) is its
//! own: it is left out and the others commit. If the shared transaction
//! fails as a whole, each request is retried in a transaction of its own,
//! so a failure reaches only the requests it belongs to.
//!
//! On SQLite, batches and import chunks are written by the same writer, on
//! its own connection, each in a transaction of its own: through the pool,
//! the driver's hand-off of every statement and row between threads cost
//! more than SQLite's work. On PostgreSQL they run on the pool directly.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
};

use entity::encounter;
use tokio::sync::{mpsc, oneshot};
use tracing::{Instrument, Span};

use crate::db::store::{InlineReader, WriterConnection};
use crate::domain::{
    analytics::projector::Projector,
    encounters::ingest::{self, EncounterInput, Recorded},
    encounters::write::EncounterAppend,
    idempotency::{self, Idempotency, ImportStep, StoredResponse, Written},
    privacy::audit::KeyActor,
    DomainError, DomainResult,
};
use crate::metrics::GroupSizes;

/// The most requests sharing one transaction.
const MAX_GROUP: usize = 1024;
/// Requests waiting for the writer before new ones wait to be queued.
const QUEUE_CAPACITY: usize = 8192;

/// Renders an encounter as the response stored for an idempotency key.
pub type Render = fn(&encounter::Model) -> StoredResponse;

/// Renders a batch's result as the response stored for an idempotency key.
pub type RenderBatch = fn(&Recorded) -> StoredResponse;

type Answer = DomainResult<Written<encounter::Model>>;
type BatchAnswer = DomainResult<Written<Recorded>>;

/// What the writer is asked to write.
enum Work {
    /// One encounter, group-committed with the others waiting.
    Encounter(EncounterJob),
    /// A batch or an import chunk, all or none, in a transaction of its own.
    Batch(BatchJob),
}

struct BatchJob {
    organization_id: i64,
    recorded_by: KeyActor,
    inputs: Vec<EncounterInput>,
    idempotency: Option<(Idempotency, RenderBatch)>,
    import: Option<ImportStep>,
    reply: oneshot::Sender<BatchAnswer>,
    /// The request's span: the writer's log lines for it carry its id.
    span: Span,
}

struct EncounterJob {
    organization_id: i64,
    recorded_by: KeyActor,
    input: EncounterInput,
    idempotency: Option<(Idempotency, Render)>,
    reply: oneshot::Sender<Answer>,
    /// The request's span: the writer's log lines for it carry its id.
    span: Span,
}

/// The handle requests use to record encounters: one at a time
/// (group-committed) or a batch. Cheap to clone.
#[derive(Clone)]
pub struct EncounterWriter {
    jobs: mpsc::Sender<Work>,
    connection: WriterConnection,
    /// Where a request looks for an earlier answer to its idempotency key
    /// before it queues.
    reader: InlineReader,
    running: Arc<AtomicBool>,
    /// Woken when encounters commit, to apply them to the rollups.
    projector: Projector,
}

/// What `/healthz` and `/metrics` read of the writer. Holds no sender, so
/// it does not keep the writer running at shutdown.
#[derive(Clone)]
pub struct WriterMonitor {
    jobs: mpsc::WeakSender<Work>,
    running: Arc<AtomicBool>,
}

impl WriterMonitor {
    /// Whether the writer's thread (or task) still runs: false once it
    /// panicked or ended.
    pub fn is_running(&self) -> bool {
        self.running.load(Ordering::Acquire)
    }

    /// Writes queued for the writer and not yet taken by it.
    pub fn queue_depth(&self) -> usize {
        self.jobs
            .upgrade()
            .map_or(0, |jobs| jobs.max_capacity() - jobs.capacity())
    }
}

/// Held by the writer's thread or task: marks the writer stopped when it
/// ends, by a panic or otherwise.
struct Running(Arc<AtomicBool>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
        if std::thread::panicking() {
            tracing::error!("the encounter writer panicked; writes fail until a restart");
        }
    }
}

impl EncounterWriter {
    /// Starts the writer. On its own SQLite connection it gets a thread of
    /// its own, which runs the statements directly: there they block, and
    /// on the shared runtime they would stall HTTP tasks. Its runtime only
    /// receives jobs; it has no I/O driver. PostgreSQL connections belong
    /// to the runtime that opened them, so there the writer is a task of
    /// the current runtime.
    pub fn start(
        db: WriterConnection,
        reader: InlineReader,
        group_sizes: GroupSizes,
        projector: Projector,
    ) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE_CAPACITY);
        let connection = db.clone();
        let running = Arc::new(AtomicBool::new(true));
        let guard = Running(running.clone());
        if !db.is_own_thread() {
            tokio::spawn(async move {
                let _running = guard;
                run(db, queue, group_sizes).await
            });
        } else {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()
                .expect("a runtime for the encounter writer");
            std::thread::Builder::new()
                .name("encounter-writer".to_owned())
                .spawn(move || {
                    let _running = guard;
                    runtime.block_on(run(db, queue, group_sizes))
                })
                .expect("a thread for the encounter writer");
        }
        EncounterWriter {
            jobs,
            connection,
            reader,
            running,
            projector,
        }
    }

    /// What `/healthz` and `/metrics` watch.
    pub fn monitor(&self) -> WriterMonitor {
        WriterMonitor {
            jobs: self.jobs.downgrade(),
            running: self.running.clone(),
        }
    }

    /// Records one encounter; answers once it committed (or was refused).
    #[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
    pub async fn record(
        &self,
        organization_id: i64,
        recorded_by: KeyActor,
        input: EncounterInput,
        idempotency: Option<(Idempotency, Render)>,
    ) -> Answer {
        let input = ingest::check(input, crate::domain::now())?;
        if let Some((key, _)) = &idempotency {
            if let Some(stored) = idempotency::find(&self.reader, organization_id, key).await? {
                return Ok(Written::Replayed(stored));
            }
        }
        let (reply, answer) = oneshot::channel();
        let job = EncounterJob {
            organization_id,
            recorded_by,
            input,
            idempotency,
            reply,
            span: Span::current(),
        };
        self.jobs
            .send(Work::Encounter(job))
            .await
            .map_err(|_| stopped())?;
        self.wake_on_commit(answer.await.map_err(|_| stopped())?)
    }

    /// Records a batch (or an import chunk) in one transaction, all or
    /// none; every refused item is reported by its index. A chunk of a
    /// keyed import moves its key's checkpoint in that transaction.
    #[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
    pub async fn record_batch(
        &self,
        organization_id: i64,
        recorded_by: KeyActor,
        inputs: Vec<EncounterInput>,
        idempotency: Option<(Idempotency, RenderBatch)>,
        import: Option<ImportStep>,
    ) -> BatchAnswer {
        let inputs =
            ingest::check_all(inputs, crate::domain::now()).map_err(DomainError::InvalidItems)?;
        let keyed = idempotency.as_ref().map(|(key, render)| (key, *render));
        if let Some(stored) =
            idempotency::earlier_answer(&self.reader, organization_id, keyed).await?
        {
            return Ok(Written::Replayed(stored));
        }
        if !self.connection.is_own_thread() {
            let answer = ingest::record_checked(
                &self.connection,
                organization_id,
                &recorded_by,
                inputs,
                keyed,
                import.as_ref(),
            )
            .await;
            return self.wake_on_commit(answer);
        }
        let (reply, answer) = oneshot::channel();
        let job = BatchJob {
            organization_id,
            recorded_by,
            inputs,
            idempotency,
            import,
            reply,
            span: Span::current(),
        };
        self.jobs
            .send(Work::Batch(job))
            .await
            .map_err(|_| stopped())?;
        self.wake_on_commit(answer.await.map_err(|_| stopped())?)
    }

    /// Wakes the projector when `answer` says encounters were written.
    fn wake_on_commit<T>(&self, answer: DomainResult<Written<T>>) -> DomainResult<Written<T>> {
        if let Ok(Written::Fresh(_)) = &answer {
            self.projector.wake();
        }
        answer
    }
}

fn stopped() -> DomainError {
    DomainError::Unavailable("the encounter writer has stopped".to_owned())
}

/// A fault for the tests of `/healthz`, compiled into debug builds only:
/// with `TT_TEST_STOP_WRITER_AFTER=n` the writer panics after its n-th
/// round of work (0: before the first), as a bug in it would.
#[cfg(debug_assertions)]
fn rounds_before_fault() -> Option<u64> {
    std::env::var("TT_TEST_STOP_WRITER_AFTER")
        .ok()?
        .parse()
        .ok()
}

#[cfg(debug_assertions)]
fn inject_fault(rounds: u64, fault_after: Option<u64>) {
    if fault_after == Some(rounds) {
        panic!("TT_TEST_STOP_WRITER_AFTER={rounds}: the encounter writer stops (injected fault)");
    }
}

async fn run(db: WriterConnection, mut queue: mpsc::Receiver<Work>, group_sizes: GroupSizes) {
    #[cfg(debug_assertions)]
    let (fault_after, mut rounds) = (rounds_before_fault(), 0);
    #[cfg(debug_assertions)]
    inject_fault(rounds, fault_after);
    let mut arrived = Vec::with_capacity(MAX_GROUP);
    while queue.recv_many(&mut arrived, MAX_GROUP).await > 0 {
        let mut by_organization: BTreeMap<i64, Vec<EncounterJob>> = BTreeMap::new();
        let mut batches = Vec::new();
        for work in arrived.drain(..) {
            match work {
                Work::Encounter(job) => by_organization
                    .entry(job.organization_id)
                    .or_default()
                    .push(job),
                Work::Batch(batch) => batches.push(batch),
            }
        }
        for (organization_id, jobs) in by_organization {
            group_sizes.observe(jobs.len());
            commit_group(&db, organization_id, jobs).await;
        }
        for batch in batches {
            let keyed = batch
                .idempotency
                .as_ref()
                .map(|(key, render)| (key, *render));
            let answer = ingest::record_checked(
                &db,
                batch.organization_id,
                &batch.recorded_by,
                batch.inputs,
                keyed,
                batch.import.as_ref(),
            )
            .instrument(batch.span.clone())
            .await;
            let _ = batch.reply.send(answer);
        }
        #[cfg(debug_assertions)]
        {
            rounds += 1;
            inject_fault(rounds, fault_after);
        }
    }
}

async fn commit_group(db: &WriterConnection, organization_id: i64, jobs: Vec<EncounterJob>) {
    // A group of one is its request's work; a larger one is shared, and its
    // requests' own lines are logged below if it fails.
    let span = match jobs.as_slice() {
        [job] => job.span.clone(),
        _ => tracing::debug_span!("group_commit", organization_id, requests = jobs.len()),
    };
    let started = std::time::Instant::now();
    let result = write_group(db, organization_id, &jobs)
        .instrument(span.clone())
        .await;
    span.in_scope(|| {
        tracing::debug!(
            requests = jobs.len(),
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "group commit"
        )
    });
    match result {
        Ok(answers) => {
            for (job, answer) in jobs.into_iter().zip(answers) {
                let _ = job.reply.send(answer);
            }
        }
        Err(err) if jobs.len() == 1 => {
            let job = jobs.into_iter().next().expect("one job");
            let _ = job.reply.send(Err(err));
        }
        Err(err) => {
            let requests = jobs.len();
            for job in jobs {
                job.span.in_scope(|| {
                    tracing::warn!(error = %err, requests, "shared write failed; retrying this request alone")
                });
                let answer = write_group(db, organization_id, std::slice::from_ref(&job))
                    .instrument(job.span.clone())
                    .await
                    .and_then(|mut answers| answers.pop().expect("one answer"));
                let _ = job.reply.send(answer);
            }
        }
    }
}

/// Records the jobs' encounters in one transaction; one answer per job.
/// `Err` when the transaction as a whole failed (nothing was written).
async fn write_group(
    db: &WriterConnection,
    organization_id: i64,
    jobs: &[EncounterJob],
) -> DomainResult<Vec<Answer>> {
    let txn = db.begin_write().await?;
    let write = EncounterAppend::begin_in(txn, organization_id).await?;
    let inputs = jobs.iter().map(|job| job.input.clone()).collect();
    let resolved = ingest::resolve(write.txn(), organization_id, inputs).await?;
    let mut answers: Vec<Option<Answer>> = jobs.iter().map(|_| None).collect();
    // The first request with a key claims it; later ones in this group with
    // the same key get its answer.
    let mut claimed_by: HashMap<&str, usize> = HashMap::new();
    let mut followers = Vec::new();
    let mut to_insert = Vec::new();
    let mut inserted_by = Vec::new();
    for (index, (job, item)) in jobs.iter().zip(resolved).enumerate() {
        let item = match item {
            Ok(item) => item,
            Err(err) => {
                answers[index] = Some(Err(err));
                continue;
            }
        };
        if let Some((key, _)) = &job.idempotency {
            if let Some(&first) = claimed_by.get(key.key()) {
                followers.push((index, first));
                continue;
            }
            claimed_by.insert(key.key(), index);
            if let Some(stored) =
                idempotency::claim(write.txn(), organization_id, key, write.now()).await?
            {
                answers[index] = Some(Ok(Written::Replayed(stored)));
                continue;
            }
        }
        to_insert.push((&job.recorded_by, item));
        inserted_by.push(index);
    }
    // When every job was refused or replayed there is nothing to write, and
    // nothing commits: not even the organization's change sequence.
    let writes = !to_insert.is_empty();
    if writes {
        let recorded = ingest::insert(&write, to_insert, ingest::Requests::OneEach).await?;
        for (index, encounter) in inserted_by.into_iter().zip(recorded.encounters) {
            if let Some((key, render)) = &jobs[index].idempotency {
                idempotency::record(write.txn(), organization_id, key, &render(&encounter)).await?;
            }
            answers[index] = Some(Ok(Written::Fresh(encounter)));
        }
    }
    for (index, first) in followers {
        let (key, render) = jobs[index]
            .idempotency
            .as_ref()
            .expect("a follower has a key");
        let (first_key, _) = jobs[first].idempotency.as_ref().expect("so has its leader");
        answers[index] = Some(if key != first_key {
            Err(idempotency::mismatch())
        } else {
            match &answers[first] {
                Some(Ok(Written::Fresh(encounter))) => Ok(Written::Replayed(render(encounter))),
                Some(Ok(Written::Replayed(stored))) => Ok(Written::Replayed(stored.clone())),
                _ => Err(stopped()),
            }
        });
    }
    if writes {
        write.commit().await?;
    }
    // Otherwise dropping the write rolls it back.
    Ok(answers
        .into_iter()
        .map(|answer| answer.expect("every job answered"))
        .collect())
}
