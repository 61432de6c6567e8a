//! Write transactions in as few round trips as the backend allows.
//!
//! A [`Batch`] holds the statements of one write transaction, written once for both backends
//! with `$n` placeholders counted from each statement's first argument; `SqlStore::write_batch`
//! runs it:
//!
//! - SQLite sends a whole batch as one script, in one trip to the connection's worker thread:
//!   the placeholders of later statements are renumbered so that all of them index one argument
//!   list. A per-statement trip (a thread hand-off each way) was most of a turn's cost and most
//!   of the time the database's single write lock was held.
//! - PostgreSQL runs the statements one by one inside a transaction (its extended protocol takes
//!   one statement per prepared query).
//!
//! Rows come back grouped by statement. sqlx marks several statements in one SQLite query as
//! deprecated behaviour; should a later sqlx drop it, `BatchMode::Statements` for SQLite keeps
//! every caller working, one trip per statement.

use std::fmt::Write as _;

use futures::TryStreamExt;
use sqlx::{Arguments, AssertSqlSafe, Either, Executor};

use super::{Binds, SqlDb};

/// Arguments after which a script is continued in a new SQL text. SQLite numbers the
/// parameters of a whole script together and allows at most 32766; a statement of this crate
/// binds at most a few thousand.
const SCRIPT_ARGS: usize = 16_384;

/// How a database runs a [`Batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchMode {
    /// All statements in one SQL text with one argument list (SQLite).
    Script,
    /// One prepared statement at a time (PostgreSQL).
    Statements,
}

/// One SQL text and its arguments.
pub(crate) struct Part<DB: SqlDb> {
    pub(crate) sql: String,
    pub(crate) args: DB::Arguments,
    /// Statements in `sql`.
    pub(crate) statements: usize,
}

/// The statements of one step of a write transaction.
pub(crate) struct Batch<DB: SqlDb> {
    mode: BatchMode,
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
            mode: DB::BATCH_MODE,
            parts: Vec::new(),
            error: None,
        }
    }

    /// Statements in the batch.
    pub(crate) fn statements(&self) -> usize {
        self.parts.iter().map(|p| p.statements).sum()
    }

    fn current(&mut self) -> &mut Part<DB> {
        if self.parts.is_empty() {
            self.parts.push(Part {
                sql: String::new(),
                args: DB::Arguments::default(),
                statements: 0,
            });
        }
        let last = self.parts.len() - 1;
        &mut self.parts[last]
    }

    /// Starts a statement. Its `$n` placeholders count from the statement's own first
    /// argument; bind them with [`Batch::arg`], in order.
    pub(crate) fn stmt(&mut self, sql: &str) -> &mut Self {
        self.open();
        let part = self.current();
        let offset = part.args.len();
        renumber(&mut part.sql, sql, offset);
        self
    }

    /// Starts a statement built piece by piece with [`Batch::push`] and [`Batch::push_arg`].
    pub(crate) fn begin_stmt(&mut self) -> &mut Self {
        self.open();
        self
    }

    fn open(&mut self) {
        let full = self
            .parts
            .last()
            .is_some_and(|p| p.args.len() >= SCRIPT_ARGS);
        if self.mode == BatchMode::Statements || self.parts.is_empty() || full {
            self.parts.push(Part {
                sql: String::new(),
                args: DB::Arguments::default(),
                statements: 1,
            });
        } else {
            let part = self.current();
            if !part.sql.is_empty() {
                part.sql.push_str(";\n");
            }
            part.statements += 1;
        }
    }

    /// Appends SQL text to the current statement.
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.current().sql.push_str(sql);
        self
    }

    /// Binds the next argument of the current statement.
    pub(crate) fn arg<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: Binds<'t, T>,
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
        DB: Binds<'t, T>,
    {
        let part = self.current();
        let n = part.args.len() + 1;
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

    /// The SQL texts to send, in order; an argument that did not encode is `Error::Encode`.
    pub(crate) fn into_parts(self) -> Result<Vec<Part<DB>>, sqlx::Error> {
        match self.error {
            Some(detail) => Err(sqlx::Error::Encode(detail.into())),
            None => Ok(self.parts),
        }
    }
}

/// The rows of a multi-row `INSERT` ([`Batch::insert`]).
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
        DB: Binds<'t, T>,
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

/// Appends `sql` to `out` with every `$n` placeholder raised by `offset`.
fn renumber(out: &mut String, sql: &str, offset: usize) {
    if offset == 0 {
        out.push_str(sql);
        return;
    }
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits].parse::<usize>() {
            Ok(n) => {
                let _ = write!(out, "${}", n + offset);
            }
            // A `$` not followed by a number is not a placeholder.
            Err(_) => out.push('$'),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
}

/// Rows per statement of one SQL text, and how far it got when it failed.
pub(crate) struct Failed {
    pub(crate) error: sqlx::Error,
    /// Statements of the text that completed before the error.
    pub(crate) completed: usize,
}

/// Runs one SQL text and groups the rows it returns by statement.
pub(crate) async fn grouped<'c, DB: SqlDb>(
    conn: DB::Conn<'c>,
    sql: String,
    args: DB::Arguments,
    statements: usize,
) -> Result<Vec<Vec<DB::Row>>, Failed> {
    let mut groups: Vec<Vec<DB::Row>> = Vec::with_capacity(statements);
    let mut current = Vec::new();
    let mut stream = conn.fetch_many(sqlx::query_with(AssertSqlSafe(sql), args));
    loop {
        match stream.try_next().await {
            Ok(Some(Either::Right(row))) => current.push(row),
            Ok(Some(Either::Left(_done))) => groups.push(std::mem::take(&mut current)),
            Ok(None) => break,
            Err(error) => {
                return Err(Failed {
                    error,
                    completed: groups.len(),
                });
            }
        }
    }
    // A statement that ends without a result (none seen in practice) still gets its group.
    while groups.len() < statements {
        groups.push(std::mem::take(&mut current));
    }
    Ok(groups)
}

#[cfg(test)]
mod tests {
    use super::renumber;

    fn renumbered(sql: &str, offset: usize) -> String {
        let mut out = String::new();
        renumber(&mut out, sql, offset);
        out
    }

    #[test]
    fn renumbers_placeholders_only() {
        assert_eq!(
            renumbered("UPDATE t SET a = $2 WHERE id = $1 AND b = $10", 3),
            "UPDATE t SET a = $5 WHERE id = $4 AND b = $13"
        );
        assert_eq!(renumbered("SELECT '$' || $1", 1), "SELECT '$' || $2");
        assert_eq!(renumbered("SELECT $1", 0), "SELECT $1");
        assert_eq!(renumbered("x$", 2), "x$");
    }
}
