//! Provider-neutral types of a model call and the [`LlmProvider`] seam.
//!
//! Requests and chunks say nothing of any vendor's wire format. Errors are a typed enum that
//! retry and failover decide on by kind, never by message text. Retry, circuit breaking and
//! failover are wrappers around `dyn LlmProvider` (see `nexus-llm`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::Stream;
use serde::{Deserialize, Serialize};

/// Who speaks in a [`ChatMessage`]. The system prompt travels in
/// [`CompletionRequest::system`], not as a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChatRole {
    /// The person, and tool results (which providers expect on the user side or as `tool`).
    User,
    /// The model.
    Assistant,
}

/// Where an image's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ImageSource {
    /// Inline bytes, base64 encoded.
    Base64 {
        /// MIME type, e.g. `image/png`.
        media_type: String,
        /// Base64 of the bytes.
        data: String,
    },
    /// A URL the provider fetches.
    Url {
        /// The URL.
        url: String,
    },
}

/// One block of message content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentBlock {
    /// Text.
    Text {
        /// The text.
        text: String,
    },
    /// An image.
    Image {
        /// Its bytes or URL.
        source: ImageSource,
    },
    /// A tool call made by the model.
    ToolUse {
        /// The call id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments.
        input: serde_json::Value,
    },
    /// The result of a tool call, answering `tool_use_id`.
    ToolResult {
        /// The id of the call answered.
        tool_use_id: String,
        /// The tool's output.
        content: String,
        /// Whether the tool failed.
        is_error: bool,
    },
}

/// One message of the conversation sent to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// Who speaks.
    pub role: ChatRole,
    /// The content, in order.
    pub content: Vec<ContentBlock>,
}

impl ChatMessage {
    /// A message of one text block.
    pub fn text(role: ChatRole, text: impl Into<String>) -> Self {
        ChatMessage {
            role,
            content: vec![ContentBlock::Text { text: text.into() }],
        }
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool's name.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the parameters object.
    pub parameters: serde_json::Value,
}

/// A provider-neutral model call.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CompletionRequest {
    /// The model name as the provider knows it (without the `provider/` prefix).
    pub model: String,
    /// The system prompt.
    pub system: Option<String>,
    /// The conversation, oldest first. Shared, so that the layers that may call a provider
    /// again (retries, failover, key rotation) keep a copy without copying the conversation.
    pub messages: Arc<Vec<ChatMessage>>,
    /// Tools the model may call.
    pub tools: Vec<ToolSpec>,
    /// Upper bound of output tokens.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// What the call belongs to (a session id), so that calls of one conversation keep using
    /// the same API key of a provider with several (its prompt cache stays warm). Never sent to
    /// the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affinity: Option<String>,
}

impl CompletionRequest {
    /// The conversation, to change: copied first if another request shares it.
    pub fn messages_mut(&mut self) -> &mut Vec<ChatMessage> {
        Arc::make_mut(&mut self.messages)
    }
}

/// Token usage of one model call, as the provider reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens, including cached ones.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    pub cache_write_tokens: u64,
}

impl Usage {
    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StopReason {
    /// A natural end of the answer.
    EndTurn,
    /// The model wants tool results.
    ToolUse,
    /// The output token limit was reached.
    MaxTokens,
    /// A stop sequence matched.
    StopSequence,
    /// The provider filtered the content.
    ContentFilter,
}

/// One piece of a streamed model answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CompletionChunk {
    /// Text to append to the answer.
    TextDelta {
        /// The text.
        text: String,
    },
    /// A tool call began streaming (informative; its arguments are still incomplete).
    ToolUseStart {
        /// The position of the call in the answer.
        index: u32,
        /// The call id.
        id: String,
        /// The tool's name.
        name: String,
    },
    /// A complete tool call, its argument fragments assembled and parsed.
    ToolUse {
        /// The call id.
        id: String,
        /// The tool's name.
        name: String,
        /// The arguments.
        input: serde_json::Value,
    },
    /// Usage of the call (may come once, at the end, or not at all on a cut stream).
    Usage {
        /// Tokens used.
        usage: Usage,
    },
    /// The answer is complete.
    Done {
        /// Why the model stopped.
        stop_reason: StopReason,
    },
    /// What the provider charged for the call, in millionths of a US dollar, when it says so
    /// (OpenRouter); preferred over a price list.
    Cost {
        /// The charge.
        micros: i64,
    },
    /// A model chain gave up on one candidate before anything of its answer was sent and moved
    /// to the next; the chunks after this one come from `to`.
    Failover {
        /// The candidate that failed, as `provider/model`.
        from: String,
        /// The candidate now answering, as `provider/model`.
        to: String,
        /// Why `from` was left (the error, as shown to people).
        reason: String,
    },
}

