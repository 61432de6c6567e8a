//! The [`ChannelAdapter`] seam: a messaging platform seen as a stream of inbound messages and a
//! place to send, edit and show typing.
//!
//! Each inbound message carries an acknowledgement. The router completes it once the message is
//! committed to the inbox (or rejected); only then does the adapter acknowledge the platform
//! (HTTP 200, the next `getUpdates` offset, the Socket Mode ack), so an acknowledged message is
//! never lost.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::ids::ChannelCredentialId;
use crate::message::{Attachment, ChannelKind, Metadata};

/// What a platform can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCapabilities {
    /// Longest text of one message, in characters.
    pub max_message_len: usize,
    /// Whether sent messages can be edited (for streaming replies).
    pub edit: bool,
    /// Whether replies can go into threads.
    pub threads: bool,
    /// Whether a typing indicator exists.
    pub typing: bool,
    /// Whether files and images can be sent.
    pub media: bool,
}

/// A chat on a platform, with its thread or forum topic when there is one.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatRef {
    /// The platform's chat / channel / conversation id.
    pub chat_id: String,
    /// The platform's thread or topic id.
    pub thread_id: Option<String>,
}

impl ChatRef {
    /// The session scope of this chat: `chat_id`, or `chat_id/thread_id`.
    pub fn scope(&self) -> String {
        match &self.thread_id {
            Some(thread) => format!("{}/{}", self.chat_id, thread),
            None => self.chat_id.clone(),
        }
    }
}

/// Who sent an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sender {
    /// The platform's user id.
    pub external_id: String,
    /// A display name, when known.
    pub display_name: Option<String>,
    /// Whether the sender is a bot (bots are never answered).
    pub is_bot: bool,
}

/// Whether a message was written in a one-to-one chat or a shared one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Conversation {
    /// A direct message to the bot (Telegram private chat, Discord DM, Slack `im`).
    Direct,
    /// A group, supergroup, guild channel, thread or shared Slack channel.
    Group,
}

/// A platform message normalized, before the router resolves it to a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    /// The platform.
    pub channel: ChannelKind,
    /// The channel connection it arrived on.
    pub account_id: ChannelCredentialId,
    /// The platform's id of the event, unique per account (deduplication key).
    pub external_id: String,
    /// The platform's id of the message itself (a reply quotes it): Telegram `message_id`,
    /// Discord message id, Slack `ts`.
    pub message_id: String,
    /// Where it was sent.
    pub chat: ChatRef,
    /// Who sent it.
    pub sender: Sender,
    /// A direct message or a group message.
    pub conversation: Conversation,
    /// Whether the message is addressed to the bot: it mentions the bot or replies to one of
    /// the bot's messages (always true for direct messages). Groups answer only these unless
    /// the channel is configured otherwise.
    pub addressed: bool,
    /// The text, with a leading mention of the bot removed (`@bot /new` arrives as `/new`).
    pub text: String,
    /// Files, already in object storage.
    pub attachments: Vec<Attachment>,
    /// The platform id of the message this one replies to.
    pub reply_to: Option<String>,
    /// Platform ids and other metadata.
    pub metadata: Metadata,
    /// When the platform says it was sent.
    pub received_at: DateTime<Utc>,
}

/// How the router disposed of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    /// Committed to the inbox: acknowledge the platform.
    Committed,
    /// Seen before: acknowledge the platform, do nothing else.
    Duplicate,
    /// Refused by policy (unknown sender, bot, not mentioned): acknowledge, do nothing else.
    Rejected {
        /// Why, for the logs.
        reason: String,
    },
    /// Could not be stored: do NOT acknowledge, so the platform redelivers.
    Failed {
        /// Why, for the logs.
        reason: String,
    },
}

/// An inbound message and the acknowledgement the router completes.
#[derive(Debug)]
pub struct InboundEnvelope {
    /// The message.
    pub message: InboundMessage,
    /// Completed by the router once the message is committed or rejected.
    pub ack: oneshot::Sender<AckOutcome>,
}

/// A reply to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Where to send it.
    pub chat: ChatRef,
    /// The text, already in the platform's markup (Telegram HTML, Discord Markdown, Slack
    /// mrkdwn) and within its length limit. An adapter whose platform rejects the markup sends
    /// the same text without it.
    pub text: String,
    /// The platform id of the message to reply to.
    pub reply_to: Option<String>,
    /// Files to send, from object storage.
    pub attachments: Vec<Attachment>,
}

/// A message the platform accepted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// Where it was sent.
    pub chat: ChatRef,
    /// The platform's id of the sent message (kept in the delivery record).
    pub platform_message_id: String,
}

