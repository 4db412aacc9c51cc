//! The incremental export of encounters: every encounter created, changed or
//! deleted since a cursor, oldest change first, streamed from one SQL
//! statement so the service never holds the whole export in memory.
//!
//! # Why the cursor never misses or repeats a change
//!
//! Every transaction that changes encounters bumps its organization's
//! `organizations.change_seq` first (see [`EncounterWrite`]) and stamps that
//! value on every row it writes (`encounters.change_seq`, or a row in
//! `encounter_tombstones` for a delete). The bump takes the organization's
//! row lock on PostgreSQL and the single write lock on SQLite, so one
//! organization's writes run one at a time and their sequence numbers commit
//! in increasing order.
//!
//! An export first reads the committed `organizations.change_seq`: the
//! *bound*. A transaction that bumped the counter but has not committed yet
//! is invisible to that read (PostgreSQL reads committed data; on SQLite the
//! writer's changes are invisible to other connections until it commits),
//! and since the bumps are serialized by the lock, every transaction with a
//! sequence number at or below the bound has committed by then. The export
//! then streams, in one statement (one snapshot on both backends), the rows
//! with `cursor < change_seq <= bound`; the next cursor is the bound. A
//! transaction that commits meanwhile gets a sequence number above the bound
//! and is in the next export: if it rewrote a row with a lower number, that
//! row moves above the bound and the next export carries its new state.
//!
//! [`EncounterWrite`]: crate::domain::encounters::write::EncounterWrite

use std::{pin::Pin, sync::Arc, sync::OnceLock};

use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};
use chrono::{DateTime, Utc};
use entity::{enums::Source, organization};
use futures_util::{stream, Stream, StreamExt};
use sea_orm::{
    sqlx, ActiveEnum, DatabaseConnection, DbBackend, DbErr, EntityTrait, Iterable, QueryResult,
    QuerySelect, RuntimeErr, Statement, StreamTrait,
};

use crate::db::sql::Sql;
use crate::domain::{DomainError, DomainResult};

/// What an export cursor decodes from: a version tag, the organization and
/// the last `change_seq` fully exported.
const CURSOR_PREFIX: &str = "ex1";

/// One change as read from the database. Its fields are read in place by
/// [`ChangeRow::change`], so exporting a row copies nothing but the output.
pub struct ChangeRow(QueryResult);

/// One change, as exported, borrowing its text from its [`ChangeRow`].
#[derive(Debug, Clone, PartialEq)]
pub enum Change<'a> {
    /// The encounter was created or changed; this is its current state.
    Upsert {
        change_seq: i64,
        encounter: ExportedEncounter<'a>,
    },
    /// The encounter was deleted.
    Delete {
        change_seq: i64,
        encounter_id: i64,
        candidate_id: i64,
        deleted_at: DateTime<Utc>,
    },
}

/// An encounter's current state, as exported: the columns of
/// `encounter::Model` the export carries.
#[derive(Debug, Clone, PartialEq)]
pub struct ExportedEncounter<'a> {
    pub id: i64,
    pub candidate_id: i64,
    pub touchpoint_id: i64,
    pub occurred_at: DateTime<Utc>,
    pub source: Source,
    pub score: Option<i32>,
    pub note: Option<&'a str>,
    pub recorded_by_key_id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Change<'_> {
    pub fn change_seq(&self) -> i64 {
        match self {
            Change::Upsert { change_seq, .. } | Change::Delete { change_seq, .. } => *change_seq,
        }
    }
}

/// The changes, as they come from the database.
pub type ChangeStream = Pin<Box<dyn Stream<Item = DomainResult<ChangeRow>> + Send>>;

/// An export under way: where the next one starts, and the changes.
pub struct Export {
    /// Pass as `cursor` to the next export. Known before the first change
    /// is read, so it can go in a response header.
    pub next_cursor: String,
    /// The changes in `change_seq` order, then by encounter id. Owns its
    /// database connection until it ends or is dropped.
    pub changes: ChangeStream,
}

