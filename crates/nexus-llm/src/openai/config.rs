//! Configuration of the OpenAI provider: key, base URL, timeouts, and reading them from the
//! environment. Validated here, then trusted by the client.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::error::ConfigError;

/// The public API's base URL.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";
/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "OPENAI_API_KEY";
/// The environment variable overriding the base URL (e.g. a proxy, a local server, a fake).
pub const BASE_URL_ENV: &str = "OPENAI_BASE_URL";
/// The environment variable holding the organization id (sent as `OpenAI-Organization`).
pub const ORGANIZATION_ENV: &str = "OPENAI_ORG_ID";
/// The environment variable holding the project id (sent as `OpenAI-Project`).
pub const PROJECT_ENV: &str = "OPENAI_PROJECT_ID";

/// OpenRouter's variables and base.
pub const OPENROUTER_API_KEY_ENV: &str = "OPENROUTER_API_KEY";
/// Overrides OpenRouter's base URL.
pub const OPENROUTER_BASE_URL_ENV: &str = "OPENROUTER_BASE_URL";
/// The app's URL, sent as OpenRouter's `HTTP-Referer` attribution header.
pub const OPENROUTER_APP_URL_ENV: &str = "OPENROUTER_APP_URL";
/// The app's name, sent as OpenRouter's `X-Title` attribution header (default `Nexus`).
pub const OPENROUTER_APP_NAME_ENV: &str = "OPENROUTER_APP_NAME";
/// OpenRouter's API base.
pub const OPENROUTER_BASE_URL: &str = "https://openrouter.ai/api/v1";

/// Which server speaks the Chat Completions format, for the ways they differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// api.openai.com: `max_completion_tokens`.
    OpenAi,
    /// OpenRouter: `max_tokens`, attribution headers, the cost in `usage.cost`, numeric error
    /// codes, errors after a 200 as a chunk with `finish_reason: "error"`.
    OpenRouter,
    /// Ollama, vLLM, llama.cpp server, LiteLLM, LM Studio…: `max_tokens`, tool support per
    /// model from configuration, an API key only when the server wants one.
    Compatible,
}

/// How to reach the OpenAI API. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The provider's name, the prefix of its model addresses. Default: `openai`.
    pub name: String,
    /// Which server this is.
    pub flavor: Flavor,
    /// The API key, sent as `Authorization: Bearer …` (not sent when empty).
    pub api_key: SecretString,
    /// The API base, including the version segment. Default: `https://api.openai.com/v1`.
    pub base_url: Url,
    /// Deadline of the TCP (and TLS) connection. Default: 10 s.
    pub connect_timeout: Duration,
    /// Deadline from sending the request to the first bytes of the answer's body (which
    /// includes the response headers). Reasoning models may think a while before the first
    /// byte. Default: 120 s.
    pub first_byte_timeout: Duration,
    /// Longest silence between two reads of a streaming answer. Default: 60 s.
    pub idle_timeout: Duration,
    /// The organization id, sent as `OpenAI-Organization`. Default: none.
    pub organization: Option<String>,
    /// The project id, sent as `OpenAI-Project`. Default: none.
    pub project: Option<String>,
    /// More headers sent with every request (OpenRouter's attribution).
    pub headers: Vec<(String, String)>,
    /// The models this server is known to serve, the first being its default; empty means
    /// the built-in list (OpenAI) or none known. A model listed without tool support gets no
    /// tools in its requests.
    pub models: Vec<nexus_core::llm::ModelInfo>,
}

impl OpenAiConfig {
    /// A configuration for `api_key` with every other setting at its default.
    pub fn new(api_key: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            name: super::PROVIDER_NAME.to_owned(),
            flavor: Flavor::OpenAi,
            api_key: SecretString::from(api_key.into()),
            base_url: default_base_url(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            organization: None,
            project: None,
            headers: Vec::new(),
            models: Vec::new(),
        }
    }

