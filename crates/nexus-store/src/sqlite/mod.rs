//! The embedded SQLite backend: one database file in WAL mode, a small sqlx connection pool for
//! reads and one-statement writes, the committer's own connection for write batches (`write`),
//! and write transactions opened with `BEGIN IMMEDIATE` so that two writers never deadlock on a
//! lock upgrade. Writers of this process also queue on an async mutex before they touch the
//! database: SQLite allows one writer at a time anyway, and waiting on the mutex costs
//! microseconds where SQLite's busy handler sleeps for milliseconds. Other processes on the same
//! file are still handled by the busy timeout and `crate::retry`.
//!
//! Timestamps are stored as integer microseconds since the epoch and ids as 16-byte blobs; the
//! schema is `migrations/sqlite`. The statements are shared with PostgreSQL (`crate::sql`), and
//! so is row decoding (`crate::codec`); this module says how to connect, write and bind a
//! timestamp. Must never contain business rules.

mod write;

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row, Sqlite, SqliteConnection};
use tracing::debug;
use uuid::Uuid;

use crate::OpenOptions;
use crate::codec::{self, Cols, column_error, db};
use crate::error::{StoreError, StoreResult};
use crate::records::{Backend, MigrationStatus};
use crate::sql::batch::Batch;
use crate::sql::{BatchBinds, BatchDb, RowsAffected, SqlDb, SqlStore};
use crate::traits::Store;

/// The SQLite migrations, embedded at build time.
static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// How long a statement waits for another connection's write lock before failing with BUSY.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages after which a committing writer checkpoints by itself. The background
/// checkpointer normally keeps the WAL far below this; it is the bound if it falls behind.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 16_384;
/// How often the background checkpointer looks for new writes.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(250);
/// How long writes must have paused before the connections' page caches are given back.
const RELEASE_AFTER: Duration = Duration::from_secs(1);

/// The SQLite store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Held by this process's writer for the length of its write.
    writes: Arc<tokio::sync::Mutex<()>>,
    /// Writes begun, for the checkpointer to see whether there is anything to do.
    written: Arc<AtomicU64>,
    /// Commits write batches on a connection of its own (see `write`).
    committer: Arc<write::Committer>,
    /// Stops the background checkpointer when the last clone of the store is dropped.
    _checkpointer: Arc<AbortOnDrop>,
    /// The directory of an in-memory database, removed with the last clone.
    _scratch: Option<Arc<tempfile::TempDir>>,
}

/// Aborts a background task when dropped.
#[derive(Debug)]
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Copies the WAL back into the database file off the writers' path. SQLite's own automatic
/// checkpoint runs inside the commit that crosses the threshold, so one turn in a few dozen
/// paid for copying pages and an `fsync`; a `PASSIVE` checkpoint on another connection runs
/// beside the writers without blocking them.
///
/// Once writes have paused for [`RELEASE_AFTER`], it also gives back the page cache of the
/// committer's connection and what the pool's idle connections hold
/// ([`release_pool_memory`]): a burst fills them, and what a burst left live should be freed
/// when it is over.
fn spawn_checkpointer(
    pool: SqlitePool,
    written: Arc<AtomicU64>,
    committer: Weak<write::Committer>,
) -> AbortOnDrop {
    AbortOnDrop(tokio::spawn(async move {
        let mut state = Housekeeping::new(written.load(Ordering::Relaxed));
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                return;
            }
            match state.on_tick(written.load(Ordering::Relaxed)) {
                Chore::None => {}
                Chore::Checkpoint => {
                    if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                        .execute(&pool)
                        .await
                    {
                        debug!(error = %err, "WAL checkpoint failed; retrying on the next write");
                    }
                }
                Chore::ReleaseMemory => {
                    if let Some(committer) = committer.upgrade() {
                        committer.release_memory();
                    }
                    release_pool_memory(&pool).await;
                }
            }
        }
    }))
}

