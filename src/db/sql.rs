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

    pub fn statement(&self) -> Statement {
        Statement::from_sql_and_values(self.backend, self.text.clone(), self.values.clone())
    }

    pub async fn all(&self, db: &impl ConnectionTrait) -> Result<Vec<QueryResult>, sea_orm::DbErr> {
        db.query_all_raw(self.statement()).await
    }
}
