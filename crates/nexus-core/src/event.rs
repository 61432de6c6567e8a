//! Events of one turn, streamed live to subscribers (gRPC, HTTP SSE, channel adapters that edit
//! a message in place). The durable results of a turn are committed separately; events are the
//! live view of it.

use serde::{Deserialize, Serialize};

use crate::ids::{MessageId, SessionId, TurnId};
use crate::llm::Usage;
use crate::message::Attachment;

/// Why a turn ended without an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnErrorKind {
    /// The agent's model names a provider that is not configured.
    ProviderNotConfigured,
    /// The provider rejected the call or failed after retries.
    Provider,
    /// The model kept calling tools past the agent's step limit.
    StepLimit,
    /// The turn was cancelled (shutdown, client request).
    Cancelled,
    /// A bug or storage failure inside Nexus.
    Internal,
}

impl TurnErrorKind {
    /// The snake_case name used on the wire and in metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            TurnErrorKind::ProviderNotConfigured => "provider_not_configured",
            TurnErrorKind::Provider => "provider",
            TurnErrorKind::StepLimit => "step_limit",
            TurnErrorKind::Cancelled => "cancelled",
            TurnErrorKind::Internal => "internal",
        }
    }
}

/// One event of a turn. A turn's events end with exactly one `Done` or `Error`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TurnEvent {
    /// The turn began working on the inbound message `message_id`.
    Started {
        /// The turn.
        turn_id: TurnId,
        /// Its session.
        session_id: SessionId,
        /// The inbound (user) message being answered.
        message_id: MessageId,
    },
    /// A piece of the answer's text.
    TextDelta {
        /// The text to append.
        text: String,
    },
    /// The model asked for a tool call, which now runs.
    ToolCallStarted {
        /// The provider's call id.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The arguments.
        arguments: serde_json::Value,
    },
    /// A tool call finished.
    ToolCallFinished {
        /// The provider's call id.
        call_id: String,
        /// The tool's name.
        name: String,
        /// The (possibly truncated) output given to the model.
        output: String,
        /// Whether the tool failed.
        is_error: bool,
        /// Wall time of the call in milliseconds.
        duration_ms: u64,
        /// Files the call produced (a screenshot, files code wrote), in object storage; they
        /// also go out with the turn's answer.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Attachment>,
    },
    /// A model of the agent's chain failed before any of its answer was sent, and the next
    /// one took over.
    Failover {
        /// The model that failed, as `provider/model`.
        from: String,
        /// The model now answering.
        to: String,
        /// Why, safe to show (never a secret).
        reason: String,
    },
    /// Token usage of one model call.
    Usage {
        /// The model, as `provider/model`.
        model: String,
        /// Tokens used.
        usage: Usage,
    },
    /// The turn failed; no answer was stored.
    Error {
        /// What kind of failure.
        kind: TurnErrorKind,
        /// A message safe to show to the user (never a secret).
        message: String,
    },
    /// The turn finished and its answer is stored.
    Done {
        /// The turn.
        turn_id: TurnId,
        /// Its session.
        session_id: SessionId,
        /// The final assistant message.
        message_id: MessageId,
    },
}

impl TurnEvent {
    /// Whether no event follows this one in its turn.
    pub const fn is_terminal(&self) -> bool {
        matches!(self, TurnEvent::Done { .. } | TurnEvent::Error { .. })
    }
}
