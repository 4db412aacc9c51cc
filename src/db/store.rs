//! Where an encounter write runs: a sea-orm transaction (PostgreSQL, and
//! SQLite through the shared pool) or, for the SQLite group-commit writer,
//! a SQLite connection of its own that runs statements on the writer's
//! thread.
//!
//! The sqlx SQLite driver runs each connection on a worker thread and hands
//! every statement and every row across threads; under load the writer
//! spent most of its time in those hand-offs, not in SQLite. Owning the
//! connection removes them. The statements are the same sea-query
//! statements on both paths ([`Executor`]), so there is one write path.
//!
//! The same hand-offs made authentication, one point read per request,
//! cost more CPU than the rest of a rejected request's handling; on SQLite
//! the request path reads API keys and idempotency keys through an
//! [`InlineReader`] instead.

use std::{
    fmt::Write as _,
    future::Future,
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
    time::Duration,
};

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::types::Value as SqliteValue;
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait, IdenStatic,
    QueryResult, Statement, StatementBuilder, TryGetable, Value,
};

use super::postgres_txn::{PgTxn, COPY_FROM_ROWS};
use super::write_turn::{Turn, WriteGate};
use super::{StorageError, StorageResult};

/// Runs sea-query statements; rows come back as [`Row`]s, read by column.
pub trait Executor: Sync {
    /// The database the statements run on.
    fn backend(&self) -> DbBackend;

    fn query<S: StatementBuilder>(
        &self,
        statement: &S,
    ) -> impl Future<Output = StorageResult<Vec<Row>>> + Send;

    /// Runs a statement that returns no rows; the number of rows it changed.
    fn execute<S: StatementBuilder>(
        &self,
        statement: &S,
    ) -> impl Future<Output = StorageResult<u64>> + Send;

    /// Inserts rows; with `ids`, the new rows' ids in insertion order.
    fn insert_rows(
        &self,
        rows: &InsertRows,
        ids: bool,
    ) -> impl Future<Output = StorageResult<Vec<i64>>> + Send;
}

impl<C: ConnectionTrait> Executor for C {
    fn backend(&self) -> DbBackend {
        self.get_database_backend()
    }

    async fn query<S: StatementBuilder>(&self, statement: &S) -> StorageResult<Vec<Row>> {
        let rows = self.query_all(statement).await?;
        Ok(rows.into_iter().map(Row::Pool).collect())
    }

    async fn execute<S: StatementBuilder>(&self, statement: &S) -> StorageResult<u64> {
        Ok(ConnectionTrait::execute(self, statement)
            .await?
            .rows_affected())
    }

    /// Many rows per statement: each statement is a round trip.
    async fn insert_rows(&self, rows: &InsertRows, ids: bool) -> StorageResult<Vec<i64>> {
        rows.insert_in_statements(self.get_database_backend(), ids, |statement| async move {
            Ok(self.query_all_raw(statement).await?)
        })
        .await
    }
}

/// On PostgreSQL, large inserts go in with `COPY` (see `postgres_txn`).
impl Executor for PgTxn {
    fn backend(&self) -> DbBackend {
        DbBackend::Postgres
    }

    async fn query<S: StatementBuilder>(&self, statement: &S) -> StorageResult<Vec<Row>> {
        let rows = self.fetch(statement.build(&DbBackend::Postgres)).await?;
        Ok(rows.into_iter().map(Row::Pool).collect())
    }

    async fn execute<S: StatementBuilder>(&self, statement: &S) -> StorageResult<u64> {
        self.run(statement.build(&DbBackend::Postgres)).await
    }

    async fn insert_rows(&self, rows: &InsertRows, ids: bool) -> StorageResult<Vec<i64>> {
        rows.check_ids(ids);
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if rows.len() >= COPY_FROM_ROWS && rows.conflict.is_none() {
            let copied = self.copy(rows.table, &rows.columns, rows.rows(), ids);
            if let Some(inserted) = copied.await? {
                return Ok(inserted);
            }
        }
        let on_conflict = rows.on_conflict_sql();
        let arrays = self.insert_arrays(rows.table, &rows.columns, rows.rows(), &on_conflict, ids);
        if let Some(inserted) = arrays.await? {
            return Ok(inserted);
        }
        rows.insert_in_statements(DbBackend::Postgres, ids, |statement| self.fetch(statement))
            .await
    }
}

/// Rows to insert into one table with [`Executor::insert_rows`]: the
/// values of its columns, row after row, and what to do with a row whose
/// key is taken ([`InsertRows::on_conflict`]).
pub struct InsertRows {
    table: &'static str,
    columns: Vec<&'static str>,
    values: Vec<Value>,
    conflict: Option<Conflict>,
}

/// An upsert's `ON CONFLICT` clause: the unique key, and how each updated
/// column takes the proposed row's value.
struct Conflict {
    key: Vec<&'static str>,
    set: Vec<(&'static str, Assign)>,
}

/// How an upsert updates a column of the row already there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assign {
    /// Takes the proposed value.
    Replace,
    /// Adds the proposed value to the stored one (a counter).
    Add,
}

impl InsertRows {
    /// Rows per multi-row statement: far below both backends' bind limits.
    const ROWS_PER_STATEMENT: usize = 500;
    const ID: &'static str = "id";

    /// No rows yet, for `columns` of `entity`'s table.
    pub fn new<E: EntityTrait>(entity: E, columns: impl IntoIterator<Item = E::Column>) -> Self {
        Self::into_table(
            entity.table_name(),
            columns.into_iter().map(|column| column.as_str()).collect(),
        )
    }

    /// The same for a table named here (the rollup tables share code
    /// across tables, not an entity).
    pub fn into_table(table: &'static str, columns: Vec<&'static str>) -> Self {
        InsertRows {
            table,
            columns,
            values: Vec::new(),
            conflict: None,
        }
    }

