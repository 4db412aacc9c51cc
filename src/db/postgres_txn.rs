//! The encounter writer's and the projector's transactions on PostgreSQL:
//! sqlx's own transaction on a connection of the shared pool, so that large
//! inserts can go in with `COPY`.
//!
//! sea-orm's transaction does not lend its connection, and `COPY` runs on
//! the connection itself. For the 5,000 encounters of a batch, `COPY`
//! takes PostgreSQL a fraction of what ten multi-row `INSERT`s of 500 rows
//! take (see README, Performance): rows go to the table in bulk and no
//! statement of 5,500 parameters is planned and bound. The rows are sent
//! in `COPY`'s binary format, each value as its column's type reads it:
//! PostgreSQL then parses no text (into a table without indexes, 5,000
//! encounters took 5 ms in binary against 10 ms in text; into the
//! encounters table 40 ms against 54, medians of twelve). Smaller inserts
//! and upserts bind the same binary values as one array per column and
//! read them back with `unnest` ([`PgTxn::insert_arrays`]). Everything
//! else runs the same sea-query statements as through sea-orm, bound the
//! way sea-orm binds them (`sea-query-sqlx`).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex as StdMutex, OnceLock},
};

use chrono::{DateTime, Datelike, Timelike, Utc};
use sea_orm::{
    sqlx::{
        self,
        encode::IsNull,
        error::BoxDynError,
        postgres::{types::Oid, PgArgumentBuffer, PgTypeInfo, Postgres},
    },
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
    /// `None`, having written nothing, if a value is not sent as its
    /// column's type here.
    pub async fn copy<'a>(
        &self,
        table: &str,
        columns: &[&str],
        rows: impl ExactSizeIterator<Item = &'a [Value]>,
        ids: bool,
    ) -> StorageResult<Option<Vec<i64>>> {
        let mut txn = self.txn.lock().await;
        let Some(wires) = wires(&mut txn, table, columns).await? else {
            return Ok(None);
        };
        let mut new_ids = Vec::new();
        if ids {
            let count =
                i64::try_from(rows.len()).map_err(|_| StorageError::fault("too many rows"))?;
            new_ids = sqlx::query_scalar::<_, Vec<i64>>(
                // The sequence is looked up once: PostgreSQL inlines a
                // plain subquery and looked it up for each row, which took
                // 15 ms for 5,000 ids against 3 ms (`psql`). One array
                // rather than a row per id: decoding 5,000 rows was about
                // 3% of the service's CPU in a bulk import (`perf`).
                "WITH s AS MATERIALIZED (SELECT pg_get_serial_sequence($1, 'id')::regclass AS seq) \
                 SELECT coalesce(array_agg(nextval(s.seq)), '{}') FROM s, generate_series(1, $2)",
            )
            .bind(table)
            .bind(count)
            .fetch_one(&mut **txn)
            .await
            .map_err(storage)?;
            // Ids grow with insertion order, as `INSERT` gives them.
            new_ids.sort_unstable();
        }
        let Some(data) = copy_data(rows, &wires, ids.then_some(new_ids.as_slice())) else {
            return Ok(None); // the drawn ids are a gap in the sequence, as a rollback leaves
        };
        let mut columns: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        if ids {
            columns.push("\"id\"".to_owned());
        }
        let statement = format!(
            "COPY \"{table}\" ({}) FROM STDIN WITH (FORMAT binary)",
            columns.join(", ")
        );
        let mut copy = txn.copy_in_raw(&statement).await.map_err(storage)?;
        copy.send(data).await.map_err(storage)?;
        copy.finish().await.map_err(storage)?;
        Ok(Some(new_ids))
    }

    /// Inserts `rows` into `table` with one statement that binds each
    /// column's values as one array and reads them back with `unnest`,
    /// followed by `on_conflict` (an `ON CONFLICT` clause, or nothing);
    /// the new ids in insertion order if `ids`. `None`, having written
    /// nothing, when a value is not sent that way (as for `COPY`).
    ///
    /// The statement's text depends only on the table, the columns and
    /// the clause, so each connection prepares it once; a multi-row
    /// `INSERT` is a new statement for each number of rows, of rows ×
    /// columns parameters to bind and plan. Under single POSTs, parsing
    /// and binding the projector's upserts and the writer's inserts that
    /// way was about a fifth of PostgreSQL's time (its statement log); an
    /// upsert of 110 to 210 counter rows took 9.5 to 10.7 ms this way
    /// against 17.4 to 17.9 ms as a prepared multi-row `INSERT` (medians
    /// of 60, `psycopg`, commit included).
    pub async fn insert_arrays<'a>(
        &self,
        table: &str,
        columns: &[&str],
        rows: impl ExactSizeIterator<Item = &'a [Value]>,
        on_conflict: &str,
        ids: bool,
    ) -> StorageResult<Option<Vec<i64>>> {
        if rows.len() == 0 {
            return Ok(Some(Vec::new()));
        }
        let mut txn = self.txn.lock().await;
        let Some(wires) = wires(&mut txn, table, columns).await? else {
            return Ok(None);
        };
        let Some(arrays) = column_arrays(rows, &wires) else {
            return Ok(None);
        };
        let quoted: Vec<String> = columns.iter().map(|c| format!("\"{c}\"")).collect();
        let unnest: Vec<String> = wires
            .iter()
            .enumerate()
            .map(|(index, wire)| format!("${}::{}[]", index + 1, wire.element_type().1))
            .collect();
        let mut sql = format!(
            "INSERT INTO \"{table}\" ({}) SELECT * FROM unnest({}){on_conflict}",
            quoted.join(", "),
            unnest.join(", ")
        );
        if ids {
            sql.push_str(" RETURNING \"id\"");
        }
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for array in arrays {
            query = query.bind(array);
        }
        let rows = query.fetch_all(&mut **txn).await.map_err(storage)?;
        let mut inserted = rows
            .iter()
            .map(|row| sqlx::Row::try_get::<i64, _>(row, 0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(storage)?;
        // Ids grow with insertion order; RETURNING itself promises no order.
        inserted.sort_unstable();
        Ok(Some(inserted))
    }
}

/// Each of `columns`' [`Wire`] form, from the table's column types; `None`
/// when a column's type is not sent in binary here.
async fn wires(
    txn: &mut sqlx::Transaction<'static, Postgres>,
    table: &str,
    columns: &[&str],
) -> StorageResult<Option<Vec<Wire>>> {
    let types = column_types(txn, table).await?;
    let wire_of = |column: &str| {
        let (_, type_name) = types.iter().find(|(name, _)| name == column)?;
        Wire::of(type_name)
    };
    Ok(columns.iter().map(|c| wire_of(c)).collect())
}

/// Each column's name and type (as `format_type` names it).
type ColumnTypes = Arc<[(String, String)]>;

/// The names and types of `table`'s columns, looked up once per table and
/// kept: the schema does not change while the service runs (migrations
/// run before it starts), and the lookup is a round trip.
async fn column_types(
    txn: &mut sqlx::Transaction<'static, Postgres>,
    table: &str,
) -> StorageResult<ColumnTypes> {
    static TYPES: OnceLock<StdMutex<HashMap<String, ColumnTypes>>> = OnceLock::new();
    let known = TYPES.get_or_init(Default::default);
    if let Some(types) = known.lock().unwrap_or_else(|p| p.into_inner()).get(table) {
        return Ok(types.clone());
    }
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT attname::text, format_type(atttypid, NULL) FROM pg_attribute \
         WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped",
    )
    .bind(table)
    .fetch_all(&mut **txn)
    .await
    .map_err(storage)?;
    let types: ColumnTypes = types.into();
    known
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(table.to_owned(), types.clone());
    Ok(types)
}

