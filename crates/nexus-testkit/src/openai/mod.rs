//! A fake of the OpenAI API (`/v1/chat/completions`, `/v1/embeddings`, `/v1/models`).
//!
//! [`FakeOpenAi`] serves the wire protocol of PROTOCOLS.md §5 on 127.0.0.1: bearer auth with the
//! real 401 body, the validation errors the real service answers with 400, SSE streams of
//! `chat.completion.chunk` frames ending in `data: [DONE]`, and usage chunks. Tests script the
//! next answers with [`Reply`] (text, tool calls, HTTP errors, cut or malformed streams,
//! delays); when the script is empty the default behaviour of [`FakeOpenAiConfig`] answers.
//!
//! Modules: `config` (defaults), `script` (the [`Reply`] builder), `server` (routes and
//! handlers), `validate` (request checks), `frames` (response bodies), `embeddings`,
//! `errors` (error bodies). This module must never contain client code.

mod config;
pub(crate) mod embeddings;
mod errors;
mod frames;
mod script;
mod server;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

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
    script: Mutex<VecDeque<Reply>>,
    recorded: Mutex<VecDeque<RecordedRequest>>,
    count: AtomicU64,
    /// TCP connections accepted.
    pub(crate) connections: AtomicU64,
    /// Source of ids (`chatcmpl-…`, `call_…`, `req_…`).
    seq: AtomicU64,
}

impl Shared {
    pub(crate) fn next_scripted(&self) -> Option<Reply> {
        lock(&self.script).pop_front()
    }

    pub(crate) fn record(&self, request: RecordedRequest) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let cap = self.config.max_recorded;
        if cap == 0 {
            return;
        }
        let mut recorded = lock(&self.recorded);
        while recorded.len() >= cap {
            recorded.pop_front();
        }
        recorded.push_back(request);
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// Locks `mutex`, ignoring poisoning (a panicking test must not wedge the fake).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running fake OpenAI server. It stops when dropped.
#[derive(Debug)]
pub struct FakeOpenAi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
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
            config,
            script: Mutex::new(VecDeque::new()),
            recorded: Mutex::new(VecDeque::new()),
            count: AtomicU64::new(0),
            connections: AtomicU64::new(0),
            seq: AtomicU64::new(1),
        });
        let (tx, rx) = oneshot::channel();
        server::spawn(listener, Arc::clone(&shared), rx);
        Ok(FakeOpenAi {
            addr,
            shared,
            shutdown: Some(tx),
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
        lock(&self.shared.script).push_back(reply);
    }

    /// The scripted replies not yet consumed.
    pub fn pending_replies(&self) -> usize {
        lock(&self.shared.script).len()
    }

    /// The requests received, oldest first (at most
    /// [`max_recorded`](FakeOpenAiConfig::max_recorded), the newest kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.shared.recorded).iter().cloned().collect()
    }

    /// The newest request received, if any was recorded.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        lock(&self.shared.recorded).back().cloned()
    }

    /// How many TCP connections the fake accepted (to check that clients pool them).
    pub fn connection_count(&self) -> u64 {
        self.shared.connections.load(Ordering::Relaxed)
    }

    /// How many requests the fake received on any path, including rejected ones.
    pub fn request_count(&self) -> u64 {
        self.shared.count.load(Ordering::Relaxed)
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            // The server may already be gone; nothing to do then.
            let _ = tx.send(());
        }
    }
}
