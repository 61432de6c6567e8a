//! In-memory stand-ins for tests of tools and of what runs them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{
    AgentId, ArtifactStore, Attachment, AttachmentId, SessionId, ToolContext, ToolError,
    ToolPolicy, TurnId, UserId,
};
use tokio_util::sync::CancellationToken;

/// Artifacts kept in memory, keyed by storage key.
#[derive(Debug, Default)]
pub struct MemoryArtifacts {
    files: Mutex<HashMap<String, Bytes>>,
}

impl MemoryArtifacts {
    /// An empty store.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The bytes stored under `key`, if any.
    pub fn bytes(&self, key: &str) -> Option<Bytes> {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// How many files are stored.
    pub fn len(&self) -> usize {
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl ArtifactStore for MemoryArtifacts {
    async fn put(
        &self,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ToolError> {
        let id = AttachmentId::new();
        let storage_key = format!("artifacts/{id}");
        let attachment = Attachment {
            id,
            content_type: content_type.to_owned(),
            filename: filename.map(str::to_owned),
            size: bytes.len() as u64,
            storage_key: storage_key.clone(),
        };
        self.files
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(storage_key, bytes);
        Ok(attachment)
    }

    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ToolError> {
        self.bytes(&attachment.storage_key)
            .ok_or_else(|| ToolError::Failed {
                message: format!("no stored file {}", attachment.storage_key),
            })
    }
}

/// A context for calling a tool directly in a test: fresh ids, a 60 s deadline, the default
/// policy, no attachments, artifacts in `artifacts`.
pub fn context(artifacts: Arc<dyn ArtifactStore>) -> ToolContext {
    ToolContext {
        session_id: SessionId::new(),
        agent_id: AgentId::new(),
        user_id: UserId::new(),
        turn_id: TurnId::new(),
        cancel: CancellationToken::new(),
        deadline: tokio::time::Instant::now() + Duration::from_secs(60),
        policy: ToolPolicy::default(),
        attachments: Vec::new(),
        artifacts,
    }
}
