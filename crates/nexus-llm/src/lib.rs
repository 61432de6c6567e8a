//! Nexus model providers.
//!
//! This crate owns the vendor wire formats behind the [`LlmProvider`] seam of `nexus-core`:
//! the OpenAI provider ([`openai`]), the Google Gemini provider ([`gemini`]), and the
//! mechanisms every provider shares, each in its own
//! module — the SSE parser ([`sse`]), tool-call assembly, error classification, the
//! [`Retrying`] wrapper ([`retry`]) and the [`ProviderRegistry`] ([`registry`]).
//! The Anthropic provider ([`anthropic`]) shares them, and the body pump (`pump`).
//!
//! Reliability wrappers go around `dyn LlmProvider`, assembled in
//! [`ProviderRegistry::from_env`]; the order is retry (innermost) → failover → circuit breaker.
//!
//! This crate must never know about sessions, channels, storage or configuration files, and
//! never decide anything by reading an error's message text.
//!
//! The neutral types are re-exported, so users write `nexus_llm::CompletionRequest`.

pub mod anthropic;
mod assemble;
mod body;
pub mod breaker;
pub mod catalog;
mod classify;
pub mod error;
pub mod failover;
pub mod gemini;
mod http;
pub mod keys;
pub mod openai;
mod pump;
pub mod registry;
pub mod retry;
pub mod sse;
pub mod tokens;

#[cfg(any(test, feature = "test-support"))]
pub mod testing;

pub use anthropic::{AnthropicConfig, AnthropicProvider};
pub use breaker::{BreakerPolicy, Breakers};
pub use catalog::{Catalog, CatalogEntry, CatalogError, ModelCard, ModelKind, Prices};
pub use error::ConfigError;
pub use failover::{Candidate, ModelChain};
pub use gemini::{GeminiConfig, GeminiProvider};
pub use keys::KeyRotation;
pub use nexus_core::llm::{
    ChatMessage, ChatRole, ChunkStream, CompletionChunk, CompletionRequest, ContentBlock,
    ImageSource, LlmError, LlmProvider, ModelInfo, StopReason, ToolSpec, Usage,
};
pub use openai::{OpenAiConfig, OpenAiProvider};
pub use registry::ProviderRegistry;
pub use retry::{RetryPolicy, Retrying};
pub use tokens::Tokenizer;