/// One column's values as a one-dimensional array in PostgreSQL's binary
/// form (what `array_recv` reads): its elements are the values as `COPY`
/// sends them ([`put_value`]).
struct ColumnArray {
    wire: Wire,
    bytes: Vec<u8>,
}

/// The columns of `rows` as arrays, each of its `wires` form; `None` if a
/// value is not sent as its column's type here.
fn column_arrays<'a>(
    rows: impl ExactSizeIterator<Item = &'a [Value]>,
    wires: &[Wire],
) -> Option<Vec<ColumnArray>> {
    let count = i32::try_from(rows.len()).ok()?;
    let mut arrays: Vec<ColumnArray> = wires
        .iter()
        .map(|&wire| {
            let mut bytes = Vec::with_capacity(20 + rows.len() * 12);
            bytes.extend_from_slice(&1i32.to_be_bytes()); // dimensions
            bytes.extend_from_slice(&0i32.to_be_bytes()); // has nulls: set below
            bytes.extend_from_slice(&wire.element_type().0.to_be_bytes());
            bytes.extend_from_slice(&count.to_be_bytes()); // length
            bytes.extend_from_slice(&1i32.to_be_bytes()); // lower bound
            ColumnArray { wire, bytes }
        })
        .collect();
    for row in rows {
        if row.len() != arrays.len() {
            return None;
        }
        for (value, array) in row.iter().zip(&mut arrays) {
            put_value(value, array.wire, &mut array.bytes)?;
            if is_null(value) {
                array.bytes[4..8].copy_from_slice(&1i32.to_be_bytes());
            }
        }
    }
    Some(arrays)
}

