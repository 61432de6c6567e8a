//! The SQLite committer: group commit of write batches on a connection of its own.
//!
//! SQLite has one writer at a time, so the time a write holds the database decides how many
//! turns per second the whole process can take. The writes run outside sqlx, on a `rusqlite`
//! connection over the same `libsqlite3-sys`: sqlx runs each connection on a worker thread of
//! its own and sends every statement there and every result back through a channel, two thread
//! wake-ups per statement while the write lock is held. Here a write runs where it is committed,
//! and the only hand-offs left are the caller's batch coming in and its rows going back.
//!
//! A caller whose write finds no other under way commits it at once, on its own thread: a
//! batch is a few statements on a local file, done in tens of microseconds, and nothing in it
//! awaits, so a caller that stops waiting cannot leave the connection inside a transaction.
//! Batches that arrive while a write is under way queue for the committer thread, which takes
//! every batch waiting, runs each inside a `SAVEPOINT` of one transaction, and commits them
//! together: one `COMMIT` (one WAL append of the pages they share) per group. Once a group had
//! several batches, writers are active at once: every batch then goes to the thread, which
//! waits up to [`GROUP_WAIT`] for as many batches as the group before had. A turn's batch
//! touches about twenty pages, most of them shared with the other turns' (the same index
//! leaves), and every commit writes each page it touched to the WAL: under 16 sessions the wait
//! cuts the pages written per turn by a third (19 to 13). A group of one batch ends it; a lone
//! writer never waits.
//!
//! A batch that fails is rolled back to its savepoint alone and gets its own error; if the
//! group itself cannot commit, every batch that had succeeded is run again on its own, so each
//! caller sees its own outcome. The thread stops when the store is dropped.
//!
//! Reads stay on sqlx's pool. In WAL mode they see every committed write, from this connection
//! or any other.

use std::fmt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, mpsc};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{Connection, OpenFlags};
use sqlx::Sqlite;
use sqlx::error::{DatabaseError, ErrorKind};
use tokio::sync::oneshot;
use tracing::{debug, warn};
use uuid::Uuid;

use crate::codec::Cols;
use crate::error::{StoreError, StoreResult};
use crate::sql::batch::{Batch, Part};

/// Rows per statement of a committed batch, or why it failed.
pub(crate) type Outcome = Result<Vec<Vec<WrittenRow>>, sqlx::Error>;

/// Batches committed together at most.
const MAX_GROUP: usize = 64;

/// How long the committer thread waits for more batches before it commits, when the group
/// before had several: writers are then active at once, and each commit writes every page it
/// touched (about twenty per batch, shared by the batches of a group) to the WAL, so fewer,
/// larger groups cost the writer much less per batch. The wait ends as soon as as many batches
/// wait as the group before had.
const GROUP_WAIT: Duration = Duration::from_micros(250);

/// Prepared statements the committer's connection keeps (a turn's batches use about ten).
const STATEMENT_CACHE: usize = 64;

/// The statements of one batch.
type Statements = Vec<Part<Sqlite>>;

/// A batch waiting for the committer thread.
struct Job {
    parts: Statements,
    reply: oneshot::Sender<Outcome>,
}

/// Where and how the committer opens its connection.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    /// The file name as sqlx opens it.
    pub(crate) filename: String,
    pub(crate) busy_timeout: Duration,
    /// `PRAGMA` statements run on the new connection, the same as sqlx's connections get.
    pub(crate) pragmas: String,
}

impl Target {
    fn open(&self) -> rusqlite::Result<Connection> {
        // The flags sqlx opens its connections with.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE;
        let conn = Connection::open_with_flags(Path::new(&self.filename), flags)?;
        conn.busy_timeout(self.busy_timeout)?;
        conn.execute_batch(&self.pragmas)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(conn)
    }
}

/// The handle callers send batches through.
#[derive(Debug)]
pub(crate) struct Committer {
    jobs: mpsc::Sender<Job>,
    writer: Arc<Writer>,
}

impl Committer {
    /// Opens the committer's connection to `target` and starts its thread, holding `writes`
    /// while it writes and counting writes in `written`.
    pub(crate) fn start(
        target: Target,
        writes: Arc<tokio::sync::Mutex<()>>,
        written: Arc<AtomicU64>,
    ) -> Result<Self, String> {
        let conn = target
            .open()
            .map_err(|e| format!("cannot open {}: {e}", target.filename))?;
        let (jobs, queue) = mpsc::channel();
        let writer = Arc::new(Writer {
            conn: Mutex::new(Some(conn)),
            target,
            closed: AtomicBool::new(false),
            writes,
            written,
            last_group: AtomicUsize::new(0),
            group_wait: Mutex::new(GROUP_WAIT),
        });
        let thread = Arc::clone(&writer);
        std::thread::Builder::new()
            .name("nexus-sqlite-commit".into())
            .spawn(move || thread.run(queue))
            .map_err(|e| format!("cannot start the SQLite committer thread: {e}"))?;
        Ok(Committer { jobs, writer })
    }

