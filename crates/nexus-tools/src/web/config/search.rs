//! `[tools.web_search]`.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{WebConfigError, at_least, positive_secs, user_agent};

/// `[tools.web_search]`: searching the web through a SearXNG instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSearchConfig {
    /// Base URL of the SearXNG instance, e.g. `http://127.0.0.1:8888` (the tool calls its
    /// `/search`). The instance must have the JSON format enabled (`search: formats: [html,
    /// json]` in its settings.yml). Operator configuration: it may be a private address, and
    /// is not checked by the network guard. Required: without it the tool is not offered.
    /// Default: none.
    pub searxng_url: Option<String>,
    /// Time limit of one search request, in seconds. Default: 10.
    pub timeout_secs: u64,
    /// How long an answer is reused for the same query and options, in seconds; `0` turns
    /// the cache off. Default: 300.
    pub cache_ttl_secs: u64,
    /// Answers kept at most (the oldest go first); `0` turns the cache off. Default: 256.
    pub cache_entries: usize,
    /// Results shown when a call does not say (1 to 20). Default: 5.
    pub max_results: usize,
    /// SearXNG categories searched (`general`, `news`, `it`, `science`…). Default: none, the
    /// instance's default.
    pub categories: Vec<String>,
    /// Safe search: 0 off, 1 moderate, 2 strict. Default: 1.
    pub safesearch: u8,
    /// Language of results when a call does not say (`en`, `de-CH`, `all`). Default: none,
    /// the instance's default.
    pub language: Option<String>,
    /// Most bytes of a SearXNG answer read. Default: 2 MiB (2097152).
    pub max_response_bytes: usize,
    /// The `User-Agent` header. Default: `Nexus/<version> (+web_search)`.
    pub user_agent: String,
}

impl Default for WebSearchConfig {
    fn default() -> Self {
        WebSearchConfig {
            searxng_url: None,
            timeout_secs: 10,
            cache_ttl_secs: 300,
            cache_entries: 256,
            max_results: 5,
            categories: Vec::new(),
            safesearch: 1,
            language: None,
            max_response_bytes: 2 * 1024 * 1024,
            user_agent: user_agent("web_search"),
        }
    }
}

/// `web_search` settings after validation.
#[derive(Debug, Clone)]
pub(crate) struct SearchSettings {
    /// The `/search` endpoint.
    pub(crate) endpoint: Url,
    pub(crate) timeout: Duration,
    pub(crate) cache_ttl: Duration,
    pub(crate) cache_entries: usize,
    pub(crate) max_results: usize,
    pub(crate) categories: Option<String>,
    pub(crate) safesearch: u8,
    pub(crate) language: Option<String>,
    pub(crate) max_response_bytes: usize,
}

/// The most results one call may ask for.
pub(crate) const MAX_RESULTS: usize = 20;

impl WebSearchConfig {
    pub(crate) fn settings(&self) -> Result<SearchSettings, WebConfigError> {
        const KEY: &str = "tools.web_search.searxng_url";
        let Some(raw) = self.searxng_url.as_deref().filter(|s| !s.trim().is_empty()) else {
            return Err(WebConfigError::Missing {
                key: KEY,
                hint: "the base URL of a SearXNG instance with the JSON format enabled, e.g. \
                       http://127.0.0.1:8888",
            });
        };
        let invalid = |message: String| WebConfigError::Invalid {
            key: KEY,
            value: raw.to_owned(),
            message,
        };
        let mut base = Url::parse(raw.trim()).map_err(|e| invalid(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(invalid("use an http:// or https:// URL".to_owned()));
        }
        // `/search` relative to the base, which may itself live under a path.
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let endpoint = base.join("search").map_err(|e| invalid(e.to_string()))?;
        if !(1..=MAX_RESULTS).contains(&self.max_results) {
            return Err(WebConfigError::OutOfRange {
                key: "tools.web_search.max_results",
                value: self.max_results.to_string(),
                expected: "1 to 20",
            });
        }
        if self.safesearch > 2 {
            return Err(WebConfigError::OutOfRange {
                key: "tools.web_search.safesearch",
                value: self.safesearch.to_string(),
                expected: "0 (off), 1 (moderate) or 2 (strict)",
            });
        }
        let categories: Vec<&str> = self
            .categories
            .iter()
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .collect();
        Ok(SearchSettings {
            endpoint,
            timeout: positive_secs("tools.web_search.timeout_secs", self.timeout_secs)?,
            cache_ttl: Duration::from_secs(self.cache_ttl_secs),
            cache_entries: self.cache_entries,
            max_results: self.max_results,
            categories: (!categories.is_empty()).then(|| categories.join(",")),
            safesearch: self.safesearch,
            language: self
                .language
                .as_deref()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned),
            max_response_bytes: at_least(
                "tools.web_search.max_response_bytes",
                self.max_response_bytes,
                1024,
                "at least 1024 bytes",
            )?,
        })
    }
}

/// A search's time window, as SearXNG's `time_range`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TimeRange {
    /// The last day.
    Day,
    /// The last month.
    Month,
    /// The last year.
    Year,
}

impl TimeRange {
    /// The parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            TimeRange::Day => "day",
            TimeRange::Month => "month",
            TimeRange::Year => "year",
        }
    }

    /// Parses `day`, `month` or `year`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "day" => Some(TimeRange::Day),
            "month" => Some(TimeRange::Month),
            "year" => Some(TimeRange::Year),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_needs_a_searxng_url_and_calls_its_search_path() {
        let err = WebSearchConfig::default().settings().unwrap_err();
        assert!(err.to_string().contains("searxng_url"), "{err}");
        for (base, endpoint) in [
            ("http://127.0.0.1:8888", "http://127.0.0.1:8888/search"),
            ("http://10.0.0.5/searx/", "http://10.0.0.5/searx/search"),
            (
                "https://search.internal/searx",
                "https://search.internal/searx/search",
            ),
        ] {
            let config = WebSearchConfig {
                searxng_url: Some(base.to_owned()),
                ..WebSearchConfig::default()
            };
            assert_eq!(config.settings().unwrap().endpoint.as_str(), endpoint);
        }
        let config = WebSearchConfig {
            searxng_url: Some("ftp://x".to_owned()),
            ..WebSearchConfig::default()
        };
        assert!(config.settings().is_err());
        let config = WebSearchConfig {
            searxng_url: Some("http://x".to_owned()),
            max_results: 21,
            ..WebSearchConfig::default()
        };
        assert!(config.settings().is_err());
    }
}
