//! A fake of a SearXNG instance's search API.
//!
//! [`FakeSearxng`] serves PROTOCOLS.md §8 on 127.0.0.1: `GET /search?q=…&format=json` (a POST
//! form works too, and `/` is an alias), answering the JSON shape SearXNG sends (`results` with
//! `url`, `title`, `content`, `engine`, `parsed_url`…, `answers`, `infoboxes`, `suggestions`,
//! `unresponsive_engines`). Answers come from a table keyed by query ([`SearchAnswer`]); an
//! unknown query gets no results (or generated ones, see
//! [`FakeSearxngConfig::generated_results`]). With JSON "disabled" it answers 403 with an HTML
//! page, as SearXNG does when `search.formats` lacks `json`; without `format=json` it answers
//! an HTML page. Faults ([`SearxngFault`]) are queued for the next requests.
//!
//! Modules: this one (the handle, its configuration and the answer table), `server` (routes,
//! faults and the bodies SearXNG sends). This module must never contain client code.

mod server;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::journal::{Journal, Stop, lock};

/// How the fake behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSearxngConfig {
    /// Whether `format=json` is enabled; when not, such requests get 403. Default: true.
    pub json_enabled: bool,
    /// Results generated for a query not in the table (`Result N for <query>`,
    /// `https://example.com/<n>`). Default: 0 (no results, as for a query nothing matches).
    pub generated_results: usize,
    /// How many received requests [`requests`](FakeSearxng::requests) keeps (the newest).
    /// Default: 1000.
    pub max_recorded: usize,
}

impl Default for FakeSearxngConfig {
    fn default() -> Self {
        FakeSearxngConfig {
            json_enabled: true,
            generated_results: 0,
            max_recorded: 1000,
        }
    }
}

/// One result of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// `title`.
    pub title: String,
    /// `url`.
    pub url: String,
    /// `content` (the snippet); empty is sent as `""`.
    pub content: String,
}

impl SearchHit {
    /// A result with a title, a URL and a snippet.
    pub fn new(title: &str, url: &str, content: &str) -> Self {
        SearchHit {
            title: title.to_owned(),
            url: url.to_owned(),
            content: content.to_owned(),
        }
    }
}

/// What the fake answers to one query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchAnswer {
    /// `results`, in order.
    pub results: Vec<SearchHit>,
    /// `answers` (direct answers, sent as strings).
    pub answers: Vec<String>,
    /// `infoboxes`, sent as given.
    pub infoboxes: Vec<Value>,
    /// `suggestions`.
    pub suggestions: Vec<String>,
    /// `corrections`.
    pub corrections: Vec<String>,
    /// `unresponsive_engines` as `(engine, reason)`.
    pub unresponsive_engines: Vec<(String, String)>,
}

/// A fault the next request gets instead of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearxngFault {
    /// Answers normally after this pause.
    Delay(Duration),
    /// 429 Too Many Requests (the limiter), with `Retry-After` when given.
    RateLimited {
        /// Seconds, sent as `Retry-After`.
        retry_after: Option<u64>,
    },
    /// A server error page with this status.
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// A 200 `application/json` whose body is cut JSON.
    MalformedJson,
    /// A 200 with a valid empty answer padded to `bytes` bytes.
    Oversized {
        /// Body size.
        bytes: usize,
    },
    /// Response headers, then the connection is aborted.
    DropConnection,
}

/// One request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// `/search` or `/`.
    pub path: String,
    /// Query or form parameters, in order.
    pub params: Vec<(String, String)>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

impl SearchRequest {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Shared {
    config: Mutex<FakeSearxngConfig>,
    answers: Mutex<HashMap<String, SearchAnswer>>,
    journal: Journal<SearxngFault, SearchRequest>,
}

/// A running fake SearXNG. It stops when dropped.
#[derive(Debug)]
pub struct FakeSearxng {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl FakeSearxng {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeSearxng {
        Self::start_with(FakeSearxngConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeSearxngConfig) -> FakeSearxng {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake SearXNG on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: FakeSearxngConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            config: Mutex::new(config),
            answers: Mutex::new(HashMap::new()),
        });
        let stop = server::spawn(listener, Arc::clone(&shared));
        Ok(FakeSearxng {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instance's base URL, `http://127.0.0.1:PORT` (searches go to `{base}/search`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `query` (exact text of `q`) answers from now on.
    pub fn set_answer(&self, query: &str, answer: SearchAnswer) {
        lock(&self.shared.answers).insert(query.to_owned(), answer);
    }

    /// Shorthand: `query` answers these results.
    pub fn set_results(&self, query: &str, results: Vec<SearchHit>) {
        self.set_answer(
            query,
            SearchAnswer {
                results,
                ..SearchAnswer::default()
            },
        );
    }

    /// Enables or disables the JSON format (disabled: 403).
    pub fn set_json_enabled(&self, enabled: bool) {
        lock(&self.shared.config).json_enabled = enabled;
    }

    /// The next `times` requests get `fault` (queued after earlier faults).
    pub fn fail_next(&self, times: u32, fault: SearxngFault) {
        for _ in 0..times {
            self.shared.journal.push(fault.clone());
        }
    }

    /// The requests received, oldest first (the newest
    /// [`max_recorded`](FakeSearxngConfig::max_recorded)).
    pub fn requests(&self) -> Vec<SearchRequest> {
        self.shared.journal.requests()
    }

    /// Requests received, kept or not.
    pub fn request_count(&self) -> u64 {
        self.shared.journal.request_count()
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> u64 {
        self.shared.journal.connection_count()
    }
}