/// Gives back what the pool's idle connections hold: each one a burst of reads opened holds a
/// page cache, its prepared statements, the schema and SQLite's lookaside buffers (SQLite
/// counted 4.6 MB allocated for four connections after a 16-session load, 0.33 MB with one;
/// much of it reserved and never touched, so the resident size fell by less than 0.5 MiB).
/// Every idle connection but one is closed, and the pool opens connections again as reads
/// need them; the one kept releases its page cache.
async fn release_pool_memory(pool: &SqlitePool) {
    let mut kept = None;
    // Connections taken are kept or closed, so each idle one is seen once.
    for _ in 0..pool.num_idle() {
        let Some(mut conn) = pool.try_acquire() else {
            break;
        };
        if kept.is_some() {
            if let Err(err) = conn.close().await {
                debug!(error = %err, "Closing an idle pooled connection failed");
            }
            continue;
        }
        if let Err(err) = sqlx::query("PRAGMA shrink_memory")
            .execute(&mut *conn)
            .await
        {
            debug!(error = %err, "Releasing a pooled connection's cache failed");
        }
        kept = Some(conn);
    }
}

/// What the checkpointer does on a tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chore {
    None,
    /// Writes happened since the last tick.
    Checkpoint,
    /// Writes have paused for [`RELEASE_AFTER`] since the caches last filled.
    ReleaseMemory,
}

/// The checkpointer's view of the writes: the count it last saw and how long it has not moved.
#[derive(Debug)]
struct Housekeeping {
    seen: u64,
    quiet_ticks: u32,
    /// Whether writes happened since the caches were last released.
    cached: bool,
}

impl Housekeeping {
    fn new(written: u64) -> Self {
        Housekeeping {
            seen: written,
            quiet_ticks: 0,
            cached: false,
        }
    }

    fn on_tick(&mut self, written: u64) -> Chore {
        if written != self.seen {
            self.seen = written;
            self.quiet_ticks = 0;
            self.cached = true;
            return Chore::Checkpoint;
        }
        self.quiet_ticks = self.quiet_ticks.saturating_add(1);
        if self.cached && CHECKPOINT_EVERY * self.quiet_ticks >= RELEASE_AFTER {
            self.cached = false;
            return Chore::ReleaseMemory;
        }
        Chore::None
    }
}

/// Proof that this process's other writers are waiting (see the module doc).
pub(crate) type WriteLock = tokio::sync::OwnedMutexGuard<()>;

impl SqliteStore {
    /// Opens (creating if missing) the database `url` names (`sqlite:PATH`, `sqlite://PATH`,
    /// `sqlite::memory:`), and applies migrations when `options.migrate` is set.
    ///
    /// Makes this process's new ids time-ordered (see [`nexus_core::ids`]): SQLite's indexes
    /// are local B-trees, where random keys dirty a random page per insert.
    ///
    /// An in-memory database (`sqlite::memory:`, `mode=memory`) is a file in a private temporary
    /// directory, removed when the last clone of the store is dropped: the committer's
    /// connection and the pool's then share it with WAL's concurrency, where an in-memory
    /// database shared between connections would lock whole tables.
    pub async fn connect(url: &str, options: &OpenOptions) -> StoreResult<Self> {
        nexus_core::ids::use_time_ordered_ids(true);
        let parsed = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid SQLite URL: {e}")))?;
        let scratch = if url.contains(":memory:") || url.contains("mode=memory") {
            let dir = tempfile::Builder::new()
                .prefix("nexus-sqlite-")
                .tempdir()
                .map_err(|e| {
                    StoreError::Config(format!(
                        "cannot create a temporary directory for the in-memory database: {e}"
                    ))
                })?;
            Some(Arc::new(dir))
        } else {
            None
        };
        let connect = match &scratch {
            Some(dir) => SqliteConnectOptions::new().filename(dir.path().join("nexus.db")),
            None => parsed,
        }
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(BUSY_TIMEOUT)
        .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string())
        // Savepoint journals (one per batch of a group commit) in memory, not temp files.
        .pragma("temp_store", "memory");
        let target = write::Target {
            filename: connect
                .get_filename()
                .to_str()
                .ok_or_else(|| StoreError::Config("the SQLite path is not valid UTF-8".into()))?
                .to_owned(),
            busy_timeout: BUSY_TIMEOUT,
            pragmas: format!(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                 PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}; \
                 PRAGMA temp_store = MEMORY;"
            ),
        };
        let pool = SqlitePoolOptions::new()
            .max_connections(options.max_connections.max(1))
            // A local file does not drop connections: skip the ping sqlx sends before every
            // checkout, which costs a round trip to the connection's worker thread.
            .test_before_acquire(false)
            .connect_with(connect)
            .await
            .map_err(db)?;
        let writes = Arc::default();
        let written = Arc::new(AtomicU64::new(0));
        // After the pool: its first connection created the file and switched it to WAL.
        let committer = write::Committer::start(target, Arc::clone(&writes), Arc::clone(&written))
            .map_err(|e| StoreError::Config(format!("SQLite committer: {e}")))?;
        let committer = Arc::new(committer);
        let checkpointer = Arc::new(spawn_checkpointer(
            pool.clone(),
            Arc::clone(&written),
            Arc::downgrade(&committer),
        ));
        let store = SqliteStore {
            pool,
            writes,
            written,
            committer,
            _checkpointer: checkpointer,
            _scratch: scratch,
        };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The connection pool, for code that needs SQL of its own (tests, search indexes).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

