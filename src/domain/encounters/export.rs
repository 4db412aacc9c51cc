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

use std::pin::Pin;

use entity::organization;
use futures_util::{stream, Stream, StreamExt};
use sea_orm::{DatabaseConnection, EntityTrait, QuerySelect, StreamTrait};

use crate::db::changes;
pub use crate::db::changes::{source_value, Change, ChangeRow, ExportedEncounter};
use crate::db::sql::Sql;
use crate::domain::{cursor::Cursor, DomainError, DomainResult};

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
#[tracing::instrument(level = "debug", skip_all, fields(organization_id = organization_id))]
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
        .stream_raw(changes::statement(
            Sql::new(db),
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
        .map(|row| Ok(ChangeRow::new(row?)));
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

/// An opaque cursor: the organization and the last `change_seq` exported
/// (see [`crate::domain::cursor`]).
pub fn encode_cursor(organization_id: i64, change_seq: i64) -> String {
    Cursor::Export {
        organization_id,
        change_seq,
    }
    .encode()
}

/// The last `change_seq` a cursor of this organization exported (of this
/// version or an earlier one). Cursors of lists, of other organizations or
/// of nothing at all are refused.
fn decode_cursor(organization_id: i64, cursor: &str) -> DomainResult<i64> {
    match Cursor::decode(cursor) {
        Some(Cursor::Export {
            organization_id: org,
            change_seq,
        }) if org == organization_id => Ok(change_seq),
        _ => Err(DomainError::invalid(
            "cursor",
            "is not an export cursor this API returned",
        )),
    }
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

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
