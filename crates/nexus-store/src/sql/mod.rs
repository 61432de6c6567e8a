//! The SQL both backends run, written once. The store traits are implemented here for every
//! [`SqlStore`]; a backend (`crate::sqlite`, `crate::postgres`) only says how it connects, how it
//! starts a write transaction and how a timestamp is bound ([`SqlDb`]).
//!
//! Statements stay inside what SQLite and PostgreSQL/CockroachDB both accept (`$n` placeholders,
//! `ON CONFLICT`, `RETURNING`); one that would differ belongs in its backend's module. Rows are
//! decoded by `crate::codec`. Must never contain business rules.
//!
//! sqlx's generic API needs a bound for every bound type and for every executor. Those bounds are
//! stated once, as supertraits and associated-type bounds of [`SqlDb`] (which callers get for
//! free, unlike where-clauses), so the shared code needs only `S: SqlStore`. Values are bound with
//! [`Arg::arg`] and [`PushArg::push_arg`], which go through those bounds.

mod accounts;
mod agents;
pub(crate) mod batch;
mod channels;
mod turns;

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::query::Query;
use sqlx::query_builder::Separated;
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Type};
use uuid::Uuid;

use crate::codec::Cols;

/// A store that runs the shared SQL: the database it speaks, its pool and its write transactions.
pub(crate) trait SqlStore: Send + Sync {
    type Db: SqlDb;
    /// Held for the length of a write (SQLite: this process's writer mutex; PostgreSQL: nothing).
    type WriteLock: Send;

    /// The pool, as an executor for one statement.
    fn db(&self) -> <Self::Db as SqlDb>::OnPool<'_>;

    /// Waits for this process's other writers to finish. Never call `write_batch` while
    /// holding it: SQLite's committer takes the same lock.
    fn lock_writes(&self) -> impl Future<Output = Self::WriteLock> + Send;

    /// Runs `batch` as one transaction and commits it; the rows each statement returned, in
    /// order. SQLite may commit it together with other batches (group commit), but a batch
    /// that fails is rolled back alone.
    fn write_batch(
        &self,
        batch: batch::Batch<Self::Db>,
    ) -> impl Future<Output = Result<Vec<Vec<<Self::Db as BatchDb>::BatchRow>>, sqlx::Error>> + Send;
}

/// How a database's write batches hold their arguments and return their rows. SQLite runs its
/// batches outside sqlx (see `crate::sqlite::write`), with values and rows of its own;
/// PostgreSQL uses sqlx's.
pub(crate) trait BatchDb: Database {
    /// The arguments of one statement of a batch.
    type BatchArgs: Default + Send;
    /// A row a batch statement returned.
    type BatchRow: Cols + Send;
    /// A timestamp as stored (SQLite: microseconds since the epoch; PostgreSQL: `timestamptz`).
    type Time: for<'q> Encode<'q, Self> + Type<Self> + Send;
    /// An optional timestamp as stored.
    type OptTime: for<'q> Encode<'q, Self> + Type<Self> + Send;

    /// Arguments bound so far.
    fn arg_count(args: &Self::BatchArgs) -> usize;
}

/// That values of type `T` can be bound in this database's write batches.
pub(crate) trait BatchBinds<'t, T>: BatchDb {
    fn add_to(args: &mut Self::BatchArgs, value: T) -> Result<(), sqlx::error::BoxDynError>;
}

/// A type bound both ways: in a query ([`Binds`]) and in a write batch ([`BatchBinds`]).
pub(crate) trait BindsBoth<'t, T>: Binds<'t, T> + BatchBinds<'t, T> {}

impl<'t, T, D: Binds<'t, T> + BatchBinds<'t, T>> BindsBoth<'t, T> for D {}

