//! A fake of Slack: the Web API, Socket Mode and the Events API sender.
//!
//! [`FakeSlack`] serves PROTOCOLS.md §3 on 127.0.0.1: `POST /api/{method}` (JSON with charset
//! or form bodies; bearer tokens checked; HTTP 200 with `ok:false` on failure, 429 with
//! `Retry-After`) for `auth.test`, `chat.postMessage`, `chat.update` and
//! `apps.connections.open`; private file downloads; a Socket Mode WebSocket server with
//! single-use tickets, `hello`, envelopes, acknowledgements, redelivery and `disconnect`; and
//! an Events API sender that signs (v0) and retries like Slack. People speak through
//! [`ChatPlatform::say`]; faults are injected by method.
//!
//! Modules: `config`, `world` (channels, messages, files, faults), `api` (Web API), `socket`
//! (Socket Mode), `events` (Events API sender), `say` (events built from what people say),
//! `host` (a webhook host for tests). This module must never contain client code.

mod api;
mod config;
mod events;
mod host;
mod say;
mod socket;
mod world;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::Notify;

use crate::chat::{BotMessage, ChatPlatform, Said, UserSays};
use crate::journal::{Journal, Stop, lock};

pub use config::{DEFAULT_APP_TOKEN, DEFAULT_BOT_TOKEN, DEFAULT_BOT_USER_ID, FakeSlackConfig};
pub use events::{AttemptOutcome, EventAttempt, RawAnswer, sign};
pub use host::{HostReply, WebhookHost};
pub use socket::SentEnvelope;

/// One Web API call the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The method, e.g. `chat.postMessage`.
    pub method: String,
    /// The arguments (JSON body, or form fields as strings).
    pub params: Value,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// Warnings answered (`missing_charset`).
    pub warnings: Vec<String>,
    /// The error answered (`ratelimited` for a 429), or `None` for `ok:true`.
    pub error: Option<String>,
}

/// A Socket Mode connection's life, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketEvent {
    /// Connection `n` opened (numbered from 1).
    Opened(u64),
    /// Connection `n` closed.
    Closed(u64),
    /// An upgrade with an unknown or used ticket was refused.
    Refused,
}

/// State shared by the handlers and the [`FakeSlack`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeSlackConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) journal: Journal<(), ApiCall>,
    pub(crate) world: Mutex<world::World>,
    pub(crate) socket: socket::SocketHub,
    /// `Some` in Events API mode.
    pub(crate) target: Mutex<Option<events::Target>>,
    pub(crate) events_log: Mutex<Vec<EventAttempt>>,
    /// Every envelope delivered, by `event_id`.
    pub(crate) delivered: Mutex<HashMap<String, Value>>,
    pub(crate) http: reqwest::Client,
    pub(crate) changed: Notify,
}

/// Delivers an `event_callback` through the current mode: a Socket Mode envelope, or a signed
/// POST (awaiting its first attempt).
pub(crate) async fn deliver(shared: &Arc<Shared>, payload: Value, retry: u32) {
    if let Some(id) = payload["event_id"].as_str() {
        lock(&shared.delivered).insert(id.to_owned(), payload.clone());
    }
    let target = lock(&shared.target).clone();
    match target {
        Some(target) => events::deliver(shared, target, payload, retry).await,
        None => {
            socket::push(shared, payload, retry);
        }
    }
}

/// Wraps `event` in an envelope and delivers it without waiting.
pub(crate) fn deliver_in_background(shared: &Arc<Shared>, event: Value) {
    let payload = say::envelope(shared, event);
    let shared = Arc::clone(shared);
    tokio::spawn(async move { deliver(&shared, payload, 0).await });
}

