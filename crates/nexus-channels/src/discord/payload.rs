//! Discord's JSON, the subset we read and write, and its mapping to and from Nexus messages.

use chrono::{DateTime, Utc};
use nexus_core::{
    ChannelCredentialId, ChannelKind, ChatRef, Conversation, InboundMessage, Metadata,
    OutboundMessage, Sender,
};
use serde::Deserialize;
use serde_json::{Value, json};

/// A user (author, mention, the bot itself).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) username: String,
    #[serde(default)]
    pub(crate) global_name: Option<String>,
    #[serde(default)]
    pub(crate) bot: bool,
}

/// A file attached to a message.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Attachment {
    pub(crate) filename: String,
    pub(crate) size: u64,
    pub(crate) url: String,
    #[serde(default)]
    pub(crate) content_type: Option<String>,
}

/// `message_reference`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Reference {
    #[serde(default)]
    pub(crate) message_id: Option<String>,
}

/// `referenced_message` (only its author matters).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Referenced {
    pub(crate) author: User,
}

/// Message types people write: DEFAULT and REPLY. The rest (joins, pins, thread
/// notices…) are system messages.
const PERSON_TYPES: [u8; 2] = [0, 19];

/// A `MESSAGE_CREATE` dispatch: the message object plus `guild_id` outside DMs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Message {
    pub(crate) id: String,
    pub(crate) channel_id: String,
    #[serde(default)]
    pub(crate) guild_id: Option<String>,
    pub(crate) author: User,
    #[serde(default)]
    pub(crate) content: String,
    #[serde(default)]
    pub(crate) timestamp: Option<String>,
    #[serde(default)]
    pub(crate) mentions: Vec<User>,
    #[serde(default)]
    pub(crate) attachments: Vec<Attachment>,
    #[serde(default)]
    pub(crate) message_reference: Option<Reference>,
    #[serde(default)]
    pub(crate) referenced_message: Option<Box<Referenced>>,
    #[serde(default, rename = "type")]
    pub(crate) kind: u8,
}

impl Message {
    /// Whether a person (or another bot) wrote it, as opposed to a system notice.
    pub(crate) fn is_chat(&self) -> bool {
        PERSON_TYPES.contains(&self.kind)
    }
}

/// The `READY` dispatch.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Ready {
    pub(crate) session_id: String,
    pub(crate) resume_gateway_url: String,
    pub(crate) user: User,
}

/// `HELLO`'s `d`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub(crate) struct Hello {
    pub(crate) heartbeat_interval: u64,
}

/// `GET /gateway/bot`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct GatewayBot {
    pub(crate) url: String,
}

/// A created or edited message (only its id matters).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Created {
    pub(crate) id: String,
}

/// An error body: `{"code": 50035, "message": "Invalid Form Body", "errors": {…}}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub(crate) code: u64,
    #[serde(default)]
    pub(crate) message: String,
    #[serde(default)]
    pub(crate) errors: Option<Value>,
}

impl ApiError {
    /// `Discord error 50035: Invalid Form Body (content: Must be 2000 or fewer in length.)`.
    pub(crate) fn describe(&self) -> String {
        let mut details = Vec::new();
        if let Some(errors) = &self.errors {
            field_errors(errors, String::new(), &mut details);
        }
        let mut text = format!("Discord error {}: {}", self.code, self.message);
        if !details.is_empty() {
            text.push_str(&format!(" ({})", details.join("; ")));
        }
        text
    }
}

/// Collects `path: message` from the nested `_errors` arrays of an error body.
fn field_errors(value: &Value, path: String, out: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for (key, inner) in object {
        if key == "_errors" {
            for e in inner.as_array().into_iter().flatten() {
                if let Some(message) = e.get("message").and_then(Value::as_str) {
                    out.push(format!("{path}: {message}"));
                }
            }
        } else if out.len() < 5 {
            let path = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            field_errors(inner, path, out);
        }
    }
}

/// A 429 body.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct RateLimitBody {
    #[serde(default)]
    pub(crate) retry_after: Option<f64>,
    #[serde(default)]
    pub(crate) global: Option<bool>,
}

/// `text` without a leading mention of the bot (`<@ID>` or the legacy `<@!ID>`).
pub(crate) fn strip_mention(text: &str, bot_id: &str) -> String {
    for mention in [format!("<@{bot_id}>"), format!("<@!{bot_id}>")] {
        if let Some(rest) = text.trim_start().strip_prefix(&mention) {
            return rest.trim_start().to_owned();
        }
    }
    text.to_owned()
}

/// The Nexus message for `message` (attachments are downloaded separately).
pub(crate) fn inbound(
    message: &Message,
    bot_id: &str,
    account: ChannelCredentialId,
) -> InboundMessage {
    let direct = message.guild_id.is_none();
    let mentioned = message.mentions.iter().any(|u| u.id == bot_id);
    let replied_to_bot = message
        .referenced_message
        .as_ref()
        .is_some_and(|r| r.author.id == bot_id);
    let mut metadata = Metadata::new();
    metadata.insert("discord_channel_id".to_owned(), json!(message.channel_id));
    metadata.insert("discord_message_id".to_owned(), json!(message.id));
    if let Some(guild) = &message.guild_id {
        metadata.insert("discord_guild_id".to_owned(), json!(guild));
    }
    let author = &message.author;
    InboundMessage {
        channel: ChannelKind::Discord,
        account_id: account,
        external_id: message.id.clone(),
        message_id: message.id.clone(),
        chat: ChatRef {
            chat_id: message.channel_id.clone(),
            thread_id: None,
        },
        sender: Sender {
            external_id: author.id.clone(),
            display_name: Some(
                author
                    .global_name
                    .clone()
                    .unwrap_or_else(|| author.username.clone()),
            ),
            is_bot: author.bot,
        },
        conversation: if direct {
            Conversation::Direct
        } else {
            Conversation::Group
        },
        addressed: direct || mentioned || replied_to_bot,
        text: strip_mention(&message.content, bot_id),
        attachments: Vec::new(),
        reply_to: message
            .message_reference
            .as_ref()
            .and_then(|r| r.message_id.clone()),
        metadata,
        received_at: message
            .timestamp
            .as_deref()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map_or_else(Utc::now, |t| t.with_timezone(&Utc)),
    }
}

/// The body of `POST /channels/{id}/messages`: no pings, a reply reference when asked, and
/// `attachments` entries matching the `files[n]` parts.
pub(crate) fn create_body(message: &OutboundMessage, filenames: &[String]) -> Value {
    let mut body = json!({
        "content": message.text,
        "allowed_mentions": {"parse": []},
    });
    if let Some(obj) = body.as_object_mut() {
        if let Some(reply_to) = &message.reply_to {
            obj.insert(
                "message_reference".to_owned(),
                json!({"message_id": reply_to, "fail_if_not_exists": false}),
            );
        }
        if !filenames.is_empty() {
            let attachments: Vec<Value> = filenames
                .iter()
                .enumerate()
                .map(|(i, name)| json!({"id": i, "filename": name}))
                .collect();
            obj.insert("attachments".to_owned(), Value::Array(attachments));
        }
    }
    body
}

/// The body of `PATCH /channels/{id}/messages/{id}`.
pub(crate) fn edit_body(text: &str) -> Value {
    json!({"content": text, "allowed_mentions": {"parse": []}})
}

/// The channel a reply goes to: a thread is its own channel.
pub(crate) fn target_channel(chat: &ChatRef) -> &str {
    chat.thread_id.as_deref().unwrap_or(&chat.chat_id)
}