impl SqlStore for SqliteStore {
    type Db = Sqlite;
    type WriteLock = WriteLock;

    fn db(&self) -> &SqlitePool {
        &self.pool
    }

    async fn lock_writes(&self) -> WriteLock {
        self.written.fetch_add(1, Ordering::Relaxed);
        Arc::clone(&self.writes).lock_owned().await
    }

    async fn write_batch(
        &self,
        batch: Batch<Sqlite>,
    ) -> Result<Vec<Vec<write::WrittenRow>>, sqlx::Error> {
        self.committer.commit(batch).await
    }
}

impl BatchDb for Sqlite {
    type BatchArgs = Vec<Value>;
    type BatchRow = write::WrittenRow;
    /// Microseconds since the epoch.
    type Time = i64;
    type OptTime = Option<i64>;

    fn arg_count(args: &Vec<Value>) -> usize {
        args.len()
    }
}

/// A value as the committer binds it: the same SQLite type sqlx binds it as, so that what one
/// writes the other reads back.
pub(crate) trait SqliteValue {
    fn into_value(self) -> Value;
}

impl<T: SqliteValue> SqliteValue for Option<T> {
    fn into_value(self) -> Value {
        self.map_or(Value::Null, SqliteValue::into_value)
    }
}

impl SqliteValue for Uuid {
    /// A 16-byte blob, as sqlx stores a `Uuid`.
    fn into_value(self) -> Value {
        Value::Blob(self.as_bytes().to_vec())
    }
}

impl SqliteValue for String {
    fn into_value(self) -> Value {
        Value::Text(self)
    }
}

impl SqliteValue for &str {
    fn into_value(self) -> Value {
        Value::Text(self.to_owned())
    }
}

impl SqliteValue for &String {
    fn into_value(self) -> Value {
        Value::Text(self.clone())
    }
}

impl SqliteValue for &[u8] {
    fn into_value(self) -> Value {
        Value::Blob(self.to_vec())
    }
}

impl SqliteValue for &Vec<u8> {
    fn into_value(self) -> Value {
        Value::Blob(self.clone())
    }
}

impl SqliteValue for i64 {
    fn into_value(self) -> Value {
        Value::Integer(self)
    }
}

impl SqliteValue for f32 {
    fn into_value(self) -> Value {
        Value::Real(f64::from(self))
    }
}

impl SqliteValue for bool {
    /// 0 or 1, as sqlx stores a `bool`.
    fn into_value(self) -> Value {
        Value::Integer(i64::from(self))
    }
}

impl<T: SqliteValue> BatchBinds<'_, T> for Sqlite {
    fn add_to(args: &mut Vec<Value>, value: T) -> Result<(), sqlx::error::BoxDynError> {
        args.push(value.into_value());
        Ok(())
    }
}

impl SqlDb for Sqlite {
    type Conn<'c> = &'c mut SqliteConnection;
    type OnPool<'p> = &'p SqlitePool;

    fn time(at: DateTime<Utc>) -> i64 {
        at.timestamp_micros()
    }
    fn utc_day(column: &str) -> String {
        format!("strftime('%Y-%m-%d', {column} / 1000000, 'unixepoch')")
    }
    fn opt_time(at: Option<DateTime<Utc>>) -> Option<i64> {
        at.map(Self::time)
    }
}

fn get<'r, T>(row: &'r SqliteRow, col: &'static str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Sqlite> + sqlx::Type<Sqlite>,
{
    row.try_get(col).map_err(|e| column_error(col, e))
}

fn from_us(col: &'static str, micros: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::from_timestamp_micros(micros).ok_or_else(|| StoreError::Corrupt {
        what: col,
        detail: format!("timestamp {micros} is out of range"),
    })
}

