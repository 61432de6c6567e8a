//! The SQLite committer: group commit of write batches on a thread of its own.
//!
//! SQLite has one writer at a time, so the time a write holds the database decides how many
//! turns per second the whole process can take. Callers hand their [`Batch`] to the committer
//! and wait for its outcome. The committer takes every batch that is waiting, runs each as one
//! script inside a `SAVEPOINT` of a shared transaction, and commits them together: one trip to
//! the connection's worker thread per batch, one `COMMIT` (one WAL append of the pages they
//! share) per group. A batch that fails is rolled back to its savepoint alone and gets its own
//! error; if the group itself cannot commit, every batch still waiting is run again on its own,
//! so each caller sees its own outcome.
//!
//! The committer is a plain thread rather than a task, so that it resumes the moment the
//! connection's worker thread answers instead of queueing behind the runtime's other tasks while
//! it holds the write lock. It stops when the store is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, SqlitePool};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tracing::warn;

use crate::sql::batch::{Batch, Failed, Part, grouped};

/// Rows per statement of a committed batch, or why it failed.
pub(crate) type Outcome = Result<Vec<Vec<SqliteRow>>, sqlx::Error>;

/// Batches committed together at most.
const MAX_GROUP: usize = 64;

/// A batch waiting for the committer.
struct Job {
    parts: Vec<Part<Sqlite>>,
    reply: oneshot::Sender<Outcome>,
}

/// The handle callers send batches through.
#[derive(Debug)]
pub(crate) struct Committer {
    jobs: mpsc::UnboundedSender<Job>,
    worker: Arc<Worker>,
}

impl Committer {
    /// Starts the committer thread over `pool` (whose connections it takes one at a time),
    /// holding `writes` while it writes and counting writes in `written`.
    pub(crate) fn start(
        pool: SqlitePool,
        writes: Arc<tokio::sync::Mutex<()>>,
        written: Arc<AtomicU64>,
    ) -> std::io::Result<Self> {
        let (jobs, queue) = mpsc::unbounded_channel();
        let runtime = Handle::current();
        let worker = Arc::new(Worker {
            pool,
            writes,
            written,
        });
        let thread = Arc::clone(&worker);
        std::thread::Builder::new()
            .name("nexus-sqlite-commit".into())
            .spawn(move || thread.run(&runtime, queue))?;
        Ok(Committer { jobs, worker })
    }

    /// Commits `batch`; the rows each of its statements returned.
    ///
    /// When no other write is under way, the batch is committed by a task of the caller's
    /// runtime instead of the committer thread: one thread hand-off less each way, which is
    /// what a lone client waits for. A task rather than the caller itself, so that a caller
    /// that stops waiting cannot leave the connection inside a transaction.
    pub(crate) async fn commit(&self, batch: Batch<Sqlite>) -> Outcome {
        let parts = batch.into_parts()?;
        let (reply, outcome) = oneshot::channel();
        let job = Job { parts, reply };
        match Arc::clone(&self.worker.writes).try_lock_owned() {
            Ok(lock) => {
                let worker = Arc::clone(&self.worker);
                tokio::spawn(async move {
                    worker.written.fetch_add(1, Ordering::Relaxed);
                    worker.commit_group(vec![job]).await;
                    drop(lock);
                });
            }
            Err(_) => self.jobs.send(job).map_err(|_| sqlx::Error::PoolClosed)?,
        }
        outcome.await.unwrap_or(Err(sqlx::Error::PoolClosed))
    }
}

#[derive(Debug)]
struct Worker {
    pool: SqlitePool,
    writes: Arc<tokio::sync::Mutex<()>>,
    written: Arc<AtomicU64>,
}

/// What went wrong with a group as a whole.
enum GroupFailed {
    /// Before any batch ran (no connection, `BEGIN` failed); nothing to roll back.
    NotBegun(sqlx::Error),
    /// After the transaction began; it was rolled back.
    RolledBack(sqlx::Error),
}