/// Starts an export of the organization's changes after `cursor` (from the
/// beginning without one). An invalid cursor, or a database that cannot be
/// read, fails here, before anything is streamed; a failure later ends the
/// stream with an error.
pub async fn export(
    db: &DatabaseConnection,
    organization_id: i64,
    cursor: Option<&str>,
) -> DomainResult<Export> {
    // Rows written before change sequences existed carry 0, so "from the
    // beginning" is "after -1".
    let after = match cursor {
        Some(cursor) => decode_cursor(organization_id, cursor)?,
        None => -1,
    };
    let bound = committed_change_seq(db, organization_id).await?;
    if after > bound {
        return Err(DomainError::invalid(
            "cursor",
            "is ahead of the organization's changes (was the database restored?); \
             export again without a cursor",
        ));
    }
    let mut rows = db
        .stream_raw(changes_statement(
            db.get_database_backend(),
            organization_id,
            after,
            bound,
        ))
        .await?;
    // Read the first row before answering, so a failing query is an error
    // response rather than a cut-short stream.
    let first = match rows.next().await {
        Some(Err(err)) => return Err(err.into()),
        first => first,
    };
    let changes = stream::iter(first)
        .chain(rows)
        .map(|row| Ok(ChangeRow(row?)));
    Ok(Export {
        next_cursor: encode_cursor(organization_id, bound),
        changes: Box::pin(changes),
    })
}

/// The organization's `change_seq` as last committed: see the module
/// documentation for why every change up to it is committed.
async fn committed_change_seq(db: &DatabaseConnection, organization_id: i64) -> DomainResult<i64> {
    organization::Entity::find_by_id(organization_id)
        .select_only()
        .column(organization::Column::ChangeSeq)
        .into_tuple::<i64>()
        .one(db)
        .await?
        .ok_or(DomainError::NotFound {
            resource: "organization",
        })
}

/// Encounters and tombstones in `(after, bound]`, in one statement so both
/// tables are read from one snapshot. Both halves use the
/// `(organization_id, change_seq)` indexes.
fn changes_statement(
    backend: DbBackend,
    organization_id: i64,
    after: i64,
    bound: i64,
) -> Statement {
    let mut sql = Sql::for_backend(backend);
    let range = |sql: &mut Sql| {
        sql.push(" WHERE organization_id = ")
            .bind(organization_id)
            .push(" AND change_seq > ")
            .bind(after)
            .push(" AND change_seq <= ")
            .bind(bound);
    };
    sql.push(
        "SELECT 'upsert' AS op, change_seq, id, candidate_id, touchpoint_id, occurred_at, \
                source, score, note, recorded_by_key_id, created_at, updated_at, \
                NULL AS deleted_at \
         FROM encounters",
    );
    range(&mut sql);
    sql.push(
        " UNION ALL \
         SELECT 'delete', change_seq, encounter_id, candidate_id, NULL, NULL, \
                NULL, NULL, NULL, NULL, NULL, NULL, \
                deleted_at \
         FROM encounter_tombstones",
    );
    range(&mut sql);
    sql.push(" ORDER BY change_seq, id, op");
    sql.statement()
}

impl ChangeRow {
    /// The change this row holds. Reads the columns by position, in the
    /// order of [`changes_statement`], straight from the driver's row.
    pub fn change(&self) -> DomainResult<Change<'_>> {
        let change = if let Some(row) = self.0.try_as_sqlite_row() {
            decode_change(row)
        } else if let Some(row) = self.0.try_as_pg_row() {
            decode_change(row)
        } else {
            return Err(DbErr::Custom("export rows come from SQLite or PostgreSQL".into()).into());
        };
        change.map_err(|err| DbErr::Query(RuntimeErr::SqlxError(Arc::new(err))).into())
    }
}

/// Decodes a row of [`changes_statement`]. The same type checks as
/// `QueryResult::try_get`, without looking columns up by name or copying
/// text.
fn decode_change<'r, R>(row: &'r R) -> Result<Change<'r>, sqlx::Error>
where
    R: TimeColumn,
    usize: sqlx::ColumnIndex<R>,
    &'r str: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    i32: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let op: &str = row.try_get(0)?;
    let change_seq: i64 = row.try_get(1)?;
    let id: i64 = row.try_get(2)?;
    let candidate_id: i64 = row.try_get(3)?;
    if op == "delete" {
        return Ok(Change::Delete {
            change_seq,
            encounter_id: id,
            candidate_id,
            deleted_at: row.time(12)?,
        });
    }
    let source: &str = row.try_get(6)?;
    Ok(Change::Upsert {
        change_seq,
        encounter: ExportedEncounter {
            id,
            candidate_id,
            touchpoint_id: row.try_get(4)?,
            occurred_at: row.time(5)?,
            source: source_from_db(source).ok_or_else(|| sqlx::Error::ColumnDecode {
                index: "6".into(),
                // The value itself stays out of the log.
                source: format!("encounter {id}: unexpected value in column source").into(),
            })?,
            score: row.try_get(7)?,
            note: row.try_get(8)?,
            recorded_by_key_id: row.try_get(9)?,
            created_at: row.time(10)?,
            updated_at: row.time(11)?,
        },
    })
}

