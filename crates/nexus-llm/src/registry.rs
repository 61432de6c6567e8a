//! The provider registry: provider name → provider, and `provider/model` addresses resolved
//! to a provider and the model's name there.
//!
//! An address splits at its first `/`: `openrouter/anthropic/claude-sonnet-4.5` is model
//! `anthropic/claude-sonnet-4.5` of provider `openrouter`. An unknown provider is
//! [`LlmError::NotConfigured`] naming the variable that would configure it.
//!
//! [`ProviderRegistry::from_env`] is where providers found in the environment are assembled
//! with their reliability wrappers; this module must never read configuration files.

use std::sync::Arc;

use nexus_core::llm::{LlmError, LlmProvider};

use crate::anthropic::{AnthropicConfig, AnthropicProvider};
use crate::error::ConfigError;
use crate::gemini::{GeminiConfig, GeminiProvider};
use crate::keys::KeyRotation;
use crate::openai::{self, OpenAiConfig, OpenAiProvider};
use crate::retry::{RetryPolicy, Retrying};

/// The default model of OpenRouter when it is the first provider configured.
pub const OPENROUTER_DEFAULT_MODEL: &str = "meta-llama/llama-3.3-70b-instruct";

/// The environment variable that configures a provider, by provider name.
pub fn env_var_for(provider: &str) -> String {
    match provider {
        "openai" => openai::API_KEY_ENV.to_owned(),
        "anthropic" => "ANTHROPIC_API_KEY".to_owned(),
        "gemini" | "google" => "GEMINI_API_KEY".to_owned(),
        "openrouter" => "OPENROUTER_API_KEY".to_owned(),
        "ollama" => "OLLAMA_HOST".to_owned(),
        other => format!(
            "{}_API_KEY",
            other
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                })
                .collect::<String>()
        ),
    }
}

/// Splits `provider/model`. Both parts must be non-empty.
pub fn parse_address(address: &str) -> Result<(&str, &str), LlmError> {
    match address.trim().split_once('/') {
        Some((provider, model)) if !provider.is_empty() && !model.is_empty() => {
            Ok((provider, model))
        }
        _ => Err(LlmError::BadRequest {
            message: format!(
                "model address `{address}` must look like `provider/model`, e.g. `openai/gpt-4o-mini`"
            ),
        }),
    }
}

