//! `nexus_store::open`: picking the backend from a URL, SQLite connection settings, and
//! migrations on open.

use nexus_store::testing::{new_user, world};
use nexus_store::{Backend, OpenOptions, StoreError, open};

#[tokio::test]
async fn sqlite_file_is_created_migrated_and_keeps_data_across_opens() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sub-less.db");
    let url = format!("sqlite:{}", path.display());
    let store = open(&url, &OpenOptions::default()).await.unwrap();
    assert_eq!(store.backend(), Backend::Sqlite);
    assert!(path.exists(), "the database file is created");
    assert!(store.migration_status().await.unwrap().is_current());
    let w = world(store.as_ref()).await;
    store.close().await;

    let no_migrate = OpenOptions {
        migrate: false,
        ..OpenOptions::default()
    };
    let again = open(&format!("sqlite://{}", path.display()), &no_migrate)
        .await
        .unwrap();
    assert_eq!(again.get_user(w.user.id).await.unwrap(), Some(w.user));
}

#[tokio::test]
async fn sqlite_connections_use_wal_and_enforce_foreign_keys() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("n.db").display());
    let store = nexus_store::sqlite::SqliteStore::connect(&url, &OpenOptions::default())
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let sync: i64 = sqlx::query_scalar("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(sync, 1, "NORMAL");
}

#[tokio::test]
async fn unmigrated_database_reports_pending_migrations_until_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("m.db").display());
    let options = OpenOptions {
        migrate: false,
        ..OpenOptions::default()
    };
    let store = open(&url, &options).await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(!status.is_current());
    assert!(status.applied.is_empty());
    store.migrate().await.unwrap();
    let status = store.migration_status().await.unwrap();
    assert!(status.is_current());
    assert_eq!(status.pending, Vec::<i64>::new());
}

#[tokio::test]
async fn in_memory_sqlite_keeps_its_data_across_calls() {
    let store = open("sqlite::memory:", &OpenOptions::default())
        .await
        .unwrap();
    let user = new_user("mem");
    store.create_user(&user).await.unwrap();
    for _ in 0..3 {
        assert_eq!(store.get_user(user.id).await.unwrap(), Some(user.clone()));
    }
}

#[tokio::test]
async fn unknown_url_scheme_is_a_configuration_error() {
    let err = open("mysql://root:hunter2@localhost/db", &OpenOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Config(_)), "{err:?}");
    assert!(
        !err.to_string().contains("hunter2"),
        "the password is not echoed: {err}"
    );
}