    /// Makes the insert an upsert: a row whose `key` (a unique index's
    /// columns) is taken updates the row there, each of `set` as its
    /// [`Assign`] says. An upsert returns no ids.
    pub fn on_conflict(
        mut self,
        key: impl IntoIterator<Item = &'static str>,
        set: impl IntoIterator<Item = (&'static str, Assign)>,
    ) -> Self {
        self.conflict = Some(Conflict {
            key: key.into_iter().collect(),
            set: set.into_iter().collect(),
        });
        self
    }

    /// Every path that inserts asks this first: an upsert's `RETURNING`
    /// would also give the ids of the rows it updated.
    fn check_ids(&self, ids: bool) {
        debug_assert!(
            !(ids && self.conflict.is_some()),
            "an upsert returns no ids"
        );
    }

    /// Adds a row: a value for each column, in their order.
    pub fn push(&mut self, row: impl IntoIterator<Item = Value>) {
        let before = self.values.len();
        self.values.extend(row);
        debug_assert_eq!(
            self.values.len() - before,
            self.columns.len(),
            "a value for each column"
        );
    }

    pub fn len(&self) -> usize {
        self.values.len() / self.columns.len().max(1)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values, row after row.
    fn rows(&self) -> std::slice::ChunksExact<'_, Value> {
        self.values.chunks_exact(self.columns.len().max(1))
    }

    /// Inserts the rows in multi-row statements, each run by `run` (the
    /// rows it returned); their ids in insertion order if `ids`. Every full
    /// statement has the same text, so a driver prepares it once.
    async fn insert_in_statements<F, Fut>(
        &self,
        backend: DbBackend,
        ids: bool,
        mut run: F,
    ) -> StorageResult<Vec<i64>>
    where
        F: FnMut(Statement) -> Fut,
        Fut: Future<Output = StorageResult<Vec<QueryResult>>>,
    {
        self.check_ids(ids);
        let width = self.columns.len().max(1);
        let mut inserted = Vec::with_capacity(if ids { self.len() } else { 0 });
        let mut sql = (String::new(), 0);
        for chunk in self.values.chunks(width * Self::ROWS_PER_STATEMENT) {
            let count = chunk.len() / width;
            if sql.1 != count {
                sql = (self.sql(backend, count, ids), count);
            }
            let statement = Statement::from_sql_and_values(backend, &sql.0, chunk.to_vec());
            for row in run(statement).await? {
                inserted.push(row.try_get::<i64>("", Self::ID)?);
            }
        }
        // Ids grow with insertion order; RETURNING itself promises no order.
        inserted.sort_unstable();
        Ok(inserted)
    }

    /// The text of an `INSERT` of `rows` rows, with the backend's
    /// placeholders, returning the new ids if asked. Written out, not built
    /// with sea-query: building statements of 500 rows (each value cloned
    /// into an expression and written back out) was about a tenth of the
    /// service's CPU in a bulk import on PostgreSQL (`perf`).
    fn sql(&self, backend: DbBackend, rows: usize, returning_id: bool) -> String {
        let quoted = |name: &str| format!("\"{name}\"");
        let columns: Vec<String> = self.columns.iter().map(|c| quoted(c)).collect();
        let mut sql = format!(
            "INSERT INTO {} ({}) VALUES ",
            quoted(self.table),
            columns.join(", ")
        );
        let mut placeholder = 0;
        for row in 0..rows {
            sql.push_str(if row == 0 { "(" } else { ", (" });
            for column in 0..self.columns.len() {
                if column > 0 {
                    sql.push_str(", ");
                }
                placeholder += 1;
                match backend {
                    DbBackend::Postgres => {
                        let _ = write!(sql, "${placeholder}");
                    }
                    _ => sql.push('?'),
                }
            }
            sql.push(')');
        }
        sql.push_str(&self.on_conflict_sql());
        if returning_id {
            let _ = write!(sql, " RETURNING {}", quoted(Self::ID));
        }
        sql
    }

    /// The `ON CONFLICT` clause, with a leading space; empty for a plain
    /// insert. The same on both backends.
    fn on_conflict_sql(&self) -> String {
        let Some(conflict) = &self.conflict else {
            return String::new();
        };
        let key: Vec<String> = conflict.key.iter().map(|c| format!("\"{c}\"")).collect();
        let set: Vec<String> = conflict
            .set
            .iter()
            .map(|(column, assign)| match assign {
                Assign::Replace => format!("\"{column}\" = excluded.\"{column}\""),
                Assign::Add => format!(
                    "\"{column}\" = \"{table}\".\"{column}\" + excluded.\"{column}\"",
                    table = self.table
                ),
            })
            .collect();
        format!(
            " ON CONFLICT ({}) DO UPDATE SET {}",
            key.join(", "),
            set.join(", ")
        )
    }
}

/// One result row, read with [`Row::get`].
pub enum Row {
    Pool(QueryResult),
    Sqlite {
        /// The statement's column names, shared by its rows.
        columns: Arc<[String]>,
        values: Vec<SqliteValue>,
    },
}

impl Row {
    /// The value of `column`, read by its name (a statement's columns
    /// are selected by entity column, and read back by the same one).
    pub fn get<T: Cell>(&self, column: impl IdenStatic) -> StorageResult<T> {
        let name = column.as_str();
        match self {
            Row::Pool(row) => Ok(row.try_get::<T>("", name)?),
            Row::Sqlite { columns, values } => {
                let index = columns
                    .iter()
                    .position(|selected| selected == name)
                    .ok_or_else(|| StorageError::fault(format!("no column {name} in the row")))?;
                let value = &values[index];
                T::from_sqlite(value).ok_or_else(|| self.undecodable::<T>(columns, index, value))
            }
        }
    }