/// A row's `DateTime<Utc>` columns, decoded as the driver decodes them.
trait TimeColumn: sqlx::Row {
    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error>;
}

impl TimeColumn for sqlx::postgres::PgRow {
    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error> {
        sqlx::Row::try_get(self, index)
    }
}

/// SQLite stores times as text. What sqlx writes (`+00:00`, see
/// [`parse_utc_rfc3339`]) is read here without chrono's general parser;
/// anything else goes to sqlx, which also reads other text forms, numbers,
/// and reports what is not a time.
impl TimeColumn for sqlx::sqlite::SqliteRow {
    fn time(&self, index: usize) -> Result<DateTime<Utc>, sqlx::Error> {
        if let Ok(text) = sqlx::Row::try_get::<&str, _>(self, index) {
            // A row stored before times were checked may hold another year
            // form (`-0001-...`): it still reads, as in the writer.
            if let Some(at) = parse_utc_rfc3339(text).or_else(|| {
                text.parse::<DateTime<chrono::FixedOffset>>()
                    .ok()
                    .map(|at| at.with_timezone(&Utc))
            }) {
                return Ok(at);
            }
        }
        sqlx::Row::try_get(self, index)
    }
}

/// Reads `YYYY-MM-DDTHH:MM:SS[.fraction]+00:00`, the form sqlx writes a
/// `DateTime<Utc>` in (`to_rfc3339_opts(AutoSi, false)`), to the same value
/// as `DateTime::parse_from_rfc3339`. Anything else (other separators or
/// offsets, a leap second, more than nine fraction digits, an impossible
/// date) is `None`, for the general parser.
fn parse_utc_rfc3339(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b.get(range)?.iter().try_fold(0u32, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
        })
    };
    if b.len() < 25
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
        || !text.ends_with("+00:00")
    {
        return None;
    }
    let fraction = &b[19..b.len() - 6];
    let nano = match fraction {
        [] => 0,
        [b'.', rest @ ..] if (1..=9).contains(&rest.len()) => {
            digits(20..20 + rest.len())? * 10u32.pow(9 - rest.len() as u32)
        }
        _ => return None,
    };
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if second > 59 {
        return None;
    }
    let date =
        chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nano)?;
    Some(date.and_time(time).and_utc())
}

/// Every [`Source`] with its stored value (`ActiveEnum::to_value`), so rows
/// are read and written without allocating.
fn sources() -> &'static [(String, Source)] {
    static SOURCES: OnceLock<Vec<(String, Source)>> = OnceLock::new();
    SOURCES.get_or_init(|| Source::iter().map(|s| (s.to_value(), s)).collect())
}

/// The [`Source`] stored as `value`.
fn source_from_db(value: &str) -> Option<Source> {
    sources()
        .iter()
        .find(|(stored, _)| stored == value)
        .map(|(_, source)| *source)
}

/// How `source` is stored: `source.to_value()`, borrowed.
pub fn source_value(source: Source) -> &'static str {
    sources()
        .iter()
        .find(|(_, s)| *s == source)
        .map(|(stored, _)| stored.as_str())
        .expect("every source is in Source::iter()")
}

/// An opaque cursor: the organization and the last `change_seq` exported.
pub fn encode_cursor(organization_id: i64, change_seq: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{CURSOR_PREFIX}:{organization_id}:{change_seq}"))
}

