//! Configuration of the Anthropic provider: key, base URL, timeouts, the default output limit,
//! and reading them from the environment. Validated here, then trusted by the client.

use std::time::Duration;

use secrecy::SecretString;
use url::Url;

use crate::error::ConfigError;

/// The public API's base URL (without the version segment, like the official SDKs).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";
/// The environment variable holding the API key.
pub const API_KEY_ENV: &str = "ANTHROPIC_API_KEY";
/// The environment variable overriding the base URL (a proxy, a gateway, a fake).
pub const BASE_URL_ENV: &str = "ANTHROPIC_BASE_URL";
/// The API version sent as `anthropic-version`.
pub const API_VERSION: &str = "2023-06-01";
/// The output limit sent when a request sets none (Anthropic requires `max_tokens`).
pub const DEFAULT_MAX_TOKENS: u32 = 8192;

/// How to reach the Anthropic API. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// The API key, sent as `x-api-key`.
    pub api_key: SecretString,
    /// The API base, without the version segment: requests go to `{base}/v1/messages`.
    /// Default: `https://api.anthropic.com`.
    pub base_url: Url,
    /// Deadline of the TCP (and TLS) connection. Default: 10 s.
    pub connect_timeout: Duration,
    /// Deadline from sending the request to the first bytes of the answer's body (which
    /// includes the response headers). Default: 120 s.
    pub first_byte_timeout: Duration,
    /// Longest silence between two reads of a streaming answer. The service sends `ping`
    /// events while a long answer is produced. Default: 60 s.
    pub idle_timeout: Duration,
    /// `max_tokens` of a request that sets no `max_output_tokens`, lowered to the model's
    /// output limit for the few known models below it. Default: 8192.
    pub default_max_tokens: u32,
    /// Beta features, sent comma-separated as `anthropic-beta` (e.g. `context-1m-2025-08-07`).
    /// Default: none (the header is not sent).
    pub beta: Vec<String>,
}

impl AnthropicConfig {
    /// A configuration for `api_key` with every other setting at its default.
    pub fn new(api_key: impl Into<String>) -> AnthropicConfig {
        AnthropicConfig {
            api_key: SecretString::from(api_key.into()),
            base_url: default_base_url(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            default_max_tokens: DEFAULT_MAX_TOKENS,
            beta: Vec::new(),
        }
    }

    /// Replaces the base URL, checking it (http or https, a host, no query or fragment).
    pub fn with_base_url(mut self, base_url: &str) -> Result<AnthropicConfig, ConfigError> {
        self.base_url = parse_base_url(base_url).map_err(|reason| ConfigError::InvalidValue {
            field: "base_url",
            reason,
        })?;
        Ok(self)
    }

    /// Reads `ANTHROPIC_API_KEY` and `ANTHROPIC_BASE_URL`. `Ok(None)` when no key is set (the
    /// provider is then simply not configured).
    pub fn from_env() -> Result<Option<AnthropicConfig>, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`from_env`](Self::from_env) over any source of variables (tests, a config layer).
    /// Empty values count as unset.
    pub fn from_lookup(
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<AnthropicConfig>, ConfigError> {
        let get = |name: &str| {
            lookup(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let Some(key) = get(API_KEY_ENV) else {
            return Ok(None);
        };
        let mut config = AnthropicConfig::new(key);
        if let Some(raw) = get(BASE_URL_ENV) {
            config.base_url = parse_base_url(&raw).map_err(|reason| ConfigError::InvalidEnv {
                var: BASE_URL_ENV,
                reason,
            })?;
        }
        Ok(Some(config))
    }

    /// `{base}/v1/messages`.
    pub(crate) fn messages_url(&self) -> Url {
        let mut url = self.base_url.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().push("v1").push("messages");
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
        format!("`{raw}` is not a URL ({err}); expected e.g. https://api.anthropic.com")
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