/// A NULL of one of the types [`put_value`] sends.
fn is_null(value: &Value) -> bool {
    matches!(
        value,
        Value::SmallInt(None)
            | Value::Int(None)
            | Value::BigInt(None)
            | Value::Bool(None)
            | Value::Double(None)
            | Value::String(None)
            | Value::Json(None)
            | Value::Bytes(None)
            | Value::ChronoDateTimeUtc(None)
    )
}

impl sqlx::Type<Postgres> for ColumnArray {
    /// Never used for a bound value: [`Self::produces`] names its type.
    fn type_info() -> PgTypeInfo {
        PgTypeInfo::with_name("unknown")
    }
}

impl sqlx::Encode<'_, Postgres> for ColumnArray {
    fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
        buf.extend_from_slice(&self.bytes);
        Ok(IsNull::No)
    }

    fn produces(&self) -> Option<PgTypeInfo> {
        Some(PgTypeInfo::with_oid(Oid(self.wire.array_oid())))
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

/// How a column's values are sent in `COPY`'s binary format: its type's
/// binary form (PostgreSQL's `*_recv` functions read it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Int2,
    Int4,
    Int8,
    Bool,
    Float8,
    Text,
    Json,
    Jsonb,
    TimestampTz,
    Bytea,
}

impl Wire {
    /// The form for a column of `type_name` (as `format_type` names it);
    /// `None` for a type not sent here.
    fn of(type_name: &str) -> Option<Wire> {
        Some(match type_name {
            "smallint" => Wire::Int2,
            "integer" => Wire::Int4,
            "bigint" => Wire::Int8,
            "boolean" => Wire::Bool,
            "double precision" => Wire::Float8,
            "text" | "character varying" => Wire::Text,
            "json" => Wire::Json,
            "jsonb" => Wire::Jsonb,
            "timestamp with time zone" => Wire::TimestampTz,
            "bytea" => Wire::Bytea,
            _ => return None,
        })
    }

    /// The OID and name of the type its values are sent as (text for
    /// `character varying` too: the column converts on insert).
    fn element_type(self) -> (u32, &'static str) {
        match self {
            Wire::Int2 => (21, "int2"),
            Wire::Int4 => (23, "int4"),
            Wire::Int8 => (20, "int8"),
            Wire::Bool => (16, "bool"),
            Wire::Float8 => (701, "float8"),
            Wire::Text => (25, "text"),
            Wire::Json => (114, "json"),
            Wire::Jsonb => (3802, "jsonb"),
            Wire::TimestampTz => (1184, "timestamptz"),
            Wire::Bytea => (17, "bytea"),
        }
    }

    /// The OID of the array type of [`Self::element_type`].
    fn array_oid(self) -> u32 {
        match self {
            Wire::Int2 => 1005,
            Wire::Int4 => 1007,
            Wire::Int8 => 1016,
            Wire::Bool => 1000,
            Wire::Float8 => 1022,
            Wire::Text => 1009,
            Wire::Json => 199,
            Wire::Jsonb => 3807,
            Wire::TimestampTz => 1185,
            Wire::Bytea => 1001,
        }
    }
}

/// The header of `COPY`'s binary format: its signature, no flags, no
/// extension.
const BINARY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";

/// The rows in `COPY`'s binary format, each value as its column's `wires`
/// form, each row ending with its id if `ids` are given; `None` if a value
/// is not sent as its column's type here.
fn copy_data<'a>(
    rows: impl ExactSizeIterator<Item = &'a [Value]>,
    wires: &[Wire],
    ids: Option<&[i64]>,
) -> Option<Vec<u8>> {
    let fields = i16::try_from(wires.len() + usize::from(ids.is_some())).ok()?;
    let mut data = Vec::with_capacity(BINARY_HEADER.len() + rows.len() * (2 + 12 * wires.len()));
    data.extend_from_slice(BINARY_HEADER);
    for (index, row) in rows.enumerate() {
        data.extend_from_slice(&fields.to_be_bytes());
        for (value, wire) in row.iter().zip(wires) {
            put_value(value, *wire, &mut data)?;
        }
        if let Some(ids) = ids {
            put(&mut data, &ids.get(index)?.to_be_bytes())?;
        }
    }
    data.extend_from_slice(&(-1i16).to_be_bytes());
    Some(data)
}

