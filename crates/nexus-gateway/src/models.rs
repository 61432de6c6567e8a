//! Model providers from the environment, adapted to the runtime's [`ModelResolver`] port.

use std::sync::Arc;

use nexus_core::{LlmError, LlmProvider};
use nexus_llm::{ConfigError, ProviderRegistry};
use nexus_runtime::ModelResolver;

/// The model of new agents when no provider is configured: chats with it fail with a message
/// naming `OPENAI_API_KEY` until one is.
pub const FALLBACK_DEFAULT_MODEL: &str = "openai/gpt-4o-mini";

/// Configured providers.
#[derive(Debug)]
pub struct Providers {
    /// Resolves `provider/model` addresses.
    pub resolver: Arc<dyn ModelResolver>,
    /// Model of new agents: the configured default, else the first provider's default.
    pub default_model: String,
    /// Names of the configured providers.
    pub configured: Vec<String>,
}

#[derive(Debug)]
struct RegistryResolver(ProviderRegistry);

impl ModelResolver for RegistryResolver {
    fn resolve(&self, address: &str) -> Result<(Arc<dyn LlmProvider>, String), LlmError> {
        self.0.resolve(address)
    }
}

/// Providers enabled by their environment variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, …).
pub fn from_env(default_model: Option<String>) -> Result<Providers, ConfigError> {
    Ok(from_registry(ProviderRegistry::from_env()?, default_model))
}

/// Providers of an explicit registry (tests, embedding).
pub fn from_registry(registry: ProviderRegistry, default_model: Option<String>) -> Providers {
    let configured = registry.names().into_iter().map(str::to_owned).collect();
    let default_model = default_model
        .or_else(|| registry.first_configured())
        .unwrap_or_else(|| FALLBACK_DEFAULT_MODEL.to_owned());
    Providers {
        resolver: Arc::new(RegistryResolver(registry)),
        default_model,
        configured,
    }
}
