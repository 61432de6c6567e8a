//! [`OpenAiProvider`]: the [`LlmProvider`] implementation over the OpenAI client.

use async_trait::async_trait;
use nexus_core::llm::{
    ChunkStream, CompletionRequest, EmbeddingRequest, Embeddings, LlmError, LlmProvider, ModelInfo,
};

use super::client::OpenAiClient;
use std::sync::Arc;

use super::config::{Flavor, OpenAiConfig};
use super::payload;
use crate::error::ConfigError;

/// The provider's name, the prefix of its model addresses (`openai/gpt-4o-mini`).
pub const PROVIDER_NAME: &str = "openai";

/// Models this provider is known to serve: `(name, context window)`. The first is the
/// default model.
const MODELS: &[(&str, u32)] = &[
    ("gpt-4o-mini", 128_000),
    ("gpt-4o", 128_000),
    ("gpt-4.1", 1_047_576),
    ("gpt-4.1-mini", 1_047_576),
    ("gpt-4.1-nano", 1_047_576),
    ("gpt-5", 400_000),
    ("gpt-5-mini", 400_000),
    ("o3", 200_000),
    ("o4-mini", 200_000),
];

/// OpenAI Chat Completions, streaming. Cheap to share behind an `Arc`; one pooled HTTP
/// client per provider. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    client: OpenAiClient,
    name: String,
    flavor: Flavor,
    /// Models configured for this server (empty: the built-in list for OpenAI).
    models: Vec<ModelInfo>,
    config: Arc<OpenAiConfig>,
}

impl OpenAiProvider {
    /// A provider for `config`. Fails only when the HTTP client cannot be built or a header
    /// value is not representable.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiProvider, ConfigError> {
        Ok(OpenAiProvider {
            client: OpenAiClient::new(&config)?,
            name: config.name.clone(),
            flavor: config.flavor,
            models: config.models.clone(),
            config: Arc::new(config),
        })
    }

    /// The default model (the first of [`models`](LlmProvider::models)).
    pub fn default_model() -> &'static str {
        MODELS[0].0
    }
}

#[async_trait]
impl LlmProvider for OpenAiProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn models(&self) -> Vec<ModelInfo> {
        if !self.models.is_empty() || self.flavor != Flavor::OpenAi {
            return self.models.clone();
        }
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
        let tools = self.config.model_takes_tools(&request.model);
        let body = payload::to_body(&request, self.flavor, tools)?;
        self.client.stream(body, &request.model).await
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<Embeddings, LlmError> {
        super::embed::embed(&self.client, &request).await
    }
}
