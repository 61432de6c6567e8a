//! Blob storage on the S3 backend, against `moto_server` (start it with
//! `eval "$(scripts/services/moto.sh)"`, which exports `NEXUS_TEST_S3_ENDPOINT`).
//!
//! Runs the shared conformance suite, each test in a bucket of its own, plus a check that the
//! object carries a native `Content-Type`. Without `NEXUS_TEST_S3_ENDPOINT` the tests skip,
//! except under `CI=true`, where they fail.

use bytes::Bytes;
use nexus_store::blob::{BlobConfig, BlobKind, BlobStore, S3Config, testing};
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{Attribute, ObjectStoreExt as _};
use secrecy::SecretString;

const ENDPOINT_VAR: &str = "NEXUS_TEST_S3_ENDPOINT";

/// The endpoint, or `None` (with a notice) when unset outside CI.
fn endpoint() -> Option<String> {
    match std::env::var(ENDPOINT_VAR) {
        Ok(endpoint) if !endpoint.trim().is_empty() => {
            Some(endpoint.trim().trim_end_matches('/').to_owned())
        }
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{ENDPOINT_VAR} is not set and CI=true: start moto with \
                 `eval \"$(scripts/services/moto.sh)\"` before running the S3 tests"
            );
            eprintln!(
                "skipping S3 blob test: {ENDPOINT_VAR} is not set \
                 (run `eval \"$(scripts/services/moto.sh)\"`)"
            );
            None
        }
    }
}

/// Creates a fresh bucket (moto accepts an unsigned `PUT /{bucket}`).
async fn create_bucket(endpoint: &str) -> String {
    let bucket = format!("nexus-test-{}", uuid::Uuid::new_v4().simple());
    let response = reqwest::Client::new()
        .put(format!("{endpoint}/{bucket}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("cannot reach {ENDPOINT_VAR}={endpoint}: {e}"));
    assert!(
        response.status().is_success(),
        "creating bucket {bucket} failed: {}",
        response.status()
    );
    bucket
}

async fn s3_store() -> Option<(BlobStore, (String, String))> {
    let endpoint = endpoint()?;
    let bucket = create_bucket(&endpoint).await;
    let mut s3 = S3Config::new(
        "us-east-1",
        bucket.clone(),
        "testing",
        SecretString::from("testing"),
    );
    s3.endpoint = Some(endpoint.clone());
    s3.allow_http = true;
    let mut config = BlobConfig::s3(s3);
    config.limits = testing::limits();
    let store = BlobStore::from_config(&config).expect("s3 blob store");
    Some((store, (endpoint, bucket)))
}

nexus_store::blob_store_conformance!(s3_store);

#[tokio::test]
async fn objects_carry_a_native_content_type_and_no_sidecar() {
    let Some((store, (endpoint, bucket))) = s3_store().await else {
        return;
    };
    let stored = store
        .put(
            BlobKind::Attachment,
            Bytes::from_static(b"<svg/>"),
            "image/svg+xml",
            Some("logo.svg"),
        )
        .await
        .unwrap();

    // Read the raw object with a plain S3 client: the type is the object's own Content-Type
    // header and the file name its user metadata, so other S3 tools see them too.
    let raw = AmazonS3Builder::new()
        .with_endpoint(&endpoint)
        .with_allow_http(true)
        .with_region("us-east-1")
        .with_bucket_name(&bucket)
        .with_access_key_id("testing")
        .with_secret_access_key("testing")
        .build()
        .unwrap();
    let path = Path::from(stored.storage_key.as_str());
    let result = raw.get(&path).await.unwrap();
    assert_eq!(
        result
            .attributes
            .get(&Attribute::ContentType)
            .map(|v| v.as_ref()),
        Some("image/svg+xml")
    );
    assert_eq!(
        result
            .attributes
            .get(&Attribute::Metadata("filename".into()))
            .map(|v| v.as_ref()),
        Some("logo.svg")
    );
    let sidecar = Path::from(format!("{}.meta", stored.storage_key));
    assert!(matches!(
        raw.head(&sidecar).await,
        Err(object_store::Error::NotFound { .. })
    ));
}
