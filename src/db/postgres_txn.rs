//! The encounter writer's and the projector's transactions on PostgreSQL:
//! sqlx's own transaction on a connection of the shared pool, so that large
//! inserts can go in with `COPY`.
//!
//! sea-orm's transaction does not lend its connection, and `COPY` runs on
//! the connection itself. For the 5,000 encounters of a batch, `COPY`
//! takes PostgreSQL a fraction of what ten multi-row `INSERT`s of 500 rows
//! take (see README, Performance): rows go to the table in bulk and no
//! statement of 5,500 parameters is planned and bound. Everything else
//! runs the same sea-query statements as through sea-orm, bound the way
//! sea-orm binds them (`sea-query-sqlx`).

use std::{fmt::Write as _, sync::Arc};

use chrono::{DateTime, SecondsFormat, Timelike, Utc};
use sea_orm::{
    sqlx::{self, postgres::Postgres},
    DbErr, QueryResult, RuntimeErr, Statement, Value,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::Mutex;

use super::{StorageError, StorageResult};

/// Inserts of at least this many rows go in with `COPY`; fewer, as
/// multi-row `INSERT`s (a `COPY` that returns ids takes a round trip more).
pub const COPY_FROM_ROWS: usize = 64;

/// A PostgreSQL transaction; rolled back unless committed (sqlx rolls it
/// back when its connection goes back to the pool).
pub struct PgTxn {
    /// Locked for one statement at a time: its `Executor` (in `store`)
    /// takes `&self`.
    txn: Mutex<sqlx::Transaction<'static, Postgres>>,
}

impl PgTxn {
    pub async fn begin(pool: &sqlx::PgPool) -> StorageResult<Self> {
        let txn = pool.begin().await.map_err(storage)?;
        Ok(PgTxn {
            txn: Mutex::new(txn),
        })
    }

    pub async fn commit(self) -> StorageResult<()> {
        self.txn.into_inner().commit().await.map_err(storage)
    }

    pub async fn execute_unprepared(&self, sql: &'static str) -> StorageResult<()> {
        let mut txn = self.txn.lock().await;
        sqlx::raw_sql(sql)
            .execute(&mut **txn)
            .await
            .map_err(storage)?;
        Ok(())
    }

    /// The rows a statement returns.
    pub async fn fetch(&self, statement: Statement) -> StorageResult<Vec<QueryResult>> {
        let mut txn = self.txn.lock().await;
        let rows = bound(statement)
            .fetch_all(&mut **txn)
            .await
            .map_err(storage)?;
        Ok(rows.into_iter().map(QueryResult::from).collect())
    }

    /// Runs a statement; the number of rows it changed.
    pub async fn run(&self, statement: Statement) -> StorageResult<u64> {
        let mut txn = self.txn.lock().await;
        Ok(bound(statement)
            .execute(&mut **txn)
            .await
            .map_err(storage)?
            .rows_affected())
    }

    /// Inserts `rows` (a value for each of `columns`, row after row) into
    /// `table` with `COPY`, with their ids drawn from the table's sequence
    /// first if `ids` (so the new ids are known, in insertion order):
    /// `None`, having written nothing, if a value has no text form here.
    pub async fn copy<'a>(
        &self,
        table: &str,
        columns: &[&str],
        rows: impl ExactSizeIterator<Item = &'a [Value]>,
        ids: bool,
    ) -> StorageResult<Option<Vec<i64>>> {
        let mut txn = self.txn.lock().await;
        let mut new_ids = Vec::new();
        if ids {
            let count =
                i64::try_from(rows.len()).map_err(|_| StorageError::fault("too many rows"))?;
            new_ids = sqlx::query_scalar::<_, i64>(
                // The sequence is looked up once: PostgreSQL inlines a
                // plain subquery and looked it up for each row, which took
                // 15 ms for 5,000 ids against 3 ms (`psql`).
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence($1, 'id')::regclass AS seq) \
                 SELECT nextval(s.seq) FROM s, generate_series(1, $2)",
            )
            .bind(table)
            .bind(count)
            .fetch_all(&mut **txn)
            .await
            .map_err(storage)?;
            // Ids grow with insertion order, as `INSERT` gives them.
            new_ids.sort_unstable();
        }
        let Some(data) = copy_data(rows, ids.then_some(new_ids.as_slice())) else {
            return Ok(None); // the drawn ids are a gap in the sequence, as a rollback leaves
        };
        let mut columns: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        if ids {
            columns.push("\"id\"".to_owned());
        }
        let statement = format!("COPY \"{table}\" ({}) FROM STDIN", columns.join(", "));
        let mut copy = txn.copy_in_raw(&statement).await.map_err(storage)?;
        copy.send(data.into_bytes()).await.map_err(storage)?;
        copy.finish().await.map_err(storage)?;
        Ok(Some(new_ids))
    }
}

