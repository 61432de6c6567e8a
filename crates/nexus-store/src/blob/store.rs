//! The blob store: put, get, head and delete over any `object_store` backend, with the
//! content type and file name kept alongside each object.
//!
//! Must never hold business rules (who may read which blob): callers decide.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use nexus_core::{Attachment, AttachmentId};
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectStore, ObjectStoreExt as _,
    PutOptions, PutPayload,
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};

use super::config::{BlobBackend, BlobConfig, BlobLimits, S3Config};
use super::input::{
    BlobKind, normalize_content_type, parse_key, sanitize_filename, sidecar_path, valid_pattern,
};
use crate::error::{StoreError, StoreResult};

/// Content type reported when an object has none recorded (written by another tool).
const FALLBACK_CONTENT_TYPE: &str = "application/octet-stream";
/// User metadata name holding the percent-encoded file name on attribute backends.
const FILENAME_METADATA: &str = "filename";
/// Largest sidecar we read, in bytes.
const MAX_SIDECAR_BYTES: u64 = 16 * 1024;

/// How a backend keeps an object's content type and file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetadataStorage {
    /// Object attributes (`Content-Type`, user metadata): S3 and compatible servers.
    Attributes,
    /// A JSON sidecar object `<key>.meta`: backends without attributes (local files).
    Sidecar,
}

/// A stored object read back.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Blob {
    /// The contents.
    pub bytes: Bytes,
    /// MIME type given at upload (normalized).
    pub content_type: String,
    /// File name given at upload, if any.
    pub filename: Option<String>,
}

/// What is known about a stored object without reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlobMeta {
    /// The object's key.
    pub key: String,
    /// Size in bytes.
    pub size: u64,
    /// MIME type given at upload (normalized).
    pub content_type: String,
    /// File name given at upload, if any.
    pub filename: Option<String>,
    /// When the object was last written.
    pub last_modified: DateTime<Utc>,
}

/// The JSON sidecar's contents.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    content_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    filename: Option<String>,
}

/// Blob storage over one object store. Cheap to clone.
#[derive(Clone)]
pub struct BlobStore {
    inner: Arc<dyn ObjectStore>,
    metadata: MetadataStorage,
    limits: Arc<BlobLimits>,
}

impl fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `Display` of an object store names it without credentials.
        f.debug_struct("BlobStore")
            .field("backend", &self.inner.to_string())
            .field("metadata", &self.metadata)
            .field("limits", &self.limits)
            .finish()
    }
}

impl BlobStore {
    /// Builds the configured backend after validating the configuration. A local root is
    /// created if missing; an S3 bucket must already exist.
    pub fn from_config(config: &BlobConfig) -> StoreResult<Self> {
        let (inner, metadata): (Arc<dyn ObjectStore>, _) = match &config.backend {
            BlobBackend::Local { root } => {
                std::fs::create_dir_all(root).map_err(|source| {
                    StoreError::Blob(object_store::Error::Generic {
                        store: "LocalFileSystem",
                        source: Box::new(source),
                    })
                })?;
                let local = LocalFileSystem::new_with_prefix(root)
                    .map_err(StoreError::Blob)?
                    .with_automatic_cleanup(true)
                    .with_fsync(true);
                (Arc::new(local), MetadataStorage::Sidecar)
            }
            BlobBackend::S3(s3) => (Arc::new(build_s3(s3)?), MetadataStorage::Attributes),
        };
        Self::new(inner, metadata, config.limits.clone())
    }

    /// Wraps an existing object store (another backend, or a test double). `metadata` must
    /// match what the backend supports.
    pub fn new(
        inner: Arc<dyn ObjectStore>,
        metadata: MetadataStorage,
        limits: BlobLimits,
    ) -> StoreResult<Self> {
        if limits.max_object_bytes == 0 || limits.max_read_bytes == 0 {
            return Err(StoreError::Config(
                "blob storage: max_object_bytes and max_read_bytes must be greater than 0".into(),
            ));
        }
        if let Some(bad) = limits
            .allowed_content_types
            .iter()
            .find(|pattern| !valid_pattern(pattern))
        {
            return Err(StoreError::Config(format!(
                "blob storage: allowed content type {bad:?} is not `type/subtype` or `type/*`"
            )));
        }
        Ok(Self {
            inner,
            metadata,
            limits: Arc::new(limits),
        })
    }

    /// The limits in force.
    pub fn limits(&self) -> &BlobLimits {
        &self.limits
    }

    /// The underlying object store (conformance tests inspect it directly).
    #[cfg_attr(not(feature = "test-support"), allow(dead_code))]
    pub(crate) fn object_store(&self) -> &Arc<dyn ObjectStore> {
        &self.inner
    }

