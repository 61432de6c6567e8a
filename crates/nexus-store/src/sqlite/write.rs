//! SQLite write transactions as scripts: each batch is one trip to the connection's worker
//! thread (see `crate::sql::batch`). sqlx does not manage this transaction (its own `BEGIN`
//! would be another trip), so this type does: it rolls back on an error, and a transaction
//! dropped half-way (a cancelled caller) is rolled back by a task that keeps the connection and
//! this process's write lock until it is done.

use sqlx::Sqlite;
use sqlx::pool::PoolConnection;
use tracing::warn;

use super::WriteLock;
use crate::error::StoreResult;
use crate::sql::batch::{Batch, Failed, WriteTx, grouped};

/// A write transaction on one pooled connection.
pub(crate) struct SqliteWrite {
    /// `None` once finished (committed or rolled back).
    conn: Option<PoolConnection<Sqlite>>,
    lock: Option<WriteLock>,
    /// Whether `BEGIN IMMEDIATE` has run (so a transaction may be open).
    begun: bool,
}

impl SqliteWrite {
    pub(super) fn new(conn: PoolConnection<Sqlite>, lock: WriteLock) -> Self {
        SqliteWrite {
            conn: Some(conn),
            lock: Some(lock),
            begun: false,
        }
    }

    async fn script(
        &mut self,
        batch: Batch<Sqlite>,
        commit: bool,
    ) -> Result<Vec<Vec<sqlx::sqlite::SqliteRow>>, sqlx::Error> {
        let statements = batch.statements();
        let mut parts = batch.into_parts()?.into_iter();
        // Script mode builds at most one part.
        let (body, args) = match parts.next() {
            Some(p) => (p.sql, p.args),
            None => (String::new(), Default::default()),
        };
        let lead = usize::from(!self.begun);
        let mut sql = String::with_capacity(body.len() + 32);
        if !self.begun {
            sql.push_str("BEGIN IMMEDIATE;\n");
        }
        sql.push_str(&body);
        if commit {
            if !body.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str("COMMIT");
        }
        let total = lead + statements + usize::from(commit);
        let Some(conn) = self.conn.as_mut() else {
            return Err(sqlx::Error::PoolClosed);
        };
        match grouped::<Sqlite>(&mut **conn, sql, args, total).await {
            Ok(mut groups) => {
                self.begun = true;
                if commit {
                    self.finish();
                    groups.truncate(lead + statements);
                }
                Ok(groups.split_off(lead.min(groups.len())))
            }
            Err(Failed { error, completed }) => {
                // The transaction is open if it was before, or if this script's BEGIN ran.
                if self.begun || completed >= lead {
                    self.begun = true;
                    self.roll_back().await;
                } else {
                    self.finish();
                }
                Err(error)
            }
        }
    }

    /// Rolls back now; a connection that cannot roll back is closed instead of going back to
    /// the pool in a transaction.
    async fn roll_back(&mut self) {
        if let Some(conn) = self.conn.as_mut()
            && self.begun
            && let Err(err) = sqlx::query("ROLLBACK").execute(&mut **conn).await
        {
            warn!(error = %err, "Rollback failed; closing the connection");
            conn.close_on_drop();
        }
        self.finish();
    }

    fn finish(&mut self) {
        self.begun = false;
        self.conn = None;
        self.lock = None;
    }
}

impl WriteTx<Sqlite> for SqliteWrite {
    async fn run(
        &mut self,
        batch: Batch<Sqlite>,
    ) -> Result<Vec<Vec<sqlx::sqlite::SqliteRow>>, sqlx::Error> {
        self.script(batch, false).await
    }

    async fn commit(
        mut self,
        batch: Batch<Sqlite>,
    ) -> Result<Vec<Vec<sqlx::sqlite::SqliteRow>>, sqlx::Error> {
        self.script(batch, true).await
    }

    async fn rollback(mut self) -> StoreResult<()> {
        self.roll_back().await;
        Ok(())
    }
}

