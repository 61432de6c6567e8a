//! Nexus core: the domain types every other crate speaks, and the seams between them.
//!
//! This crate owns the unified [`Message`], the entities ([`User`], [`Agent`], [`Session`],
//! [`ApiKey`], [`ChannelCredential`]), typed ids, [`TurnEvent`], and the traits the rest of
//! Nexus is assembled from: [`ChannelAdapter`], [`LlmProvider`], [`Tool`] and [`Sandbox`].
//!
//! It must never contain I/O, configuration parsing, or knowledge of a concrete platform,
//! provider or database: those live in the crates that implement the seams.

pub mod cache;
pub mod channel;
pub mod entities;
pub mod event;
pub mod ids;
pub mod llm;
pub mod message;
pub mod sandbox;
pub mod tool;

pub use channel::{
    AckOutcome, BotIdentity, ChannelAdapter, ChannelCapabilities, ChannelError, ChatRef,
    Conversation, InboundEnvelope, InboundMessage, OutboundMessage, Sender, SentMessage,
    WebhookRequest, WebhookResponse,
};
pub use entities::{
    Agent, ApiKey, ChannelCredential, ChannelStatus, DEFAULT_MAX_STEPS, Session, User, UserRole,
};
pub use event::{TurnErrorKind, TurnEvent};
pub use ids::{
    AgentId, ApiKeyId, AttachmentId, ChannelCredentialId, DeliveryId, MessageId, SessionId, TurnId,
    UserId,
};
pub use llm::{
    ChatMessage, ChatRole, ChunkStream, CompletionChunk, CompletionRequest, ContentBlock,
    EmbeddingRequest, EmbeddingTask, Embeddings, Failover, ImageSource, LlmError, LlmProvider,
    ModelInfo, StopReason, ToolSpec, Usage,
};
pub use message::{Attachment, ChannelKind, Direction, Message, Metadata, Role, ToolCall};
pub use sandbox::{
    ExecLimits, ExecRequest, ExecResult, Language, Sandbox, SandboxError, SandboxFile,
};
pub use tool::{ArtifactStore, Tool, ToolContext, ToolError, ToolOutput, ToolPolicy};