    /// Stores `bytes` under a new key for `kind` and returns the attachment record to keep.
    ///
    /// Refuses, before uploading anything: objects over `max_object_bytes`
    /// ([`StoreError::TooLarge`]) and malformed or disallowed content types
    /// ([`super::BlobInputError`]). The file name is cleaned (last path component, no control
    /// characters, at most 255 bytes), never refused.
    pub async fn put(
        &self,
        kind: BlobKind,
        bytes: Bytes,
        content_type: &str,
        filename: Option<&str>,
    ) -> StoreResult<Attachment> {
        let size = bytes.len() as u64;
        if size > self.limits.max_object_bytes {
            return Err(StoreError::TooLarge {
                size,
                limit: self.limits.max_object_bytes,
            });
        }
        let content_type =
            normalize_content_type(content_type, &self.limits.allowed_content_types)?;
        let filename = sanitize_filename(filename);
        let id = AttachmentId::new();
        let key = kind.key(id.as_uuid(), Utc::now());
        let path = parse_key(&key)?;

        let mut options = PutOptions::default();
        match self.metadata {
            MetadataStorage::Attributes => {
                options.attributes = attributes(&content_type, filename.as_deref());
            }
            MetadataStorage::Sidecar => {
                // Written first: whoever finds the object finds its metadata.
                let sidecar = serde_json::to_vec(&Sidecar {
                    content_type: content_type.clone(),
                    filename: filename.clone(),
                })
                .map_err(|e| corrupt(e.to_string()))?;
                self.inner
                    .put(&sidecar_path(&path), PutPayload::from(sidecar))
                    .await
                    .map_err(map_error)?;
            }
        }
        self.inner
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
            .map_err(map_error)?;
        tracing::debug!(key = %key, size, content_type = %content_type, "Blob stored");
        Ok(Attachment {
            id,
            content_type,
            filename,
            size,
            storage_key: key,
        })
    }

    /// Reads an object. [`StoreError::NotFound`] if it does not exist,
    /// [`StoreError::TooLarge`] (before downloading) if it exceeds `max_read_bytes`, an input
    /// error for an invalid key.
    pub async fn get(&self, key: &str) -> StoreResult<Blob> {
        let path = parse_key(key)?;
        let result = self
            .inner
            .get_opts(&path, GetOptions::default())
            .await
            .map_err(map_error)?;
        let limit = self.limits.max_read_bytes;
        if result.meta.size > limit {
            return Err(StoreError::TooLarge {
                size: result.meta.size,
                limit,
            });
        }
        let attributes = result.attributes.clone();
        let bytes = result.bytes().await.map_err(map_error)?;
        if bytes.len() as u64 > limit {
            return Err(StoreError::TooLarge {
                size: bytes.len() as u64,
                limit,
            });
        }
        let (content_type, filename) = self.metadata_of(&path, &attributes).await?;
        Ok(Blob {
            bytes,
            content_type,
            filename,
        })
    }

    /// Size, content type and file name of an object, without reading it.
    pub async fn head(&self, key: &str) -> StoreResult<BlobMeta> {
        let path = parse_key(key)?;
        let options = GetOptions {
            head: true,
            ..GetOptions::default()
        };
        let result = self
            .inner
            .get_opts(&path, options)
            .await
            .map_err(map_error)?;
        let (content_type, filename) = self.metadata_of(&path, &result.attributes).await?;
        Ok(BlobMeta {
            key: key.to_owned(),
            size: result.meta.size,
            content_type,
            filename,
            last_modified: result.meta.last_modified,
        })
    }

    /// Deletes an object (and its sidecar). Deleting a missing key succeeds, on every backend.
    pub async fn delete(&self, key: &str) -> StoreResult<()> {
        let path = parse_key(key)?;
        ignore_not_found(self.inner.delete(&path).await)?;
        if self.metadata == MetadataStorage::Sidecar {
            ignore_not_found(self.inner.delete(&sidecar_path(&path)).await)?;
        }
        Ok(())
    }

    /// Content type and file name of the object at `path`.
    async fn metadata_of(
        &self,
        path: &Path,
        attributes: &Attributes,
    ) -> StoreResult<(String, Option<String>)> {
        match self.metadata {
            MetadataStorage::Attributes => Ok(from_attributes(attributes)),
            MetadataStorage::Sidecar => self.read_sidecar(path).await,
        }
    }

    async fn read_sidecar(&self, path: &Path) -> StoreResult<(String, Option<String>)> {
        let result = match self.inner.get(&sidecar_path(path)).await {
            Ok(result) => result,
            Err(object_store::Error::NotFound { .. }) => {
                // An object placed by hand, without metadata: safe default, served as a download.
                tracing::warn!(key = %path, "Blob has no metadata sidecar; using a default content type");
                return Ok((FALLBACK_CONTENT_TYPE.to_owned(), None));
            }
            Err(e) => return Err(map_error(e)),
        };
        if result.meta.size > MAX_SIDECAR_BYTES {
            return Err(corrupt(format!("sidecar of {} bytes", result.meta.size)));
        }
        let raw = result.bytes().await.map_err(map_error)?;
        let sidecar: Sidecar = serde_json::from_slice(&raw).map_err(|e| corrupt(e.to_string()))?;
        Ok((sidecar.content_type, sidecar.filename))
    }
}