    /// Why a cell could not be read: the column, its stored type and the
    /// row's id, never the value (it may be personal data, and ends up in
    /// the log).
    fn undecodable<T>(
        &self,
        columns: &[String],
        index: usize,
        value: &SqliteValue,
    ) -> StorageError {
        let Row::Sqlite { values, .. } = self else {
            unreachable!("only SQLite rows are decoded here")
        };
        let stored = match value {
            SqliteValue::Null => "null",
            SqliteValue::Integer(_) => "integer",
            SqliteValue::Real(_) => "real",
            SqliteValue::Text(_) => "text",
            SqliteValue::Blob(_) => "blob",
        };
        let row_id = columns
            .iter()
            .position(|name| name == "id")
            .and_then(|id| match values.get(id) {
                Some(SqliteValue::Integer(id)) => Some(id.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| "unknown".to_owned());
        let column = columns.get(index).map_or("?", String::as_str);
        StorageError::fault(format!(
            "column {column} (index {index}, row id {row_id}) holds a {stored} value \
             that does not read as {}",
            std::any::type_name::<T>()
        ))
    }
}

/// A type a column is read as.
pub trait Cell: TryGetable + Sized {
    fn from_sqlite(value: &SqliteValue) -> Option<Self>;
}

impl Cell for i64 {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        match value {
            SqliteValue::Integer(n) => Some(*n),
            _ => None,
        }
    }
}

impl Cell for i32 {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        i64::from_sqlite(value).and_then(|n| i32::try_from(n).ok())
    }
}

/// SQLite keeps a boolean as 0 or 1.
impl Cell for bool {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        i64::from_sqlite(value).map(|n| n != 0)
    }
}

impl Cell for String {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        match value {
            SqliteValue::Text(text) => Some(text.clone()),
            _ => None,
        }
    }
}

impl Cell for Vec<u8> {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        match value {
            SqliteValue::Blob(bytes) => Some(bytes.clone()),
            _ => None,
        }
    }
}

/// Stored as text, in the form [`to_sqlite`] writes. Requests only store
/// four-digit years, but a row stored before they were checked may hold
/// another (`-0001-06-01T00:00:00+00:00`): it still reads, so one old row
/// cannot make every later write of its candidate fail.
impl Cell for DateTime<Utc> {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        match value {
            SqliteValue::Text(text) => DateTime::parse_from_rfc3339(text)
                .or_else(|_| text.parse::<DateTime<chrono::FixedOffset>>())
                .ok()
                .map(|at| at.with_timezone(&Utc)),
            _ => None,
        }
    }
}

impl<T: Cell> Cell for Option<T> {
    fn from_sqlite(value: &SqliteValue) -> Option<Self> {
        match value {
            SqliteValue::Null => Some(None),
            value => T::from_sqlite(value).map(Some),
        }
    }
}

/// What the encounter writer writes through.
#[derive(Clone)]
pub enum WriterConnection {
    /// PostgreSQL's shared pool (its connections belong to the runtime
    /// that opened them), or an in-memory SQLite database.
    Pool(DatabaseConnection),
    /// A SQLite file, through a connection of the writer's own, and
    /// (the projector's) a read-only connection for [`Self::begin_read`].
    Sqlite {
        writer: SqliteConnection,
        reader: Option<SqliteConnection>,
    },
}

impl WriterConnection {
    /// The writer's own connection to the SQLite file.
    pub fn sqlite(writer: SqliteConnection) -> Self {
        WriterConnection::Sqlite {
            writer,
            reader: None,
        }
    }

    /// The same, reading through `reader` (read-only, on the same file)
    /// in [`Self::begin_read`].
    pub fn with_reader(self, reader: SqliteConnection) -> Self {
        match self {
            WriterConnection::Sqlite { writer, .. } => WriterConnection::Sqlite {
                writer,
                reader: Some(reader),
            },
            pool => pool,
        }
    }

    /// Begins a transaction that is going to write (see [`super::begin_write`]).
    pub async fn begin_write(&self) -> StorageResult<WriteTxn> {
        match self {
            WriterConnection::Pool(db) if super::is_postgres(db) => Ok(WriteTxn::Postgres(
                PgTxn::begin(db.get_postgres_connection_pool()).await?,
            )),
            WriterConnection::Pool(db) => Ok(WriteTxn::Pool(super::begin_write(db).await?)),
            WriterConnection::Sqlite { writer, .. } => writer.begin_write().await,
        }
    }

    /// Begins a transaction that only reads, in one snapshot, without the
    /// write turn: on a SQLite file through the reader connection (or,
    /// without one, in a write turn), on the pool a snapshot
    /// ([`super::snapshot`]). It writes nothing; commit or drop it.
    pub async fn begin_read(&self) -> StorageResult<WriteTxn> {
        match self {
            WriterConnection::Pool(db) => Ok(WriteTxn::Pool(super::snapshot(db).await?)),
            WriterConnection::Sqlite {
                reader: Some(reader),
                ..
            } => reader.begin_read(),
            WriterConnection::Sqlite {
                writer,
                reader: None,
            } => writer.begin_write().await,
        }
    }

    /// Whether the writer runs its statements itself, and so needs a
    /// thread of its own.
    pub fn is_own_thread(&self) -> bool {
        matches!(self, WriterConnection::Sqlite { .. })
    }
}

impl WriterConnection {
    /// Whether it is a PostgreSQL connection.
    pub fn is_postgres(&self) -> bool {
        matches!(self, WriterConnection::Pool(db) if super::is_postgres(db))
    }
}

/// The transaction an encounter write runs in.
pub enum WriteTxn {
    /// Through sea-orm: an in-memory SQLite database, and snapshots.
    Pool(DatabaseTransaction),
    Postgres(PgTxn),
    Sqlite(SqliteTxn),
}

