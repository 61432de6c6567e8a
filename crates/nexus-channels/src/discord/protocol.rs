//! Gateway wire facts: opcodes, the frames the client sends, what each close code means, and
//! the client's sending limits (4096-byte frames, 120 frames per 60 s).

use std::collections::VecDeque;
use std::time::Duration;

use nexus_core::ChannelError;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;
use url::Url;

pub(crate) const DISPATCH: u8 = 0;
pub(crate) const HEARTBEAT: u8 = 1;
pub(crate) const RECONNECT: u8 = 7;
pub(crate) const INVALID_SESSION: u8 = 9;
pub(crate) const HELLO: u8 = 10;
pub(crate) const HEARTBEAT_ACK: u8 = 11;

/// Largest frame Discord accepts from a client.
pub(crate) const MAX_CLIENT_FRAME: usize = 4096;
/// Frames a client may send per [`FRAME_WINDOW`].
const MAX_FRAMES: usize = 120;
const FRAME_WINDOW: Duration = Duration::from_secs(60);

/// A frame from the gateway.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Frame {
    pub(crate) op: u8,
    #[serde(default)]
    pub(crate) d: Value,
    #[serde(default)]
    pub(crate) s: Option<u64>,
    #[serde(default)]
    pub(crate) t: Option<String>,
}

/// `<url>/?v=10&encoding=json`.
pub(crate) fn connect_url(base: &Url) -> Url {
    let mut url = base.clone();
    if url.path().is_empty() {
        url.set_path("/");
    }
    url.set_query(Some("v=10&encoding=json"));
    url
}

/// IDENTIFY (op 2). Carries the token: never log it.
pub(crate) fn identify(token: &SecretString, intents: u64) -> String {
    json!({"op": 2, "d": {
        "token": token.expose_secret(),
        "intents": intents,
        "properties": {"os": std::env::consts::OS, "browser": "nexus", "device": "nexus"},
    }})
    .to_string()
}

/// RESUME (op 6). Carries the token: never log it.
pub(crate) fn resume(token: &SecretString, session_id: &str, seq: Option<u64>) -> String {
    json!({"op": 6, "d": {"token": token.expose_secret(), "session_id": session_id, "seq": seq}})
        .to_string()
}

/// HEARTBEAT (op 1) with the last sequence seen.
pub(crate) fn heartbeat(seq: Option<u64>) -> String {
    json!({"op": 1, "d": seq}).to_string()
}

/// What a close code asks of the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CloseAction {
    /// Reconnect and RESUME.
    Resume,
    /// Reconnect with a new session (IDENTIFY).
    Identify,
    /// Do not reconnect: the configuration must change.
    Stop(ChannelError),
}

/// The meaning of a close `code` sent by Discord.
pub(crate) fn on_close(code: u16) -> CloseAction {
    let fatal = |what: &str| {
        CloseAction::Stop(ChannelError::Fatal {
            message: format!("Discord closed the gateway with {code}: {what}"),
        })
    };
    match code {
        4004 => CloseAction::Stop(ChannelError::Auth {
            message: "Discord rejected the bot token on the gateway (close code 4004)".to_owned(),
        }),
        4007 | 4009 => CloseAction::Identify,
        4010 => fatal("invalid shard"),
        4011 => fatal("sharding is required for this many guilds"),
        4012 => fatal("invalid gateway API version"),
        4013 => fatal("invalid intents; check the configured intents value"),
        4014 => fatal(
            "disallowed intents; enable the Message Content intent in the Discord developer portal \
             (Bot > Privileged Gateway Intents) or remove it from the configured intents",
        ),
        _ => CloseAction::Resume,
    }
}

/// The client's send budget: at most 120 frames in any 60 s.
#[derive(Debug, Default)]
pub(crate) struct FrameBudget {
    sent: VecDeque<Instant>,
}

impl FrameBudget {
    fn expire(&mut self, now: Instant) {
        while self
            .sent
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= FRAME_WINDOW)
        {
            self.sent.pop_front();
        }
    }

    /// Whether a frame may go now while keeping `reserve` frames for later, counting it if so.
    pub(crate) fn take(&mut self, now: Instant, reserve: usize) -> bool {
        self.expire(now);
        if self.sent.len() + reserve >= MAX_FRAMES {
            return false;
        }
        self.sent.push_back(now);
        true
    }

    /// When the next frame may go (now if the budget has room).
    pub(crate) fn next_slot(&mut self, now: Instant) -> Instant {
        self.expire(now);
        match self.sent.front() {
            Some(oldest) if self.sent.len() >= MAX_FRAMES => *oldest + FRAME_WINDOW,
            _ => now,
        }
    }
}