    /// Commits `batch`; the rows each of its statements returned.
    pub(crate) async fn commit(&self, batch: Batch<Sqlite>) -> Outcome {
        let parts = batch.into_parts()?;
        // While writers are active at once, batches go to the committer thread, which commits
        // them in groups; a lone writer commits at once.
        if self.writer.last_group.load(Ordering::Relaxed) < 2
            && let Ok(_lock) = self.writer.writes.try_lock()
        {
            self.writer.written.fetch_add(1, Ordering::Relaxed);
            let mut outcomes = self.writer.commit_group(vec![parts]);
            return outcomes.pop().unwrap_or(Err(sqlx::Error::WorkerCrashed));
        }
        let (reply, outcome) = oneshot::channel();
        self.jobs
            .send(Job { parts, reply })
            .map_err(|_| sqlx::Error::PoolClosed)?;
        outcome.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }

    /// Gives back the memory of the connection's page cache (SQLite's
    /// `sqlite3_db_release_memory`) unless a write is under way, then skipped: it runs when
    /// writes have paused, and the pages a later write needs are read back from the file.
    pub(crate) fn release_memory(&self) {
        let Ok(_lock) = self.writer.writes.try_lock() else {
            return;
        };
        if let Some(conn) = self.writer.connection().as_ref()
            && let Err(err) = conn.release_memory()
        {
            debug!(error = %err, "Releasing the SQLite writer's cache failed");
        }
    }

    /// Closes the connection; later writes fail with `PoolClosed`.
    pub(crate) fn close(&self) {
        self.writer.closed.store(true, Ordering::Relaxed);
        self.writer.connection().take();
    }
}

struct Writer {
    /// `None` once closed, or after a connection that could not roll back was dropped (it is
    /// opened again on the next write).
    conn: Mutex<Option<Connection>>,
    target: Target,
    closed: AtomicBool,
    writes: Arc<tokio::sync::Mutex<()>>,
    written: Arc<AtomicU64>,
    /// Batches in the committer thread's last group: two or more means that several writers
    /// are active, and new batches wait for the thread to group them.
    last_group: AtomicUsize,
    /// [`GROUP_WAIT`], longer in tests that need a group formed whatever the machine's load.
    group_wait: Mutex<Duration>,
}

