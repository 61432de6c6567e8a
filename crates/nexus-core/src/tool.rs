//! The [`Tool`] seam: something the model can call with JSON arguments.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::ids::{AgentId, SessionId, TurnId, UserId};
use crate::message::Attachment;

/// What a tool call knows of its surroundings.
#[derive(Debug, Clone)]
pub struct ToolContext {
    /// The session the call belongs to.
    pub session_id: SessionId,
    /// The agent that called the tool.
    pub agent_id: AgentId,
    /// The user the session belongs to.
    pub user_id: UserId,
    /// The turn the call belongs to.
    pub turn_id: TurnId,
    /// Cancelled when the turn is cancelled; a tool must stop promptly when it fires.
    pub cancel: CancellationToken,
    /// The call must finish before this instant.
    pub deadline: Instant,
    /// What the agent's policy allows its tools.
    pub policy: ToolPolicy,
    /// Files the user sent with the message being answered, already in object storage.
    pub attachments: Vec<Attachment>,
    /// Where the tool reads those files and keeps the files it produces.
    pub artifacts: Arc<dyn ArtifactStore>,
}

impl ToolContext {
    /// Time left before the deadline (zero once it passed).
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// What an agent's policy allows its tools beyond the list of tool names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolPolicy {
    /// Whether code run in the sandbox may reach the network. Off by default.
    pub network: bool,
}

/// Object storage as tools see it: the files a user sent, and the files tools produce
/// (implemented by the gateway over the server's object storage).
#[async_trait]
pub trait ArtifactStore: Send + Sync + fmt::Debug {
    /// Stores a file a tool produced and describes it as an attachment.
    async fn put(
        &self,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ToolError>;

    /// The bytes of an attachment.
    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ToolError>;
}

/// The result of a tool call that ran.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ToolOutput {
    /// Text given back to the model.
    pub content: String,
    /// Whether the tool reports a failure the model should read (a non-zero exit, a 404…).
    pub is_error: bool,
    /// Files the tool produced, already in object storage.
    pub attachments: Vec<Attachment>,
}

impl ToolOutput {
    /// A successful text result.
    pub fn text(content: impl Into<String>) -> Self {
        ToolOutput {
            content: content.into(),
            is_error: false,
            attachments: Vec::new(),
        }
    }
}

/// A tool call that could not run to a result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// The arguments do not match the schema; the model can correct them.
    #[error("invalid arguments: {message}")]
    InvalidArguments {
        /// What is wrong, for the model.
        message: String,
    },
    /// The call passed its deadline.
    #[error("tool timed out after {after:?}")]
    Timeout {
        /// How long it ran.
        after: Duration,
    },
    /// The turn was cancelled.
    #[error("tool call cancelled")]
    Cancelled,
    /// The agent's policy does not allow this call.
    #[error("not allowed: {message}")]
    Denied {
        /// Why.
        message: String,
    },
    /// The tool failed.
    #[error("tool failed: {message}")]
    Failed {
        /// What happened.
        message: String,
    },
    /// The operation is not offered by this tool.
    #[error("unsupported by this tool: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
}

/// A capability the model can call.
#[async_trait]
pub trait Tool: Send + Sync + std::fmt::Debug {
    /// The name the model calls it by (`[a-zA-Z0-9_-]`, at most 64 characters).
    fn name(&self) -> &str;

    /// What the tool does, for the model.
    fn description(&self) -> &str;

    /// JSON Schema of the parameters object.
    fn schema(&self) -> &serde_json::Value;

    /// Runs the tool. Arguments have been validated against [`Tool::schema`].
    async fn execute(
        &self,
        ctx: ToolContext,
        params: serde_json::Value,
    ) -> Result<ToolOutput, ToolError>;
}
