//! The PostgreSQL and CockroachDB backend. Everything here stays inside what both accept:
//! application-generated UUID keys, `INSERT … ON CONFLICT`, no sequences, no advisory locks
//! (migrations run with sqlx's locking off), no LISTEN/NOTIFY. Multi-statement writes run under
//! `crate::retry` so serialization failures (CockroachDB runs SERIALIZABLE) are retried.
//!
//! The statements are shared with SQLite (`crate::sql`), and so is row decoding
//! (`crate::codec`); this module says how to connect, write and bind a timestamp. Must never
//! contain business rules.

use std::str::FromStr;
use std::sync::LazyLock;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgArguments, PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Arguments, AssertSqlSafe, PgConnection, Postgres, Row};
use uuid::Uuid;

use crate::OpenOptions;
use crate::codec::{self, Cols, column_error, db};
use crate::error::{StoreError, StoreResult};
use crate::records::{Backend, MigrationStatus};
use crate::sql::batch::Batch;
use crate::sql::{BatchBinds, BatchDb, RowsAffected, SqlDb, SqlStore};
use crate::traits::Store;

/// The PostgreSQL migrations, embedded at build time, run without sqlx's advisory lock
/// (CockroachDB has none): one process runs migrations (`nexus migrate`, or the first replica
/// with `migrate` on).
static MIGRATOR: LazyLock<Migrator> = LazyLock::new(|| {
    let mut migrator = sqlx::migrate!("./migrations/postgres");
    migrator.set_locking(false);
    migrator
});

/// The counterpart of the SQLite backend's in-process write lock: nothing to hold.
#[derive(Debug)]
pub(crate) struct WriteLock;

/// The PostgreSQL/CockroachDB store. Cheap to clone (the pool is shared).
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to the database `url` names (`postgres://…` or `postgresql://…`), and applies
    /// migrations when `options.migrate` is set.
    pub async fn connect(url: &str, options: &OpenOptions) -> StoreResult<Self> {
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(options.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(db)?;
        let store = PostgresStore { pool };
        if options.migrate {
            store.migrate().await?;
        }
        Ok(store)
    }

    /// The connection pool, for code that needs SQL of its own (tests, search indexes).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

impl SqlStore for PostgresStore {
    type Db = Postgres;
    type WriteLock = WriteLock;

    fn db(&self) -> &PgPool {
        &self.pool
    }

    /// Writers are not queued in-process on PostgreSQL: row locks and `crate::retry` order
    /// them.
    async fn lock_writes(&self) -> WriteLock {
        WriteLock
    }

    async fn write_batch(&self, batch: Batch<Postgres>) -> Result<Vec<Vec<PgRow>>, sqlx::Error> {
        let mut groups = Vec::with_capacity(batch.statements());
        let mut parts = batch.into_parts()?;
        if parts.len() == 1
            && let Some(part) = parts.pop()
        {
            // One statement is a transaction of its own: no BEGIN and COMMIT round trips.
            groups.push(
                sqlx::query_with(AssertSqlSafe(part.sql), part.args)
                    .fetch_all(&self.pool)
                    .await?,
            );
            return Ok(groups);
        }
        // An error drops the transaction, which rolls it back.
        let mut tx = self.pool.begin().await?;
        for part in parts {
            groups.push(
                sqlx::query_with(AssertSqlSafe(part.sql), part.args)
                    .fetch_all(&mut *tx)
                    .await?,
            );
        }
        tx.commit().await?;
        Ok(groups)
    }
}

impl BatchDb for Postgres {
    type BatchArgs = PgArguments;
    type BatchRow = PgRow;
    /// `timestamptz`.
    type Time = DateTime<Utc>;
    type OptTime = Option<DateTime<Utc>>;

    fn arg_count(args: &PgArguments) -> usize {
        args.len()
    }
}

impl<'t, T: sqlx::Encode<'t, Postgres> + sqlx::Type<Postgres>> BatchBinds<'t, T> for Postgres {
    fn add_to(args: &mut PgArguments, value: T) -> Result<(), sqlx::error::BoxDynError> {
        args.add(value)
    }
}

impl SqlDb for Postgres {
    type Conn<'c> = &'c mut PgConnection;
    type OnPool<'p> = &'p PgPool;

    fn time(at: DateTime<Utc>) -> DateTime<Utc> {
        at
    }
    /// `to_char` is not in CockroachDB; a cast to DATE and then TEXT is in both.
    fn utc_day(column: &str) -> String {
        format!("CAST(CAST(({column} AT TIME ZONE 'UTC') AS DATE) AS TEXT)")
    }
    fn opt_time(at: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
        at
    }
}

fn get<'r, T>(row: &'r PgRow, col: &'static str) -> StoreResult<T>
where
    T: sqlx::Decode<'r, Postgres> + sqlx::Type<Postgres>,
{
    row.try_get(col).map_err(|e| column_error(col, e))
}

impl Cols for PgRow {
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
        get(self, col)
    }
    fn opt_time(&self, col: &'static str) -> StoreResult<Option<DateTime<Utc>>> {
        get(self, col)
    }
    fn opt_f32(&self, col: &'static str) -> StoreResult<Option<f32>> {
        get(self, col)
    }
}

#[async_trait]
impl Store for PostgresStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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
            "SELECT EXISTS (SELECT 1 FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations')",
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
        self.pool.close().await;
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        self.rows_affected()
    }
}
