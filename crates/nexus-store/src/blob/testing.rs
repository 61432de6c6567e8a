//! The blob store conformance suite: one set of behaviours every backend must show.
//!
//! Each function takes a fresh, empty [`BlobStore`] built with [`limits`]. Backend test files
//! invoke [`crate::blob_store_conformance!`] with a fixture, which generates one
//! `#[tokio::test]` per behaviour. Only compiled with the `test-support` feature.

use bytes::Bytes;
use chrono::{Duration, Utc};
use futures::TryStreamExt as _;
use object_store::ObjectStoreExt as _;
use object_store::path::Path;
use uuid::Uuid;

use super::{BlobInputError, BlobKind, BlobLimits, BlobStore, LinkError, LinkSigner};
use crate::error::StoreError;

/// `max_object_bytes` in the suite.
pub const MAX_OBJECT_BYTES: u64 = 64 * 1024;
/// `max_read_bytes` in the suite.
pub const MAX_READ_BYTES: u64 = 128 * 1024;

/// The limits fixtures must configure.
pub fn limits() -> BlobLimits {
    BlobLimits {
        max_object_bytes: MAX_OBJECT_BYTES,
        max_read_bytes: MAX_READ_BYTES,
        allowed_content_types: Vec::new(),
    }
}

/// Every key in the underlying store, sidecars included.
async fn all_keys(store: &BlobStore) -> Vec<String> {
    let mut keys: Vec<String> = store
        .object_store()
        .list(None)
        .map_ok(|meta| meta.location.to_string())
        .try_collect()
        .await
        .expect("listing the store");
    keys.sort();
    keys
}

fn assert_input_error(result: Result<impl std::fmt::Debug, StoreError>, context: &str) {
    let err = result.expect_err(context);
    assert!(
        BlobInputError::from_store_error(&err).is_some(),
        "{context}: expected an input error, got {err:?}"
    );
}

/// Bytes, content type and file name (including non-ASCII) come back as stored.
pub async fn put_get_round_trip_keeps_content_type_and_filename(store: &BlobStore) {
    let before = Utc::now();
    let body = Bytes::from_static(b"\x89PNG\r\n\x1a\n not really a png");
    let stored = store
        .put(
            BlobKind::Attachment,
            body.clone(),
            "image/png",
            Some("photo of a cat.png"),
        )
        .await
        .expect("put");
    assert_eq!(stored.content_type, "image/png");
    assert_eq!(stored.filename.as_deref(), Some("photo of a cat.png"));
    assert_eq!(stored.size, body.len() as u64);
    let day = |t: chrono::DateTime<Utc>| format!("attachments/{}/", t.format("%Y/%m/%d"));
    assert!(
        stored.storage_key.starts_with(&day(before))
            || stored.storage_key.starts_with(&day(Utc::now())),
        "{}",
        stored.storage_key
    );
    assert!(stored.storage_key.ends_with(&stored.id.to_string()));

    let blob = store.get(&stored.storage_key).await.expect("get");
    assert_eq!(blob.bytes, body);
    assert_eq!(blob.content_type, "image/png");
    assert_eq!(blob.filename.as_deref(), Some("photo of a cat.png"));

    let meta = store.head(&stored.storage_key).await.expect("head");
    assert_eq!(meta.key, stored.storage_key);
    assert_eq!(meta.size, body.len() as u64);
    assert_eq!(meta.content_type, "image/png");
    assert_eq!(meta.filename.as_deref(), Some("photo of a cat.png"));

    let unicode = store
        .put(
            BlobKind::Attachment,
            Bytes::from_static(b"%PDF-1.7"),
            "application/pdf",
            Some("Résumé – 履歴書 (final) a=b&c.pdf"),
        )
        .await
        .expect("put unicode name");
    let blob = store
        .get(&unicode.storage_key)
        .await
        .expect("get unicode name");
    assert_eq!(
        blob.filename.as_deref(),
        Some("Résumé – 履歴書 (final) a=b&c.pdf")
    );
    assert_eq!(blob.content_type, "application/pdf");
}

/// Content-type parameters survive; no file name stays no file name; empty bodies work.
pub async fn content_type_parameters_and_missing_filename_survive(store: &BlobStore) {
    let stored = store
        .put(
            BlobKind::Artifact,
            Bytes::new(),
            "Text/Plain; charset=utf-8",
            None,
        )
        .await
        .expect("put");
    assert_eq!(stored.content_type, "text/plain; charset=utf-8");
    let blob = store.get(&stored.storage_key).await.expect("get");
    assert!(blob.bytes.is_empty());
    assert_eq!(blob.content_type, "text/plain; charset=utf-8");
    assert_eq!(blob.filename, None);
}

