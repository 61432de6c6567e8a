//! The model catalog: what Nexus knows of a model before calling it — its context window, output
//! limit, tool and image support, and prices.
//!
//! A built-in table of current popular models (`catalog/models.toml`, each entry naming its
//! source and the date its figures were read) is embedded at build time; an operator adds or
//! overrides entries with [`Catalog::with`]. Prices are USD per million tokens, so that a token
//! count times a price is micro-dollars, the unit usage records store.
//!
//! Billing always uses the usage the provider reports; the catalog only prices it.

use std::collections::HashMap;
use std::sync::Arc;

use nexus_core::llm::Usage;
use serde::Deserialize;

/// The built-in catalog's source.
const BUILTIN: &str = include_str!("../catalog/models.toml");

/// What a model is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Chat completions.
    #[default]
    Chat,
    /// Embeddings.
    Embedding,
}

/// Prices of a model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct Prices {
    /// Input tokens not read from or written to a prompt cache.
    pub input: f64,
    /// Output tokens.
    #[serde(default)]
    pub output: f64,
    /// Input tokens written to the prompt cache; the input price when absent.
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Input tokens read from the prompt cache; the input price when absent.
    #[serde(default)]
    pub cache_read: Option<f64>,
}

impl Prices {
    /// The cost of `usage` in micro-dollars (rounded to the nearest). Cache reads and writes are
    /// priced on their own; the rest of the input at the input price.
    pub fn cost_micros(&self, usage: &Usage) -> i64 {
        let cached = usage
            .cache_read_tokens
            .saturating_add(usage.cache_write_tokens);
        let uncached = usage.input_tokens.saturating_sub(cached);
        // Token counts stay far below 2^53, where f64 stops being exact.
        #[allow(
            clippy::cast_precision_loss,
            reason = "token counts are far below 2^53"
        )]
        let micros = uncached as f64 * self.input
            + usage.output_tokens as f64 * self.output
            + usage.cache_write_tokens as f64 * self.cache_write.unwrap_or(self.input)
            + usage.cache_read_tokens as f64 * self.cache_read.unwrap_or(self.input);
        #[allow(
            clippy::cast_possible_truncation,
            reason = "rounded, non-negative and far below i64::MAX for any real bill"
        )]
        let rounded = micros.round().max(0.0) as i64;
        rounded
    }
}

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelCard {
    /// `provider/model`.
    pub id: String,
    /// Chat or embedding.
    pub kind: ModelKind,
    /// Context window in tokens, when known.
    pub context_window: Option<u32>,
    /// Most output tokens per call, when known.
    pub max_output_tokens: Option<u32>,
    /// Whether the model can call tools.
    pub tools: bool,
    /// Whether the model accepts images.
    pub vision: bool,
    /// Prices, when known.
    pub prices: Option<Prices>,
    /// Vector length of an embedding model.
    pub dimensions: Option<u32>,
}

/// A model as written in a catalog file or in the server configuration (`[[models]]`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    /// `provider/model`.
    pub id: String,
    /// Other addresses of the same model (dated snapshots).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// `chat` (default) or `embedding`.
    #[serde(default)]
    pub kind: ModelKind,
    /// Context window in tokens.
    pub context_window: Option<u32>,
    /// Most output tokens per call.
    pub max_output_tokens: Option<u32>,
    /// Whether the model can call tools.
    #[serde(default)]
    pub tools: bool,
    /// Whether the model accepts images.
    #[serde(default)]
    pub vision: bool,
    /// USD per million uncached input tokens.
    pub input: Option<f64>,
    /// USD per million output tokens.
    pub output: Option<f64>,
    /// USD per million input tokens written to the prompt cache.
    pub cache_write: Option<f64>,
    /// USD per million input tokens read from the prompt cache.
    pub cache_read: Option<f64>,
    /// Vector length of an embedding model.
    pub dimensions: Option<u32>,
    /// Where the figures come from (documentation only).
    pub source: Option<String>,
    /// When the figures were read (documentation only).
    pub verified: Option<String>,
    /// Anything else worth knowing (documentation only).
    pub note: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    model: Vec<CatalogEntry>,
}