fn build_s3(s3: &S3Config) -> StoreResult<object_store::aws::AmazonS3> {
    if s3.bucket.trim().is_empty() || s3.region.trim().is_empty() {
        return Err(StoreError::Config(
            "blob storage: S3 bucket and region must not be empty".into(),
        ));
    }
    let mut builder = AmazonS3Builder::new()
        .with_region(&s3.region)
        .with_bucket_name(&s3.bucket)
        .with_access_key_id(&s3.access_key_id)
        .with_secret_access_key(s3.secret_access_key.expose_secret())
        .with_allow_http(s3.allow_http)
        .with_virtual_hosted_style_request(s3.virtual_hosted_style);
    if let Some(endpoint) = &s3.endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    builder.build().map_err(StoreError::Blob)
}

fn attributes(content_type: &str, filename: Option<&str>) -> Attributes {
    let mut attributes = Attributes::new();
    attributes.insert(
        Attribute::ContentType,
        AttributeValue::from(content_type.to_owned()),
    );
    if let Some(filename) = filename {
        // Header values must be ASCII: percent-encode (`form_urlencoded` also escapes '=' and
        // '&', so decoding it as one bare query name restores it exactly).
        let encoded: String = url::form_urlencoded::byte_serialize(filename.as_bytes()).collect();
        attributes.insert(
            Attribute::Metadata(FILENAME_METADATA.into()),
            AttributeValue::from(encoded),
        );
    }
    attributes
}

fn from_attributes(attributes: &Attributes) -> (String, Option<String>) {
    let content_type = attributes
        .get(&Attribute::ContentType)
        .map_or(FALLBACK_CONTENT_TYPE, |v| v.as_ref())
        .to_owned();
    let filename = attributes
        .get(&Attribute::Metadata(FILENAME_METADATA.into()))
        .and_then(|encoded| {
            url::form_urlencoded::parse(encoded.as_bytes())
                .next()
                .map(|(name, _)| name.into_owned())
        })
        .filter(|name| !name.is_empty());
    (content_type, filename)
}

fn map_error(err: object_store::Error) -> StoreError {
    match err {
        object_store::Error::NotFound { .. } => StoreError::NotFound { what: "blob" },
        other => StoreError::Blob(other),
    }
}

fn ignore_not_found(result: object_store::Result<()>) -> StoreResult<()> {
    match result {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(StoreError::Blob(e)),
    }
}

fn corrupt(detail: String) -> StoreError {
    StoreError::Corrupt {
        what: "blob metadata",
        detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_attribute_round_trips_any_unicode_name() {
        for name in [
            "résumé 2026.pdf",
            "a=b&c+d%20.txt",
            "日本語.png",
            "plain.txt",
        ] {
            let attrs = attributes("application/pdf", Some(name));
            let encoded = attrs
                .get(&Attribute::Metadata(FILENAME_METADATA.into()))
                .unwrap();
            assert!(encoded.is_ascii(), "{encoded:?}");
            let (content_type, filename) = from_attributes(&attrs);
            assert_eq!(content_type, "application/pdf");
            assert_eq!(filename.as_deref(), Some(name));
        }
        assert_eq!(
            from_attributes(&Attributes::new()),
            (FALLBACK_CONTENT_TYPE.to_owned(), None)
        );
    }

    #[test]
    fn debug_does_not_show_s3_credentials() {
        let mut s3 = S3Config::new(
            "us-east-1",
            "bucket",
            "AKIAEXAMPLE",
            "very-secret-value".to_owned().into(),
        );
        s3.endpoint = Some("http://127.0.0.1:1".into());
        s3.allow_http = true;
        let store = BlobStore::from_config(&BlobConfig::s3(s3.clone())).unwrap();
        let shown = format!("{store:?} {s3:?}");
        assert!(!shown.contains("very-secret-value"), "{shown}");
    }

    #[test]
    fn invalid_limits_are_refused_at_construction() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = BlobConfig::local(dir.path());
        config.limits.allowed_content_types = vec!["images".into()];
        assert!(matches!(
            BlobStore::from_config(&config),
            Err(StoreError::Config(_))
        ));
        config.limits.allowed_content_types.clear();
        config.limits.max_object_bytes = 0;
        assert!(matches!(
            BlobStore::from_config(&config),
            Err(StoreError::Config(_))
        ));
    }
}