/// An object over the limit is refused before upload and leaves nothing behind; one exactly
/// at the limit is stored.
pub async fn oversized_put_is_rejected_and_nothing_stored(store: &BlobStore) {
    let too_big = Bytes::from(vec![7u8; MAX_OBJECT_BYTES as usize + 1]);
    let err = store
        .put(
            BlobKind::Attachment,
            too_big,
            "application/octet-stream",
            Some("big.bin"),
        )
        .await
        .expect_err("oversized put must fail");
    assert!(
        matches!(
            err,
            StoreError::TooLarge { size, limit } if size == MAX_OBJECT_BYTES + 1 && limit == MAX_OBJECT_BYTES
        ),
        "{err:?}"
    );
    assert_eq!(all_keys(store).await, Vec::<String>::new());

    let exact = Bytes::from(vec![7u8; MAX_OBJECT_BYTES as usize]);
    let stored = store
        .put(
            BlobKind::Attachment,
            exact,
            "application/octet-stream",
            None,
        )
        .await
        .expect("an object exactly at the limit is accepted");
    assert_eq!(stored.size, MAX_OBJECT_BYTES);
}

/// Reading an object larger than `max_read_bytes` (put there by other means) is refused.
pub async fn oversized_get_is_refused(store: &BlobStore) {
    let key = format!("exports/2020/01/01/{}", Uuid::new_v4());
    store
        .object_store()
        .put(
            &Path::from(key.as_str()),
            vec![0u8; MAX_READ_BYTES as usize + 1].into(),
        )
        .await
        .expect("raw put");
    let err = store.get(&key).await.expect_err("oversized get must fail");
    assert!(
        matches!(err, StoreError::TooLarge { limit, .. } if limit == MAX_READ_BYTES),
        "{err:?}"
    );
}

/// Keys that could escape the root or name a sidecar are input errors for every operation.
pub async fn traversal_and_malformed_keys_are_rejected(store: &BlobStore) {
    let stored = store
        .put(
            BlobKind::Attachment,
            Bytes::from_static(b"x"),
            "text/plain",
            None,
        )
        .await
        .expect("put");
    for key in [
        "",
        "../outside",
        "../../../../etc/passwd",
        "/etc/passwd",
        "attachments/../../outside",
        "attachments/./x",
        "attachments//x",
        "attachments\\..\\x",
        "%2e%2e/outside",
        "attachments/x\n",
        "attachments/.hidden",
        &format!("{}.meta", stored.storage_key),
    ] {
        assert_input_error(store.get(key).await, &format!("get {key:?}"));
        assert_input_error(store.head(key).await, &format!("head {key:?}"));
        assert_input_error(store.delete(key).await, &format!("delete {key:?}"));
    }
    // The valid object is untouched.
    assert_eq!(
        store.get(&stored.storage_key).await.expect("get").bytes,
        "x"
    );
}

/// Empty or garbage content types are refused before upload.
pub async fn malformed_content_types_are_rejected_and_nothing_stored(store: &BlobStore) {
    for content_type in [
        "",
        "   ",
        "png",
        "image/",
        "/png",
        "image/png/extra",
        "text/html\r\nx: y",
        "ïmage/png",
    ] {
        assert_input_error(
            store
                .put(
                    BlobKind::Attachment,
                    Bytes::from_static(b"x"),
                    content_type,
                    None,
                )
                .await,
            &format!("content type {content_type:?}"),
        );
    }
    assert_eq!(all_keys(store).await, Vec::<String>::new());
}

/// A deleted object is gone (with its metadata); deleting again succeeds.
pub async fn delete_removes_the_object_and_is_idempotent(store: &BlobStore) {
    let stored = store
        .put(
            BlobKind::Export,
            Bytes::from_static(b"data"),
            "application/json",
            Some("e.json"),
        )
        .await
        .expect("put");
    store.delete(&stored.storage_key).await.expect("delete");
    assert!(matches!(
        store.get(&stored.storage_key).await,
        Err(StoreError::NotFound { what: "blob" })
    ));
    assert!(matches!(
        store.head(&stored.storage_key).await,
        Err(StoreError::NotFound { what: "blob" })
    ));
    store
        .delete(&stored.storage_key)
        .await
        .expect("second delete");
    assert_eq!(all_keys(store).await, Vec::<String>::new());
}

