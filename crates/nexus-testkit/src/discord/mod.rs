//! A fake of Discord: REST API v10 under `/api/v10`, the Gateway WebSocket, and a CDN for
//! attachments, all on one loopback port.
//!
//! [`FakeDiscord`] follows PROTOCOLS.md §2: `Authorization: Bot <token>` with the real 401
//! body, message creation (JSON or multipart with `payload_json` and `files[n]`), edits,
//! typing, DM channels, the real error codes (50035, 50006, 10003, 10008, 50005), and
//! `X-RateLimit-*` headers per route bucket with 429s past the limit. The gateway sends HELLO,
//! checks IDENTIFY (token → 4004, intents → 4013/4014) or RESUME (replay after `seq`, then
//! `RESUMED`; unknown session → op 9 `false`), ACKs heartbeats, numbers every dispatch and
//! records every client frame. People talk through [`ChatPlatform::say`]; the bot's own
//! messages come back as `MESSAGE_CREATE` like on the real gateway.
//!
//! Faults by script: [`GatewayFault`] (op 7, op 9, close codes, dropped TCP, malformed and
//! oversized frames), [`FakeDiscord::set_heartbeat_acks`], and [`RestFault`] (route or global
//! 429s, 5xx). Modules: `config`, `model` (state), `rest`, `limits` (rate-limit buckets),
//! `messages` (create and edit), `gateway`, `chat` (the [`ChatPlatform`] side). This module must never contain client code.

mod chat;
mod config;
mod gateway;
mod limits;
mod messages;
mod model;
mod rest;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{Notify, watch};

use crate::chat::ChatPlatform;
use crate::journal::{Journal, Stop, lock};

pub use config::{DEFAULT_BOT_ID, DEFAULT_GUILD_ID, DEFAULT_TOKEN, FakeDiscordConfig};

use model::Model;

/// A REST request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Path, e.g. `/api/v10/channels/1/messages`.
    pub path: String,
    /// The `Authorization` header.
    pub authorization: Option<String>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The `Content-Type` header.
    pub content_type: Option<String>,
    /// The JSON body, or the `payload_json` part of a multipart body (`Null` if none).
    pub body: Value,
    /// Files of a multipart body.
    pub files: Vec<RecordedFile>,
    /// The status the fake answered with.
    pub status: u16,
}

/// A file part of a multipart request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedFile {
    /// The part name (`files[0]`…).
    pub field: String,
    /// The file name.
    pub filename: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
}

/// A frame a client sent on the gateway.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    /// Its position among every client frame the fake received (0, 1, …).
    pub index: u64,
    /// Which connection (1, 2, … in order of connection).
    pub conn: u64,
    /// The path and query the connection was opened on.
    pub path: String,
    /// The opcode (`None` for a close frame or undecodable text).
    pub op: Option<u64>,
    /// The `d` field.
    pub d: Value,
    /// The frame's size in bytes.
    pub size: usize,
    /// The close code of a close frame.
    pub close_code: Option<u16>,
}

/// Gateway misbehaviour, applied to the newest live connection (or the next to connect).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayFault {
    /// Op 1 HEARTBEAT from the server: the client must heartbeat at once.
    RequestHeartbeat,
    /// Op 7 RECONNECT.
    Reconnect,
    /// Op 9 INVALID_SESSION; when not resumable the session is forgotten.
    InvalidSession {
        /// The `d` flag.
        resumable: bool,
    },
    /// A close frame with this code.
    Close(u16),
    /// The TCP connection dropped without a close frame.
    Drop,
    /// A text frame that is not JSON.
    Malformed,
    /// A dispatch frame of about this many bytes (not kept for replay).
    Oversized(usize),
}

/// A REST misbehaviour for the next API request (after authentication).
#[derive(Debug, Clone, PartialEq)]
pub enum RestFault {
    /// A 429 with `Retry-After`, `retry_after` and `X-RateLimit-Scope`.
    RateLimited {
        /// The delay asked for.
        retry_after: Duration,
        /// Whether it is the global limit (`X-RateLimit-Global: true`).
        global: bool,
    },
    /// A server error with this status (500, 502, 503…).
    ServerError(u16),
}

/// State shared by the handlers, the connection tasks and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeDiscordConfig,
    pub(crate) addr: SocketAddr,
    pub(crate) journal: Journal<RestFault, RecordedRequest>,
    pub(crate) model: Mutex<Model>,
    pub(crate) limits: Mutex<limits::Limiter>,
    /// Woken on every change tests may wait for.
    pub(crate) changed: Notify,
    pub(crate) acks: AtomicBool,
    pub(crate) shutdown: watch::Receiver<()>,
}

impl Shared {
    /// `ws://127.0.0.1:PORT/gateway`.
    pub(crate) fn gateway_url(&self) -> String {
        format!("ws://{}/gateway", self.addr)
    }

    /// Waits until `ready` holds of the model, at most `timeout`; whether it did.
    pub(crate) async fn wait_until(
        &self,
        timeout: Duration,
        mut ready: impl FnMut(&Model) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if ready(&lock(&self.model)) {
                return true;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return ready(&lock(&self.model));
            }
        }
    }
}

