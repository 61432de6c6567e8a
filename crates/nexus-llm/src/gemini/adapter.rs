//! [`GeminiProvider`]: the [`LlmProvider`] implementation over the Gemini client.

use async_trait::async_trait;
use nexus_core::llm::{
    ChunkStream, CompletionRequest, EmbeddingRequest, Embeddings, LlmError, LlmProvider, ModelInfo,
};

use super::client::GeminiClient;
use super::config::GeminiConfig;
use super::payload;
use crate::error::ConfigError;

/// The provider's name, the prefix of its model addresses (`gemini/gemini-2.5-flash`).
pub const PROVIDER_NAME: &str = "gemini";

/// Models this provider is known to serve: `(name, context window in tokens)`. The first is
/// the default model. Any other model name the API knows works too.
const MODELS: &[(&str, u32)] = &[
    ("gemini-2.5-flash", 1_048_576),
    ("gemini-2.5-pro", 1_048_576),
    ("gemini-2.5-flash-lite", 1_048_576),
    ("gemini-2.0-flash", 1_048_576),
    ("gemini-3-pro-preview", 1_048_576),
    ("gemini-3-flash-preview", 1_048_576),
];

/// Google Gemini (Generative Language API `v1beta`), streaming. Cheap to share behind an
/// `Arc`; one pooled HTTP client per provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct GeminiProvider {
    client: GeminiClient,
    config: GeminiConfig,
}

impl GeminiProvider {
    /// A provider for `config`. Fails only when the HTTP client cannot be built or the key is
    /// not representable in a header.
    pub fn new(config: GeminiConfig) -> Result<GeminiProvider, ConfigError> {
        Ok(GeminiProvider {
            client: GeminiClient::new(&config)?,
            config,
        })
    }

    /// The default model (the first of [`models`](LlmProvider::models)).
    pub fn default_model() -> &'static str {
        MODELS[0].0
    }
}

#[async_trait]
impl LlmProvider for GeminiProvider {
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
        let body = payload::to_body(&request)?;
        self.client.stream(body, &request.model).await
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<Embeddings, LlmError> {
        super::embed::embed(&self.client, &self.config, &request).await
    }
}