/// A valid key with no object is `NotFound`, not an error of another kind.
pub async fn missing_key_is_not_found(store: &BlobStore) {
    let key = format!("attachments/2020/01/01/{}", Uuid::new_v4());
    assert!(matches!(
        store.get(&key).await,
        Err(StoreError::NotFound { what: "blob" })
    ));
    assert!(matches!(
        store.head(&key).await,
        Err(StoreError::NotFound { what: "blob" })
    ));
}

/// Each kind stores under its own prefix.
pub async fn kinds_use_their_own_key_prefix(store: &BlobStore) {
    for (kind, prefix) in [
        (BlobKind::Attachment, "attachments/"),
        (BlobKind::Export, "exports/"),
        (BlobKind::Artifact, "artifacts/"),
    ] {
        let stored = store
            .put(kind, Bytes::from_static(b"k"), "text/plain", None)
            .await
            .expect("put");
        assert!(
            stored.storage_key.starts_with(prefix),
            "{}",
            stored.storage_key
        );
        assert_eq!(
            store.get(&stored.storage_key).await.expect("get").bytes,
            "k"
        );
    }
}

/// A signed link to a stored blob verifies until it expires and fails when anything changes.
pub async fn signed_links_are_valid_then_expire_and_resist_tampering(store: &BlobStore) {
    let stored = store
        .put(
            BlobKind::Attachment,
            Bytes::from_static(b"link"),
            "text/plain",
            None,
        )
        .await
        .expect("put");
    let key = stored.storage_key.as_str();
    let signer = LinkSigner::new([42; 32]);
    let now = Utc::now();
    let link = signer.sign(key, now + Duration::minutes(5));
    assert_eq!(link.key, key);

    assert_eq!(
        signer.verify(key, link.expires, &link.signature, now),
        Ok(())
    );
    let query = super::LinkQuery {
        expires: link.expires,
        sig: link.signature.clone(),
    };
    assert_eq!(signer.verify_query(key, &query, now), Ok(()));
    assert_eq!(store.get(&link.key).await.expect("get").bytes, "link");

    // Expired.
    assert_eq!(
        signer.verify(
            key,
            link.expires,
            &link.signature,
            now + Duration::minutes(6)
        ),
        Err(LinkError::Expired)
    );
    // Tampered: another key, a later expiry, a changed or malformed signature, another secret.
    let other_key = format!("{key}x");
    assert_eq!(
        signer.verify(&other_key, link.expires, &link.signature, now),
        Err(LinkError::BadSignature)
    );
    assert_eq!(
        signer.verify(key, link.expires + 3600, &link.signature, now),
        Err(LinkError::BadSignature)
    );
    let mut flipped = link.signature.clone().into_bytes();
    flipped[0] = if flipped[0] == b'0' { b'1' } else { b'0' };
    let flipped = String::from_utf8(flipped).expect("hex");
    assert_eq!(
        signer.verify(key, link.expires, &flipped, now),
        Err(LinkError::BadSignature)
    );
    for garbage in ["", "zz", &link.signature[..10]] {
        assert_eq!(
            signer.verify(key, link.expires, garbage, now),
            Err(LinkError::BadSignature)
        );
    }
    assert_eq!(
        LinkSigner::new([43; 32]).verify(key, link.expires, &link.signature, now),
        Err(LinkError::BadSignature)
    );
    // An expired link with a forged signature reports the forgery.
    assert_eq!(
        signer.verify(key, 1, &link.signature, now),
        Err(LinkError::BadSignature)
    );
}

/// Generates one `#[tokio::test]` per conformance behaviour.
///
/// `$fixture` is an async function returning `Option<(BlobStore, guard)>`: a fresh empty
/// store built with [`limits`], and anything to keep alive for the test (a temp dir); `None`
/// skips the test (a service that is not configured outside CI).
#[macro_export]
macro_rules! blob_store_conformance {
    ($fixture:path) => {
        $crate::blob_store_conformance!(@tests $fixture;
            put_get_round_trip_keeps_content_type_and_filename,
            content_type_parameters_and_missing_filename_survive,
            oversized_put_is_rejected_and_nothing_stored,
            oversized_get_is_refused,
            traversal_and_malformed_keys_are_rejected,
            malformed_content_types_are_rejected_and_nothing_stored,
            delete_removes_the_object_and_is_idempotent,
            missing_key_is_not_found,
            kinds_use_their_own_key_prefix,
            signed_links_are_valid_then_expire_and_resist_tampering,
        );
    };
    (@tests $fixture:path; $($name:ident),* $(,)?) => {
        $(
            #[::tokio::test]
            async fn $name() {
                let Some((store, _guard)) = $fixture().await else {
                    return;
                };
                $crate::blob::testing::$name(&store).await;
            }
        )*
    };
}
