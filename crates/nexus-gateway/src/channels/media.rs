//! The channels' media port over object storage: files people send become attachments.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_channels::MediaStore;
use nexus_core::{Attachment, ChannelCredentialId, ChannelError};
use nexus_store::StoreError;
use nexus_store::blob::{BlobKind, BlobStore};

/// [`MediaStore`] backed by the server's object storage.
#[derive(Debug, Clone)]
pub struct BlobMedia {
    blobs: Arc<BlobStore>,
}

impl BlobMedia {
    /// Media kept in `blobs`.
    pub fn new(blobs: Arc<BlobStore>) -> Self {
        BlobMedia { blobs }
    }
}

fn refused(err: StoreError) -> ChannelError {
    match err {
        StoreError::TooLarge { size, limit } => ChannelError::Rejected {
            message: format!("file of {size} bytes is over the {limit}-byte storage limit"),
        },
        StoreError::Blob(object_store::Error::Generic {
            store: "blob",
            source,
        }) => ChannelError::Rejected {
            message: source.to_string(),
        },
        other => ChannelError::Transport {
            message: format!("object storage: {other}"),
        },
    }
}

#[async_trait]
impl MediaStore for BlobMedia {
    async fn put(
        &self,
        account: ChannelCredentialId,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ChannelError> {
        let attachment = self
            .blobs
            .put(BlobKind::Attachment, bytes, content_type, filename)
            .await
            .map_err(refused)?;
        tracing::debug!(channel_id = %account, key = %attachment.storage_key, "Stored a file from a channel");
        Ok(attachment)
    }

    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ChannelError> {
        self.blobs
            .get(&attachment.storage_key)
            .await
            .map(|blob| blob.bytes)
            .map_err(refused)
    }
}
