//! Hand-written SQL for the reports and the export, portable between SQLite and PostgreSQL:
//! the text is the same on both, only the placeholders differ (`?` vs
//! `$1`), and [`Sql::bind`] writes the right one. Identifiers never come
//! from input: only values are bound.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, StatementBuilder, Value};

pub struct Sql {
    backend: DbBackend,
    text: String,
    values: Vec<Value>,
}

impl Sql {
    pub fn new(db: &impl ConnectionTrait) -> Self {
        Self::for_backend(db.get_database_backend())
    }

    pub fn for_backend(backend: DbBackend) -> Self {
        Sql {
            backend,
            text: String::new(),
            values: Vec::new(),
        }
    }

    /// Appends SQL text.
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder bound to `value`. On SQLite a bare `?` (the
    /// values are bound in the order they are written): the driver looks
    /// up the name of each numbered one (`?7`), and SQLite finds a name by
    /// walking the list of all of them, so binding a report's tail of
    /// thousands of values took 12% of the pool thread's time under writes
    /// (`perf`).
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        match self.backend {
            DbBackend::Postgres => self.text.push_str(&format!("${}", self.values.len())),
            _ => self.text.push('?'),
        }
        self
    }

    /// Appends the rows of `rows` (a `SELECT ... WHERE ...`) whose
    /// `column` is one of the ids `ids` selects (one column), each id's
    /// rows looked up on their own, from an index on `column`.
    ///
    /// SQLite reads the ids once (`column IN (ids)`), then each id's rows.
    /// Without statistics (a table just loaded, as a large journey often
    /// is) PostgreSQL estimates one row on each side and plans that `IN` as
    /// a nested loop that reads every id for each row: 30,000 encounters
    /// took minutes. There a lateral subquery that cannot be flattened
    /// (`OFFSET 0`) gives the plan wanted.
    pub fn push_rows_per_id(
        &mut self,
        rows: impl Fn(&mut Sql),
        column: &str,
        ids: impl Fn(&mut Sql),
    ) -> &mut Self {
        match self.backend {
            DbBackend::Postgres => {
                self.push("SELECT a.* FROM (");
                ids(self);
                self.push(") AS e (id) CROSS JOIN LATERAL (");
                rows(self);
                self.push(" AND ")
                    .push(column)
                    .push(" = e.id OFFSET 0) AS a");
            }
            _ => {
                rows(self);
                self.push(" AND ").push(column).push(" IN (");
                ids(self);
                self.push(")");
            }
        }
        self
    }

    /// Appends an aggregate that packs the `id` (an integer) and `blob`
    /// (a blob, never NULL) columns of the rows into one blob, read with
    /// [`unpack_blobs`]: many rows in one. Each row is its id (8 bytes),
    /// its blob's length (4 bytes), both big-endian, then the blob.
    ///
    /// On SQLite every row a query returns is handed from the pool
    /// connection's thread to the task that reads it, a thread woken per
    /// row; for rows of a few hundred bytes, read and decoded in a few
    /// microseconds, that handover was over half the time of a report
    /// reading 10,000 of them. A first packing wrote the blobs as hex
    /// text: encoding and decoding it was then a third of that report's
    /// time. (SQLite's `||` and `group_concat` copy a blob's bytes as they
    /// are; the `CAST` only gives the result its type back.)
    pub fn push_packed_blobs(&mut self, id: &str, blob: &str) -> &mut Self {
        self.push(&packed_blobs(self.backend, id, blob))
    }

    pub fn statement(&self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text.clone(), self.values.clone())
    }

    pub async fn all(&self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        db.query_all_raw(self.statement()).await
    }
}

/// So that hand-written SQL runs through `db::store::Executor` too; the text
/// is written for the backend it was begun for.
impl StatementBuilder for Sql {
    fn build(&self, backend: &DbBackend) -> Statement {
        debug_assert_eq!(*backend, self.backend, "SQL written for another backend");
        self.statement()
    }
}