/// A field: its length, then its bytes.
fn put(data: &mut Vec<u8>, bytes: &[u8]) -> Option<()> {
    data.extend_from_slice(&i32::try_from(bytes.len()).ok()?.to_be_bytes());
    data.extend_from_slice(bytes);
    Some(())
}

/// Writes `value` as a column of `wire` form reads it: NULL as length -1,
/// integers widened where the column is wider, times in microseconds
/// since 2000 as PostgreSQL keeps them (and sqlx sends them). `None` for
/// a value of another type, or one that would need more care (a time with
/// a fraction below the microsecond, or a year outside 1 to 9999).
fn put_value(value: &Value, wire: Wire, data: &mut Vec<u8>) -> Option<()> {
    match (value, wire) {
        (value, _) if is_null(value) => {
            data.extend_from_slice(&(-1i32).to_be_bytes());
            Some(())
        }
        (Value::SmallInt(Some(n)), Wire::Int2) => put(data, &n.to_be_bytes()),
        (Value::SmallInt(Some(n)), Wire::Int4) => put(data, &i32::from(*n).to_be_bytes()),
        (Value::SmallInt(Some(n)), Wire::Int8) => put(data, &i64::from(*n).to_be_bytes()),
        (Value::Int(Some(n)), Wire::Int4) => put(data, &n.to_be_bytes()),
        (Value::Int(Some(n)), Wire::Int8) => put(data, &i64::from(*n).to_be_bytes()),
        (Value::BigInt(Some(n)), Wire::Int8) => put(data, &n.to_be_bytes()),
        (Value::Bool(Some(b)), Wire::Bool) => put(data, &[u8::from(*b)]),
        (Value::Double(Some(x)), Wire::Float8) => put(data, &x.to_bits().to_be_bytes()),
        // json's binary form is its text.
        (Value::String(Some(text)), Wire::Text | Wire::Json) => put(data, text.as_bytes()),
        (Value::Bytes(Some(bytes)), Wire::Bytea) => put(data, bytes),
        (Value::Json(Some(json)), Wire::Text | Wire::Json) => {
            put(data, json.to_string().as_bytes())
        }
        (Value::Json(Some(json)), Wire::Jsonb) => {
            // jsonb's binary form: a version byte, then the text.
            let mut bytes = vec![1];
            bytes.extend_from_slice(json.to_string().as_bytes());
            put(data, &bytes)
        }
        (Value::ChronoDateTimeUtc(Some(at)), Wire::TimestampTz) => {
            put(data, &micros_since_2000(at)?.to_be_bytes())
        }
        _ => None,
    }
}

/// PostgreSQL's epoch, 2000-01-01T00:00:00Z, in Unix microseconds.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