/// What a failed attempt means for the next candidate of a model chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failover {
    /// Try the next candidate: the failure belongs to this provider, model or account.
    Next,
    /// Try the next candidate with a larger context window than this one's.
    LargerContext,
    /// Stop: the request itself is at fault, and every candidate would refuse it.
    Stop,
}

/// A failed model call, classified once where it entered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LlmError {
    /// The provider is not configured; `env_var` says what to set.
    #[error("provider `{provider}` is not configured: set {env_var}")]
    NotConfigured {
        /// The provider's name.
        provider: String,
        /// The environment variable that configures it.
        env_var: String,
    },
    /// Too many requests; retry after the given delay, if known.
    #[error("rate limited by the provider")]
    RateLimited {
        /// The delay the provider asked for.
        retry_after: Option<Duration>,
    },
    /// The account's quota or credit is exhausted; retrying will not help.
    #[error("provider quota or billing limit reached: {message}")]
    QuotaExceeded {
        /// The provider's explanation.
        message: String,
    },
    /// The provider is overloaded (e.g. HTTP 503/529).
    #[error("provider overloaded")]
    Overloaded {
        /// The delay the provider asked for.
        retry_after: Option<Duration>,
    },
    /// A server error (HTTP 5xx).
    #[error("provider server error (HTTP {status})")]
    Server {
        /// The HTTP status.
        status: u16,
    },
    /// The call exceeded a deadline (connect, first byte, or stream idle).
    #[error("provider call timed out ({stage})")]
    Timeout {
        /// Which deadline: `connect`, `first_byte` or `idle`.
        stage: &'static str,
    },
    /// The connection failed or broke.
    #[error("transport error: {message}")]
    Transport {
        /// What happened.
        message: String,
    },
    /// The API key was rejected.
    #[error("provider rejected the credentials: {message}")]
    Auth {
        /// The provider's explanation.
        message: String,
    },
    /// The request was invalid; retrying or failing over will not help.
    #[error("provider rejected the request: {message}")]
    BadRequest {
        /// The provider's explanation.
        message: String,
    },
    /// The conversation is longer than the model's context window.
    #[error("context length exceeded: {message}")]
    ContextLengthExceeded {
        /// The provider's explanation.
        message: String,
    },
    /// The model does not exist for this provider or key.
    #[error("model not found: {model}")]
    ModelNotFound {
        /// The model asked for.
        model: String,
    },
    /// The provider sent something we could not understand.
    #[error("malformed provider response: {detail}")]
    Malformed {
        /// What was wrong.
        detail: String,
    },
    /// The stream ended before the answer was complete.
    #[error("provider stream ended early")]
    StreamInterrupted,
    /// The provider reported an error inside a stream that had started well.
    #[error("provider error in stream: {message}")]
    InStream {
        /// The provider's explanation.
        message: String,
    },
    /// The operation is not offered by this provider.
    #[error("unsupported by this provider: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// Every model of a chain failed or was unavailable.
    #[error("no model could answer: {attempts}")]
    ChainExhausted {
        /// Each candidate and why it was left, e.g. `openai/gpt-4o: rate limited; …`.
        attempts: String,
    },
}