/// The last `change_seq` a cursor of this organization exported. Cursors of
/// lists, of other organizations or of nothing at all are refused.
fn decode_cursor(organization_id: i64, cursor: &str) -> DomainResult<i64> {
    let text = URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok());
    text.as_deref()
        .and_then(|text| {
            let mut parts = text.split(':');
            let (prefix, org, seq) = (parts.next()?, parts.next()?, parts.next()?);
            let valid = prefix == CURSOR_PREFIX
                && parts.next().is_none()
                && org.parse::<i64>().ok()? == organization_id;
            valid.then(|| seq.parse::<i64>().ok()).flatten()
        })
        .filter(|seq| *seq >= 0)
        // Only the spelling the API writes: `+7` or `007` inside is refused.
        .filter(|seq| encode_cursor(organization_id, *seq) == cursor)
        .ok_or_else(|| DomainError::invalid("cursor", "is not an export cursor this API returned"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_have_one_spelling() {
        assert_eq!(decode_cursor(3, &encode_cursor(3, 7)).unwrap(), 7);
        for other in ["ex1:3:+7", "ex1:3:007", "ex1:03:7", "ex1:3:7:"] {
            assert!(
                decode_cursor(3, &URL_SAFE_NO_PAD.encode(other)).is_err(),
                "{other}"
            );
        }
        assert!(decode_cursor(4, &encode_cursor(3, 7)).is_err());
    }

    #[test]
    fn sqlite_times_are_read_as_chrono_reads_them() {
        let chrono = |text: &str| {
            DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        };
        let mut texts: Vec<String> = [
            "2026-09-30T23:33:51.065303+00:00",
            "2026-09-30T23:33:51+00:00",
            "2026-09-30T23:33:51.1+00:00",
            "2026-09-30T23:33:51.123456789+00:00",
            "0000-01-01T00:00:00+00:00",
            "9999-12-31T23:59:59.999999999+00:00",
            "2024-02-29T12:00:00+00:00",
        ]
        .map(str::to_owned)
        .to_vec();
        for at in &texts.clone() {
            assert_eq!(parse_utc_rfc3339(at), chrono(at), "{at}");
            assert!(parse_utc_rfc3339(at).is_some(), "{at}");
        }
        // Valid for chrono but left to it, or invalid for both.
        texts = [
            "2026-09-30T23:33:51Z",
            "2026-09-30 23:33:51+00:00",
            "2026-09-30t23:33:51+00:00",
            "2026-09-30T23:33:51+01:00",
            "2026-09-30T23:33:51-00:00",
            "2016-12-31T23:59:60+00:00",
            "2026-09-30T23:33:51.1234567891+00:00",
            "2026-09-30T23:33:51.+00:00",
            "2026-09-30T23:33:51,5+00:00",
            "2025-02-29T12:00:00+00:00",
            "2026-13-01T00:00:00+00:00",
            "2026-09-30T24:00:00+00:00",
            "2026-09-30T23:60:00+00:00",
            "+2026-09-30T23:33:51+00:00",
            "2026-9-30T23:33:51+00:00",
            "2026-09-30T23:33:5a+00:00",
            "2026-09-30T23:33:51+00:00 ",
            "2026-09-30",
            "",
        ]
        .map(str::to_owned)
        .to_vec();
        for at in &texts {
            assert_eq!(parse_utc_rfc3339(at), None, "{at}");
        }
        // What sqlx writes, for many times.
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let secs = (state % 253_402_300_800) as i64 - 62_167_219_200 / 2;
            let nanos = match state % 4 {
                0 => 0,
                1 => (state >> 8) as u32 % 1000 * 1_000_000,
                2 => (state >> 8) as u32 % 1_000_000 * 1000,
                _ => (state >> 8) as u32 % 1_000_000_000,
            };
            let Some(at) = DateTime::from_timestamp(secs, nanos) else {
                continue;
            };
            let text = at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
            assert_eq!(parse_utc_rfc3339(&text), Some(at), "{text}");
        }
    }

    #[test]
    fn sources_are_read_and_written_as_stored() {
        for source in Source::iter() {
            assert_eq!(source_value(source), source.to_value());
            assert_eq!(source_from_db(&source.to_value()), Some(source));
        }
        assert_eq!(source_from_db("survey"), None);
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(7, &encode_cursor(7, 0)).unwrap(), 0);
        assert_eq!(decode_cursor(7, &encode_cursor(7, 42)).unwrap(), 42);
    }

    #[test]
    fn foreign_and_garbage_cursors_are_rejected() {
        let list_cursor = URL_SAFE_NO_PAD.encode("id:5");
        for bad in [
            "",
            "!!",
            &encode_cursor(8, 42),
            &list_cursor,
            &URL_SAFE_NO_PAD.encode("ex1:7:-1"),
            &URL_SAFE_NO_PAD.encode("ex1:7:1:2"),
            &URL_SAFE_NO_PAD.encode("ex2:7:1"),
            &URL_SAFE_NO_PAD.encode("ex1:7:"),
        ] {
            assert!(decode_cursor(7, bad).is_err(), "{bad:?} accepted");
        }
    }
}
