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

    pub fn statement(&self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text.clone(), self.values.clone())
    }

    pub async fn all(&self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        db.query_all_raw(self.statement()).await
    }
}
