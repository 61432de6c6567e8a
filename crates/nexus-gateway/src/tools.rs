//! Tools as the server offers them: the artifacts port over object storage, and the registry
//! of built-in and caller-supplied tools.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{ArtifactStore, Attachment, Tool, ToolError};
use nexus_runtime::ToolRegistry;
use nexus_store::StoreError;
use nexus_store::blob::{BlobKind, BlobStore};

/// [`ArtifactStore`] backed by the server's object storage: tool files go under `artifacts/`.
#[derive(Debug, Clone)]
pub struct BlobArtifacts {
    blobs: Arc<BlobStore>,
}

impl BlobArtifacts {
    /// Artifacts kept in `blobs`.
    pub fn new(blobs: Arc<BlobStore>) -> Self {
        BlobArtifacts { blobs }
    }
}

fn failed(err: StoreError) -> ToolError {
    let message = match err {
        StoreError::TooLarge { size, limit } => {
            format!("file of {size} bytes is over the {limit}-byte storage limit")
        }
        other => format!("object storage: {other}"),
    };
    ToolError::Failed { message }
}

#[async_trait]
impl ArtifactStore for BlobArtifacts {
    async fn put(
        &self,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ToolError> {
        self.blobs
            .put(BlobKind::Artifact, bytes, content_type, filename)
            .await
            .map_err(failed)
    }

    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ToolError> {
        self.blobs
            .get(&attachment.storage_key)
            .await
            .map(|blob| blob.bytes)
            .map_err(failed)
    }
}

/// The registry of a server: `extra` tools over artifacts kept in `blobs`.
pub(crate) fn registry(blobs: &Arc<BlobStore>, extra: Vec<Arc<dyn Tool>>) -> ToolRegistry {
    let mut registry = ToolRegistry::new(Arc::new(BlobArtifacts::new(Arc::clone(blobs))));
    for tool in extra {
        registry.register(tool);
    }
    registry
}