impl WriteTxn {
    /// Refreshes PostgreSQL's planner statistics of the encounters and the
    /// candidates (`ANALYZE`); nothing on SQLite. Right after a large
    /// import, before autovacuum gets to it, PostgreSQL plans with the
    /// statistics of a much smaller table: the perception-shift report's
    /// lookups of 4,000 candidates then scanned the table for each and
    /// ran past the statement timeout. In the transaction, the new
    /// statistics are seen with what it commits.
    pub async fn analyze_encounters(&self) -> StorageResult<()> {
        match self {
            WriteTxn::Postgres(txn) => {
                txn.execute_unprepared("ANALYZE encounters, candidates")
                    .await
            }
            // A write on the pool is to an in-memory SQLite database.
            WriteTxn::Pool(_) | WriteTxn::Sqlite(_) => Ok(()),
        }
    }

    /// Whether another write waits for this transaction to end: on a
    /// SQLite file, for its write turn. Nothing waits on PostgreSQL, where
    /// writes meet only at the rows they both change.
    pub fn write_awaited(&self) -> bool {
        match self {
            WriteTxn::Pool(_) | WriteTxn::Postgres(_) => false,
            WriteTxn::Sqlite(txn) => txn.turn.as_ref().is_some_and(Turn::awaited),
        }
    }

    pub async fn commit(self) -> StorageResult<()> {
        match self {
            WriteTxn::Pool(txn) => Ok(txn.commit().await?),
            WriteTxn::Postgres(txn) => txn.commit().await,
            WriteTxn::Sqlite(txn) => txn.commit(),
        }
    }
}

impl Executor for WriteTxn {
    fn backend(&self) -> DbBackend {
        match self {
            WriteTxn::Pool(txn) => txn.get_database_backend(),
            WriteTxn::Postgres(_) => DbBackend::Postgres,
            WriteTxn::Sqlite(_) => DbBackend::Sqlite,
        }
    }

    async fn query<S: StatementBuilder>(&self, statement: &S) -> StorageResult<Vec<Row>> {
        match self {
            WriteTxn::Pool(txn) => txn.query(statement).await,
            WriteTxn::Postgres(txn) => txn.query(statement).await,
            WriteTxn::Sqlite(txn) => txn.connection.query(statement),
        }
    }

    async fn execute<S: StatementBuilder>(&self, statement: &S) -> StorageResult<u64> {
        match self {
            WriteTxn::Pool(txn) => Executor::execute(txn, statement).await,
            WriteTxn::Postgres(txn) => txn.execute(statement).await,
            WriteTxn::Sqlite(txn) => txn.connection.execute(statement),
        }
    }

    async fn insert_rows(&self, rows: &InsertRows, ids: bool) -> StorageResult<Vec<i64>> {
        match self {
            WriteTxn::Pool(txn) => Executor::insert_rows(txn, rows, ids).await,
            WriteTxn::Postgres(txn) => txn.insert_rows(rows, ids).await,
            WriteTxn::Sqlite(txn) => txn.connection.insert_rows(rows, ids),
        }
    }
}

/// A SQLite connection owned by one writer. Its statements run on the
/// caller's thread; the mutex is never contended (one writer uses it) and
/// only makes the handle shareable between the writer's tasks.
#[derive(Clone)]
pub struct SqliteConnection {
    inner: Arc<Mutex<rusqlite::Connection>>,
    /// Shared with the other writers of this process on the same file.
    gate: Option<WriteGate>,
}

/// Prepared statements kept: the text of multi-row statements varies with
/// the number of rows, and preparing them again costs more than the memory.
const STATEMENT_CACHE: usize = 2048;
/// The writer connection's page cache, in KiB (SQLite's negative
/// `cache_size`): 64 MiB.
const WRITER_CACHE_KIB: i64 = -65_536;
/// A reader runs a handful of fixed statements.
const READER_STATEMENT_CACHE: usize = 16;