/// A catalog that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Not valid TOML of the expected shape.
    #[error("model catalog: {0}")]
    Parse(String),
    /// An entry that makes no sense.
    #[error("model catalog: `{id}`: {reason}")]
    Invalid {
        /// The entry.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Models by `provider/model` address (and alias).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    cards: HashMap<String, Arc<ModelCard>>,
}

impl Catalog {
    /// The built-in catalog.
    pub fn builtin() -> Result<Catalog, CatalogError> {
        Catalog::default().with_toml(BUILTIN)
    }

    /// This catalog with the entries of `text` (the built-in file's format) added; an entry
    /// with a known id or alias replaces the old one.
    pub fn with_toml(self, text: &str) -> Result<Catalog, CatalogError> {
        let file: File = toml::from_str(text).map_err(|e| CatalogError::Parse(e.to_string()))?;
        self.with_entries(file.model)
    }

    /// This catalog with `entries` added; an entry with a known id or alias replaces the old
    /// one.
    pub fn with_entries(
        self,
        entries: impl IntoIterator<Item = CatalogEntry>,
    ) -> Result<Catalog, CatalogError> {
        let mut catalog = self;
        for entry in entries {
            let aliases = entry.aliases.clone();
            let card = Arc::new(card(entry)?);
            for alias in aliases {
                catalog.cards.insert(alias, Arc::clone(&card));
            }
            catalog.cards.insert(card.id.clone(), card);
        }
        Ok(catalog)
    }

    /// This catalog with `card` added (replacing one of the same id).
    #[must_use]
    pub fn with(mut self, card: ModelCard) -> Catalog {
        self.cards.insert(card.id.clone(), Arc::new(card));
        self
    }

    /// The model at `address` (`provider/model`).
    pub fn get(&self, address: &str) -> Option<&ModelCard> {
        self.cards.get(address).map(AsRef::as_ref)
    }

    /// Every model, by id (aliases left out), sorted.
    pub fn models(&self) -> Vec<&ModelCard> {
        let mut cards: Vec<&ModelCard> = self
            .cards
            .iter()
            .filter(|(key, card)| **key == card.id)
            .map(|(_, card)| card.as_ref())
            .collect();
        cards.sort_by(|a, b| a.id.cmp(&b.id));
        cards
    }

    /// The cost of `usage` on the model at `address`, in micro-dollars, if its prices are
    /// known.
    pub fn cost_micros(&self, address: &str, usage: &Usage) -> Option<i64> {
        self.get(address)?.prices.map(|p| p.cost_micros(usage))
    }
}