impl fmt::Debug for Writer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Writer")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Writer {
    fn run(&self, queue: mpsc::Receiver<Job>) {
        while let Ok(first) = queue.recv() {
            let mut jobs = vec![first];
            let expected = self.last_group.load(Ordering::Relaxed).min(MAX_GROUP);
            if expected >= 2 {
                let wait = *self
                    .group_wait
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                let deadline = Instant::now() + wait;
                while jobs.len() < expected {
                    let left = deadline.saturating_duration_since(Instant::now());
                    match queue.recv_timeout(left) {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
            }
            let replies_and_outcomes = {
                let _lock = self.writes.blocking_lock();
                self.written.fetch_add(1, Ordering::Relaxed);
                // Whatever arrived while the lock was taken joins the group.
                while jobs.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                self.last_group.store(jobs.len(), Ordering::Relaxed);
                // A caller that stopped waiting (a cancelled request) has nothing to be told.
                jobs.retain(|job| !job.reply.is_closed());
                let (batches, replies): (Vec<_>, Vec<_>) =
                    jobs.into_iter().map(|job| (job.parts, job.reply)).unzip();
                let outcomes = if batches.is_empty() {
                    Vec::new()
                } else {
                    self.commit_group(batches)
                };
                replies.into_iter().zip(outcomes)
            };
            for (reply, outcome) in replies_and_outcomes {
                let _ = reply.send(outcome);
            }
        }
    }

    fn connection(&self) -> MutexGuard<'_, Option<Connection>> {
        // The connection is left outside any transaction whenever the lock is released, so a
        // poisoned lock holds a usable connection.
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Commits `batches` (the caller holds the write lock); one outcome per batch, in order.
    fn commit_group(&self, batches: Vec<Statements>) -> Vec<Outcome> {
        let mut guard = self.connection();
        if guard.is_none() && !self.closed.load(Ordering::Relaxed) {
            match self.target.open() {
                Ok(conn) => *guard = Some(conn),
                Err(err) => {
                    warn!(error = %err, "Cannot reopen the SQLite writer connection");
                }
            }
        }
        let Some(conn) = guard.as_mut() else {
            return batches
                .iter()
                .map(|_| Err(sqlx::Error::PoolClosed))
                .collect();
        };
        let result = run_group(conn, &batches);
        let outcomes = match result {
            Ok(outcomes) => outcomes,
            Err(failed) if batches.len() == 1 => vec![Err(failed.error)],
            Err(failed) => {
                // Batches that failed on their own keep their error; the others run again,
                // each in a transaction of its own, so each caller gets its own outcome.
                let mut earlier = failed.outcomes.into_iter();
                batches
                    .iter()
                    .map(|batch| match earlier.next() {
                        Some(Err(err)) => Err(err),
                        _ => match run_group(conn, std::slice::from_ref(batch)) {
                            Ok(mut outcome) => {
                                outcome.pop().unwrap_or(Err(sqlx::Error::WorkerCrashed))
                            }
                            Err(failed) => Err(failed.error),
                        },
                    })
                    .collect()
            }
        };
        if !conn.is_autocommit() {
            // Every path above ends its transaction; a connection still inside one could
            // not roll back and is not used again.
            warn!("The SQLite writer connection is stuck in a transaction; reopening it");
            *guard = None;
        }
        outcomes
    }
}

/// A group that did not commit: why, and the outcomes of the batches run before it stopped.
struct GroupFailed {
    error: sqlx::Error,
    outcomes: Vec<Outcome>,
}

/// Runs `batches` in one transaction and commits it; each batch's outcome, in order (a batch's
/// rows count only once the commit succeeded).
fn run_group(conn: &mut Connection, batches: &[Statements]) -> Result<Vec<Outcome>, GroupFailed> {
    // A batch alone needs no savepoint: if it fails, the whole transaction is rolled back.
    let alone = batches.len() == 1;
    let mut outcomes = Vec::with_capacity(batches.len());
    if let Err(error) = control(conn, "BEGIN IMMEDIATE") {
        return Err(GroupFailed { error, outcomes });
    }
    for statements in batches {
        if !alone && let Err(error) = control(conn, "SAVEPOINT batch") {
            return Err(abandon(conn, error, outcomes));
        }
        match run_batch(conn, statements) {
            Ok(rows) => {
                if !alone && let Err(error) = control(conn, "RELEASE batch") {
                    return Err(abandon(conn, error, outcomes));
                }
                outcomes.push(Ok(rows));
            }
            Err(error) if alone => return Err(abandon(conn, error, outcomes)),
            Err(error) => {
                let undone = control(conn, "ROLLBACK TO batch")
                    .and_then(|()| control(conn, "RELEASE batch"));
                outcomes.push(Err(error));
                if let Err(undo) = undone {
                    return Err(abandon(conn, undo, outcomes));
                }
            }
        }
    }
    if let Err(error) = control(conn, "COMMIT") {
        return Err(abandon(conn, error, outcomes));
    }
    Ok(outcomes)
}

/// Rolls the transaction back (if SQLite has not already) after `error`.
fn abandon(conn: &mut Connection, error: sqlx::Error, outcomes: Vec<Outcome>) -> GroupFailed {
    if !conn.is_autocommit()
        && let Err(err) = control(conn, "ROLLBACK")
    {
        warn!(error = %err, "Rollback failed");
    }
    GroupFailed { error, outcomes }
}

/// Runs a transaction control statement.
fn control(conn: &mut Connection, sql: &'static str) -> Result<(), sqlx::Error> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.raw_execute())
        .map(|_| ())
        .map_err(error)
}

/// Runs the statements of one batch; the rows of each.
fn run_batch(
    conn: &mut Connection,
    statements: &Statements,
) -> Result<Vec<Vec<WrittenRow>>, sqlx::Error> {
    let mut groups = Vec::with_capacity(statements.len());
    for part in statements {
        let mut stmt = conn.prepare_cached(&part.sql).map_err(error)?;
        bind(&mut stmt, &part.args)?;
        let columns: Option<Arc<[String]>> = (stmt.column_count() > 0)
            .then(|| stmt.column_names().into_iter().map(str::to_owned).collect());
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(error)? {
            if let Some(columns) = &columns {
                let values = (0..columns.len())
                    .map(|i| row.get::<_, Value>(i))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(error)?;
                out.push(WrittenRow {
                    columns: Arc::clone(columns),
                    values,
                });
            }
        }
        groups.push(out);
    }
    Ok(groups)
}

/// Binds `args` to the statement's `$n` (or `?n`) parameters by number; a plain `?` takes the
/// next argument.
fn bind(stmt: &mut rusqlite::Statement<'_>, args: &[Value]) -> Result<(), sqlx::Error> {
    for index in 1..=stmt.parameter_count() {
        let n = match stmt.parameter_name(index) {
            None => index,
            Some(name) => name
                .strip_prefix('$')
                .or_else(|| name.strip_prefix('?'))
                .and_then(|digits| digits.parse::<usize>().ok())
                .ok_or_else(|| {
                    sqlx::Error::Protocol(format!("unsupported SQL parameter `{name}`"))
                })?,
        };
        let value = n.checked_sub(1).and_then(|i| args.get(i)).ok_or_else(|| {
            sqlx::Error::Protocol(format!(
                "parameter ${n} has no argument ({} bound)",
                args.len()
            ))
        })?;
        stmt.raw_bind_parameter(index, value).map_err(error)?;
    }
    Ok(())
}

/// A row a batch statement returned.
#[derive(Debug, Clone)]
pub(crate) struct WrittenRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

impl WrittenRow {
    fn value(&self, col: &'static str) -> StoreResult<&Value> {
        self.columns
            .iter()
            .position(|c| c == col)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Database(sqlx::Error::ColumnNotFound(col.to_owned())))
    }
}