impl SqliteConnection {
    /// Opens the database file with the settings of the pool's connections
    /// (WAL, `synchronous = NORMAL`, foreign keys, the busy timeout), so a
    /// commit here is exactly as durable as one through the pool.
    pub fn open(path: &Path, busy_timeout: Duration) -> anyhow::Result<Self> {
        super::disable_sqlite_memory_statistics();
        let connection = rusqlite::Connection::open(path)?;
        connection.busy_timeout(busy_timeout)?;
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "NORMAL")?;
        connection.pragma_update(None, "foreign_keys", "ON")?;
        // The writer and the projector read what they change (rollup rows,
        // reach bitmaps, the touched candidates' encounters) all over the
        // file: with SQLite's default 2 MiB cache most of their time went
        // to reading pages back from the OS.
        connection.pragma_update(None, "cache_size", WRITER_CACHE_KIB)?;
        connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(SqliteConnection {
            inner: Arc::new(Mutex::new(connection)),
            gate: None,
        })
    }

    /// Hands this connection's WAL checkpoints to a thread of their own
    /// (see `db::checkpoint`), every `every`, truncating the WAL past
    /// `limit_frames`.
    pub fn checkpoint_elsewhere(
        &self,
        path: &Path,
        every: Duration,
        limit_frames: i64,
    ) -> anyhow::Result<()> {
        self.lock().pragma_update(None, "wal_autocheckpoint", 0)?;
        super::checkpoint::start(
            path,
            Arc::downgrade(&self.inner),
            self.gate.clone(),
            every,
            limit_frames,
        )
    }

    /// The connection, taking `gate` around each write transaction.
    pub fn with_gate(self, gate: WriteGate) -> Self {
        SqliteConnection {
            gate: Some(gate),
            ..self
        }
    }

    /// Opens a connection that only reads (`query_only`), for an
    /// [`InlineReader`].
    pub fn open_reader(path: &Path, busy_timeout: Duration) -> anyhow::Result<Self> {
        super::disable_sqlite_memory_statistics();
        let connection = rusqlite::Connection::open(path)?;
        connection.busy_timeout(busy_timeout)?;
        connection.pragma_update(None, "query_only", "ON")?;
        connection.set_prepared_statement_cache_capacity(READER_STATEMENT_CACHE);
        Ok(SqliteConnection {
            inner: Arc::new(Mutex::new(connection)),
            gate: None,
        })
    }

    /// Begins a write transaction: the gate first, if any, then `BEGIN
    /// IMMEDIATE`, which takes the write lock at once, waiting for it
    /// (another process's) under the busy timeout.
    pub async fn begin_write(&self) -> StorageResult<WriteTxn> {
        let turn = match &self.gate {
            Some(gate) => Some(gate.turn().await),
            None => None,
        };
        self.lock()
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(database)?;
        Ok(WriteTxn::Sqlite(SqliteTxn {
            connection: self.clone(),
            open: true,
            turn,
        }))
    }

    /// Begins a read transaction without the gate: its snapshot is taken
    /// at its first read.
    fn begin_read(&self) -> StorageResult<WriteTxn> {
        self.lock().execute_batch("BEGIN").map_err(database)?;
        Ok(WriteTxn::Sqlite(SqliteTxn {
            connection: self.clone(),
            open: true,
            turn: None,
        }))
    }

    fn try_lock(&self) -> Option<MutexGuard<'_, rusqlite::Connection>> {
        match self.inner.try_lock() {
            Ok(guard) => Some(guard),
            Err(std::sync::TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        }
    }

    fn lock(&self) -> MutexGuard<'_, rusqlite::Connection> {
        // A panic while holding the lock leaves no half-run statement
        // behind that matters: the transaction is rolled back on drop.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn query<S: StatementBuilder>(&self, statement: &S) -> StorageResult<Vec<Row>> {
        query_on(&self.lock(), statement)
    }

    fn execute<S: StatementBuilder>(&self, statement: &S) -> StorageResult<u64> {
        run_on(&self.lock(), statement, |prepared, values| {
            Ok(prepared.execute(values)? as u64)
        })
    }

    /// One prepared single-row `INSERT`, run for each row: on a connection
    /// of our own that is SQLite's fastest way in. Built as multi-row
    /// statements (of 500 rows, 5,500 values), a batch of 5,000 encounters
    /// spent more building and binding them than SQLite spent inserting.
    fn insert_rows(&self, rows: &InsertRows, ids: bool) -> StorageResult<Vec<i64>> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        rows.check_ids(ids);
        let sql = rows.sql(DbBackend::Sqlite, 1, false);
        let connection = self.lock();
        let mut prepared = connection.prepare_cached(&sql).map_err(database)?;
        let mut inserted = Vec::with_capacity(if ids { rows.len() } else { 0 });
        for row in rows.rows() {
            for (index, value) in row.iter().enumerate() {
                prepared
                    .raw_bind_parameter(index + 1, to_sqlite(value)?)
                    .map_err(database)?;
            }
            prepared.raw_execute().map_err(database)?;
            if ids {
                inserted.push(connection.last_insert_rowid());
            }
        }
        Ok(inserted)
    }
}

/// Runs a query on a locked connection; its rows, read by position.
fn query_on<S: StatementBuilder>(
    connection: &rusqlite::Connection,
    statement: &S,
) -> StorageResult<Vec<Row>> {
    run_on(connection, statement, |prepared, values| {
        let names: Arc<[String]> = prepared
            .column_names()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut rows = prepared.query(values)?;
        let mut read = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..names.len())
                .map(|i| row.get::<_, SqliteValue>(i))
                .collect::<Result<Vec<_>, _>>()?;
            read.push(Row::Sqlite {
                columns: names.clone(),
                values,
            });
        }
        Ok(read)
    })
}

/// Builds the statement for SQLite and hands it, prepared (from the cache
/// after its first use), to `step` with its values.
fn run_on<S: StatementBuilder, T>(
    connection: &rusqlite::Connection,
    statement: &S,
    step: impl FnOnce(
        &mut rusqlite::CachedStatement<'_>,
        rusqlite::ParamsFromIter<Vec<SqliteValue>>,
    ) -> rusqlite::Result<T>,
) -> StorageResult<T> {
    let statement = statement.build(&DbBackend::Sqlite);
    let values = bind(&statement.values)?;
    let mut prepared = connection
        .prepare_cached(&statement.sql)
        .map_err(database)?;
    step(&mut prepared, rusqlite::params_from_iter(values)).map_err(database)
}

/// Point reads on the request path (API keys, idempotency keys), run on
/// the calling thread without waiting for another: on SQLite, on read-only
/// connections of its own, one per runtime worker, so a lookup costs
/// microseconds of SQLite instead of two thread hand-offs through the
/// pool's driver. It
/// reads the database as it is, so a change made anywhere (another
/// request, the command line) is seen by the next read. On PostgreSQL, or
/// an in-memory SQLite database, it is the pool.
#[derive(Clone)]
pub enum InlineReader {
    Pool(DatabaseConnection),
    Sqlite(Arc<[SqliteConnection]>),
}

impl InlineReader {
    /// `connections` read-only connections to the SQLite file at `path`.
    pub fn sqlite(path: &Path, busy_timeout: Duration, connections: usize) -> anyhow::Result<Self> {
        let connections = (0..connections.max(1))
            .map(|_| SqliteConnection::open_reader(path, busy_timeout))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(InlineReader::Sqlite(connections.into()))
    }
}

impl Executor for InlineReader {
    fn backend(&self) -> DbBackend {
        match self {
            InlineReader::Pool(db) => db.get_database_backend(),
            InlineReader::Sqlite(_) => DbBackend::Sqlite,
        }
    }

    async fn query<S: StatementBuilder>(&self, statement: &S) -> StorageResult<Vec<Row>> {
        match self {
            InlineReader::Pool(db) => db.query(statement).await,
            InlineReader::Sqlite(connections) => {
                // A statement never yields while it holds its connection,
                // so with one connection per worker one is always free;
                // another runtime's thread may have to wait for the first.
                match connections.iter().find_map(SqliteConnection::try_lock) {
                    Some(connection) => query_on(&connection, statement),
                    None => connections[0].query(statement),
                }
            }
        }
    }

