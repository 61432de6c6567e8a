//! Blob storage on the local filesystem backend: the shared conformance suite, plus what only
//! this backend can show (files stay under the root, sidecars, root creation).

use std::path::Path;

use bytes::Bytes;
use nexus_store::blob::{BlobConfig, BlobKind, BlobStore, testing};
use tempfile::TempDir;

async fn local_store() -> Option<(BlobStore, TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = BlobConfig::local(dir.path().join("blobs"));
    config.limits = testing::limits();
    let store = BlobStore::from_config(&config).expect("local blob store");
    Some((store, dir))
}

nexus_store::blob_store_conformance!(local_store);

fn files_under(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(root)
                        .expect("under root")
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

#[tokio::test]
async fn default_root_is_created_under_the_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("nexus-data");
    let store = BlobStore::from_config(&BlobConfig::local_in_data_dir(&data_dir)).unwrap();
    assert!(data_dir.join("blobs").is_dir());
    let stored = store
        .put(
            BlobKind::Attachment,
            Bytes::from_static(b"hi"),
            "text/plain",
            None,
        )
        .await
        .unwrap();
    assert!(data_dir.join("blobs").join(&stored.storage_key).is_file());
}

#[tokio::test]
async fn objects_and_sidecars_stay_under_the_root_and_vanish_on_delete() {
    let (store, dir) = local_store().await.unwrap();
    let root = dir.path().join("blobs");
    let stored = store
        .put(
            BlobKind::Attachment,
            Bytes::from_static(b"hi"),
            "text/plain",
            Some("a.txt"),
        )
        .await
        .unwrap();
    let key = &stored.storage_key;
    assert_eq!(files_under(&root), vec![key.clone(), format!("{key}.meta")]);
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(root.join(format!("{key}.meta"))).unwrap()).unwrap();
    assert_eq!(sidecar["content_type"], "text/plain");
    assert_eq!(sidecar["filename"], "a.txt");

    // Traversal attempts neither read nor create anything outside the root.
    std::fs::write(dir.path().join("outside"), b"secret").unwrap();
    assert!(store.get("../outside").await.is_err());
    assert!(store.delete("../outside").await.is_err());
    assert!(dir.path().join("outside").exists());

    store.delete(key).await.unwrap();
    assert_eq!(files_under(&root), Vec::<String>::new());
}

#[tokio::test]
async fn object_without_sidecar_reads_as_a_download() {
    let (store, dir) = local_store().await.unwrap();
    let root = dir.path().join("blobs");
    std::fs::create_dir_all(root.join("exports/2020/01/01")).unwrap();
    std::fs::write(root.join("exports/2020/01/01/manual"), b"placed by hand").unwrap();
    let blob = store.get("exports/2020/01/01/manual").await.unwrap();
    assert_eq!(blob.bytes, "placed by hand");
    assert_eq!(blob.content_type, "application/octet-stream");
    assert_eq!(blob.filename, None);
}
