//! A fake of the OpenAI API (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`).
//!
//! [`FakeOpenAi`] serves the wire protocol of PROTOCOLS.md §5 on 127.0.0.1: bearer auth with the
//! real 401 body, the validation errors the real service answers with 400, SSE streams of
//! `chat.completion.chunk` frames ending in `data: [DONE]`, and usage chunks. Tests script the
//! next answers with [`Reply`] (text, tool calls, HTTP errors, cut or malformed streams,
//! delays); when the script is empty the default behaviour of [`FakeOpenAiConfig`] answers.
//!
//! Modules: `config` (defaults), `script` (the [`Reply`] builder), `server` (routes and
//! handlers), `validate` (request checks), `fast` (the same checks of a plain chat request
//! without a JSON tree), `frames` (response bodies), `embeddings`,
//! `errors` (error bodies). This module must never contain client code.

mod config;
pub(crate) mod embeddings;
mod errors;
mod fast;
mod frames;
mod script;
mod server;
mod validate;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::journal::{Journal, Stop};

pub use config::{DEFAULT_API_KEY, FakeOpenAiConfig};
pub use script::Reply;

/// One request the fake received, with the headers tests ask about.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path, e.g. `/v1/chat/completions`.
    pub path: String,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: serde_json::Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `OpenAI-Organization` header.
    pub organization: Option<String>,
    /// The `OpenAI-Project` header.
    pub project: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
    /// Every header but `Authorization`, names in lower case.
    pub headers: Vec<(String, String)>,
}

impl RecordedRequest {
    /// The value of header `name` (lower case), if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// State shared by the handlers and the [`FakeOpenAi`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeOpenAiConfig,
    pub(crate) journal: Journal<Reply, RecordedRequest>,
}

/// A running fake OpenAI server. It stops when dropped.
#[derive(Debug)]
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl FakeOpenAi {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeOpenAi {
        Self::start_with(FakeOpenAiConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeOpenAiConfig) -> FakeOpenAi {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake OpenAI server on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: FakeOpenAiConfig) -> std::io::Result<FakeOpenAi> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            config,
        });
        let stop = server::spawn(listener, Arc::clone(&shared));
        Ok(FakeOpenAi {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1` (what `OPENAI_BASE_URL` takes).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// Queues `reply` as the answer to a future chat request (first in, first out). Requests
    /// rejected by authentication or validation do not consume the script.
    pub fn push(&self, reply: Reply) {
        self.shared.journal.push(reply);
    }

    /// The scripted replies not yet consumed.
    pub fn pending_replies(&self) -> usize {
        self.shared.journal.pending()
    }

    /// The requests received, oldest first (at most
    /// [`max_recorded`](FakeOpenAiConfig::max_recorded), the newest kept).
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
}
