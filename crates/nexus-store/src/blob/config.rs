//! Blob storage configuration: which backend, and the limits every object obeys.
//!
//! The gateway fills these from its own configuration; [`crate::blob::BlobStore::from_config`]
//! validates them once. Must never read configuration files or the environment.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Default largest object, in bytes: 25 MiB.
pub const DEFAULT_MAX_OBJECT_BYTES: u64 = 25 * 1024 * 1024;

/// Directory under the data directory that holds local blobs by default.
pub const DEFAULT_BLOB_DIR: &str = "blobs";

/// Where blobs live and what they may be.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BlobConfig {
    /// The storage backend.
    pub backend: BlobBackend,
    /// Size and type limits.
    pub limits: BlobLimits,
}

impl BlobConfig {
    /// Local files under `root` (created if missing), default limits.
    pub fn local(root: impl Into<PathBuf>) -> Self {
        Self {
            backend: BlobBackend::Local { root: root.into() },
            limits: BlobLimits::default(),
        }
    }

    /// The embedded default: local files under `<data_dir>/blobs`.
    pub fn local_in_data_dir(data_dir: &Path) -> Self {
        Self::local(data_dir.join(DEFAULT_BLOB_DIR))
    }

    /// An S3 (or S3-compatible) bucket, default limits.
    pub fn s3(s3: S3Config) -> Self {
        Self {
            backend: BlobBackend::S3(s3),
            limits: BlobLimits::default(),
        }
    }
}

/// The storage backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum BlobBackend {
    /// A directory on the local filesystem (one machine only).
    Local {
        /// The root directory; created if missing.
        root: PathBuf,
    },
    /// An S3 bucket, or a bucket on an S3-compatible server (MinIO, moto, Ceph…).
    S3(S3Config),
}

/// Connection settings for an S3 bucket.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct S3Config {
    /// Custom endpoint URL (MinIO, moto, …); `None` means AWS itself. With an endpoint,
    /// requests are path-style (`{endpoint}/{bucket}/{key}`) unless `virtual_hosted_style`.
    pub endpoint: Option<String>,
    /// AWS region, e.g. `us-east-1` (S3-compatible servers usually accept any).
    pub region: String,
    /// Bucket name; the bucket must exist.
    pub bucket: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key (redacted in `Debug`).
    pub secret_access_key: SecretString,
    /// Allow plain `http://` endpoints. Default `false`; only for local test servers.
    pub allow_http: bool,
    /// Use virtual-hosted-style requests (`{bucket}.{endpoint}`). Default `false`.
    pub virtual_hosted_style: bool,
}

impl S3Config {
    /// Settings for `bucket` in `region` with static credentials; no custom endpoint, HTTPS
    /// only, path-style requests.
    pub fn new(
        region: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: SecretString,
    ) -> Self {
        Self {
            endpoint: None,
            region: region.into(),
            bucket: bucket.into(),
            access_key_id: access_key_id.into(),
            secret_access_key,
            allow_http: false,
            virtual_hosted_style: false,
        }
    }
}

/// Limits every stored object obeys.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobLimits {
    /// Largest object `put` accepts, in bytes; checked before uploading. Default 25 MiB.
    pub max_object_bytes: u64,
    /// Largest object `get` reads into memory, in bytes; checked before downloading.
    /// Default 25 MiB.
    pub max_read_bytes: u64,
    /// MIME types `put` accepts: exact (`application/pdf`) or a whole top-level type
    /// (`image/*`). Empty (the default) accepts any well-formed type; malformed types are
    /// always refused.
    pub allowed_content_types: Vec<String>,
}

impl Default for BlobLimits {
    fn default() -> Self {
        Self {
            max_object_bytes: DEFAULT_MAX_OBJECT_BYTES,
            max_read_bytes: DEFAULT_MAX_OBJECT_BYTES,
            allowed_content_types: Vec::new(),
        }
    }
}
