//! Keyset pagination over ids, ascending (or newest first). The cursor is
//! the last id seen, wrapped so clients treat it as opaque (see
//! [`super::cursor`]); rows inserted meanwhile get higher ids, so a walk
//! through the pages never skips or repeats a row.

use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::domain::{cursor::Cursor, DomainError, DomainResult};

pub const DEFAULT_LIMIT: u64 = 50;
pub const MAX_LIMIT: u64 = 500;
/// The longest cursor any list or export accepts (the document's
/// `maxLength`). Cursors this API issues are far shorter (at most 60).
pub const CURSOR_MAX_LENGTH: usize = 128;

/// Which page to read.
#[derive(Debug, Clone, Copy)]
pub struct PageRequest {
    after_id: Option<i64>,
    limit: u64,
}

/// One page of rows and the cursor of the next page, if there is one.
#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

impl PageRequest {
    pub fn new(cursor: Option<&str>, limit: Option<u64>) -> DomainResult<Self> {
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(DomainError::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after_id = cursor
            .map(|cursor| {
                check_cursor_length(cursor)?;
                decode_cursor(cursor)
            })
            .transpose()?;
        Ok(Self { after_id, limit })
    }

    /// Reads one page of `select`, ordered by `id_column`.
    pub async fn fetch<E, C>(
        &self,
        db: &impl ConnectionTrait,
        select: Select<E>,
        id_column: C,
        id_of: impl Fn(&E::Model) -> i64,
    ) -> DomainResult<Page<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Sized + Send + Sync,
        C: ColumnTrait,
    {
        let mut select = select.order_by_asc(id_column);
        if let Some(after) = self.after_id {
            select = select.filter(id_column.gt(after));
        }
        self.read(db, select, id_of).await
    }

    /// Reads one page of `select`, newest (highest `id_column`) first. Rows
    /// inserted meanwhile are newer than the first page, so a walk from
    /// there never skips or repeats a row; they show up on a new walk.
    pub async fn fetch_newest_first<E, C>(
        &self,
        db: &impl ConnectionTrait,
        select: Select<E>,
        id_column: C,
        id_of: impl Fn(&E::Model) -> i64,
    ) -> DomainResult<Page<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Sized + Send + Sync,
        C: ColumnTrait,
    {
        let mut select = select.order_by_desc(id_column);
        if let Some(after) = self.after_id {
            select = select.filter(id_column.lt(after));
        }
        self.read(db, select, id_of).await
    }

    /// Reads `limit` rows of an ordered, filtered select, and one more to
    /// know whether there is a next page.
    async fn read<E>(
        &self,
        db: &impl ConnectionTrait,
        select: Select<E>,
        id_of: impl Fn(&E::Model) -> i64,
    ) -> DomainResult<Page<E::Model>>
    where
        E: EntityTrait,
        E::Model: FromQueryResult + Sized + Send + Sync,
    {
        let mut items = select.limit(self.limit + 1).all(db).await?;
        let next_cursor = if items.len() as u64 > self.limit {
            items.truncate(self.limit as usize);
            items.last().map(|last| encode_cursor(id_of(last)))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }
}

fn encode_cursor(id: i64) -> String {
    Cursor::List { after_id: id }.encode()
}

/// Refuses a cursor longer than [`CURSOR_MAX_LENGTH`], before decoding it.
pub fn check_cursor_length(cursor: &str) -> DomainResult<()> {
    if cursor.chars().count() > CURSOR_MAX_LENGTH {
        return Err(DomainError::invalid(
            "cursor",
            format!("must be at most {CURSOR_MAX_LENGTH} characters"),
        ));
    }
    Ok(())
}

/// The id a list cursor holds (of this version or an earlier one).
fn decode_cursor(cursor: &str) -> DomainResult<i64> {
    match Cursor::decode(cursor) {
        Some(Cursor::List { after_id }) => Ok(after_id),
        _ => Err(DomainError::invalid(
            "cursor",
            "is not a cursor this API returned",
        )),
    }
}

#[cfg(test)]
mod tests {
    use base64::{engine::general_purpose::URL_SAFE_NO_PAD, Engine};

    use super::*;

    #[test]
    fn cursors_round_trip() {
        assert_eq!(decode_cursor(&encode_cursor(42)).unwrap(), 42);
    }

    #[test]
    fn garbage_cursors_are_rejected() {
        let spellings = ["id:-5", "id:007", "id:+7", "id: 7"].map(|t| URL_SAFE_NO_PAD.encode(t));
        for bad in ["", "!!", "aWQ6", "eHl6"]
            .into_iter()
            .chain(spellings.iter().map(String::as_str))
        {
            assert!(decode_cursor(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn long_cursors_are_refused_before_decoding() {
        let long = "A".repeat(CURSOR_MAX_LENGTH + 1);
        let err = PageRequest::new(Some(&long), None).unwrap_err();
        assert!(
            matches!(&err, DomainError::Invalid { field, .. } if field == "cursor"),
            "{err:?}"
        );
        assert!(check_cursor_length(&"A".repeat(CURSOR_MAX_LENGTH)).is_ok());
    }

    #[test]
    fn limits_are_bounded() {
        assert!(PageRequest::new(None, Some(0)).is_err());
        assert!(PageRequest::new(None, Some(501)).is_err());
        assert_eq!(PageRequest::new(None, None).unwrap().limit, DEFAULT_LIMIT);
    }
}