/// A statement with its values bound as sea-orm binds them.
fn bound(statement: Statement) -> sqlx::query::Query<'static, Postgres, SqlxValues> {
    let values = statement.values.unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(statement.sql), SqlxValues(values))
}

/// A driver error, classified as every storage error is.
fn storage(err: sqlx::Error) -> StorageError {
    StorageError::from(DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))))
}

/// The rows in `COPY`'s text format, a line each, each ending with its id
/// if `ids` are given; `None` if a value has no text form here.
fn copy_data<'a>(
    rows: impl ExactSizeIterator<Item = &'a [Value]>,
    ids: Option<&[i64]>,
) -> Option<String> {
    let mut data = String::with_capacity(rows.len() * 128);
    for (index, row) in rows.enumerate() {
        for (column, value) in row.iter().enumerate() {
            if column > 0 {
                data.push('\t');
            }
            copy_text(value, &mut data)?;
        }
        if let Some(ids) = ids {
            let _ = write!(data, "\t{}", ids.get(index)?);
        }
        data.push('\n');
    }
    Some(data)
}

/// Writes `value` as `COPY`'s text format reads it: `\N` for NULL, text
/// with backslash, tab, newline and carriage return escaped. Times are
/// written to the microsecond, as PostgreSQL keeps them and sqlx sends
/// them; `None` for a value that would need more care than that (a
/// fraction below the microsecond, a year outside 1 to 9999, a float that
/// is not finite) or that the writes never insert in bulk.
fn copy_text(value: &Value, line: &mut String) -> Option<()> {
    fn number(line: &mut String, n: Option<impl std::fmt::Display>) {
        match n {
            Some(n) => {
                let _ = write!(line, "{n}");
            }
            None => line.push_str("\\N"),
        }
    }
    match value {
        Value::Bool(v) => line.push_str(match v {
            Some(true) => "t",
            Some(false) => "f",
            None => "\\N",
        }),
        Value::SmallInt(v) => number(line, *v),
        Value::Int(v) => number(line, *v),
        Value::BigInt(v) => number(line, *v),
        Value::Double(v) => {
            if v.is_some_and(|n| !n.is_finite()) {
                return None;
            }
            number(line, *v)
        }
        Value::String(v) => match v {
            Some(text) => escape(text, line),
            None => line.push_str("\\N"),
        },
        Value::Json(v) => match v {
            Some(json) => escape(&json.to_string(), line),
            None => line.push_str("\\N"),
        },
        Value::ChronoDateTimeUtc(v) => match v {
            Some(at) => line.push_str(&copy_time(at)?),
            None => line.push_str("\\N"),
        },
        _ => return None,
    }
    Some(())
}

fn copy_time(at: &DateTime<Utc>) -> Option<String> {
    use chrono::Datelike;
    if at.nanosecond() % 1_000 != 0 || !(1..=9999).contains(&at.year()) {
        return None;
    }
    Some(at.to_rfc3339_opts(SecondsFormat::Micros, true))
}

fn escape(text: &str, line: &mut String) {
    for c in text.chars() {
        match c {
            '\\' => line.push_str("\\\\"),
            '\t' => line.push_str("\\t"),
            '\n' => line.push_str("\\n"),
            '\r' => line.push_str("\\r"),
            c => line.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn text(value: Value) -> Option<String> {
        let mut line = String::new();
        copy_text(&value, &mut line).map(|()| line)
    }

    #[test]
    fn values_are_written_as_copy_reads_them() {
        assert_eq!(text(Value::BigInt(Some(-42))).as_deref(), Some("-42"));
        assert_eq!(text(Value::Int(None)).as_deref(), Some("\\N"));
        assert_eq!(text(Value::Bool(Some(false))).as_deref(), Some("f"));
        assert_eq!(
            text(Value::String(Some("a\\b\tc\nd\re \\N".into()))).as_deref(),
            Some("a\\\\b\\tc\\nd\\re \\\\N")
        );
        let at = Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(
            text(Value::ChronoDateTimeUtc(Some(at))).as_deref(),
            Some("2026-03-04T05:06:07.123456Z")
        );
    }

    #[test]
    fn values_that_need_more_care_are_left_to_insert() {
        let at =
            Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::nanoseconds(1);
        assert_eq!(text(Value::ChronoDateTimeUtc(Some(at))), None);
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(text(Value::ChronoDateTimeUtc(Some(far))), None);
        assert_eq!(text(Value::Double(Some(f64::NAN))), None);
        assert_eq!(text(Value::Bytes(Some(vec![1]))), None);
    }
}