/// A running fake Discord. It stops (closing every gateway connection) when dropped.
#[derive(Debug)]
pub struct FakeDiscord {
    shared: Arc<Shared>,
    _shutdown: watch::Sender<()>,
    _stop: Stop,
}

impl FakeDiscord {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeDiscord {
        Self::start_with(FakeDiscordConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeDiscordConfig) -> FakeDiscord {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake Discord server on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: FakeDiscordConfig) -> std::io::Result<FakeDiscord> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (shutdown_tx, shutdown) = watch::channel(());
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            limits: Mutex::new(limits::Limiter::default()),
            model: Mutex::new(Model::default()),
            changed: Notify::new(),
            acks: AtomicBool::new(true),
            shutdown,
            addr,
            config,
        });
        let stop = rest::spawn(listener, Arc::clone(&shared));
        Ok(FakeDiscord {
            shared,
            _shutdown: shutdown_tx,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The REST base URL, `http://127.0.0.1:PORT/api/v10`.
    pub fn api_base(&self) -> String {
        format!("http://{}/api/v10", self.shared.addr)
    }

    /// The gateway URL (`GET /gateway/bot` names it too), `ws://127.0.0.1:PORT/gateway`.
    pub fn gateway_url(&self) -> String {
        self.shared.gateway_url()
    }

    /// The bot token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// Registers guild text channel `id` (channels a person talks in are created on demand).
    pub fn add_channel(&self, id: &str) {
        lock(&self.shared.model).ensure_channel(id, &self.shared.config.guild_id, None);
    }

    /// Queues `fault` for the next REST API request (first in, first out).
    pub fn fail_rest(&self, fault: RestFault) {
        self.shared.journal.push(fault);
    }

    /// Misbehaves on the gateway (see [`GatewayFault`]).
    pub fn inject(&self, fault: GatewayFault) {
        lock(&self.shared.model).inject(fault);
    }

    /// Whether heartbeats are answered with op 11 (on by default; off tests zombie detection).
    pub fn set_heartbeat_acks(&self, on: bool) {
        self.shared.acks.store(on, Ordering::SeqCst);
    }

    /// The REST requests received, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.journal.requests()
    }

    /// Every frame clients sent on the gateway (close frames included), oldest first.
    pub fn client_frames(&self) -> Vec<ClientFrame> {
        lock(&self.shared.model).frames.iter().cloned().collect()
    }

    /// How many client frames the fake received so far (the next frame's
    /// [`index`](ClientFrame::index)).
    pub fn frame_count(&self) -> u64 {
        lock(&self.shared.model).frame_count
    }

    /// How many IDENTIFYs and RESUMEs the fake accepted.
    pub fn sessions_started(&self) -> (u32, u32) {
        let model = lock(&self.shared.model);
        (model.identifies, model.resumes)
    }

    /// Whether a session is attached to a live connection (READY or RESUMED sent).
    pub fn is_connected(&self) -> bool {
        connected(&lock(&self.shared.model))
    }

    /// Waits until a client frame satisfies `matches`, at most `timeout`.
    pub async fn wait_for_frame(
        &self,
        timeout: Duration,
        matches: impl Fn(&ClientFrame) -> bool,
    ) -> Option<ClientFrame> {
        let mut found = None;
        self.shared
            .wait_until(timeout, |m| {
                found = m.frames.iter().find(|f| matches(f)).cloned();
                found.is_some()
            })
            .await;
        found
    }

    /// Waits until a session is attached to a live connection, at most `timeout`.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        self.shared.wait_until(timeout, connected).await
    }

    /// Waits until the fake has received `count` REST requests, at most `timeout`.
    pub async fn wait_for_requests(&self, count: u64, timeout: Duration) -> bool {
        let journal = &self.shared.journal;
        self.shared
            .wait_until(timeout, |_| journal.request_count() >= count)
            .await
    }

    /// Waits until the bot has sent `count` messages, at most `timeout`.
    pub async fn wait_bot_messages(&self, count: usize, timeout: Duration) -> bool {
        self.shared
            .wait_until(timeout, |m| m.bot_order.len() >= count)
            .await
    }
}

fn connected(model: &Model) -> bool {
    model
        .current
        .as_ref()
        .and_then(|id| model.sessions.get(id))
        .and_then(|s| s.conn)
        .is_some_and(|c| model.conns.contains_key(&c))
}

impl ChatPlatform for FakeDiscord {
    fn name(&self) -> &'static str {
        "discord"
    }

    fn bot_user_id(&self) -> String {
        self.shared.config.bot_id.clone()
    }

    async fn say(&self, says: crate::chat::UserSays) -> crate::chat::Said {
        chat::say(&self.shared, says).await
    }

    fn bot_messages(&self) -> Vec<crate::chat::BotMessage> {
        chat::bot_messages(&lock(&self.shared.model))
    }

    fn typing_count(&self, chat_id: &str) -> u32 {
        lock(&self.shared.model)
            .typing
            .get(chat_id)
            .copied()
            .unwrap_or(0)
    }
}
