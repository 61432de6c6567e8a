//! A fake of the Telegram Bot API.
//!
//! [`FakeTelegram`] serves PROTOCOLS.md §1 on 127.0.0.1: `/bot{token}/{method}` (method names
//! case-insensitive, GET or POST, parameters in the query, a urlencoded form, JSON or
//! multipart), the `{"ok":…}` envelope with HTTP status = `error_code`, long polling with its
//! 409 conflicts, webhooks POSTed with the secret header and retried, HTML entity parsing with
//! its 400s, message edits, chat actions, uploads, `getFile` and file downloads. It keeps
//! chats (private chats whose id is the user's, groups, forum supergroups with topics) and
//! implements [`ChatPlatform`] for the channel conformance suite. Faults are scripted per
//! method with [`Fault`].
//!
//! Modules: `config`, `state` (what the fake remembers), `script` (faults), `params` (the four
//! encodings), `html` (entity parsing), `methods`, `updates` (getUpdates), `webhook`
//! (registration and delivery), `people` (what users say), `receiver` ([`WebhookEndpoint`]),
//! `server` (routes). This module must never contain client code.

mod config;
mod html;
mod methods;
mod params;
mod people;
mod receiver;
mod script;
mod server;
mod state;
mod updates;
mod webhook;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::watch;

use crate::chat::{BotMessage, ChatPlatform, Said, UserSays};
use crate::journal::{Journal, Stop, lock};

pub use config::{DEFAULT_TOKEN, FakeTelegramConfig};
pub use receiver::WebhookEndpoint;
pub use script::Fault;
pub use state::{SentFile, WebhookDelivery, WebhookInfo};
pub use webhook::SECRET_HEADER;

/// One API call the fake received (after the token check).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiCall {
    /// The method in canonical spelling (`sendMessage`), or as sent when unknown; `file` for
    /// a file download.
    pub method: String,
    /// The parameters as a JSON object: query/form values as strings (JSON-encoded arrays and
    /// objects decoded), JSON bodies as sent, file parts as `{filename, content_type, size}`.
    pub params: Value,
}

/// Seconds since the epoch, for `date` fields.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

/// State shared by the handlers, the webhook worker and the [`FakeTelegram`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeTelegramConfig,
    state: Mutex<state::State>,
    /// Bumped on every change a waiter may care about (new update, new poll, webhook).
    pub(crate) changes: watch::Sender<u64>,
    pub(crate) journal: Journal<(), ApiCall>,
    pub(crate) http: reqwest::Client,
}

impl Shared {
    pub(crate) fn state(&self) -> MutexGuard<'_, state::State> {
        lock(&self.state)
    }

    pub(crate) fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A running fake Telegram Bot API. It stops when dropped.
#[derive(Debug)]
pub struct FakeTelegram {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.bump();
    }
}

