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

/// How to reach the OpenAI API. `Debug` never shows the key.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API key, sent as `Authorization: Bearer …`.
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
}

impl OpenAiConfig {
    /// A configuration for `api_key` with every other setting at its default.
    pub fn new(api_key: impl Into<String>) -> OpenAiConfig {
        OpenAiConfig {
            api_key: SecretString::from(api_key.into()),
            base_url: default_base_url(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(60),
            organization: None,
            project: None,
        }
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