/// What the shared SQL needs of a sqlx database, beyond [`Database`]: one [`BindsBoth`] per type
/// its statements bind (the time types of a batch are the backend's own), and executors named by associated types, because sqlx's own executor bound
/// (`for<'c> &'c mut Connection: Executor<'c>`) cannot be stated so that users of the trait get
/// it for free.
pub(crate) trait SqlDb:
    Database<Arguments: IntoArguments<Self>, Row: Cols, QueryResult: RowsAffected>
    + BatchDb
    + for<'a> BindsBoth<'a, Uuid>
    + for<'a> BindsBoth<'a, String>
    + for<'a> BindsBoth<'a, &'a str>
    + for<'a> BindsBoth<'a, &'a String>
    + for<'a> BindsBoth<'a, Option<&'a str>>
    + for<'a> BindsBoth<'a, Option<&'a String>>
    + for<'a> BindsBoth<'a, &'a [u8]>
    + for<'a> BindsBoth<'a, &'a Vec<u8>>
    + for<'a> BindsBoth<'a, i64>
    + for<'a> BindsBoth<'a, Option<i64>>
    + for<'a> BindsBoth<'a, Option<f32>>
    + for<'a> BindsBoth<'a, bool>
    + for<'a> BatchBinds<'a, <Self as BatchDb>::Time>
    + for<'a> BatchBinds<'a, <Self as BatchDb>::OptTime>
{
    /// `&mut Self::Connection`, as an executor.
    type Conn<'c>: Executor<'c, Database = Self>;
    /// `&Pool<Self>`, as an executor.
    type OnPool<'p>: Executor<'p, Database = Self>;

    fn time(at: DateTime<Utc>) -> Self::Time;
    /// SQL giving the UTC day (`YYYY-MM-DD`, as text) of the timestamp column `column`.
    fn utc_day(column: &str) -> String;
    fn opt_time(at: Option<DateTime<Utc>>) -> Self::OptTime;
}

/// How many rows a statement changed (each backend's `QueryResult` has it, under no trait).
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

/// That values of type `T` can be bound in this database's statements.
pub(crate) trait Binds<'t, T>: Database {
    fn bind_to<'q>(
        query: Query<'q, Self, Self::Arguments>,
        value: T,
    ) -> Query<'q, Self, Self::Arguments>;
    fn push_to(builder: &mut QueryBuilder<Self>, value: T);
    fn push_separated(values: &mut Separated<'_, Self, &'static str>, value: T);
}

impl<'t, DB: Database, T: Encode<'t, DB> + Type<DB>> Binds<'t, T> for DB {
    fn bind_to<'q>(
        query: Query<'q, Self, Self::Arguments>,
        value: T,
    ) -> Query<'q, Self, Self::Arguments> {
        query.bind(value)
    }
    fn push_to(builder: &mut QueryBuilder<Self>, value: T) {
        builder.push_bind(value);
    }
    fn push_separated(values: &mut Separated<'_, Self, &'static str>, value: T) {
        values.push_bind(value);
    }
}

/// `Query::bind` for generic code.
pub(crate) trait Arg<DB>: Sized {
    fn arg<'t, T>(self, value: T) -> Self
    where
        DB: Binds<'t, T>;
}

impl<DB: Database> Arg<DB> for Query<'_, DB, DB::Arguments> {
    fn arg<'t, T>(self, value: T) -> Self
    where
        DB: Binds<'t, T>,
    {
        DB::bind_to(self, value)
    }
}

/// `push_bind` of `QueryBuilder` and of its `push_values` rows, for generic code.
pub(crate) trait PushArg<DB> {
    fn push_arg<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: Binds<'t, T>;
}

impl<DB: Database> PushArg<DB> for QueryBuilder<DB> {
    fn push_arg<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: Binds<'t, T>,
    {
        DB::push_to(self, value);
        self
    }
}

impl<DB: Database> PushArg<DB> for Separated<'_, DB, &'static str> {
    fn push_arg<'t, T>(&mut self, value: T) -> &mut Self
    where
        DB: Binds<'t, T>,
    {
        DB::push_separated(self, value);
        self
    }
}
