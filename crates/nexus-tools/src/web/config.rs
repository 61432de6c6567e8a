//! Configuration of the web tools (`[tools.web_fetch]` and `[tools.web_search]`): serde structs
//! with documented defaults, validated into the settings the tools run with. Every field here
//! is user documentation (docs/tools/web.md repeats it).

use std::time::Duration;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::net::{Cidr, NetworkGuard};

/// Ports `web_fetch` may reach on public addresses unless configured otherwise.
pub const DEFAULT_FETCH_PORTS: [u16; 2] = [80, 443];

/// The largest `max_bytes` the configuration accepts (64 MiB).
const MAX_BODY_CEILING: usize = 64 * 1024 * 1024;

/// The User-Agent of a web tool: `Nexus/<version> (+<tool>)`.
pub fn user_agent(tool: &str) -> String {
    format!("Nexus/{} (+{tool})", env!("CARGO_PKG_VERSION"))
}

/// A configuration the web tools cannot run with, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    /// A required key is missing.
    #[error("{key} is required: {hint}")]
    Missing {
        /// The key, e.g. `tools.web_search.searxng_url`.
        key: &'static str,
        /// What to put there.
        hint: &'static str,
    },
    /// A value is out of its range.
    #[error("{key} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
    /// A value is malformed.
    #[error("{key}: `{value}` is not valid: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The network guard given to `WebFetch::new` refuses a range the configuration allows.
    #[error(
        "tools.web_fetch.allow lists {range} but the network guard given refuses it; build the \
         guard with WebFetchConfig::network_guard()"
    )]
    GuardMismatch {
        /// The allowlisted range.
        range: String,
    },
    /// The HTTP client could not be built (TLS roots, …).
    #[error("cannot build the HTTP client: {message}")]
    Client {
        /// What failed.
        message: String,
    },
}

/// `[tools.web_fetch]`: fetching one page for the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebFetchConfig {
    /// Address ranges the tool may reach although they are not public, as CIDR
    /// (`10.20.0.0/16`, `fd00::/8`) or single addresses (`192.168.1.10`). Default: none, so
    /// loopback, private, link-local, metadata and other non-public addresses are refused.
    pub allow: Vec<String>,
    /// Ports the tool may reach on public addresses. Allowlisted (non-public) addresses may
    /// be reached on any port. Default: `[80, 443]`.
    pub ports: Vec<u16>,
    /// Most bytes of a response body read, in bytes; a call's `max_bytes` may ask for less,
    /// never more. At most 64 MiB. Default: 2 MiB (2097152).
    pub max_bytes: usize,
    /// Time limit of one fetch (connecting, every redirect and reading the body), in seconds;
    /// the time left for the tool call bounds it too. Default: 20.
    pub timeout_secs: u64,
    /// Time limit to connect (TCP and TLS) to one address, in seconds. Default: 10.
    pub connect_timeout_secs: u64,
    /// Redirects followed at most (each one checked like the first URL). Default: 5.
    pub max_redirects: u32,
    /// Bytes of text given back to the model; longer text is cut with a note. Default: 64 KiB
    /// (65536).
    pub max_text_bytes: usize,
    /// The `User-Agent` header. Default: `Nexus/<version> (+web_fetch)`.
    pub user_agent: String,
}

impl Default for WebFetchConfig {
    fn default() -> Self {
        WebFetchConfig {
            allow: Vec::new(),
            ports: DEFAULT_FETCH_PORTS.to_vec(),
            max_bytes: 2 * 1024 * 1024,
            timeout_secs: 20,
            connect_timeout_secs: 10,
            max_redirects: 5,
            max_text_bytes: 64 * 1024,
            user_agent: user_agent("web_fetch"),
        }
    }
}

/// `web_fetch` settings after validation.
#[derive(Debug, Clone)]
pub(crate) struct FetchSettings {
    pub(crate) allow: Vec<Cidr>,
    pub(crate) max_bytes: usize,
    pub(crate) timeout: Duration,
    pub(crate) max_text_bytes: usize,
}

impl WebFetchConfig {
    /// The allowlisted ranges, parsed.
    pub fn allow_ranges(&self) -> Result<Vec<Cidr>, WebConfigError> {
        self.allow
            .iter()
            .map(|s| {
                s.parse::<Cidr>().map_err(|e| WebConfigError::Invalid {
                    key: "tools.web_fetch.allow",
                    value: s.clone(),
                    message: e.to_string(),
                })
            })
            .collect()
    }

    /// The guard this configuration describes: public addresses plus [`allow`](Self::allow).
    pub fn network_guard(&self) -> Result<NetworkGuard, WebConfigError> {
        Ok(NetworkGuard::allowing(self.allow_ranges()?))
    }

    pub(crate) fn settings(&self) -> Result<FetchSettings, WebConfigError> {
        if self.max_bytes == 0 || self.max_bytes > MAX_BODY_CEILING {
            return Err(WebConfigError::OutOfRange {
                key: "tools.web_fetch.max_bytes",
                value: self.max_bytes.to_string(),
                expected: "1 to 67108864 bytes",
            });
        }
        Ok(FetchSettings {
            allow: self.allow_ranges()?,
            max_bytes: self.max_bytes,
            timeout: positive_secs("tools.web_fetch.timeout_secs", self.timeout_secs)?,
            max_text_bytes: at_least(
                "tools.web_fetch.max_text_bytes",
                self.max_text_bytes,
                256,
                "at least 256 bytes",
            )?,
        })
    }
}

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

fn positive_secs(key: &'static str, secs: u64) -> Result<Duration, WebConfigError> {
    if secs == 0 {
        return Err(WebConfigError::OutOfRange {
            key,
            value: "0".to_owned(),
            expected: "at least 1 second",
        });
    }
    Ok(Duration::from_secs(secs))
}

fn at_least(
    key: &'static str,
    value: usize,
    min: usize,
    expected: &'static str,
) -> Result<usize, WebConfigError> {
    if value < min {
        return Err(WebConfigError::OutOfRange {
            key,
            value: value.to_string(),
            expected,
        });
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetch_defaults_are_the_documented_ones() {
        let config: WebFetchConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, WebFetchConfig::default());
        assert_eq!(config.ports, vec![80, 443]);
        assert_eq!(config.max_bytes, 2 * 1024 * 1024);
        assert_eq!(config.max_text_bytes, 65536);
        assert!(config.user_agent.starts_with("Nexus/"));
        assert!(config.user_agent.ends_with("(+web_fetch)"));
        assert!(config.settings().is_ok());
    }

    #[test]
    fn unknown_keys_and_bad_ranges_are_refused_with_the_key() {
        assert!(serde_json::from_str::<WebFetchConfig>(r#"{"alow": []}"#).is_err());
        let config = WebFetchConfig {
            allow: vec!["10.0.0.0/33".to_owned()],
            ..WebFetchConfig::default()
        };
        let err = config.settings().unwrap_err();
        assert!(err.to_string().contains("tools.web_fetch.allow"), "{err}");
        let config = WebFetchConfig {
            timeout_secs: 0,
            ..WebFetchConfig::default()
        };
        let err = config.settings().unwrap_err();
        assert!(err.to_string().contains("timeout_secs"), "{err}");
    }

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
