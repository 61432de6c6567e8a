//! A fake of the Google Gemini API (Generative Language API `v1beta`).
//!
//! [`FakeGemini`] serves the wire protocol of PROTOCOLS.md §6 on 127.0.0.1, routing on the
//! `{model}:{verb}` path segment (the colon is literal): `streamGenerateContent` (SSE with
//! `alt=sse`, else a JSON array), `generateContent`, `embedContent`, `batchEmbedContents`, and
//! `GET models`. It checks `x-goog-api-key` (or `?key=`) with the real answers (400
//! `API_KEY_INVALID` for a wrong key, 403 `PERMISSION_DENIED` without one), refuses what the
//! real service refuses with its `google.rpc.Status` bodies, streams whole
//! `GenerateContentResponse` chunks, and remembers the thought signatures it issued so a
//! request that drops or moves one is refused. Tests script answers with [`Reply`] (text,
//! function calls, errors, quotas, cut or malformed streams, errors inside streams, blocked
//! prompts, delays); when the script is empty, [`FakeGeminiConfig`] answers.
//!
//! Modules: `config` (defaults), `script` (the [`Reply`] builder), `server` (routes and
//! handlers), `validate` (request checks), `tools` (function declaration checks), `frames`
//! (response bodies), `embeddings`, `errors` (error bodies). This module must never contain client code.

mod config;
mod embeddings;
mod errors;
mod frames;
mod script;
mod server;
mod tools;
mod validate;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::journal::{Journal, Stop, lock};

use serde_json::Value;

pub use config::{DEFAULT_API_KEY, FakeGeminiConfig};
pub use script::Reply;

/// One request the fake received, with the parts tests ask about.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path, e.g. `/v1beta/models/gemini-2.5-flash:streamGenerateContent`.
    pub path: String,
    /// The query string, e.g. `alt=sse`, when there was one.
    pub query: Option<String>,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: Value,
    /// The `x-goog-api-key` header.
    pub api_key: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The `Accept` header.
    pub accept: Option<String>,
}

/// A function call a signature was issued with.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SignedCall {
    pub(crate) name: String,
    pub(crate) args: Value,
}

/// State shared by the handlers and the [`FakeGemini`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeGeminiConfig,
    pub(crate) journal: Journal<Reply, RecordedRequest>,
    /// Thought signatures issued on function calls, by signature.
    signatures: Mutex<HashMap<String, SignedCall>>,
    /// Model calls (`generateContent`, `streamGenerateContent`) received.
    model_calls: AtomicU64,
}

impl Shared {
    pub(crate) fn count_model_call(&self) {
        self.model_calls.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn issue_signature(&self, signature: &str, call: SignedCall) {
        lock(&self.signatures).insert(signature.to_owned(), call);
    }

    /// The call `signature` was issued with, if the fake issued it.
    pub(crate) fn signed_call(&self, signature: &str) -> Option<SignedCall> {
        lock(&self.signatures).get(signature).cloned()
    }

    /// Whether a signature was issued with this call.
    pub(crate) fn was_signed(&self, name: &str, args: &Value) -> bool {
        lock(&self.signatures)
            .values()
            .any(|c| c.name == name && &c.args == args)
    }
}

/// A running fake Gemini server. It stops when dropped.
#[derive(Debug)]
pub struct FakeGemini {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl FakeGemini {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeGemini {
        Self::start_with(FakeGeminiConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeGeminiConfig) -> FakeGemini {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake Gemini server on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: FakeGeminiConfig) -> std::io::Result<FakeGemini> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            config,
            signatures: Mutex::new(HashMap::new()),
            model_calls: AtomicU64::new(0),
        });
        let stop = server::spawn(listener, Arc::clone(&shared));
        Ok(FakeGemini {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT/v1beta` (what `GEMINI_BASE_URL` takes).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1beta", self.addr)
    }

    /// The API key the fake accepts.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }

    /// Queues `reply` as the answer to a future model call (first in, first out). Requests
    /// rejected by authentication or validation do not consume the script.
    pub fn push(&self, reply: Reply) {
        self.shared.journal.push(reply);
    }

    /// The scripted replies not yet consumed.
    pub fn pending_replies(&self) -> usize {
        self.shared.journal.pending()
    }

    /// The requests received, oldest first (at most
    /// [`max_recorded`](FakeGeminiConfig::max_recorded), the newest kept).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.journal.requests()
    }

    /// The newest request received, if any was recorded.
    pub fn last_request(&self) -> Option<RecordedRequest> {
        self.shared.journal.last()
    }

    /// The thought signatures the fake issued on function calls, in no particular order.
    pub fn issued_signatures(&self) -> Vec<String> {
        lock(&self.shared.signatures).keys().cloned().collect()
    }

    /// How many TCP connections the fake accepted (to check that clients pool them).
    pub fn connection_count(&self) -> u64 {
        self.shared.journal.connection_count()
    }

    /// How many requests the fake received on any path, including rejected ones.
    pub fn request_count(&self) -> u64 {
        self.shared.journal.request_count()
    }

    /// How many model calls (`generateContent`, `streamGenerateContent`) the fake received,
    /// including rejected ones.
    pub fn model_call_count(&self) -> u64 {
        self.shared.model_calls.load(Ordering::Relaxed)
    }
}