impl Cols for SqliteRow {
    fn uuid(&self, col: &'static str) -> StoreResult<Uuid> {
        get(self, col)
    }
    fn text(&self, col: &'static str) -> StoreResult<String> {
        get(self, col)
    }
    fn opt_text(&self, col: &'static str) -> StoreResult<Option<String>> {
        get(self, col)
    }
    fn int(&self, col: &'static str) -> StoreResult<i64> {
        get(self, col)
    }
    fn opt_int(&self, col: &'static str) -> StoreResult<Option<i64>> {
        get(self, col)
    }
    fn flag(&self, col: &'static str) -> StoreResult<bool> {
        get(self, col)
    }
    fn bytes(&self, col: &'static str) -> StoreResult<Vec<u8>> {
        get(self, col)
    }
    fn time(&self, col: &'static str) -> StoreResult<DateTime<Utc>> {
        from_us(col, get(self, col)?)
    }
    fn opt_time(&self, col: &'static str) -> StoreResult<Option<DateTime<Utc>>> {
        get::<Option<i64>>(self, col)?
            .map(|v| from_us(col, v))
            .transpose()
    }
    fn opt_f32(&self, col: &'static str) -> StoreResult<Option<f32>> {
        get(self, col)
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map(|_| ())
            .map_err(db)
    }

    async fn migration_status(&self) -> StoreResult<MigrationStatus> {
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' \
             AND name = '_sqlx_migrations')",
        )
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let applied: Vec<i64> = if exists {
            sqlx::query_scalar(
                "SELECT version FROM _sqlx_migrations WHERE success ORDER BY version",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(db)?
        } else {
            Vec::new()
        };
        Ok(codec::migration_status(&MIGRATOR, applied))
    }

    async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(StoreError::Migration)
    }

    async fn close(&self) {
        self.committer.close();
        self.pool.close().await;
    }
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    use super::{CHECKPOINT_EVERY, Chore, Housekeeping, RELEASE_AFTER, release_pool_memory};
    use sqlx::sqlite::SqlitePoolOptions;

    /// Waits (a while at most) for connections handed back to reach the pool's idle queue,
    /// which happens in the background.
    async fn settle(pool: &sqlx::SqlitePool, idle: usize) {
        for _ in 0..500 {
            if pool.num_idle() == idle {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    #[tokio::test]
    async fn an_idle_pool_keeps_one_connection_and_still_reads() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("pool.db").display());
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        // A burst of reads at once opens every connection.
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire().await.unwrap());
        }
        drop(held);
        settle(&pool, 4).await;
        assert_eq!((pool.size(), pool.num_idle()), (4, 4));

        release_pool_memory(&pool).await;
        settle(&pool, 1).await;
        assert_eq!((pool.size(), pool.num_idle()), (1, 1));
        // Idle again: nothing more to close.
        release_pool_memory(&pool).await;
        assert_eq!(pool.size(), 1);

        // Reads go on, and open connections again when they need more.
        let one: i64 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(one, 1);
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(pool.acquire().await.unwrap());
        }
        assert_eq!(pool.size(), 3);
    }

    #[test]
    fn caches_are_released_once_per_pause_after_writes() {
        let quiet_ticks = RELEASE_AFTER.as_millis() / CHECKPOINT_EVERY.as_millis();
        let mut state = Housekeeping::new(7);
        // Nothing written since start: nothing to checkpoint or release.
        for _ in 0..quiet_ticks * 2 {
            assert_eq!(state.on_tick(7), Chore::None);
        }
        // Writes: a checkpoint per tick that saw some.
        assert_eq!(state.on_tick(9), Chore::Checkpoint);
        assert_eq!(state.on_tick(12), Chore::Checkpoint);
        // Then a pause: the release comes after RELEASE_AFTER, once.
        let mut chores = Vec::new();
        for _ in 0..quiet_ticks * 3 {
            chores.push(state.on_tick(12));
        }
        let at = chores.iter().position(|c| *c == Chore::ReleaseMemory);
        assert_eq!(at, usize::try_from(quiet_ticks - 1).ok(), "{chores:?}");
        assert_eq!(
            chores
                .iter()
                .filter(|c| **c == Chore::ReleaseMemory)
                .count(),
            1
        );
        // A write in the middle of a pause starts the count again.
        assert_eq!(state.on_tick(13), Chore::Checkpoint);
        for _ in 0..quiet_ticks - 1 {
            assert_eq!(state.on_tick(13), Chore::None);
        }
        assert_eq!(state.on_tick(13), Chore::ReleaseMemory);
    }
}