/// A failed channel operation, classified where it entered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// The platform lacks this operation.
    #[error("unsupported by this channel: {what}")]
    Unsupported {
        /// What was asked for.
        what: String,
    },
    /// The credentials were rejected.
    #[error("channel credentials rejected: {message}")]
    Auth {
        /// The platform's explanation.
        message: String,
    },
    /// Too many requests; retry after the delay.
    #[error("rate limited by the platform")]
    RateLimited {
        /// The delay the platform asked for.
        retry_after: Option<Duration>,
    },
    /// The platform refused the request (bad chat, message too long…).
    #[error("platform rejected the request: {message}")]
    Rejected {
        /// The platform's explanation.
        message: String,
    },
    /// The connection failed; whether the platform acted is unknown.
    #[error("transport error: {message}")]
    Transport {
        /// What happened.
        message: String,
    },
    /// The channel cannot work until its configuration changes (Discord close codes 4004 and
    /// 4010–4014, a webhook URL the platform refuses…): do not restart it.
    #[error("channel misconfigured: {message}")]
    Fatal {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The inbound stream was already taken or the adapter is stopped.
    #[error("channel not running: {message}")]
    NotRunning {
        /// Why.
        message: String,
    },
}

impl ChannelError {
    /// Whether restarting the channel can help: false for rejected credentials and fatal
    /// configuration errors, which need a person to act.
    pub fn restartable(&self) -> bool {
        match self {
            ChannelError::Auth { .. } | ChannelError::Fatal { .. } => false,
            ChannelError::Unsupported { .. }
            | ChannelError::RateLimited { .. }
            | ChannelError::Rejected { .. }
            | ChannelError::Transport { .. }
            | ChannelError::NotRunning { .. } => true,
        }
    }
}

/// Who the bot is on its platform, as the platform reports it for the credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BotIdentity {
    /// The bot's user id (Telegram user id, Discord user id, Slack bot user id).
    pub id: String,
    /// Its user name.
    pub name: String,
}

/// An HTTP request a platform sent to Nexus (Telegram webhook, Slack Events API), as received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    /// Header names in lowercase, with their values.
    pub headers: Vec<(String, String)>,
    /// The raw body (signatures are computed over these bytes).
    pub body: Vec<u8>,
}

impl WebhookRequest {
    /// The first value of header `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The answer to a [`WebhookRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookResponse {
    /// HTTP status.
    pub status: u16,
    /// `Content-Type` of the body, when there is one.
    pub content_type: Option<String>,
    /// The body.
    pub body: Vec<u8>,
    /// Extra response headers (e.g. Slack's `X-Slack-No-Retry`).
    pub headers: Vec<(String, String)>,
}

impl WebhookResponse {
    /// An empty answer with `status`.
    pub fn status(status: u16) -> Self {
        WebhookResponse {
            status,
            content_type: None,
            body: Vec::new(),
            headers: Vec::new(),
        }
    }

    /// A `text/plain` answer.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        WebhookResponse {
            status,
            content_type: Some("text/plain; charset=utf-8".to_owned()),
            body: body.into().into_bytes(),
            headers: Vec::new(),
        }
    }
}

/// A messaging platform connection.
#[async_trait]
pub trait ChannelAdapter: Send + Sync + std::fmt::Debug {
    /// The platform.
    fn kind(&self) -> ChannelKind;

    /// What the platform can do.
    fn capabilities(&self) -> ChannelCapabilities;

    /// Checks the credentials against the platform (`getMe`, `GET /users/@me`, `auth.test`)
    /// and says who the bot is.
    async fn verify(&self) -> Result<BotIdentity, ChannelError>;

    /// Starts receiving; runs until `cancel` fires (then `Ok`) or the connection fails (then
    /// the error, and the caller restarts it with backoff when [`ChannelError::restartable`]).
    /// A webhook-mode adapter registers its webhook here and then waits for `cancel`.
    async fn start(&self, cancel: CancellationToken) -> Result<(), ChannelError>;

    /// Stops receiving and releases connections.
    async fn stop(&self) -> Result<(), ChannelError>;

    /// The inbound stream; can be taken once.
    fn messages(&self) -> Result<mpsc::Receiver<InboundEnvelope>, ChannelError>;

    /// Sends a message.
    async fn send(&self, message: &OutboundMessage) -> Result<SentMessage, ChannelError>;

    /// Replaces the text of a sent message (streaming replies).
    async fn edit(&self, sent: &SentMessage, text: &str) -> Result<(), ChannelError>;

    /// Shows a typing indicator in a chat.
    async fn typing(&self, chat: &ChatRef) -> Result<(), ChannelError>;

    /// Handles a request the platform sent to this channel's webhook URL: checks its
    /// signature or secret, answers platform handshakes, and hands events to the inbound
    /// stream, answering only once the router has acknowledged them. `Unsupported` for
    /// adapters that receive over a connection of their own.
    async fn webhook(&self, request: WebhookRequest) -> Result<WebhookResponse, ChannelError> {
        let _ = request;
        Err(ChannelError::Unsupported {
            what: format!("webhooks on {}", self.kind()),
        })
    }
}