impl LlmError {
    /// Whether the same call may succeed if sent again later, before anything reached the
    /// caller: rate limits, overload, server errors, timeouts, broken connections and streams.
    ///
    /// The match is exhaustive (no `_` arm) so a new variant forces a decision here; it lives
    /// in this crate because `#[non_exhaustive]` forbids such a match anywhere else.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Server { .. }
            | LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::StreamInterrupted => true,
            LlmError::NotConfigured { .. }
            | LlmError::QuotaExceeded { .. }
            | LlmError::Auth { .. }
            | LlmError::BadRequest { .. }
            | LlmError::ContextLengthExceeded { .. }
            | LlmError::ModelNotFound { .. }
            | LlmError::Malformed { .. }
            | LlmError::InStream { .. }
            | LlmError::Unsupported { .. }
            | LlmError::ChainExhausted { .. } => false,
        }
    }

    /// What this failure, before any of the answer reached the caller, means for a model
    /// chain. Decided by kind, never by message text.
    pub fn failover(&self) -> Failover {
        match self {
            LlmError::NotConfigured { .. }
            | LlmError::RateLimited { .. }
            | LlmError::QuotaExceeded { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Server { .. }
            | LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::Auth { .. }
            | LlmError::ModelNotFound { .. }
            | LlmError::Malformed { .. }
            | LlmError::StreamInterrupted
            | LlmError::InStream { .. }
            | LlmError::Unsupported { .. }
            | LlmError::ChainExhausted { .. } => Failover::Next,
            LlmError::ContextLengthExceeded { .. } => Failover::LargerContext,
            LlmError::BadRequest { .. } => Failover::Stop,
        }
    }

    /// Whether this failure says something about the health of the provider, model or account
    /// (and so counts toward opening its circuit breaker), rather than about the request.
    pub fn counts_against_provider(&self) -> bool {
        match self {
            LlmError::RateLimited { .. }
            | LlmError::QuotaExceeded { .. }
            | LlmError::Overloaded { .. }
            | LlmError::Server { .. }
            | LlmError::Timeout { .. }
            | LlmError::Transport { .. }
            | LlmError::Auth { .. }
            | LlmError::Malformed { .. }
            | LlmError::StreamInterrupted
            | LlmError::InStream { .. } => true,
            LlmError::NotConfigured { .. }
            | LlmError::ModelNotFound { .. }
            | LlmError::BadRequest { .. }
            | LlmError::ContextLengthExceeded { .. }
            | LlmError::Unsupported { .. }
            | LlmError::ChainExhausted { .. } => false,
        }
    }

    /// The delay the provider asked for before a retry, when it said one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::RateLimited { retry_after } | LlmError::Overloaded { retry_after } => {
                *retry_after
            }
            _ => None,
        }
    }
}

/// The stream of chunks of one model call.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<CompletionChunk, LlmError>> + Send>>;

/// What a provider knows about one of its models.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The model name as the provider knows it.
    pub name: String,
    /// Context window in tokens, when known.
    pub context_window: Option<u32>,
    /// Whether the model can call tools.
    pub supports_tools: bool,
}

/// What texts are embedded for (some providers embed queries and documents differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EmbeddingTask {
    /// A search query.
    Query,
    /// A document to be found.
    Document,
    /// Texts compared with each other.
    Similarity,
}

/// Texts to embed with one model.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct EmbeddingRequest {
    /// The model name as the provider knows it.
    pub model: String,
    /// The texts, in order.
    pub inputs: Vec<String>,
    /// Vector length, for models that can shorten their vectors.
    pub dimensions: Option<u32>,
    /// What the vectors are for, when the provider distinguishes.
    pub task: Option<EmbeddingTask>,
}

/// The vectors of an [`EmbeddingRequest`], one per input in order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Embeddings {
    /// One vector per input.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens billed, when reported.
    pub input_tokens: u64,
}

/// A model provider: one wire format, one account.
#[async_trait]
pub trait LlmProvider: Send + Sync + std::fmt::Debug {
    /// The provider's name, the prefix of `provider/model` addresses (e.g. `openai`).
    fn name(&self) -> &str;

    /// The models this provider is known to serve.
    fn models(&self) -> Vec<ModelInfo>;

    /// Whether the provider can pass tools to its models.
    fn supports_tools(&self) -> bool;

    /// Starts a streaming model call. Errors before the first chunk come back here; errors
    /// after it come through the stream.
    async fn complete(&self, request: CompletionRequest) -> Result<ChunkStream, LlmError>;

    /// Embeds texts; `Err(Unsupported)` from a provider without embeddings.
    async fn embed(&self, request: EmbeddingRequest) -> Result<Embeddings, LlmError> {
        let _ = request;
        Err(LlmError::Unsupported {
            what: format!("embeddings from provider `{}`", self.name()),
        })
    }
}
