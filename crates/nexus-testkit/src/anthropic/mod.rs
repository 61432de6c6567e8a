//! A fake of the Anthropic Messages API (`POST /v1/messages`, `/v1/messages/count_tokens`,
//! `GET /v1/models`).
//!
//! [`FakeAnthropic`] serves the wire protocol of PROTOCOLS.md §4 on 127.0.0.1: `x-api-key`
//! auth with the real 401 body, a required `anthropic-version`, the validation errors the real
//! service answers with 400 (missing `max_tokens`, empty `messages`, a first message not from
//! the user, unanswered or unexpected `tool_result`s, too many `cache_control` breakpoints,
//! malformed JSON), and SSE streams with `event:` lines in the real order (`message_start`,
//! content blocks with a `ping`, `message_delta` with cumulative usage, `message_stop`).
//!
//! It accounts prompt caching like the service (the `cache` module): prefixes ending at
//! each `cache_control` breakpoint are remembered per API key and model for a TTL, and usage
//! reports `cache_read_input_tokens`, `cache_creation_input_tokens` and the uncached rest.
//!
//! Tests script the next answers with [`Reply`] (text, tool calls, thinking, HTTP errors with
//! `retry-after` / `x-should-retry`, mid-stream `error` events, cut or malformed streams,
//! delays); when the script is empty the default behaviour of [`FakeAnthropicConfig`] answers.
//!
//! Modules: `config` (defaults), `script` (the [`Reply`] builder), `server` (routes and
//! handlers), `validate` (request checks and the prompt's blocks), `cache` (prompt-cache
//! accounting), `frames` (response bodies), `errors` (error bodies). This module must never
//! contain client code.

mod cache;
mod config;
mod errors;
mod frames;
mod script;
mod server;
mod validate;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::journal::{Journal, Stop};

pub use config::{DEFAULT_API_KEY, FakeAnthropicConfig};
pub use script::Reply;

/// The usage the fake reported for one answer, in the wire's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WireUsage {
    /// `input_tokens`: input after the last cache read or write.
    pub input_tokens: u64,
    /// `cache_creation_input_tokens`: input written to the cache.
    pub cache_creation_input_tokens: u64,
    /// `cache_read_input_tokens`: input read from the cache.
    pub cache_read_input_tokens: u64,
    /// `output_tokens`.
    pub output_tokens: u64,
}

/// One request the fake received, with the headers tests ask about.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path, e.g. `/v1/messages`.
    pub path: String,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: serde_json::Value,
    /// The body exactly as received.
    pub raw_body: bytes::Bytes,
    /// The `x-api-key` header.
    pub api_key: Option<String>,
    /// The `anthropic-version` header.
    pub anthropic_version: Option<String>,
    /// The `anthropic-beta` header.
    pub anthropic_beta: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// The usage answered, when the request got a message (not an error).
    pub usage: Option<WireUsage>,
}

/// State shared by the handlers and the [`FakeAnthropic`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeAnthropicConfig,
    pub(crate) journal: Journal<Reply, RecordedRequest>,
    pub(crate) cache: cache::PromptCache,
}

/// A running fake Anthropic server. It stops when dropped.
#[derive(Debug)]
pub struct FakeAnthropic {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl FakeAnthropic {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeAnthropic {
        Self::start_with(FakeAnthropicConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeAnthropicConfig) -> FakeAnthropic {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake Anthropic server on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(
        addr: SocketAddr,
        config: FakeAnthropicConfig,
    ) -> std::io::Result<FakeAnthropic> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            cache: cache::PromptCache::new(&config),
            journal: Journal::new(config.max_recorded),
            config,
        });
        let stop = server::spawn(listener, Arc::clone(&shared));
        Ok(FakeAnthropic {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT` (what `ANTHROPIC_BASE_URL` takes; requests
    /// go to `{base}/v1/messages`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// Queues `reply` as the answer to a future message request (first in, first out).
    /// Requests rejected by authentication or validation do not consume the script.
    pub fn push(&self, reply: Reply) {
        self.shared.journal.push(reply);
    }

    /// The scripted replies not yet consumed.
    pub fn pending_replies(&self) -> usize {
        self.shared.journal.pending()
    }

    /// The requests received, oldest first (at most
    /// [`max_recorded`](FakeAnthropicConfig::max_recorded), the newest kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.journal.requests()
    }

    /// The newest request received, if any was recorded.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.journal.last()
    }

    /// How many TCP connections the fake accepted (to check that clients pool them).
    pub fn connection_count(&self) -> u64 {
        self.shared.journal.connection_count()
    }

    /// How many requests the fake received on any path, including rejected ones.
    pub fn request_count(&self) -> u64 {
        self.shared.journal.request_count()
    }

    /// How many prompt prefixes are cached now (live entries, all keys).
    pub fn cached_prefixes(&self) -> usize {
        self.shared.cache.live_entries()
    }
}
