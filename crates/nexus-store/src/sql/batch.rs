//! Write transactions in as few round trips as the backend allows.
//!
//! A [`Batch`] holds the statements of one write transaction, written once for both backends
//! with `$n` placeholders counted from each statement's first argument; `SqlStore::write_batch`
//! runs it:
//!
//! - SQLite hands the whole batch to its committer (`crate::sqlite::write`), which runs it on
//!   its own connection with no thread hand-off per statement and commits it together with the
//!   other batches waiting.
//! - PostgreSQL runs the statements one by one inside a transaction.
//!
//! Rows come back grouped by statement.

use std::fmt::Write as _;

use super::{BatchBinds, BatchDb, SqlDb};

/// One statement and its arguments.
pub(crate) struct Part<DB: SqlDb> {
    pub(crate) sql: String,
    pub(crate) args: <DB as BatchDb>::BatchArgs,
}

/// The statements of one step of a write transaction.
pub(crate) struct Batch<DB: SqlDb> {
    parts: Vec<Part<DB>>,
    /// The first argument that failed to encode; reported when the batch runs.
    error: Option<String>,
}

impl<DB: SqlDb> Default for Batch<DB> {
    fn default() -> Self {
        Batch::new()
    }
}

impl<DB: SqlDb> Batch<DB> {
    pub(crate) fn new() -> Self {
        Batch {
            parts: Vec::new(),
            error: None,
        }
    }

    /// Statements in the batch.
    pub(crate) fn statements(&self) -> usize {
        self.parts.len()
    }

    fn current(&mut self) -> &mut Part<DB> {
        if self.parts.is_empty() {
            self.open();
        }
        let last = self.parts.len() - 1;
        &mut self.parts[last]
    }

    /// Starts a statement. Its `$n` placeholders count from the statement's own first
    /// argument; bind them with [`Batch::arg`], in order.
    pub(crate) fn stmt(&mut self, sql: &str) -> &mut Self {
        self.open();
        self.current().sql.push_str(sql);
        self
    }

    /// Starts a statement built piece by piece with [`Batch::push`] and [`Batch::push_arg`].
    pub(crate) fn begin_stmt(&mut self) -> &mut Self {
        self.open();
        self
    }

    fn open(&mut self) {
        self.parts.push(Part {
            sql: String::new(),
            args: Default::default(),
        });
    }

    /// Appends SQL text to the current statement.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.current().sql.push_str(sql);
        self
    }

    /// Binds the next argument of the current statement.
    pub(crate) fn arg<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: BatchBinds<'t, T>,
    {
        if let Err(e) = DB::add_to(&mut self.current().args, value)
            && self.error.is_none()
        {
            self.error = Some(e.to_string());
        }
        self
    }

    /// Appends a placeholder for `value` to the current statement and binds it.
    pub(crate) fn push_arg<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: BatchBinds<'t, T>,
    {
        let part = self.current();
        let n = DB::arg_count(&part.args) + 1;
        // Writing to a String cannot fail.
        let _ = write!(part.sql, "${n}");
        self.arg(value)
    }

    /// Starts a `VALUES (…), (…)` list at the end of the current statement; add rows with
    /// [`Values::row`]. The list is closed when the returned builder is dropped.
    pub(crate) fn values(&mut self) -> Values<'_, DB> {
        self.push("VALUES ");
        Values {
            batch: self,
            rows: 0,
            values: 0,
        }
    }

    /// The statements to run, in order; an argument that did not encode is `Error::Encode`.
    pub(crate) fn into_parts(self) -> Result<Vec<Part<DB>>, sqlx::Error> {
        match self.error {
            Some(detail) => Err(sqlx::Error::Encode(detail.into())),
            None => Ok(self.parts),
        }
    }
}

/// The rows of a multi-row `INSERT` ([`Batch::values`]).
pub(crate) struct Values<'b, DB: SqlDb> {
    batch: &'b mut Batch<DB>,
    rows: usize,
    values: usize,
}

impl<DB: SqlDb> Values<'_, DB> {
    /// Starts the next row.
    pub(crate) fn row(&mut self) -> &mut Self {
        self.batch.push(if self.rows == 0 { "(" } else { "), (" });
        self.rows += 1;
        self.values = 0;
        self
    }

    /// The next value of the row.
    pub(crate) fn value<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: BatchBinds<'t, T>,
    {
        if self.values > 0 {
            self.batch.push(", ");
        }
        self.values += 1;
        self.batch.push_arg(value);
        self
    }
}

impl<DB: SqlDb> Drop for Values<'_, DB> {
    fn drop(&mut self) {
        if self.rows > 0 {
            self.batch.push(")");
        }
    }
}