    /// An OpenAI-compatible server named `name` (the prefix of its addresses) at `base_url`,
    /// with `api_key` when it wants one.
    pub fn compatible(
        name: &str,
        base_url: &str,
        api_key: Option<String>,
    ) -> Result<OpenAiConfig, ConfigError> {
        let mut config = OpenAiConfig::new(api_key.unwrap_or_default()).with_base_url(base_url)?;
        name.clone_into(&mut config.name);
        config.flavor = Flavor::Compatible;
        Ok(config)
    }

    /// Reads `OPENROUTER_API_KEY`, `OPENROUTER_BASE_URL`, `OPENROUTER_APP_URL` and
    /// `OPENROUTER_APP_NAME`. `Ok(None)` when no key is set.
    pub fn openrouter_from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OpenAiConfig>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get(OPENROUTER_API_KEY_ENV) else {
            return Ok(None);
        };
        let mut config = OpenAiConfig::new(key);
        config.name = "openrouter".to_owned();
        config.flavor = Flavor::OpenRouter;
        let base = get(OPENROUTER_BASE_URL_ENV).unwrap_or_else(|| OPENROUTER_BASE_URL.to_owned());
        config.base_url = parse_base_url(&base).map_err(|reason| ConfigError::InvalidEnv {
            var: OPENROUTER_BASE_URL_ENV,
            reason,
        })?;
        if let Some(url) = get(OPENROUTER_APP_URL_ENV) {
            config.headers.push(("HTTP-Referer".to_owned(), url));
        }
        let title = get(OPENROUTER_APP_NAME_ENV).unwrap_or_else(|| "Nexus".to_owned());
        config.headers.push(("X-Title".to_owned(), title));
        Ok(Some(config))
    }

    /// Whether `model` may be sent tools: unless it is listed without tool support.
    pub(crate) fn model_takes_tools(&self, model: &str) -> bool {
        self.models
            .iter()
            .find(|m| m.name == model)
            .is_none_or(|m| m.supports_tools)
    }

    /// Replaces the base URL, checking it (http or https, a host, no query or fragment).
    pub fn with_base_url(mut self, base_url: &str) -> Result<OpenAiConfig, ConfigError> {
        self.base_url = parse_base_url(base_url).map_err(|reason| ConfigError::InvalidValue {
            field: "base_url",
            reason,
        })?;
        Ok(self)
    }

    /// Reads `OPENAI_API_KEY`, `OPENAI_BASE_URL`, `OPENAI_ORG_ID` and `OPENAI_PROJECT_ID`.
    /// `Ok(None)` when no key is set (the provider is then simply not configured).
    pub fn from_env() -> Result<Option<OpenAiConfig>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables (tests, a config layer).
    /// Empty values count as unset.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<OpenAiConfig>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get(API_KEY_ENV) else {
            return Ok(None);
        };
        let mut config = OpenAiConfig::new(key);
        if let Some(raw) = get(BASE_URL_ENV) {
            config.base_url = parse_base_url(&raw).map_err(|reason| ConfigError::InvalidEnv {
                var: BASE_URL_ENV,
                reason,
            })?;
        }
        config.organization = get(ORGANIZATION_ENV);
        config.project = get(PROJECT_ENV);
        Ok(Some(config))
    }

    /// `{base}/{segment}`.
    pub(crate) fn endpoint_url(&self, segment: &str) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push(segment);
        }
        url
    }

    /// `{base}/chat/completions`.
    pub(crate) fn chat_completions_url(&self) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("chat").push("completions");
        }
        url
    }
}

fn default_base_url() -> Url {
    Url::parse(DEFAULT_BASE_URL).expect("the default base URL is a valid constant")
}

/// Checks a base URL: absolute http(s) with a host, no query or fragment.
fn parse_base_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|err| {
        format!("`{raw}` is not a URL ({err}); expected e.g. https://api.openai.com/v1")
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("`{raw}` must start with http:// or https://"));
    }
    if url.host().is_none() || url.cannot_be_a_base() {
        return Err(format!("`{raw}` has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("`{raw}` must not have a query or fragment"));
    }
    Ok(url)
}