fn card(entry: CatalogEntry) -> Result<ModelCard, CatalogError> {
    let invalid = |reason: &str| CatalogError::Invalid {
        id: entry.id.clone(),
        reason: reason.to_owned(),
    };
    match entry.id.split_once('/') {
        Some((provider, model)) if !provider.is_empty() && !model.is_empty() => {}
        _ => return Err(invalid("the id must be `provider/model`")),
    }
    let prices = match (entry.input, entry.output) {
        (Some(input), output) => Some(Prices {
            input,
            output: output.unwrap_or(0.0),
            cache_write: entry.cache_write,
            cache_read: entry.cache_read,
        }),
        (None, None) if entry.cache_write.is_none() && entry.cache_read.is_none() => None,
        (None, _) => return Err(invalid("prices without an `input` price")),
    };
    if let Some(p) = &prices {
        let all = [Some(p.input), Some(p.output), p.cache_write, p.cache_read];
        if all.into_iter().flatten().any(|v| !v.is_finite() || v < 0.0) {
            return Err(invalid("prices must be finite and not negative"));
        }
    }
    if entry.context_window == Some(0) {
        return Err(invalid("context_window must be positive"));
    }
    Ok(ModelCard {
        id: entry.id,
        kind: entry.kind,
        context_window: entry.context_window,
        max_output_tokens: entry.max_output_tokens,
        tools: entry.tools,
        vision: entry.vision,
        prices,
        dimensions: entry.dimensions,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    const SAMPLE: &str = r#"
[[model]]
id = "anthropic/claude-x"
aliases = ["anthropic/claude-x-20260101"]
context_window = 200000
max_output_tokens = 64000
tools = true
vision = true
input = 3.0
output = 15.0
cache_write = 3.75
cache_read = 0.30
source = "https://example.invalid/pricing"
verified = "2026-11-24"

[[model]]
id = "openai/embed-x"
kind = "embedding"
input = 0.02
dimensions = 1536

[[model]]
id = "local/no-price"
context_window = 8192
"#;

    #[test]
    fn the_builtin_catalog_parses_and_prices_its_chat_models() {
        let catalog = Catalog::builtin().unwrap();
        let models = catalog.models();
        assert!(models.len() >= 10, "only {} models", models.len());
        for provider in ["anthropic/", "openai/", "gemini/"] {
            assert!(
                models.iter().any(|m| m.id.starts_with(provider)),
                "no {provider} model"
            );
        }
        for m in models.iter().filter(|m| m.kind == ModelKind::Chat) {
            assert!(m.context_window.is_some(), "{} has no context window", m.id);
        }
    }

    #[test]
    fn cost_counts_uncached_input_output_and_cache_tokens_separately() {
        let catalog = Catalog::default().with_toml(SAMPLE).unwrap();
        let usage = Usage {
            // 1,000,000 input of which 600,000 read from and 100,000 written to the cache.
            input_tokens: 1_000_000,
            output_tokens: 200_000,
            cache_read_tokens: 600_000,
            cache_write_tokens: 100_000,
        };
        // 300k × $3 + 200k × $15 + 100k × $3.75 + 600k × $0.30 per million:
        // $0.90 + $3.00 + $0.375 + $0.18 = $4.455.
        assert_eq!(
            catalog.cost_micros("anthropic/claude-x", &usage),
            Some(4_455_000)
        );
        assert_eq!(
            catalog.cost_micros("anthropic/claude-x-20260101", &usage),
            Some(4_455_000)
        );
        assert_eq!(catalog.cost_micros("local/no-price", &usage), None);
        assert_eq!(catalog.cost_micros("nobody/knows", &usage), None);
    }

    #[test]
    fn cache_tokens_without_their_own_price_cost_the_input_price() {
        let prices = Prices {
            input: 2.0,
            output: 8.0,
            cache_write: None,
            cache_read: None,
        };
        let usage = Usage {
            input_tokens: 1000,
            output_tokens: 10,
            cache_read_tokens: 400,
            cache_write_tokens: 0,
        };
        assert_eq!(prices.cost_micros(&usage), 2000 + 80);
    }

    #[test]
    fn overrides_replace_builtin_entries_and_add_new_ones() {
        let catalog = Catalog::default()
            .with_toml(SAMPLE)
            .unwrap()
            .with_toml(
                "[[model]]\nid = \"anthropic/claude-x\"\ncontext_window = 1000\ninput = 1.0\n\
                 output = 2.0\n[[model]]\nid = \"ollama/llama3\"\ncontext_window = 8192\n",
            )
            .unwrap();
        let x = catalog.get("anthropic/claude-x").unwrap();
        assert_eq!(x.context_window, Some(1000));
        assert!(!x.tools);
        assert!(catalog.get("ollama/llama3").is_some());
        assert_eq!(catalog.models().len(), 4);
    }

    #[test]
    fn bad_entries_are_refused_with_the_entry_named() {
        for (text, needle) in [
            ("[[model]]\nid = \"no-provider\"\n", "provider/model"),
            (
                "[[model]]\nid = \"a/b\"\noutput = 1.0\n",
                "without an `input`",
            ),
            ("[[model]]\nid = \"a/b\"\ninput = -1.0\n", "not negative"),
            ("[[model]]\nid = \"a/b\"\ncontext = 5\n", "unknown field"),
        ] {
            let err = Catalog::default().with_toml(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text}: {err}");
        }
    }
}