fn micros_since_2000(at: &DateTime<Utc>) -> Option<i64> {
    if at.nanosecond() % 1_000 != 0 || !(1..=9999).contains(&at.year()) {
        return None;
    }
    at.timestamp_micros().checked_sub(POSTGRES_EPOCH_MICROS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn bytes(value: Value, wire: Wire) -> Option<Vec<u8>> {
        let mut data = Vec::new();
        put_value(&value, wire, &mut data).map(|()| data)
    }

    fn field(bytes: &[u8]) -> Vec<u8> {
        let mut field = (bytes.len() as i32).to_be_bytes().to_vec();
        field.extend_from_slice(bytes);
        field
    }

    #[test]
    fn values_are_sent_as_their_columns_types_read_them() {
        assert_eq!(
            bytes(Value::BigInt(Some(-2)), Wire::Int8),
            Some(field(&(-2i64).to_be_bytes()))
        );
        assert_eq!(
            bytes(Value::Int(Some(7)), Wire::Int8),
            Some(field(&7i64.to_be_bytes()))
        );
        assert_eq!(
            bytes(Value::Int(Some(7)), Wire::Int4),
            Some(field(&7i32.to_be_bytes()))
        );
        assert_eq!(
            bytes(Value::Int(None), Wire::Int4),
            Some((-1i32).to_be_bytes().to_vec())
        );
        assert_eq!(
            bytes(Value::Bool(Some(true)), Wire::Bool),
            Some(field(&[1]))
        );
        // Text goes as it is: no escaping in the binary format.
        assert_eq!(
            bytes(Value::String(Some("a\tb\\N".into())), Wire::Text),
            Some(field(b"a\tb\\N"))
        );
        assert_eq!(
            bytes(
                Value::Json(Some(Box::new(serde_json::json!([1])))),
                Wire::Jsonb
            ),
            Some(field(b"\x01[1]"))
        );
        // One microsecond after PostgreSQL's epoch.
        let at =
            Utc.with_ymd_and_hms(2000, 1, 1, 0, 0, 0).unwrap() + chrono::Duration::microseconds(1);
        assert_eq!(
            bytes(Value::ChronoDateTimeUtc(Some(at)), Wire::TimestampTz),
            Some(field(&1i64.to_be_bytes()))
        );
        let before = Utc.with_ymd_and_hms(1999, 12, 31, 23, 59, 59).unwrap();
        assert_eq!(
            bytes(Value::ChronoDateTimeUtc(Some(before)), Wire::TimestampTz),
            Some(field(&(-1_000_000i64).to_be_bytes()))
        );
    }

    #[test]
    fn values_that_need_more_care_are_left_to_insert() {
        let at =
            Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).unwrap() + chrono::Duration::nanoseconds(1);
        assert_eq!(
            bytes(Value::ChronoDateTimeUtc(Some(at)), Wire::TimestampTz),
            None
        );
        let far = Utc.with_ymd_and_hms(10_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(
            bytes(Value::ChronoDateTimeUtc(Some(far)), Wire::TimestampTz),
            None
        );
        // A wider value never goes into a narrower column.
        assert_eq!(bytes(Value::BigInt(Some(1)), Wire::Int4), None);
        assert_eq!(bytes(Value::String(Some("1".into())), Wire::Int8), None);
        assert_eq!(bytes(Value::Bytes(Some(vec![1])), Wire::Text), None);
        assert_eq!(bytes(Value::String(Some("1".into())), Wire::Bytea), None);
        assert_eq!(Wire::of("numeric"), None);
    }

    #[test]
    fn columns_become_one_dimensional_arrays_of_the_same_fields() {
        let rows = [
            [Value::Int(Some(3)), Value::String(None)],
            [Value::Int(Some(4)), Value::String(Some("x".into()))],
        ];
        let arrays =
            column_arrays(rows.iter().map(|row| &row[..]), &[Wire::Int4, Wire::Text]).unwrap();
        let header = |has_nulls: i32, element: u32| {
            [1i32, has_nulls, element as i32, 2, 1]
                .iter()
                .flat_map(|n| n.to_be_bytes())
                .collect::<Vec<u8>>()
        };
        let mut ints = header(0, 23);
        ints.extend(field(&3i32.to_be_bytes()));
        ints.extend(field(&4i32.to_be_bytes()));
        assert_eq!(arrays[0].bytes, ints);
        assert_eq!(arrays[0].wire.array_oid(), 1007);
        let mut texts = header(1, 25);
        texts.extend((-1i32).to_be_bytes());
        texts.extend(field(b"x"));
        assert_eq!(arrays[1].bytes, texts);
        // A value its column's type does not take leaves the rows to
        // multi-row statements.
        let wider = [[Value::BigInt(Some(1))]];
        assert!(column_arrays(wider.iter().map(|row| &row[..]), &[Wire::Int4]).is_none());
    }

    #[test]
    fn rows_are_framed_with_the_header_a_field_count_and_the_trailer() {
        let row = [Value::Int(Some(3)), Value::String(None)];
        let data = copy_data(
            [&row[..]].into_iter(),
            &[Wire::Int4, Wire::Text],
            Some(&[9]),
        )
        .unwrap();
        let mut expected = BINARY_HEADER.to_vec();
        expected.extend_from_slice(&3i16.to_be_bytes());
        expected.extend_from_slice(&field(&3i32.to_be_bytes()));
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.extend_from_slice(&field(&9i64.to_be_bytes()));
        expected.extend_from_slice(&(-1i16).to_be_bytes());
        assert_eq!(data, expected);
        assert_eq!(BINARY_HEADER.len(), 19);
    }
}
