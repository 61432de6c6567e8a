//! An in-memory [`MediaStore`] for tests and tools that run adapters without object storage.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{Attachment, AttachmentId, ChannelCredentialId, ChannelError};

use crate::context::MediaStore;

/// Files kept in memory, keyed by storage key.
#[derive(Debug, Default)]
pub struct MemoryMedia {
    files: Mutex<HashMap<String, Bytes>>,
}

impl MemoryMedia {
    /// An empty store.
    pub fn new() -> Self {
        MemoryMedia::default()
    }

    /// The bytes under `storage_key`.
    pub fn bytes(&self, storage_key: &str) -> Option<Bytes> {
        self.lock().get(storage_key).cloned()
    }

    /// Keeps `bytes` and describes them as an attachment (for outbound tests).
    pub fn insert(&self, filename: &str, content_type: &str, bytes: Bytes) -> Attachment {
        let id = AttachmentId::new();
        let storage_key = format!("memory/{id}");
        let size = bytes.len() as u64;
        self.lock().insert(storage_key.clone(), bytes);
        Attachment {
            id,
            content_type: content_type.to_owned(),
            filename: Some(filename.to_owned()),
            size,
            storage_key,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Bytes>> {
        self.files
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl MediaStore for MemoryMedia {
    async fn put(
        &self,
        _account: ChannelCredentialId,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ChannelError> {
        let mut attachment = self.insert(filename.unwrap_or(""), content_type, bytes);
        attachment.filename = filename.map(str::to_owned);
        Ok(attachment)
    }

    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ChannelError> {
        self.bytes(&attachment.storage_key)
            .ok_or_else(|| ChannelError::Rejected {
                message: format!("no file {}", attachment.storage_key),
            })
    }
}