    async fn execute<S: StatementBuilder>(&self, _statement: &S) -> StorageResult<u64> {
        Err(StorageError::fault("the inline reader only reads"))
    }

    async fn insert_rows(&self, _rows: &InsertRows, _ids: bool) -> StorageResult<Vec<i64>> {
        Err(StorageError::fault("the inline reader only reads"))
    }
}

/// A transaction on a [`SqliteConnection`]; rolled back unless committed.
pub struct SqliteTxn {
    connection: SqliteConnection,
    open: bool,
    /// The gate, released after the commit or rollback (fields drop after
    /// `Drop::drop`).
    turn: Option<Turn>,
}

impl SqliteTxn {
    fn commit(mut self) -> StorageResult<()> {
        self.open = false;
        let connection = self.connection.lock();
        let committed = connection.execute_batch("COMMIT").map_err(database);
        if committed.is_err() && !connection.is_autocommit() {
            // A failed COMMIT may leave the transaction open (SQLITE_BUSY).
            let _ = connection.execute_batch("ROLLBACK");
        }
        committed
    }
}

impl Drop for SqliteTxn {
    fn drop(&mut self) {
        if self.open {
            let connection = self.connection.lock();
            if !connection.is_autocommit() {
                if let Err(err) = connection.execute_batch("ROLLBACK") {
                    tracing::error!(error = %err, "rolling back the writer's transaction failed");
                }
            }
        }
    }
}

/// The values of a statement as SQLite stores them: times as the text sqlx
/// writes (`to_rfc3339_opts(AutoSi, false)`), so rows written here and
/// through the pool compare and sort alike.
fn bind(values: &Option<sea_orm::Values>) -> StorageResult<Vec<SqliteValue>> {
    let Some(values) = values else {
        return Ok(Vec::new());
    };
    values.0.iter().map(to_sqlite).collect()
}