fn corrupt(col: &'static str, expected: &str, found: &Value) -> StoreError {
    let found = match found {
        Value::Null => "NULL",
        Value::Integer(_) => "an integer",
        Value::Real(_) => "a real",
        Value::Text(_) => "text",
        Value::Blob(_) => "a blob",
    };
    StoreError::Corrupt {
        what: col,
        detail: format!("expected {expected}, found {found}"),
    }
}

impl Cols for WrittenRow {
    fn uuid(&self, col: &'static str) -> StoreResult<Uuid> {
        match self.value(col)? {
            Value::Blob(bytes) => Uuid::from_slice(bytes).map_err(|e| StoreError::Corrupt {
                what: col,
                detail: e.to_string(),
            }),
            other => Err(corrupt(col, "a 16-byte blob", other)),
        }
    }
    fn text(&self, col: &'static str) -> StoreResult<String> {
        self.opt_text(col)?
            .ok_or_else(|| corrupt(col, "text", &Value::Null))
    }
    fn opt_text(&self, col: &'static str) -> StoreResult<Option<String>> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Text(text) => Ok(Some(text.clone())),
            other => Err(corrupt(col, "text", other)),
        }
    }
    fn int(&self, col: &'static str) -> StoreResult<i64> {
        self.opt_int(col)?
            .ok_or_else(|| corrupt(col, "an integer", &Value::Null))
    }
    fn opt_int(&self, col: &'static str) -> StoreResult<Option<i64>> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Integer(n) => Ok(Some(*n)),
            other => Err(corrupt(col, "an integer", other)),
        }
    }
    fn flag(&self, col: &'static str) -> StoreResult<bool> {
        Ok(self.int(col)? != 0)
    }
    fn bytes(&self, col: &'static str) -> StoreResult<Vec<u8>> {
        match self.value(col)? {
            Value::Blob(bytes) => Ok(bytes.clone()),
            other => Err(corrupt(col, "a blob", other)),
        }
    }
    fn time(&self, col: &'static str) -> StoreResult<DateTime<Utc>> {
        super::from_us(col, self.int(col)?)
    }
    fn opt_time(&self, col: &'static str) -> StoreResult<Option<DateTime<Utc>>> {
        self.opt_int(col)?
            .map(|v| super::from_us(col, v))
            .transpose()
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_precision_loss,
        reason = "stored from an f32"
    )]
    fn opt_f32(&self, col: &'static str) -> StoreResult<Option<f32>> {
        match self.value(col)? {
            Value::Null => Ok(None),
            Value::Real(x) => Ok(Some(*x as f32)),
            Value::Integer(n) => Ok(Some(*n as f32)),
            other => Err(corrupt(col, "a real", other)),
        }
    }
}

/// An error SQLite reported to the committer, with the extended result code sqlx would report.
#[derive(Debug)]
pub(crate) struct WriteError {
    code: i32,
    message: String,
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for WriteError {}

impl DatabaseError for WriteError {
    fn message(&self) -> &str {
        &self.message
    }
    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }
    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }
    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }
    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// Maps a rusqlite error to the sqlx error the rest of the crate handles.
fn error(err: rusqlite::Error) -> sqlx::Error {
    match err {
        rusqlite::Error::SqliteFailure(failure, message) => {
            sqlx::Error::Database(Box::new(WriteError {
                code: failure.extended_code,
                message: message.unwrap_or_else(|| failure.to_string()),
            }))
        }
        other => sqlx::Error::Protocol(format!("SQLite writer: {other}")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "test code")]
mod tests;