impl FakeTelegram {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeTelegram {
        Self::start_with(FakeTelegramConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeTelegramConfig) -> FakeTelegram {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake Telegram server on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: FakeTelegramConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (changes, worker_changes) = watch::channel(0u64);
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            config,
            state: Mutex::new(state::State::new()),
            changes,
            http: reqwest::Client::new(),
        });
        webhook::spawn_worker(Arc::downgrade(&shared), worker_changes);
        let stop = server::spawn(listener, Arc::clone(&shared));
        Ok(FakeTelegram {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, `http://127.0.0.1:PORT` (calls go to `{base}/bot{token}/{method}`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bot token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// The bot's user id.
    pub fn bot_id(&self) -> i64 {
        self.shared.config.bot_id()
    }

    /// The bot's username (without `@`).
    pub fn bot_username(&self) -> &str {
        &self.shared.config.bot_username
    }

    /// The next `times` calls of `method` (case-insensitive) answer `fault` instead of their
    /// result. Faults for one method are used in the order queued.
    pub fn fail_next(&self, method: &str, times: u32, fault: Fault) {
        if times > 0 {
            self.shared
                .state()
                .faults
                .push((method.to_owned(), times, fault));
        }
    }

    /// The next queued update is queued twice with the same `update_id` (delivered twice).
    pub fn duplicate_next_update(&self) {
        self.shared.state().duplicate_next += 1;
    }

    /// Queues a raw update such as `{"edited_message": {…}}` (its `update_id` is assigned) and
    /// returns its id, or `None` when the current `allowed_updates` excludes its kind.
    pub fn push_update(&self, update: Value) -> Option<i64> {
        let id = self.shared.state().enqueue(update);
        self.shared.bump();
        id
    }

    /// The updates not yet confirmed (polling) or delivered (webhook), oldest first.
    pub fn pending_updates(&self) -> Vec<Value> {
        self.shared.state().updates.iter().cloned().collect()
    }

    /// Adds group `chat_id` (a supergroup when it is `-100…`), so the bot can write to it.
    pub fn add_group(&self, chat_id: i64, title: &str) {
        people::ensure_group(&mut self.shared.state(), chat_id, title, false);
    }

    /// Adds forum topic `thread_id` to supergroup `chat_id` (made a forum).
    pub fn add_topic(&self, chat_id: i64, thread_id: i64) {
        let creator = json!({"id": 1, "is_bot": false, "first_name": "Admin"});
        people::ensure_topic(&mut self.shared.state(), chat_id, thread_id, &creator);
    }

    /// The `Message` a person's words become, stored in its chat but not queued as an update
    /// (to build updates by hand, e.g. an `edited_message`).
    pub fn message_for(&self, says: &UserSays) -> Value {
        let mut state = self.shared.state();
        people::user_message(&self.shared, &mut state, says)
    }

    /// The registered webhook, if any.
    pub fn webhook(&self) -> Option<WebhookInfo> {
        self.shared.state().webhook.clone()
    }

    /// Every webhook delivery attempt so far, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.state().deliveries.clone()
    }

    /// POSTs arbitrary `body` with `headers` to the registered webhook (a forged or missing
    /// secret, a malformed or oversized update); the status it answered, `None` when there is
    /// no webhook or it could not be reached.
    pub async fn post_to_webhook(&self, headers: &[(&str, &str)], body: Vec<u8>) -> Option<u16> {
        let url = self.webhook()?.url;
        let headers: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        webhook::post(&self.shared, &url, &headers, body).await
    }

    /// The files the bot sent, oldest first.
    pub fn sent_files(&self) -> Vec<SentFile> {
        self.shared.state().sent_files.clone()
    }

    /// The API calls received, oldest first (at most
    /// [`max_recorded`](FakeTelegramConfig::max_recorded), the newest kept).
    pub fn requests(&self) -> Vec<ApiCall> {
        self.shared.journal.requests()
    }

    /// The parameters of every recorded call of `method` (canonical spelling), oldest first.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.requests()
            .into_iter()
            .filter(|c| c.method == method)
            .map(|c| c.params)
            .collect()
    }

    /// Requests received on any path, including rejected ones.
    pub fn request_count(&self) -> u64 {
        self.shared.journal.request_count()
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> u64 {
        self.shared.journal.connection_count()
    }
}

impl ChatPlatform for FakeTelegram {
    fn name(&self) -> &'static str {
        "telegram"
    }

    fn bot_user_id(&self) -> String {
        self.bot_id().to_string()
    }

    /// Queues the update (long polling) or, while a webhook is set, returns once the webhook
    /// answered it (or the fake gave it up).
    async fn say(&self, says: UserSays) -> Said {
        let mut changes = self.shared.changes.subscribe();
        let (message, update_id, webhook) = {
            let mut state = self.shared.state();
            let message = people::user_message(&self.shared, &mut state, &says);
            let update_id = state.enqueue(json!({"message": message}));
            (message, update_id, state.webhook.is_some())
        };
        self.shared.bump();
        if let (true, Some(id)) = (webhook, update_id) {
            loop {
                {
                    let state = self.shared.state();
                    if !state.is_pending(id) || state.webhook.is_none() || state.closed {
                        break;
                    }
                }
                if changes.changed().await.is_err() {
                    break;
                }
            }
        }
        Said {
            message_id: message["message_id"].to_string(),
            chat_id: message["chat"]["id"].to_string(),
        }
    }

    fn bot_messages(&self) -> Vec<BotMessage> {
        self.shared
            .state()
            .bot_log
            .iter()
            .map(|r| BotMessage {
                id: r.message_id.to_string(),
                chat_id: r.chat_id.to_string(),
                thread_id: r.thread_id.map(|t| t.to_string()),
                text: r.text.clone(),
                edits: r.edits,
                reply_to: r.reply_to.map(|t| t.to_string()),
            })
            .collect()
    }

    fn typing_count(&self, chat_id: &str) -> u32 {
        let Ok(id) = chat_id.parse::<i64>() else {
            return 0;
        };
        self.shared.state().chats.get(&id).map_or(0, |c| c.typing)
    }
}