impl Worker {
    fn run(&self, runtime: &Handle, mut queue: mpsc::UnboundedReceiver<Job>) {
        while let Some(first) = queue.blocking_recv() {
            runtime.block_on(async {
                self.written.fetch_add(1, Ordering::Relaxed);
                let _lock = Arc::clone(&self.writes).lock_owned().await;
                // Whatever arrived while the lock was taken joins the group.
                let mut jobs = vec![first];
                while jobs.len() < MAX_GROUP {
                    match queue.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
                // A caller that stopped waiting (a cancelled request) has nothing to be told.
                jobs.retain(|job| !job.reply.is_closed());
                if !jobs.is_empty() {
                    self.commit_group(jobs).await;
                }
            });
        }
    }

    /// Commits `jobs`, holding the write lock.
    async fn commit_group(&self, mut jobs: Vec<Job>) {
        let mut conn = match self.pool.acquire().await {
            Ok(conn) => conn,
            Err(err) => {
                for job in jobs {
                    let _ = job.reply.send(Err(match &err {
                        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
                        _ => sqlx::Error::PoolClosed,
                    }));
                }
                return;
            }
        };
        let mut outcomes: Vec<Option<Outcome>> = Vec::with_capacity(jobs.len());
        match run_group(&mut conn, &jobs, &mut outcomes).await {
            Ok(()) => {
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job
                        .reply
                        .send(outcome.unwrap_or(Err(sqlx::Error::WorkerCrashed)));
                }
            }
            Err(GroupFailed::NotBegun(err) | GroupFailed::RolledBack(err)) if jobs.len() == 1 => {
                if let Some(job) = jobs.pop() {
                    let _ = job.reply.send(Err(err));
                }
            }
            Err(GroupFailed::NotBegun(_) | GroupFailed::RolledBack(_)) => {
                // Batches that failed on their own keep their error; the others run again,
                // each in a transaction of its own, so each caller gets its own outcome.
                for (job, outcome) in jobs
                    .into_iter()
                    .zip(outcomes.into_iter().chain(std::iter::repeat_with(|| None)))
                {
                    match outcome {
                        Some(Err(err)) => {
                            let _ = job.reply.send(Err(err));
                        }
                        _ => {
                            let mut alone = vec![job];
                            let mut outcome = Vec::with_capacity(1);
                            let result = run_group(&mut conn, &alone, &mut outcome).await;
                            if let Some(job) = alone.pop() {
                                let _ = job.reply.send(match result {
                                    Ok(()) => outcome
                                        .pop()
                                        .flatten()
                                        .unwrap_or(Err(sqlx::Error::WorkerCrashed)),
                                    Err(
                                        GroupFailed::NotBegun(err) | GroupFailed::RolledBack(err),
                                    ) => Err(err),
                                });
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Runs `jobs` in one transaction and commits it, pushing each job's outcome to `outcomes`
/// (in order; a job's rows count only once the commit succeeded).
async fn run_group(
    conn: &mut PoolConnection<Sqlite>,
    jobs: &[Job],
    outcomes: &mut Vec<Option<Outcome>>,
) -> Result<(), GroupFailed> {
    let last = jobs.len().saturating_sub(1);
    // A batch alone needs no savepoint: if it fails, the whole transaction is rolled back.
    let alone = jobs.len() == 1;
    for (i, job) in jobs.iter().enumerate() {
        let count = job.parts.len();
        let mut rows = Vec::new();
        let mut failed = None;
        for (p, part) in job.parts.iter().enumerate() {
            let begin = i == 0 && p == 0;
            let commit = i == last && p + 1 == count;
            let savepoint = !alone && p == 0;
            let release = !alone && p + 1 == count;
            let script = Script::new(part, begin, savepoint, release, commit);
            let (lead, statements) = (script.lead, script.statements);
            match script.run(conn).await {
                Ok(groups) => rows.extend(groups),
                Err(Failed { error, completed }) => {
                    if begin && completed == 0 {
                        return Err(GroupFailed::NotBegun(error));
                    }
                    if alone || completed < lead || completed >= lead + statements {
                        // The batch alone, or the savepoint, its release or the commit failed.
                        roll_back(conn, "ROLLBACK").await;
                        return Err(GroupFailed::RolledBack(error));
                    }
                    failed = Some(error);
                    break;
                }
            }
        }
        match failed {
            None => outcomes.push(Some(Ok(rows))),
            Some(error) => {
                // Undo this batch alone; the last one also commits the others.
                let undo = if i == last {
                    "ROLLBACK TO batch; RELEASE batch; COMMIT"
                } else {
                    "ROLLBACK TO batch; RELEASE batch"
                };
                if let Err(err) = sqlx::raw_sql(undo).execute(&mut **conn).await {
                    roll_back(conn, "ROLLBACK").await;
                    outcomes.push(Some(Err(error)));
                    return Err(GroupFailed::RolledBack(err));
                }
                outcomes.push(Some(Err(error)));
            }
        }
    }
    Ok(())
}

/// Rolls back; a connection that cannot is closed rather than reused inside a transaction.
async fn roll_back(conn: &mut PoolConnection<Sqlite>, sql: &'static str) {
    if let Err(err) = sqlx::raw_sql(sql).execute(&mut **conn).await {
        warn!(error = %err, "Rollback failed; closing the connection");
        conn.close_on_drop();
    }
}

/// One SQL text of a batch with the transaction statements around it.
struct Script {
    sql: String,
    args: sqlx::sqlite::SqliteArguments,
    /// Statements before the batch's own (`BEGIN`, `SAVEPOINT`).
    lead: usize,
    /// The batch's own statements.
    statements: usize,
    /// Statements after them (`RELEASE`, `COMMIT`).
    trail: usize,
}

impl Script {
    fn new(part: &Part<Sqlite>, begin: bool, savepoint: bool, release: bool, commit: bool) -> Self {
        let mut sql = String::with_capacity(part.sql.len() + 64);
        let mut lead = 0;
        if begin {
            sql.push_str("BEGIN IMMEDIATE;\n");
            lead += 1;
        }
        if savepoint {
            sql.push_str("SAVEPOINT batch;\n");
            lead += 1;
        }
        sql.push_str(&part.sql);
        let mut trail = 0;
        if release {
            sql.push_str(";\nRELEASE batch");
            trail += 1;
        }
        if commit {
            sql.push_str(";\nCOMMIT");
            trail += 1;
        }
        Script {
            sql,
            // Shared values (`Arc`s): cheap, and the part stays whole for a run on its own.
            args: part.args.clone(),
            lead,
            statements: part.statements,
            trail,
        }
    }

    /// Runs the script; the rows of the batch's own statements.
    async fn run(self, conn: &mut PoolConnection<Sqlite>) -> Result<Vec<Vec<SqliteRow>>, Failed> {
        let total = self.lead + self.statements + self.trail;
        let mut groups = grouped::<Sqlite>(&mut **conn, self.sql, self.args, total).await?;
        groups.truncate(self.lead + self.statements);
        Ok(groups.split_off(self.lead.min(groups.len())))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::time::Duration;

    use sqlx::{Row, Sqlite};

    use crate::OpenOptions;
    use crate::sql::SqlStore;
    use crate::sql::batch::Batch;
    use crate::sqlite::SqliteStore;

    async fn store() -> SqliteStore {
        let store = SqliteStore::connect(
            "sqlite::memory:",
            &OpenOptions {
                max_connections: 1,
                migrate: false,
            },
        )
        .await
        .unwrap();
        sqlx::raw_sql(
            "CREATE TABLE parent (id INTEGER PRIMARY KEY);
             CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL,
                 parent INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED);",
        )
        .execute(store.pool())
        .await
        .unwrap();
        store
    }

    fn insert(batch: &mut Batch<Sqlite>, id: i64, v: Option<&str>) {
        batch
            .stmt("INSERT INTO t (id, v) VALUES ($1, $2)")
            .arg(id)
            .arg(v);
    }

    fn batch_of(id: i64, v: Option<&str>) -> Batch<Sqlite> {
        let mut batch = Batch::new();
        insert(&mut batch, id, v);
        batch
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

    /// Commits `batches` while the write lock is held, so that they queue up and are committed
    /// as one group.
    async fn commit_together(
        store: &SqliteStore,
        batches: Vec<Batch<Sqlite>>,
    ) -> Vec<Result<Vec<Vec<sqlx::sqlite::SqliteRow>>, sqlx::Error>> {
        let lock = store.lock_writes().await;
        let groups_before = store.written.load(std::sync::atomic::Ordering::Relaxed);
        let tasks: Vec<_> = batches
            .into_iter()
            .map(|batch| {
                let store = store.clone();
                tokio::spawn(async move { store.write_batch(batch).await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(lock);
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        // One group (`lock_writes` above counted once too).
        assert_eq!(
            store.written.load(std::sync::atomic::Ordering::Relaxed),
            groups_before + 1
        );
        outcomes
    }

    #[tokio::test]
    async fn a_batch_returns_rows_per_statement_with_placeholders_renumbered() {
        let store = store().await;
        let mut batch = Batch::new();
        insert(&mut batch, 1, Some("one"));
        batch
            .stmt("UPDATE t SET v = $2 WHERE id = $1 RETURNING v")
            .arg(1_i64)
            .arg("uno");
        batch.begin_stmt().push("INSERT INTO t (id, v) ");
        {
            let mut rows = batch.values();
            rows.row().value(2_i64).value("two");
            rows.row().value(3_i64).value("three");
        }
        batch
            .stmt("SELECT v FROM t WHERE id = $1 OR id = $2 ORDER BY id")
            .arg(1_i64)
            .arg(3_i64);
        let groups = store.write_batch(batch).await.unwrap();
        assert_eq!(groups.len(), 4);
        assert!(groups[0].is_empty());
        assert_eq!(groups[1][0].get::<String, _>("v"), "uno");
        let read: Vec<String> = groups[3].iter().map(|r| r.get("v")).collect();
        assert_eq!(read, ["uno", "three"]);
        assert_eq!(ids(&store).await, [1, 2, 3]);
    }

    #[tokio::test]
    async fn a_failing_batch_is_rolled_back_alone_and_its_group_commits() {
        let store = store().await;
        let mut bad = batch_of(2, Some("b"));
        insert(&mut bad, 3, None);
        let outcomes = commit_together(
            &store,
            vec![batch_of(1, Some("a")), bad, batch_of(4, Some("d"))],
        )
        .await;
        assert!(outcomes[0].is_ok());
        let err = outcomes[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("NOT NULL"), "{err}");
        assert!(outcomes[2].is_ok());
        assert_eq!(ids(&store).await, [1, 4]);

        // The last batch of a group failing still commits the others.
        let outcomes =
            commit_together(&store, vec![batch_of(5, Some("e")), batch_of(6, None)]).await;
        assert!(outcomes[0].is_ok());
        assert!(outcomes[1].is_err());
        assert_eq!(ids(&store).await, [1, 4, 5]);
    }

    #[tokio::test]
    async fn a_group_that_cannot_commit_is_run_again_batch_by_batch() {
        let store = store().await;
        // A deferred foreign key fails at COMMIT, which fails the whole group.
        let mut orphan = Batch::new();
        orphan
            .stmt("INSERT INTO t (id, v, parent) VALUES ($1, $2, $3)")
            .arg(2_i64)
            .arg("orphan")
            .arg(99_i64);
        let outcomes = commit_together(
            &store,
            vec![batch_of(1, Some("a")), orphan, batch_of(3, Some("c"))],
        )
        .await;
        assert!(outcomes[0].is_ok());
        let err = outcomes[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("FOREIGN KEY"), "{err}");
        assert!(outcomes[2].is_ok());
        assert_eq!(ids(&store).await, [1, 3]);
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_does_not_disturb_the_others() {
        let store = store().await;
        let lock = store.lock_writes().await;
        let abandoned = {
            let store = store.clone();
            tokio::spawn(async move { store.write_batch(batch_of(1, Some("a"))).await })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        abandoned.abort();
        let _ = abandoned.await;
        drop(lock);
        store.write_batch(batch_of(2, Some("b"))).await.unwrap();
        // The abandoned batch may or may not have been committed; the next one always is.
        assert!(ids(&store).await.contains(&2));
    }

    #[tokio::test]
    async fn a_batch_larger_than_one_script_is_sent_in_parts_of_one_transaction() {
        let store = store().await;
        let mut batch = Batch::new();
        // 2 arguments per statement: well past one script's argument budget.
        for id in 0..10_000_i64 {
            insert(&mut batch, id, Some("x"));
        }
        insert(&mut batch, 10_000, None);
        assert!(store.write_batch(batch).await.is_err());
        assert!(ids(&store).await.is_empty());

        let mut batch = Batch::new();
        for id in 0..10_000_i64 {
            insert(&mut batch, id, Some("x"));
        }
        let groups = store.write_batch(batch).await.unwrap();
        assert_eq!(groups.len(), 10_000);
        assert_eq!(ids(&store).await.len(), 10_000);
    }
}
