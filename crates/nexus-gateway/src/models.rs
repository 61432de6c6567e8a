//! Model providers from the environment, adapted to the runtime's [`ModelResolver`] port.

use std::sync::Arc;

use nexus_core::{LlmProvider, ModelInfo, Usage};
use nexus_llm::{
    BreakerPolicy, Breakers, Candidate, Catalog, ConfigError, ModelChain, OpenAiConfig,
    OpenAiProvider, ProviderRegistry, RetryPolicy, Retrying,
};

use crate::config::CompatibleProvider;
use nexus_llm::Tokenizer;
use nexus_llm::tokens::upper_bound_parts;
use nexus_runtime::{ModelResolver, RequestParts};

/// What the catalog says of a model (for listing it).
pub use nexus_llm::{ModelCard, ModelKind};

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

    fn fits(&self, address: &str, request: &RequestParts<'_>) -> Option<bool> {
        let window = u64::from(self.catalog.get(address)?.context_window?);
        // Room for the answer: what the agent allows, else a quarter of the window up to 4096.
        let reserve = request.max_output.map_or((window / 4).min(4096), u64::from);
        let budget = window.saturating_sub(reserve);
        if upper_bound_parts(request.system, request.messages, request.tools) <= budget {
            return Some(true);
        }
        let tokens = Tokenizer::for_model(address).count_parts(
            request.system,
            request.messages,
            request.tools,
        );
        Some(tokens <= budget)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use nexus_core::{ChatMessage, ChatRole};
    use nexus_llm::CatalogEntry;

    use super::*;

    fn resolver(window: u32) -> RegistryResolver {
        RegistryResolver {
            registry: ProviderRegistry::new(),
            catalog: Catalog::default()
                .with_entries([CatalogEntry {
                    id: "openai/small".into(),
                    context_window: Some(window),
                    ..CatalogEntry::default()
                }])
                .unwrap(),
            breakers: Arc::new(Breakers::default()),
        }
    }

    fn parts<'a>(messages: &'a [ChatMessage], max_output: Option<u32>) -> RequestParts<'a> {
        RequestParts {
            system: Some("Be brief."),
            messages,
            tools: &[],
            max_output,
        }
    }

    #[test]
    fn fitting_counts_tokens_against_the_window_minus_the_answer() {
        let r = resolver(1_000);
        let short = [ChatMessage::text(ChatRole::User, "hello there")];
        assert_eq!(r.fits("openai/small", &parts(&short, None)), Some(true));
        // ~600 tokens of text: fits with 250 kept for the answer, not with 500.
        let long = [ChatMessage::text(ChatRole::User, "word ".repeat(600))];
        assert_eq!(r.fits("openai/small", &parts(&long, Some(250))), Some(true));
        assert_eq!(
            r.fits("openai/small", &parts(&long, Some(500))),
            Some(false)
        );
        // Unknown window: no opinion.
        assert_eq!(r.fits("openai/unknown", &parts(&long, None)), None);
    }
}