/// The provider configured through `var` and the other variables of `lookup`, wrapped in
/// [`Retrying`]: one key, or several separated by commas, each with its own provider instance
/// behind a [`KeyRotation`].
fn keyed<P: LlmProvider + 'static>(
    lookup: &dyn Fn(&str) -> Option<String>,
    var: &str,
    build: impl Fn(&dyn Fn(&str) -> Option<String>) -> Result<Option<P>, ConfigError>,
) -> Result<Option<Arc<dyn LlmProvider>>, ConfigError> {
    let keys: Vec<String> = lookup(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    let provider: Arc<dyn LlmProvider> = if keys.len() <= 1 {
        match build(lookup)? {
            Some(provider) => Arc::new(provider),
            None => return Ok(None),
        }
    } else {
        let mut providers: Vec<Arc<dyn LlmProvider>> = Vec::with_capacity(keys.len());
        for key in &keys {
            let one = |name: &str| {
                if name == var {
                    Some(key.clone())
                } else {
                    lookup(name)
                }
            };
            if let Some(provider) = build(&one)? {
                providers.push(Arc::new(provider));
            }
        }
        Arc::new(
            KeyRotation::new(providers).map_err(|e| ConfigError::InvalidEnv {
                var: "API key list",
                reason: e.to_string(),
            })?,
        )
    };
    Ok(Some(Arc::new(Retrying::new(
        provider,
        RetryPolicy::default(),
    ))))
}

#[derive(Debug, Clone)]
struct Entry {
    provider: Arc<dyn LlmProvider>,
    default_model: Option<String>,
}

/// Providers by name, in registration order.
#[derive(Debug, Clone, Default)]
pub struct ProviderRegistry {
    entries: Vec<Entry>,
}

impl ProviderRegistry {
    /// An empty registry.
    pub fn new() -> ProviderRegistry {
        ProviderRegistry::default()
    }

    /// The providers configured by the environment, each wrapped in [`Retrying`] with the
    /// default [`RetryPolicy`]: OpenAI when `OPENAI_API_KEY` is set (`OPENAI_BASE_URL`
    /// overrides its base URL). No key anywhere gives an empty registry, not an error.
    /// Anthropic is registered when `ANTHROPIC_API_KEY` is set (`ANTHROPIC_BASE_URL`
    /// overrides its base URL), after OpenAI.
    ///
    /// Gemini is registered the same way when `GEMINI_API_KEY` or `GOOGLE_API_KEY` is set
    /// (`GEMINI_BASE_URL` overrides its base URL).
    pub fn from_env() -> Result<ProviderRegistry, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<ProviderRegistry, ConfigError> {
        let lookup: &dyn Fn(&str) -> Option<String> = &lookup;
        let mut registry = ProviderRegistry::new();
        if let Some(provider) = keyed(lookup, openai::API_KEY_ENV, |l| {
            OpenAiConfig::from_lookup(l)?
                .map(OpenAiProvider::new)
                .transpose()
        })? {
            registry.register_with_default(provider, OpenAiProvider::default_model());
        }
        if let Some(provider) = keyed(lookup, "ANTHROPIC_API_KEY", |l| {
            AnthropicConfig::from_lookup(l)?
                .map(AnthropicProvider::new)
                .transpose()
        })? {
            registry.register_with_default(provider, AnthropicProvider::default_model());
        }
        // Gemini reads GEMINI_API_KEY, else GOOGLE_API_KEY: the list of keys is in that one.
        let gemini_var = if lookup("GEMINI_API_KEY").is_some_and(|v| !v.trim().is_empty()) {
            "GEMINI_API_KEY"
        } else {
            "GOOGLE_API_KEY"
        };
        if let Some(provider) = keyed(lookup, gemini_var, |l| {
            GeminiConfig::from_lookup(l)?
                .map(GeminiProvider::new)
                .transpose()
        })? {
            registry.register_with_default(provider, GeminiProvider::default_model());
        }
        if let Some(provider) = keyed(lookup, openai::OPENROUTER_API_KEY_ENV, |l| {
            OpenAiConfig::openrouter_from_lookup(l)?
                .map(OpenAiProvider::new)
                .transpose()
        })? {
            registry.register_with_default(provider, OPENROUTER_DEFAULT_MODEL);
        }
        Ok(registry)
    }

    /// Adds `provider` under its [`name`](LlmProvider::name), replacing one of the same name.
    /// Its default model is the first it lists.
    pub fn register(&mut self, provider: Arc<dyn LlmProvider>) {
        let default_model = provider.models().into_iter().next().map(|m| m.name);
        self.insert(Entry {
            provider,
            default_model,
        });
    }

    /// Adds `provider` with `default_model` as its default.
    pub fn register_with_default(
        &mut self,
        provider: Arc<dyn LlmProvider>,
        default_model: impl Into<String>,
    ) {
        self.insert(Entry {
            provider,
            default_model: Some(default_model.into()),
        });
    }

    fn insert(&mut self, entry: Entry) {
        let name = entry.provider.name().to_owned();
        match self.entries.iter_mut().find(|e| e.provider.name() == name) {
            Some(existing) => *existing = entry,
            None => self.entries.push(entry),
        }
    }

    /// The provider named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn LlmProvider>> {
        self.entries
            .iter()
            .find(|e| e.provider.name() == name)
            .map(|e| Arc::clone(&e.provider))
    }

    /// The names of the registered providers, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.provider.name()).collect()
    }

    /// Whether no provider is registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The provider serving `address` (`provider/model`) and the model's name there.
    pub fn resolve(&self, address: &str) -> Result<(Arc<dyn LlmProvider>, String), LlmError> {
        let (provider, model) = parse_address(address)?;
        match self.get(provider) {
            Some(found) => Ok((found, model.to_owned())),
            None => Err(LlmError::NotConfigured {
                provider: provider.to_owned(),
                env_var: env_var_for(provider),
            }),
        }
    }

    /// The address of a default model, from the first registered provider that has one
    /// (e.g. `openai/gpt-4o-mini`); `None` when nothing is configured.
    pub fn first_configured(&self) -> Option<String> {
        self.entries.iter().find_map(|e| {
            e.default_model
                .as_ref()
                .map(|model| format!("{}/{model}", e.provider.name()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn openai_key_in_env_registers_openai_as_default() {
        let registry =
            ProviderRegistry::from_lookup(lookup(&[("OPENAI_API_KEY", "sk-test")])).unwrap();
        assert_eq!(registry.names(), vec!["openai"]);
        assert_eq!(
            registry.first_configured().as_deref(),
            Some("openai/gpt-4o-mini")
        );
        let (provider, model) = registry.resolve("openai/gpt-4o").unwrap();
        assert_eq!(provider.name(), "openai");
        assert_eq!(model, "gpt-4o");
    }

    #[test]
    fn no_key_means_an_empty_registry() {
        let registry = ProviderRegistry::from_lookup(lookup(&[])).unwrap();
        assert!(registry.is_empty());
        assert_eq!(registry.first_configured(), None);
    }

    #[test]
    fn unknown_provider_names_the_variable_to_set() {
        let registry = ProviderRegistry::new();
        for (address, var) in [
            ("openai/gpt-4o", "OPENAI_API_KEY"),
            ("anthropic/claude-sonnet-4-5", "ANTHROPIC_API_KEY"),
            ("gemini/gemini-2.5-flash", "GEMINI_API_KEY"),
            (
                "openrouter/anthropic/claude-sonnet-4.5",
                "OPENROUTER_API_KEY",
            ),
            ("my-vllm/llama", "MY_VLLM_API_KEY"),
        ] {
            let err = registry.resolve(address).unwrap_err();
            let LlmError::NotConfigured { env_var, .. } = err else {
                panic!("{address}: {err:?}");
            };
            assert_eq!(env_var, var);
        }
    }

    #[test]
    fn address_splits_at_the_first_slash() {
        assert_eq!(
            parse_address("openrouter/anthropic/claude-sonnet-4.5").unwrap(),
            ("openrouter", "anthropic/claude-sonnet-4.5")
        );
    }

    #[test]
    fn address_without_provider_or_model_is_a_bad_request() {
        for bad in ["gpt-4o", "/gpt-4o", "openai/", ""] {
            assert!(
                matches!(parse_address(bad), Err(LlmError::BadRequest { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn gemini_or_google_key_registers_gemini() {
        let alone: [&'static [(&'static str, &'static str)]; 2] = [
            &[("GEMINI_API_KEY", "AIza-test")],
            &[("GOOGLE_API_KEY", "AIza-test")],
        ];
        for vars in alone {
            let registry = ProviderRegistry::from_lookup(lookup(vars)).unwrap();
            assert_eq!(registry.names(), vec!["gemini"], "{vars:?}");
            assert_eq!(
                registry.first_configured().as_deref(),
                Some("gemini/gemini-2.5-flash")
            );
            let (provider, model) = registry.resolve("gemini/gemini-2.5-pro").unwrap();
            assert_eq!(
                (provider.name(), model.as_str()),
                ("gemini", "gemini-2.5-pro")
            );
        }
        let both = ProviderRegistry::from_lookup(lookup(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("GEMINI_API_KEY", "AIza-test"),
        ]))
        .unwrap();
        assert_eq!(both.names(), vec!["openai", "gemini"]);
        let err = ProviderRegistry::from_lookup(lookup(&[
            ("GEMINI_API_KEY", "AIza-test"),
            ("GEMINI_BASE_URL", "not a url"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("GEMINI_BASE_URL"), "{err}");
    }

    #[test]
    fn malformed_base_url_in_env_names_the_variable() {
        let err = ProviderRegistry::from_lookup(lookup(&[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "not a url"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("OPENAI_BASE_URL"), "{err}");
    }

    #[test]
    fn anthropic_key_in_env_registers_anthropic() {
        let registry =
            ProviderRegistry::from_lookup(lookup(&[("ANTHROPIC_API_KEY", "sk-ant-test")])).unwrap();
        assert_eq!(registry.names(), vec!["anthropic"]);
        assert_eq!(
            registry.first_configured().as_deref(),
            Some("anthropic/claude-sonnet-4-5")
        );
        let (provider, model) = registry.resolve("anthropic/claude-haiku-4-5").unwrap();
        assert_eq!(provider.name(), "anthropic");
        assert_eq!(model, "claude-haiku-4-5");
    }

    #[test]
    fn malformed_anthropic_base_url_names_the_variable() {
        let err = ProviderRegistry::from_lookup(lookup(&[
            ("ANTHROPIC_API_KEY", "sk-ant-test"),
            ("ANTHROPIC_BASE_URL", "ftp://example.com"),
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("ANTHROPIC_BASE_URL"), "{err}");
    }
}
