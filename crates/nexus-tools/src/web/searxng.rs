//! SearXNG's JSON API (PROTOCOLS.md §8): `GET {base}/search?q=…&format=json` and the shape of
//! its answer. Failures are classified once, here, into [`SearchError`], whose messages tell
//! the model (and through it the operator) what to do.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use url::Url;

use super::body::read_capped;
use super::config::{SearchSettings, TimeRange, WebConfigError};
use super::lazy::LazyHttp;
use super::refusal::chain;

/// What one search asks for (also the cache key).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Query {
    pub(crate) q: String,
    pub(crate) time_range: Option<TimeRange>,
    pub(crate) language: Option<String>,
}

/// SearXNG's answer (the keys used; unknown keys ignored).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct SearchResponse {
    /// Required: an answer without it is not a search result.
    pub(crate) results: Vec<SearchResult>,
    #[serde(default)]
    pub(crate) answers: Vec<Value>,
    #[serde(default)]
    pub(crate) corrections: Vec<Value>,
    #[serde(default)]
    pub(crate) infoboxes: Vec<Infobox>,
    #[serde(default)]
    pub(crate) suggestions: Vec<Value>,
    #[serde(default)]
    pub(crate) unresponsive_engines: Vec<Value>,
}

/// One result.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct SearchResult {
    pub(crate) url: Option<String>,
    pub(crate) title: Option<String>,
    pub(crate) content: Option<String>,
    #[serde(rename = "publishedDate")]
    pub(crate) published_date: Option<String>,
}

/// An infobox (Wikipedia-like summary).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(crate) struct Infobox {
    pub(crate) infobox: Option<String>,
    pub(crate) content: Option<String>,
    pub(crate) id: Option<String>,
    pub(crate) urls: Vec<Value>,
}

/// A search that produced no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SearchError {
    #[error("SearXNG at {url} is unreachable: {message}")]
    Unreachable { url: String, message: String },
    #[error(
        "SearXNG at {url} refuses the JSON format (HTTP 403 Forbidden). The operator must \
         enable it in the instance's settings.yml (`search: formats: [html, json]`) and \
         restart SearXNG; if it is enabled, the instance's bot limiter may be refusing Nexus."
    )]
    JsonDisabled { url: String },
    #[error(
        "SearXNG at {url} is rate limiting searches (HTTP 429 Too Many Requests){}; try again \
         later. If this persists, the operator can relax the instance's limiter.",
        .retry_after.as_ref().map(|s| format!(", retry after {s} s")).unwrap_or_default()
    )]
    RateLimited {
        url: String,
        retry_after: Option<String>,
    },
    #[error("SearXNG at {url} failed with HTTP {status}")]
    Status { url: String, status: String },
    #[error("SearXNG at {url} answered with something that is not a search result: {message}")]
    Malformed { url: String, message: String },
    #[error("SearXNG at {url} sent an answer larger than {max} bytes; it was not read")]
    TooLarge { url: String, max: usize },
}

/// A client of one SearXNG instance.
#[derive(Debug, Clone)]
pub(crate) struct Searxng {
    http: LazyHttp,
    settings: Arc<SearchSettings>,
    /// The endpoint as shown in messages (no query).
    shown: String,
}

impl Searxng {
    pub(crate) fn new(settings: SearchSettings, user_agent: &str) -> Result<Self, WebConfigError> {
        let user_agent = user_agent.to_owned();
        let connect_timeout = settings.timeout;
        let http = LazyHttp::new(move || {
            reqwest::Client::builder()
                .user_agent(user_agent.as_str())
                .no_proxy()
                .tcp_nodelay(true)
                .connect_timeout(connect_timeout)
                .build()
        });
        Ok(Searxng {
            http,
            shown: settings.endpoint.to_string(),
            settings: Arc::new(settings),
        })
    }

    pub(crate) fn settings(&self) -> &SearchSettings {
        &self.settings
    }

    /// The request URL of `query`.
    pub(crate) fn url(&self, query: &Query) -> Url {
        let s = &self.settings;
        let mut url = s.endpoint.clone();
        {
            let mut pairs = url.query_pairs_mut();
            pairs
                .append_pair("q", &query.q)
                .append_pair("format", "json");
            if let Some(categories) = &s.categories {
                pairs.append_pair("categories", categories);
            }
            if let Some(language) = query.language.as_ref().or(s.language.as_ref()) {
                pairs.append_pair("language", language);
            }
            if let Some(range) = query.time_range {
                pairs.append_pair("time_range", range.as_str());
            }
            pairs.append_pair("safesearch", &s.safesearch.to_string());
        }
        url
    }

    /// Runs `query`, within `limit`.
    pub(crate) async fn search(
        &self,
        query: &Query,
        limit: Duration,
    ) -> Result<SearchResponse, SearchError> {
        match tokio::time::timeout(limit, self.request(query)).await {
            Ok(result) => result,
            Err(_) => Err(SearchError::Unreachable {
                url: self.shown.clone(),
                message: format!("no answer within {:.1} s", limit.as_secs_f64()),
            }),
        }
    }

    async fn request(&self, query: &Query) -> Result<SearchResponse, SearchError> {
        let url = self.shown.clone();
        let http = self.http.client().map_err(|e| SearchError::Unreachable {
            url: url.clone(),
            message: format!("cannot build the HTTP client: {}", chain(&e)),
        })?;
        let mut response = http
            .get(self.url(query))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SearchError::Unreachable {
                url: url.clone(),
                message: chain(&e),
            })?;
        let status = response.status();
        match status.as_u16() {
            200..=299 => {}
            403 => return Err(SearchError::JsonDisabled { url }),
            429 => {
                let retry_after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                return Err(SearchError::RateLimited { url, retry_after });
            }
            _ => {
                return Err(SearchError::Status {
                    url,
                    status: status.to_string(),
                });
            }
        }
        let max = self.settings.max_response_bytes;
        let body = read_capped(&mut response, max)
            .await
            .map_err(|e| SearchError::Unreachable {
                url: url.clone(),
                message: format!("the answer broke off: {}", chain(&e)),
            })?;
        if body.truncated {
            return Err(SearchError::TooLarge { url, max });
        }
        serde_json::from_slice(&body.bytes).map_err(|e| SearchError::Malformed {
            url,
            message: format!("malformed JSON ({e})"),
        })
    }
}