impl Drop for SqliteWrite {
    fn drop(&mut self) {
        if !self.begun {
            return;
        }
        let (Some(mut conn), lock) = (self.conn.take(), self.lock.take()) else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move {
                    if let Err(err) = sqlx::query("ROLLBACK").execute(&mut *conn).await {
                        warn!(error = %err, "Rollback of an abandoned write failed; closing the connection");
                        conn.close_on_drop();
                    }
                    drop(lock);
                });
            }
            // No runtime to roll back on: closing the connection rolls back.
            Err(_) => conn.close_on_drop(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use sqlx::Row;

    use crate::OpenOptions;
    use crate::sql::SqlStore;
    use crate::sql::batch::{Batch, WriteTx};
    use crate::sqlite::SqliteStore;

    async fn store() -> SqliteStore {
        // One connection: every write below reuses the connection the previous one left.
        SqliteStore::connect(
            "sqlite::memory:",
            &OpenOptions {
                max_connections: 1,
                migrate: false,
            },
        )
        .await
        .unwrap()
    }

    async fn setup(store: &SqliteStore) {
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)")
            .execute(store.pool())
            .await
            .unwrap();
    }

    fn insert(batch: &mut Batch<sqlx::Sqlite>, id: i64, v: Option<&str>) {
        batch
            .stmt("INSERT INTO t (id, v) VALUES ($1, $2)")
            .arg(id)
            .arg(v);
    }

    async fn ids(store: &SqliteStore) -> Vec<i64> {
        sqlx::query("SELECT id FROM t ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<i64, _>("id"))
            .collect()
    }

    #[tokio::test]
    async fn batches_commit_together_and_return_rows_per_statement() {
        let store = store().await;
        setup(&store).await;
        let mut tx = store.begin_write().await.unwrap();
        let mut first = Batch::new();
        insert(&mut first, 1, Some("a"));
        first
            .stmt("UPDATE t SET v = $2 WHERE id = $1 RETURNING v")
            .arg(1_i64)
            .arg("b");
        first
            .stmt("SELECT count(*) AS n FROM t WHERE v = $1")
            .arg("b");
        let groups = tx.run(first).await.unwrap();
        assert_eq!(groups.len(), 3);
        assert!(groups[0].is_empty());
        assert_eq!(groups[1][0].get::<String, _>("v"), "b");
        assert_eq!(groups[2][0].get::<i64, _>("n"), 1);
        let mut second = Batch::new();
        insert(&mut second, 2, Some("c"));
        tx.commit(second).await.unwrap();
        assert_eq!(ids(&store).await, [1, 2]);
    }

    #[tokio::test]
    async fn a_failing_statement_rolls_back_the_whole_transaction() {
        let store = store().await;
        setup(&store).await;
        let mut tx = store.begin_write().await.unwrap();
        let mut first = Batch::new();
        insert(&mut first, 1, Some("a"));
        tx.run(first).await.unwrap();
        let mut second = Batch::new();
        insert(&mut second, 2, Some("b"));
        insert(&mut second, 3, None);
        let err = tx.commit(second).await.unwrap_err();
        assert!(err.to_string().contains("NOT NULL"), "{err}");
        assert!(ids(&store).await.is_empty());

        // The connection is usable again, outside any transaction.
        let tx = store.begin_write().await.unwrap();
        let mut batch = Batch::new();
        insert(&mut batch, 4, Some("d"));
        tx.commit(batch).await.unwrap();
        assert_eq!(ids(&store).await, [4]);
    }

    #[tokio::test]
    async fn a_dropped_transaction_is_rolled_back_before_the_next_write() {
        let store = store().await;
        setup(&store).await;
        let mut tx = store.begin_write().await.unwrap();
        let mut batch = Batch::new();
        insert(&mut batch, 1, Some("a"));
        tx.run(batch).await.unwrap();
        drop(tx);

        let tx = store.begin_write().await.unwrap();
        let mut batch = Batch::new();
        insert(&mut batch, 2, Some("b"));
        tx.commit(batch).await.unwrap();
        assert_eq!(ids(&store).await, [2]);
    }

    #[tokio::test]
    async fn an_explicit_rollback_discards_the_writes() {
        let store = store().await;
        setup(&store).await;
        let mut tx = store.begin_write().await.unwrap();
        let mut batch = Batch::new();
        insert(&mut batch, 1, Some("a"));
        tx.run(batch).await.unwrap();
        tx.rollback().await.unwrap();
        assert!(ids(&store).await.is_empty());
    }

    #[tokio::test]
    async fn placeholders_of_later_statements_index_their_own_arguments() {
        let store = store().await;
        setup(&store).await;
        let tx = store.begin_write().await.unwrap();
        let mut batch = Batch::new();
        insert(&mut batch, 1, Some("one"));
        insert(&mut batch, 2, Some("two"));
        {
            let mut rows = batch.insert("INSERT INTO t (id, v)");
            rows.row().value(3_i64).value("three");
            rows.row().value(4_i64).value("four");
        }
        batch.stmt("SELECT v FROM t WHERE id = $1").arg(4_i64);
        let groups = tx.commit(batch).await.unwrap();
        assert_eq!(groups[3][0].get::<String, _>("v"), "four");
        let all: Vec<String> = sqlx::query("SELECT v FROM t ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
            .iter()
            .map(|r| r.get("v"))
            .collect();
        assert_eq!(all, ["one", "two", "three", "four"]);
    }
}
