//! Object storage for blobs: message attachments, exports and tool artifacts.
//!
//! Owns the [`BlobStore`] over any `object_store` backend (local files by default, S3 or an
//! S3-compatible server such as MinIO in production), its configuration ([`BlobConfig`]), key
//! layout and validation ([`BlobKind`], [`validate_key`]), content-type and size limits, and
//! time-limited download links ([`LinkSigner`]).
//!
//! How metadata survives a round trip: on S3 the content type is the object's own
//! `Content-Type` and the file name is user metadata (`x-amz-meta-filename`, percent-encoded so
//! any Unicode name fits in a header). The local filesystem backend has no attributes, so a
//! small JSON sidecar `<key>.meta` is written *before* the object and removed after it; a
//! reader that finds the object therefore finds its sidecar. Keys ending in `.meta` are
//! refused, so sidecars are never served as blobs.
//!
//! Must never contain HTTP handling (the gateway serves `GET /v1/blobs/{*key}` with
//! [`LinkSigner::verify_query`]) or decide who may read a blob.

mod config;
mod input;
mod links;
mod store;
#[cfg(feature = "test-support")]
pub mod testing;

pub use config::{
    BlobBackend, BlobConfig, BlobLimits, DEFAULT_BLOB_DIR, DEFAULT_MAX_OBJECT_BYTES, S3Config,
};
pub use input::{BlobInputError, BlobKind, validate_key};
pub use links::{LinkError, LinkQuery, LinkSigner, SignedLink};
pub use store::{Blob, BlobMeta, BlobStore, MetadataStorage};