/// A running fake Slack. It stops when dropped.
#[derive(Debug)]
pub struct FakeSlack {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl FakeSlack {
    /// Starts a fake on `127.0.0.1:0` with the default configuration, in Socket Mode.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeSlack {
        Self::start_with(FakeSlackConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`, in Socket Mode.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeSlackConfig) -> FakeSlack {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake Slack server on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one), in Socket Mode.
    pub async fn bind(addr: SocketAddr, config: FakeSlackConfig) -> std::io::Result<FakeSlack> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .map_err(std::io::Error::other)?;
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            config,
            addr,
            world: Mutex::new(world::World::default()),
            socket: socket::SocketHub::default(),
            target: Mutex::new(None),
            events_log: Mutex::new(Vec::new()),
            delivered: Mutex::new(HashMap::new()),
            http,
            changed: Notify::new(),
        });
        let app = Router::new()
            .route("/api/{method}", post(api::call))
            .route("/link/", get(socket::link))
            .route("/files-pri/{team_file}/download/{name}", get(api::file))
            .route("/files-pri/{team_file}/{name}", get(api::file))
            .with_state(Arc::clone(&shared));
        let stop = shared.journal.serve(listener, app, "slack");
        Ok(FakeSlack {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Web API base URL, `http://127.0.0.1:PORT/api/` (like `https://slack.com/api/`).
    pub fn base_url(&self) -> String {
        format!("http://{}/api/", self.addr)
    }

    /// The configuration the fake runs with.
    pub fn config(&self) -> &FakeSlackConfig {
        &self.shared.config
    }

    /// Delivers events over Socket Mode (the default).
    pub fn use_socket_mode(&self) {
        *lock(&self.shared.target) = None;
    }

    /// Delivers events to `request_url`, signed with `signing_secret`.
    pub fn use_events_api(&self, request_url: &str, signing_secret: &str) {
        *lock(&self.shared.target) = Some(events::Target {
            url: request_url.to_owned(),
            signing_secret: signing_secret.to_owned(),
        });
    }

    /// Makes channel `id` exist (`C…` public, `G…` private); channels also appear when
    /// someone speaks in them.
    pub fn create_channel(&self, id: &str) {
        lock(&self.shared.world).create_channel(id);
    }

    /// The DM channel (`D…`) between the bot and `user`.
    pub fn dm_channel(&self, user: &str) -> String {
        lock(&self.shared.world).dm_channel(user)
    }

    /// Answers the next `calls` calls of `method` with HTTP 429, `Retry-After:
    /// retry_after_secs` and `{"ok":false,"error":"ratelimited"}`.
    pub fn rate_limit(&self, method: &str, calls: usize, retry_after_secs: u64) {
        let fault = world::Fault::RateLimited { retry_after_secs };
        lock(&self.shared.world).add_fault(method, fault, calls);
    }

    /// Answers the next `calls` calls of `method` (after authentication) with
    /// `{"ok":false,"error":error}`.
    pub fn fail(&self, method: &str, error: &str, calls: usize) {
        let fault = world::Fault::Error(error.to_owned());
        lock(&self.shared.world).add_fault(method, fault, calls);
    }

    /// The Web API calls received, oldest first.
    pub fn calls(&self) -> Vec<ApiCall> {
        self.shared.journal.requests()
    }

    /// The calls of `method`, oldest first.
    pub fn calls_to(&self, method: &str) -> Vec<ApiCall> {
        let mut calls = self.calls();
        calls.retain(|c| c.method == method);
        calls
    }

    /// Sends every Socket Mode connection `{"type":"disconnect","reason":reason}` and closes it
    /// after [`disconnect_grace`](FakeSlackConfig::disconnect_grace).
    pub fn disconnect(&self, reason: &str) {
        socket::disconnect(&self.shared, reason);
    }

    /// Drops every Socket Mode connection without a close frame.
    pub fn drop_connections(&self) {
        socket::drop_connections(&self.shared);
    }

    /// Writes `text` as one frame to the newest connection (malformed or oversized envelopes);
    /// whether a connection was open.
    pub fn push_raw(&self, text: impl Into<String>) -> bool {
        socket::push_raw(&self.shared, text.into())
    }

    /// Pings the newest connection; whether one was open.
    pub fn ping(&self) -> bool {
        socket::ping(&self.shared)
    }

    /// Pongs received from clients.
    pub fn pongs(&self) -> u64 {
        self.shared
            .socket
            .pongs
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The `envelope_id`s acknowledged, in order (a repeated ack appears twice).
    pub fn acks(&self) -> Vec<String> {
        lock(&self.shared.socket.acks).clone()
    }

    /// Envelopes written to connections, redeliveries included, in order.
    pub fn sent_envelopes(&self) -> Vec<SentEnvelope> {
        lock(&self.shared.socket.sent).clone()
    }

    /// Socket Mode connections opened and closed, in order.
    pub fn socket_log(&self) -> Vec<SocketEvent> {
        lock(&self.shared.socket.log).clone()
    }

    /// Socket Mode connections open now.
    pub fn live_connections(&self) -> usize {
        socket::live(&self.shared)
    }

    /// Every Events API POST, in order.
    pub fn event_attempts(&self) -> Vec<EventAttempt> {
        lock(&self.shared.events_log).clone()
    }

    /// Sends event `event_id` again as Slack's retry 1 (`X-Slack-Retry-Num: 1`, reason
    /// `http_timeout`; in Socket Mode a new envelope with `retry_attempt: 1`); false when no
    /// such event was delivered.
    pub async fn repeat_event(&self, event_id: &str) -> bool {
        let payload = lock(&self.shared.delivered).get(event_id).cloned();
        match payload {
            Some(payload) => {
                deliver(&self.shared, payload, 1).await;
                true
            }
            None => false,
        }
    }

    /// The `event_id`s delivered so far (any order).
    pub fn delivered_event_ids(&self) -> Vec<String> {
        lock(&self.shared.delivered).keys().cloned().collect()
    }

    /// Sends the signed `url_verification` handshake with `challenge` to the Request URL.
    ///
    /// # Panics
    /// When not in Events API mode.
    pub async fn send_url_verification(
        &self,
        challenge: &str,
    ) -> Result<RawAnswer, AttemptOutcome> {
        let body = serde_json::json!({
            "token": "fake-verification-token",
            "challenge": challenge,
            "type": "url_verification",
        })
        .to_string()
        .into_bytes();
        self.post_signed_at(body, events::now_secs()).await
    }

    /// POSTs `body` signed as if sent at `timestamp` (Unix seconds; an old one is stale).
    ///
    /// # Panics
    /// When not in Events API mode.
    pub async fn post_signed_at(
        &self,
        body: Vec<u8>,
        timestamp: i64,
    ) -> Result<RawAnswer, AttemptOutcome> {
        let target = self.target();
        let headers = events::signed_headers(&target, timestamp, &body);
        events::post(&self.shared, &target.url, body, headers).await
    }

    /// POSTs `body` with exactly `headers` (forged or missing signatures).
    ///
    /// # Panics
    /// When not in Events API mode.
    pub async fn post_raw(
        &self,
        body: Vec<u8>,
        headers: Vec<(String, String)>,
    ) -> Result<RawAnswer, AttemptOutcome> {
        let target = self.target();
        events::post(&self.shared, &target.url, body, headers).await
    }

    fn target(&self) -> events::Target {
        match lock(&self.shared.target).clone() {
            Some(target) => target,
            None => panic!("the fake Slack is in Socket Mode: call use_events_api first"),
        }
    }

    /// Waits until `cond` holds (checked on every change and every 20 ms).
    ///
    /// # Panics
    /// When it does not hold within 10 s: the test fails, naming `what`.
    pub async fn wait_for(&self, what: &str, cond: impl Fn(&FakeSlack) -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let notified = self.shared.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if cond(self) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                panic!("the fake Slack waited 10 s for: {what}");
            }
            let _ = tokio::time::timeout(Duration::from_millis(20), notified).await;
        }
    }
}

impl ChatPlatform for FakeSlack {
    fn name(&self) -> &'static str {
        "slack"
    }

    fn bot_user_id(&self) -> String {
        self.shared.config.bot_user_id.clone()
    }

    async fn say(&self, says: UserSays) -> Said {
        let (said, payloads) = say::build(&self.shared, says);
        for payload in payloads {
            deliver(&self.shared, payload, 0).await;
        }
        said
    }

    fn bot_messages(&self) -> Vec<BotMessage> {
        lock(&self.shared.world)
            .messages
            .iter()
            .filter(|m| m.by_bot)
            .map(|m| BotMessage {
                id: m.ts.clone(),
                chat_id: m.channel.clone(),
                thread_id: m.thread_ts.clone(),
                text: m.text.clone(),
                edits: m.edits,
                reply_to: None,
            })
            .collect()
    }

    /// Slack has no typing indicator for bots over the Web API.
    fn typing_count(&self, _chat_id: &str) -> u32 {
        0
    }
}
