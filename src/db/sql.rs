//! Hand-written SQL for the reports and the export, portable between SQLite and PostgreSQL:
//! the text is the same on both, only the placeholders differ (`?1` vs
//! `$1`), and [`Sql::bind`] writes the right one. Identifiers never come
//! from input: only values are bound.

use sea_orm::{ConnectionTrait, DbBackend, QueryResult, Statement, Value};

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

    /// Appends a placeholder bound to `value`.
    pub fn bind(&mut self, value: impl Into<Value>) -> &mut Self {
        self.values.push(value.into());
        let n = self.values.len();
        match self.backend {
            DbBackend::Postgres => self.text.push_str(&format!("${n}")),
            _ => self.text.push_str(&format!("?{n}")),
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

    /// Appends an aggregate that packs the `id` and `blob` columns of the
    /// rows into one text, `id:hex,id:hex,...`, read with [`unpack_blobs`]:
    /// many rows in one. (On SQLite every row a query returns is handed
    /// from the pool connection's thread to the task that reads it, a
    /// thread woken per row; for rows of a few hundred bytes, read and
    /// decoded in a few microseconds, that handover was over half the
    /// time of a report reading 10,000 of them.)
    pub fn push_packed_blobs(&mut self, id: &str, blob: &str) -> &mut Self {
        let (join, hex, hex_end) = match self.backend {
            DbBackend::Postgres => ("string_agg(", "encode(", ", 'hex')"),
            _ => ("group_concat(", "hex(", ")"),
        };
        self.push(join)
            .push("CAST(")
            .push(id)
            .push(" AS TEXT) || ':' || ")
            .push(hex)
            .push(blob)
            .push(hex_end)
            .push(", ',')")
    }

    pub fn statement(&self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text.clone(), self.values.clone())
    }

    pub async fn all(&self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        db.query_all_raw(self.statement()).await
    }
}

/// The `(id, blob)` pairs of a [`Sql::push_packed_blobs`] text, in its
/// order; `None` if it is not one.
pub fn unpack_blobs(packed: &str) -> Option<Vec<(i64, Vec<u8>)>> {
    if packed.is_empty() {
        return Some(Vec::new());
    }
    packed
        .split(',')
        .map(|pair| {
            let (id, hex) = pair.split_once(':')?;
            // A plain loop over the pairs of digits: `hex::decode` collects
            // an iterator of results, four times slower here.
            let mut blob = vec![0; hex.len() / 2];
            hex::decode_to_slice(hex, &mut blob).ok()?;
            Some((id.parse().ok()?, blob))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packed_blobs_unpack_in_either_case_and_keep_empty_blobs() {
        assert_eq!(
            unpack_blobs("7:00FF10,12:,30:abcd"),
            Some(vec![
                (7, vec![0x00, 0xff, 0x10]),
                (12, vec![]),
                (30, vec![0xab, 0xcd])
            ])
        );
        assert_eq!(unpack_blobs(""), Some(vec![]));
        assert_eq!(unpack_blobs("7:0"), None, "half a byte");
        assert_eq!(unpack_blobs("x:00"), None);
        assert_eq!(unpack_blobs("7"), None);
    }
}
