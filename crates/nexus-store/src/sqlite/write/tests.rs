//! Tests of the committer: group commit, per-batch outcomes, decoding and errors.

use std::time::Duration;

use sqlx::{Row, Sqlite};

use super::WrittenRow;
use crate::OpenOptions;
use crate::codec::Cols;
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
) -> Vec<Result<Vec<Vec<WrittenRow>>, sqlx::Error>> {
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
async fn a_batch_returns_rows_per_statement_with_placeholders_bound_by_number() {
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
    assert_eq!(groups[1][0].text("v").unwrap(), "uno");
    let read: Vec<String> = groups[3].iter().map(|r| r.text("v").unwrap()).collect();
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
    let outcomes = commit_together(&store, vec![batch_of(5, Some("e")), batch_of(6, None)]).await;
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
async fn writers_active_together_are_grouped_and_a_lone_writer_is_not_kept_waiting() {
    let store = store().await;
    let writer = &store.committer.writer;
    let groups = || store.written.load(std::sync::atomic::Ordering::Relaxed);
    let last_group = || writer.last_group.load(std::sync::atomic::Ordering::Relaxed);
    // Long enough that the batches below meet whatever the machine's load.
    *writer.group_wait.lock().unwrap() = Duration::from_secs(10);

    // A lone writer commits on its own thread: the committer thread never sees its batch.
    store.write_batch(batch_of(1, Some("a"))).await.unwrap();
    assert_eq!(last_group(), 0);

    // Batches that find a write under way are committed together.
    let outcomes =
        commit_together(&store, (2..5).map(|id| batch_of(id, Some("x"))).collect()).await;
    assert!(outcomes.iter().all(Result::is_ok));
    assert_eq!(last_group(), 3);

    // Writers are active now: the next batches go to the committer thread, which waits until
    // as many as last time are there, and commits them as one group.
    let before = groups();
    let tasks: Vec<_> = (5..8)
        .map(|id| {
            let store = store.clone();
            tokio::spawn(async move { store.write_batch(batch_of(id, Some("y"))).await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(groups(), before + 1);
    assert_eq!(last_group(), 3);

    // A batch that comes alone waits no longer than the group wait, and once it was
    // committed alone, the next writer is not kept waiting at all.
    *writer.group_wait.lock().unwrap() = Duration::from_millis(20);
    store.write_batch(batch_of(8, Some("z"))).await.unwrap();
    assert_eq!(last_group(), 1);
    *writer.group_wait.lock().unwrap() = Duration::from_secs(10);
    let alone = store.write_batch(batch_of(9, Some("z")));
    tokio::time::timeout(Duration::from_secs(5), alone)
        .await
        .expect("a lone writer waited for a group")
        .unwrap();
    assert_eq!(last_group(), 1);
    assert_eq!(ids(&store).await, (1..10).collect::<Vec<_>>());
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
async fn a_large_batch_is_one_transaction() {
    let store = store().await;
    let mut batch = Batch::new();
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

#[tokio::test]
async fn returned_rows_decode_like_sqlx_rows() {
    let store = store().await;
    let id = uuid::Uuid::new_v4();
    let mut batch = Batch::new();
    batch
        .stmt(
            "SELECT $1 AS id, $2 AS n, $3 AS flag, $4 AS absent, $5 AS ratio, $6 AS raw, \
             $7 AS at",
        )
        .arg(id)
        .arg(42_i64)
        .arg(true)
        .arg(None::<&str>)
        .arg(Some(0.5_f32))
        .arg(&b"\x00\x01"[..])
        .arg(1_700_000_000_000_000_i64);
    let groups = store.write_batch(batch).await.unwrap();
    let row = &groups[0][0];
    assert_eq!(row.uuid("id").unwrap(), id);
    assert_eq!(row.int("n").unwrap(), 42);
    assert!(row.flag("flag").unwrap());
    assert_eq!(row.opt_text("absent").unwrap(), None);
    assert_eq!(row.opt_f32("ratio").unwrap(), Some(0.5));
    assert_eq!(row.bytes("raw").unwrap(), [0, 1]);
    assert_eq!(row.time("at").unwrap().timestamp(), 1_700_000_000);
    // A value of the wrong type is corrupt data; a missing column a database error.
    assert!(matches!(
        row.text("n"),
        Err(crate::StoreError::Corrupt { what: "n", .. })
    ));
    assert!(matches!(
        row.uuid("n"),
        Err(crate::StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        row.int("missing"),
        Err(crate::StoreError::Database(sqlx::Error::ColumnNotFound(_)))
    ));

    // The same values read back through sqlx agree with what the committer bound.
    let mut batch = Batch::new();
    insert(&mut batch, 7, Some("seven"));
    store.write_batch(batch).await.unwrap();
    let stored = uuid::Uuid::new_v4();
    let mut batch = Batch::new();
    batch.stmt("CREATE TABLE ids (id BLOB NOT NULL)");
    batch.stmt("INSERT INTO ids (id) VALUES ($1)").arg(stored);
    store.write_batch(batch).await.unwrap();
    let read: uuid::Uuid = sqlx::query_scalar("SELECT id FROM ids")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(read, stored);
}

#[tokio::test]
async fn constraint_errors_keep_their_kind_and_the_writer_stays_usable() {
    let store = store().await;
    store.write_batch(batch_of(1, Some("a"))).await.unwrap();
    let err = store.write_batch(batch_of(1, Some("b"))).await.unwrap_err();
    match &err {
        sqlx::Error::Database(db) => {
            assert!(db.is_unique_violation(), "{err}");
            assert_eq!(db.code().as_deref(), Some("1555"));
        }
        other => panic!("expected a database error, got {other:?}"),
    }
    let mut orphan = Batch::new();
    orphan
        .stmt("INSERT INTO t (id, v, parent) VALUES ($1, $2, $3)")
        .arg(2_i64)
        .arg("orphan")
        .arg(99_i64);
    let err = store.write_batch(orphan).await.unwrap_err();
    assert!(
        matches!(&err, sqlx::Error::Database(db) if db.is_foreign_key_violation()),
        "{err}"
    );
    // A placeholder without an argument is an error, not a NULL.
    let mut unbound = Batch::new();
    unbound
        .stmt("INSERT INTO t (id, v) VALUES ($1, $2)")
        .arg(3_i64);
    let err = store.write_batch(unbound).await.unwrap_err().to_string();
    assert!(err.contains("$2"), "{err}");
    let mut invalid = Batch::new();
    invalid.stmt("INSERT INTO nowhere VALUES (1)");
    assert!(store.write_batch(invalid).await.is_err());

    store.write_batch(batch_of(4, Some("d"))).await.unwrap();
    assert_eq!(ids(&store).await, [1, 4]);
}

#[tokio::test]
async fn releasing_the_cache_waits_for_no_write_and_leaves_the_writer_usable() {
    let store = store().await;
    for id in 1..=50 {
        store.write_batch(batch_of(id, Some("row"))).await.unwrap();
    }
    // A write under way (the lock held): the release is skipped rather than waited for.
    let lock = store.lock_writes().await;
    store.committer.release_memory();
    drop(lock);
    store.committer.release_memory();
    store
        .write_batch(batch_of(51, Some("after")))
        .await
        .unwrap();
    let ids = ids(&store).await;
    assert_eq!(ids.len(), 51);
    assert_eq!(ids.last(), Some(&51));
}

#[tokio::test]
async fn writes_after_close_fail_cleanly() {
    let store = store().await;
    store.write_batch(batch_of(1, Some("a"))).await.unwrap();
    crate::Store::close(&store).await;
    let err = store.write_batch(batch_of(2, Some("b"))).await.unwrap_err();
    assert!(matches!(err, sqlx::Error::PoolClosed), "{err:?}");
}