fn to_sqlite(value: &Value) -> StorageResult<SqliteValue> {
    fn or_null<T>(value: &Option<T>, convert: impl Fn(&T) -> SqliteValue) -> SqliteValue {
        value.as_ref().map_or(SqliteValue::Null, convert)
    }
    Ok(match value {
        Value::Bool(v) => or_null(v, |b| SqliteValue::Integer(i64::from(*b))),
        Value::TinyInt(v) => or_null(v, |n| SqliteValue::Integer(i64::from(*n))),
        Value::SmallInt(v) => or_null(v, |n| SqliteValue::Integer(i64::from(*n))),
        Value::Int(v) => or_null(v, |n| SqliteValue::Integer(i64::from(*n))),
        Value::BigInt(v) => or_null(v, |n| SqliteValue::Integer(*n)),
        Value::TinyUnsigned(v) => or_null(v, |n| SqliteValue::Integer(i64::from(*n))),
        Value::SmallUnsigned(v) => or_null(v, |n| SqliteValue::Integer(i64::from(*n))),
        Value::Unsigned(v) => or_null(v, |n| SqliteValue::Integer(i64::from(*n))),
        Value::Double(v) => or_null(v, |n| SqliteValue::Real(*n)),
        Value::String(v) => or_null(v, |s| SqliteValue::Text(s.clone())),
        Value::Bytes(v) => or_null(v, |b| SqliteValue::Blob(b.clone())),
        Value::ChronoDateTimeUtc(v) => or_null(v, |at| {
            SqliteValue::Text(at.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        }),
        // A LIMIT is bound as a u64.
        Value::BigUnsigned(Some(n)) => SqliteValue::Integer(
            i64::try_from(*n).map_err(|_| StorageError::fault("an unsigned value beyond i64"))?,
        ),
        Value::BigUnsigned(None) => SqliteValue::Null,
        other => {
            return Err(StorageError::fault(format!(
                "the SQLite writer does not bind a {}",
                value_kind(other)
            )))
        }
    })
}

fn database(err: rusqlite::Error) -> StorageError {
    err.into()
}

/// The kind of a value the writer cannot bind, without the value.
fn value_kind(value: &Value) -> &'static str {
    match value {
        Value::Json(_) => "JSON value",
        Value::Float(_) => "float",
        Value::Char(_) => "char",
        _ => "value of another type",
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use sea_orm::{
        sea_query::{Alias, Expr, ExprTrait, Query},
        ConnectionTrait, Database,
    };

    use super::*;

    /// The columns the tests read.
    #[derive(Clone, Copy, Debug)]
    enum T {
        At,
        N,
        B,
        Note,
        Count,
    }

    impl sea_orm::sea_query::Iden for T {
        fn unquoted(&self) -> &str {
            self.as_str()
        }
    }

    impl IdenStatic for T {
        fn as_str(&self) -> &'static str {
            match self {
                T::At => "at",
                T::N => "n",
                T::B => "b",
                T::Note => "note",
                T::Count => "count",
            }
        }
    }

    fn times() -> Vec<DateTime<Utc>> {
        vec![
            Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            Utc.timestamp_micros(1_790_000_000_123_456).unwrap(),
            Utc.timestamp_micros(1_790_000_000_100_000).unwrap(),
        ]
    }

    /// A pool on a new database file `t.db` in a temporary directory, with
    /// `schema` run on it.
    async fn pool_on_new_file(schema: &str) -> (tempfile::TempDir, sea_orm::DatabaseConnection) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        crate::db::disable_sqlite_memory_statistics();
        let pool = Database::connect(format!("sqlite://{}?mode=rwc", path.display()))
            .await
            .unwrap();
        pool.execute_unprepared(schema).await.unwrap();
        (dir, pool)
    }

    /// Rows written by the writer's own connection read back through the
    /// pool (sqlx) as the same values, and the other way round: both store
    /// times in the same text form, so they also compare and sort alike.
    #[tokio::test]
    async fn both_connections_store_values_alike() {
        let (dir, pool) = pool_on_new_file(
            "CREATE TABLE t (id INTEGER PRIMARY KEY, at TEXT NOT NULL, n INTEGER, b BLOB)",
        )
        .await;
        let path = dir.path().join("t.db");
        let writer = SqliteConnection::open(&path, Duration::from_secs(1)).unwrap();
        let insert = |id: i64, at: DateTime<Utc>| {
            Query::insert()
                .into_table(Alias::new("t"))
                .columns([
                    Alias::new("id"),
                    Alias::new("at"),
                    Alias::new("n"),
                    Alias::new("b"),
                ])
                .values_panic([
                    id.into(),
                    at.into(),
                    Option::<i32>::None.into(),
                    vec![1u8, 2].into(),
                ])
                .to_owned()
        };
        let txn = writer.begin_write().await.unwrap();
        for (i, at) in times().into_iter().enumerate() {
            Executor::execute(&txn, &insert(i as i64, at))
                .await
                .unwrap();
        }
        txn.commit().await.unwrap();
        for (i, at) in times().into_iter().enumerate() {
            Executor::execute(&pool, &insert(10 + i as i64, at))
                .await
                .unwrap();
        }
        let select = Query::select()
            .columns([
                Alias::new("id"),
                Alias::new("at"),
                Alias::new("n"),
                Alias::new("b"),
            ])
            .from(Alias::new("t"))
            .order_by(Alias::new("id"), sea_orm::Order::Asc)
            .to_owned();
        let by_writer = writer.begin_write().await.unwrap();
        for rows in [
            pool.query(&select).await.unwrap(),
            by_writer.query(&select).await.unwrap(),
        ] {
            let read: Vec<DateTime<Utc>> = rows.iter().map(|row| row.get(T::At).unwrap()).collect();
            let expected: Vec<DateTime<Utc>> = times().into_iter().chain(times()).collect();
            assert_eq!(read, expected);
            for row in &rows {
                assert_eq!(row.get::<Option<i32>>(T::N).unwrap(), None);
                assert_eq!(row.get::<Vec<u8>>(T::B).unwrap(), vec![1, 2]);
            }
        }
        drop(by_writer);
        // The same text, so a range filter matches the same rows.
        let count = |txn_rows: Vec<Row>| txn_rows[0].get::<i64>(T::Count).unwrap();
        let in_range = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("count"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("at")).gte(times()[2]))
            .to_owned();
        assert_eq!(count(pool.query(&in_range).await.unwrap()), 4);
    }

    #[test]
    fn insert_text_has_a_placeholder_per_value() {
        let rows = InsertRows::into_table("t", vec!["a", "b"]);
        assert_eq!(
            rows.sql(DbBackend::Postgres, 2, true),
            r#"INSERT INTO "t" ("a", "b") VALUES ($1, $2), ($3, $4) RETURNING "id""#
        );
        assert_eq!(
            rows.sql(DbBackend::Sqlite, 1, false),
            r#"INSERT INTO "t" ("a", "b") VALUES (?, ?)"#
        );
        let upsert = rows.on_conflict(["a"], [("b", Assign::Add), ("c", Assign::Replace)]);
        assert_eq!(
            upsert.sql(DbBackend::Sqlite, 1, false),
            r#"INSERT INTO "t" ("a", "b") VALUES (?, ?) ON CONFLICT ("a") DO UPDATE SET "b" = "t"."b" + excluded."b", "c" = excluded."c""#
        );
    }

    /// An upsert adds to or replaces the stored row's columns alike through
    /// the pool (multi-row statements) and the writer's connection (a
    /// prepared statement per row).
    #[tokio::test]
    async fn both_connections_upsert_alike() {
        let (dir, pool) = pool_on_new_file(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, k INTEGER NOT NULL UNIQUE, n INTEGER NOT NULL, note TEXT)",
        )
        .await;
        let writer =
            SqliteConnection::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
        let upsert = |keys: std::ops::Range<i64>, n: i64, note: &str| {
            let mut rows = InsertRows::into_table("t", vec!["k", "n", "note"])
                .on_conflict(["k"], [("n", Assign::Add), ("note", Assign::Replace)]);
            for k in keys {
                rows.push([k.into(), n.into(), note.into()]);
            }
            rows
        };
        Executor::insert_rows(&pool, &upsert(0..4, 1, "pool"), false)
            .await
            .unwrap();
        let txn = writer.begin_write().await.unwrap();
        txn.insert_rows(&upsert(2..6, 10, "writer"), false)
            .await
            .unwrap();
        txn.commit().await.unwrap();
        Executor::insert_rows(&pool, &upsert(5..7, 100, "pool again"), false)
            .await
            .unwrap();
        let select = Query::select()
            .columns([Alias::new("n"), Alias::new("note")])
            .from(Alias::new("t"))
            .order_by(Alias::new("k"), sea_orm::Order::Asc)
            .to_owned();
        let read: Vec<(i64, String)> = pool
            .query(&select)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(T::N).unwrap(), row.get(T::Note).unwrap()))
            .collect();
        let expected = [
            (1, "pool"),
            (1, "pool"),
            (11, "writer"),
            (11, "writer"),
            (10, "writer"),
            (110, "pool again"),
            (100, "pool again"),
        ]
        .map(|(n, note)| (n, note.to_owned()));
        assert_eq!(read, expected);
    }

    /// Rows inserted by the writer's connection (a prepared statement per
    /// row) and through the pool (statements of 500 rows) come back with
    /// the same ids, in insertion order, and read back alike.
    #[tokio::test]
    async fn both_connections_insert_rows_alike() {
        let (dir, pool) = pool_on_new_file(
            "CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, n INTEGER, note TEXT)",
        )
        .await;
        let writer =
            SqliteConnection::open(&dir.path().join("t.db"), Duration::from_secs(1)).unwrap();
        let rows = |count: usize| {
            let mut rows = InsertRows::into_table("t", vec!["at", "n", "note"]);
            for (i, at) in times().into_iter().cycle().take(count).enumerate() {
                let note = (i % 2 == 0).then(|| format!("note {i}"));
                rows.push([at.into(), Option::<i32>::None.into(), note.into()]);
            }
            rows
        };
        // Past one statement's 500 rows through the pool.
        let by_pool = Executor::insert_rows(&pool, &rows(1203), true)
            .await
            .unwrap();
        assert_eq!(by_pool, (1..=1203).collect::<Vec<i64>>());
        let txn = writer.begin_write().await.unwrap();
        let by_writer = txn.insert_rows(&rows(7), true).await.unwrap();
        assert!(txn.insert_rows(&rows(0), true).await.unwrap().is_empty());
        assert!(txn.insert_rows(&rows(2), false).await.unwrap().is_empty());
        txn.commit().await.unwrap();
        assert_eq!(by_writer, (1204..=1210).collect::<Vec<i64>>());
        let select = Query::select()
            .columns([Alias::new("at"), Alias::new("n"), Alias::new("note")])
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("id")).gt(1200))
            .order_by(Alias::new("id"), sea_orm::Order::Asc)
            .to_owned();
        let read: Vec<(DateTime<Utc>, Option<i32>, Option<String>)> = pool
            .query(&select)
            .await
            .unwrap()
            .iter()
            .map(|row| {
                (
                    row.get(T::At).unwrap(),
                    row.get(T::N).unwrap(),
                    row.get(T::Note).unwrap(),
                )
            })
            .collect();
        let times = times();
        let expected: Vec<_> = (1200..1203)
            .chain(0..7)
            .chain(0..2)
            .map(|i: usize| {
                (
                    times[i % 3],
                    None,
                    (i % 2 == 0).then(|| format!("note {i}")),
                )
            })
            .collect();
        assert_eq!(read, expected);
    }

    /// The inline reader sees each change committed elsewhere at once (a
    /// key revoked by another process is refused by the next request), and
    /// writes nothing.
    #[tokio::test]
    async fn the_inline_reader_reads_what_is_committed_and_only_reads() {
        let (dir, pool) = pool_on_new_file(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER)",
        )
        .await;
        let path = dir.path().join("t.db");
        let reader = InlineReader::sqlite(&path, Duration::from_secs(1), 2).unwrap();
        let read = Query::select()
            .column(Alias::new("n"))
            .from(Alias::new("t"))
            .and_where(Expr::col(Alias::new("id")).eq(1))
            .to_owned();
        assert!(reader.query(&read).await.unwrap().is_empty());
        for n in [7i64, 8] {
            pool.execute_unprepared(&format!("INSERT OR REPLACE INTO t VALUES (1, {n})"))
                .await
                .unwrap();
            let rows = reader.query(&read).await.unwrap();
            assert_eq!(rows[0].get::<i64>(T::N).unwrap(), n);
        }
        let insert = Query::insert()
            .into_table(Alias::new("t"))
            .columns([Alias::new("id"), Alias::new("n")])
            .values_panic([2i64.into(), 2i64.into()])
            .to_owned();
        assert!(reader.execute(&insert).await.is_err());
        let InlineReader::Sqlite(connections) = &reader else {
            panic!("a SQLite file gets connections of its own");
        };
        let refused = query_on(&connections[0].lock(), &insert);
        assert!(refused.is_err(), "a reader's connection is query_only");
    }

    /// A transaction dropped without commit leaves nothing behind.
    #[test]
    fn a_cell_that_does_not_decode_is_named_but_never_shown() {
        let row = Row::Sqlite {
            columns: ["id", "candidate_id", "note"].map(str::to_owned).into(),
            values: vec![
                SqliteValue::Integer(42),
                SqliteValue::Integer(7),
                SqliteValue::Text("Nguyen Thi Lan, lan@example.com".to_owned()),
            ],
        };
        let message = row.get::<i64>(T::Note).unwrap_err().to_string();
        assert!(message.contains("note"), "{message}");
        assert!(message.contains("row id 42"), "{message}");
        assert!(!message.contains("Nguyen"), "{message}");
        assert!(!message.contains("lan@"), "{message}");
    }

    #[test]
    fn times_stored_with_other_year_forms_still_read() {
        let read = |text: &str| DateTime::<Utc>::from_sqlite(&SqliteValue::Text(text.to_owned()));
        assert_eq!(
            read("2026-11-02T09:00:00+00:00"),
            Some(Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).unwrap())
        );
        assert_eq!(
            read("-0001-06-01T00:00:00+00:00"),
            Some(Utc.with_ymd_and_hms(-1, 6, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(
            read("+10000-01-01T00:00:00+00:00"),
            Some(Utc.with_ymd_and_hms(10000, 1, 1, 0, 0, 0).unwrap())
        );
        assert_eq!(read("not a time"), None);
    }

    #[tokio::test]
    async fn an_uncommitted_write_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = SqliteConnection::open(&path, Duration::from_secs(1)).unwrap();
        writer
            .lock()
            .execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .unwrap();
        let insert = Query::insert()
            .into_table(Alias::new("t"))
            .columns([Alias::new("id")])
            .values_panic([1i64.into()])
            .to_owned();
        let txn = writer.begin_write().await.unwrap();
        assert_eq!(Executor::execute(&txn, &insert).await.unwrap(), 1);
        drop(txn);
        let txn = writer.begin_write().await.unwrap();
        let count = Query::select()
            .expr_as(Expr::cust("COUNT(*)"), Alias::new("count"))
            .from(Alias::new("t"))
            .to_owned();
        let rows = txn.query(&count).await.unwrap();
        assert_eq!(rows[0].get::<i64>(T::Count).unwrap(), 0);
    }
}