/// The aggregate [`Sql::push_packed_blobs`] appends.
fn packed_blobs(backend: DbBackend, id: &str, blob: &str) -> String {
    match backend {
        DbBackend::Postgres => format!(
            "string_agg(int8send(CAST({id} AS BIGINT)) || int4send(length({blob})) || {blob}, \
             ''::bytea)"
        ),
        _ => format!(
            "CAST(group_concat(unhex(printf('%016X%08X', {id}, length({blob}))) || {blob}, '') \
             AS BLOB)"
        ),
    }
}

/// The `(id, blob)` pairs of a [`Sql::push_packed_blobs`] blob, in its
/// order; `None` if it is not one.
pub fn unpack_blobs(mut packed: &[u8]) -> Option<Vec<(i64, &[u8])>> {
    let mut pairs = Vec::new();
    while !packed.is_empty() {
        let (id, rest) = packed.split_first_chunk::<8>()?;
        let (length, rest) = rest.split_first_chunk::<4>()?;
        let length = usize::try_from(u32::from_be_bytes(*length)).ok()?;
        if rest.len() < length {
            return None;
        }
        let (blob, rest) = rest.split_at(length);
        pairs.push((i64::from_be_bytes(*id), blob));
        packed = rest;
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What SQLite packs unpacks to the rows, whatever their bytes: NULs,
    /// bytes that are not UTF-8, empty blobs, large ids. (The PostgreSQL
    /// packing is checked by the recount tests of perception shift and
    /// touchpoint impact, which run on both backends.)
    #[tokio::test]
    async fn sqlite_packs_blobs_byte_for_byte() {
        use sea_orm::{ConnectionTrait, Database};
        let db = Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
            .await
            .unwrap();
        let rows: Vec<(i64, Vec<u8>)> = vec![
            (1, vec![0, 0, 0]),
            (2, vec![]),
            (3, (0..=255).collect()),
            (4, vec![0xff, 0xfe, 0x00, 0xc3, 0x28, 0x80]),
            (i64::MAX, b"plain".to_vec()),
        ];
        for (id, blob) in &rows {
            let mut insert = Sql::new(&db);
            insert
                .push("INSERT INTO t (id, b) VALUES (")
                .bind(*id)
                .push(", ")
                .bind(blob.clone())
                .push(")");
            db.execute_raw(insert.statement()).await.unwrap();
        }
        let mut select = Sql::new(&db);
        select
            .push("SELECT ")
            .push_packed_blobs("id", "b")
            .push(" AS packed FROM (SELECT id, b FROM t ORDER BY id) AS page");
        let packed: Vec<u8> = select.all(&db).await.unwrap()[0]
            .try_get("", "packed")
            .unwrap();
        let unpacked: Vec<(i64, Vec<u8>)> = unpack_blobs(&packed)
            .unwrap()
            .into_iter()
            .map(|(id, blob)| (id, blob.to_vec()))
            .collect();
        assert_eq!(unpacked, rows);
    }

    #[test]
    fn packed_blobs_unpack_and_keep_empty_blobs() {
        let mut packed = Vec::new();
        for (id, blob) in [(7i64, &[0x00, 0xff, 0x10][..]), (12, &[]), (30, &[0xab])] {
            packed.extend(id.to_be_bytes());
            packed.extend((blob.len() as u32).to_be_bytes());
            packed.extend(blob);
        }
        assert_eq!(
            unpack_blobs(&packed),
            Some(vec![
                (7, &[0x00, 0xff, 0x10][..]),
                (12, &[][..]),
                (30, &[0xab][..])
            ])
        );
        assert_eq!(unpack_blobs(&[]), Some(vec![]));
        assert_eq!(
            unpack_blobs(&packed[..packed.len() - 1]),
            None,
            "a cut blob"
        );
        assert_eq!(unpack_blobs(&packed[..5]), None, "a cut id");
        assert_eq!(unpack_blobs(&packed[..10]), None, "a cut length");
    }
}
