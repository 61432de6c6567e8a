//! Model providers from the environment, adapted to the runtime's [`ModelResolver`] port.

use std::sync::Arc;

use nexus_core::{LlmProvider, ModelInfo, Usage};
use nexus_llm::{
    BreakerPolicy, Breakers, Candidate, Catalog, ConfigError, ModelChain, OpenAiConfig,
    OpenAiProvider, ProviderRegistry, RetryPolicy, Retrying,
};

use crate::config::CompatibleProvider;
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
struct RegistryResolver {
    registry: ProviderRegistry,
    catalog: Catalog,
    /// Circuit breakers of every model, shared by all chains.
    breakers: Arc<Breakers>,
}

impl ModelResolver for RegistryResolver {
    fn chain(&self, addresses: &[String]) -> Arc<dyn LlmProvider> {
        let candidates = addresses
            .iter()
            .map(|address| {
                let resolved = self.registry.resolve(address);
                let model = match &resolved {
                    Ok((_, model)) => model.clone(),
                    Err(_) => address.clone(),
                };
                Candidate {
                    address: address.clone(),
                    provider: resolved.map(|(provider, _)| provider),
                    model,
                    context_window: self.catalog.get(address).and_then(|c| c.context_window),
                }
            })
            .collect();
        Arc::new(ModelChain::new(candidates, Arc::clone(&self.breakers)))
    }

    fn cost_micros(&self, address: &str, usage: &Usage) -> Option<i64> {
        self.catalog.cost_micros(address, usage)
    }
}

/// Providers enabled by their environment variables (`OPENAI_API_KEY`, `OPENAI_BASE_URL`, …)
/// and the OpenAI-compatible servers of the configuration, pricing usage with `catalog`.
pub fn from_env(
    default_model: Option<String>,
    catalog: Catalog,
    compatible: &[CompatibleProvider],
) -> Result<Providers, ConfigError> {
    let mut registry = ProviderRegistry::from_env()?;
    for server in compatible {
        let key = server
            .api_key_env
            .as_deref()
            .and_then(|var| std::env::var(var).ok());
        let mut config = OpenAiConfig::compatible(&server.name, &server.base_url, key)?;
        config.models = server
            .models
            .iter()
            .map(|m| ModelInfo {
                name: m.name.clone(),
                context_window: m.context_window,
                supports_tools: m.tools.unwrap_or(true),
            })
            .collect();
        let provider = Arc::new(OpenAiProvider::new(config)?);
        registry.register(Arc::new(Retrying::new(provider, RetryPolicy::default())));
    }
    Ok(from_registry(registry, default_model, catalog))
}

/// Providers of an explicit registry (tests, embedding).
pub fn from_registry(
    registry: ProviderRegistry,
    default_model: Option<String>,
    catalog: Catalog,
) -> Providers {
    let configured = registry.names().into_iter().map(str::to_owned).collect();
    let default_model = default_model
        .or_else(|| registry.first_configured())
        .unwrap_or_else(|| FALLBACK_DEFAULT_MODEL.to_owned());
    Providers {
        resolver: Arc::new(RegistryResolver {
            registry,
            catalog,
            breakers: Arc::new(Breakers::new(BreakerPolicy::default())),
        }),
        default_model,
        configured,
    }
}
