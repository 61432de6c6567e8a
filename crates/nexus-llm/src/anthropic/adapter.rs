//! [`AnthropicProvider`]: the [`LlmProvider`] implementation over the Anthropic client.

use async_trait::async_trait;
use nexus_core::llm::{ChunkStream, CompletionRequest, LlmError, LlmProvider, ModelInfo};

use super::client::AnthropicClient;
use super::config::AnthropicConfig;
use super::payload;
use crate::error::ConfigError;

/// The provider's name, the prefix of its model addresses (`anthropic/claude-sonnet-4-5`).
pub const PROVIDER_NAME: &str = "anthropic";

/// Models this provider is known to serve (the aliases of the official SDK's model list):
/// `(name, context window)`. The first is the default model. Any other name is passed through
/// to the API, which answers `404 not_found_error` for a model it does not know.
const MODELS: &[(&str, u32)] = &[
    ("claude-sonnet-4-5", 200_000),
    ("claude-sonnet-4-6", 200_000),
    ("claude-opus-4-7", 200_000),
    ("claude-opus-4-6", 200_000),
    ("claude-opus-4-5", 200_000),
    ("claude-haiku-4-5", 200_000),
    ("claude-opus-4-1", 200_000),
    ("claude-opus-4-0", 200_000),
    ("claude-sonnet-4-0", 200_000),
    ("claude-3-haiku-20240307", 200_000),
];

/// Anthropic Messages API, streaming, with prompt-cache breakpoints on every request. Cheap
/// to share behind an `Arc`; one pooled HTTP client per provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    client: AnthropicClient,
    default_max_tokens: u32,
}

impl AnthropicProvider {
    /// A provider for `config`. Fails only when the HTTP client cannot be built or a header
    /// value is not representable.
    pub fn new(config: AnthropicConfig) -> Result<AnthropicProvider, ConfigError> {
        if config.default_max_tokens == 0 {
            return Err(ConfigError::InvalidValue {
                field: "default_max_tokens",
                reason: "must be at least 1 (Anthropic requires max_tokens >= 1)".to_owned(),
            });
        }
        Ok(AnthropicProvider {
            client: AnthropicClient::new(&config)?,
            default_max_tokens: config.default_max_tokens,
        })
    }

    /// The default model (the first of [`models`](LlmProvider::models)).
    pub fn default_model() -> &'static str {
        MODELS[0].0
    }
}

#[async_trait]
impl LlmProvider for AnthropicProvider {
    fn name(&self) -> &str {
        PROVIDER_NAME
    }

    fn models(&self) -> Vec<ModelInfo> {
        MODELS
            .iter()
            .map(|(name, window)| ModelInfo {
                name: (*name).to_owned(),
                context_window: Some(*window),
                supports_tools: true,
            })
            .collect()
    }

    fn supports_tools(&self) -> bool {
        true
    }

    async fn complete(&self, request: CompletionRequest) -> Result<ChunkStream, LlmError> {
        let body = payload::to_body(&request, self.default_max_tokens)?;
        self.client.stream(body, &request.model).await
    }
}
