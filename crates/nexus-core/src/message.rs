//! The unified message: every platform event and every reply becomes one [`Message`].

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AttachmentId, MessageId, SessionId};

/// Free-form metadata: platform ids (chat, thread, update id…) and the like.
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// Where a message came from or goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ChannelKind {
    /// Telegram Bot API.
    Telegram,
    /// Discord gateway and REST API.
    Discord,
    /// Slack Events API or Socket Mode.
    Slack,
    /// The Nexus gRPC API (the `nexus` CLI and SDK clients).
    Grpc,
    /// The Nexus HTTP API.
    Http,
}

impl ChannelKind {
    /// Every kind, in a stable order.
    pub const ALL: [ChannelKind; 5] = [
        ChannelKind::Telegram,
        ChannelKind::Discord,
        ChannelKind::Slack,
        ChannelKind::Grpc,
        ChannelKind::Http,
    ];

    /// The lowercase name used in storage, configuration and metrics.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Telegram => "telegram",
            ChannelKind::Discord => "discord",
            ChannelKind::Slack => "slack",
            ChannelKind::Grpc => "grpc",
            ChannelKind::Http => "http",
        }
    }
}

impl fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no known value of an enum.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}`")]
pub struct UnknownVariant {
    /// What was being parsed ("channel", "role", …).
    pub what: &'static str,
    /// The rejected text.
    pub value: String,
}

impl FromStr for ChannelKind {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownVariant {
                what: "channel",
                value: s.to_owned(),
            })
    }
}

/// Whether a message entered Nexus or left it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// From a person (or platform) to Nexus.
    Inbound,
    /// From Nexus to a person.
    Outbound,
}

impl Direction {
    /// The lowercase name used in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl FromStr for Direction {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "inbound" => Ok(Direction::Inbound),
            "outbound" => Ok(Direction::Outbound),
            other => Err(UnknownVariant {
                what: "direction",
                value: other.to_owned(),
            }),
        }
    }
}

/// Who speaks in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A person.
    User,
    /// The agent (model output).
    Assistant,
    /// Instructions to the model.
    System,
    /// The result of a tool call.
    Tool,
}

impl Role {
    /// The lowercase name used in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
            Role::Tool => "tool",
        }
    }
}

impl FromStr for Role {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "assistant" => Ok(Role::Assistant),
            "system" => Ok(Role::System),
            "tool" => Ok(Role::Tool),
            other => Err(UnknownVariant {
                what: "role",
                value: other.to_owned(),
            }),
        }
    }
}

/// A file attached to a message; the bytes live in object storage under `storage_key`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Attachment {
    /// Stable id of the attachment.
    pub id: AttachmentId,
    /// MIME type, e.g. `image/png`.
    pub content_type: String,
    /// Original file name, if the platform gave one.
    pub filename: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// Key of the object in the object store.
    pub storage_key: String,
}

/// A tool call requested by the model in an assistant message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's call id, echoed back in the tool result.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments, as parsed JSON.
    pub arguments: serde_json::Value,
}

/// One message in a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Unique id.
    pub id: MessageId,
    /// The session the message belongs to.
    pub session_id: SessionId,
    /// Position in the session, assigned by the store inside the session's transaction
    /// (1, 2, 3, …); 0 until stored.
    pub seq: i64,
    /// The channel the message came from or goes to.
    pub channel: ChannelKind,
    /// Inbound or outbound.
    pub direction: Direction,
    /// Who speaks.
    pub role: Role,
    /// The text. For a tool message, the tool's output.
    pub content: String,
    /// Tool calls of an assistant message, in the order the model made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// For a tool message: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// For a tool message: whether the tool failed.
    #[serde(default)]
    pub is_error: bool,
    /// Files attached to the message.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// Platform ids and other metadata.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub metadata: Metadata,
    /// When the message was created.
    pub created_at: DateTime<Utc>,
}

impl Message {
    /// A new, not yet stored message with the given role and text.
    pub fn new(
        session_id: SessionId,
        channel: ChannelKind,
        direction: Direction,
        role: Role,
        content: impl Into<String>,
    ) -> Self {
        Message {
            id: MessageId::new(),
            session_id,
            seq: 0,
            channel,
            direction,
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            is_error: false,
            attachments: Vec::new(),
            metadata: Metadata::new(),
            created_at: Utc::now(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kind_parses_its_own_names_and_rejects_others() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>().unwrap(), kind);
        }
        let err = "irc".parse::<ChannelKind>().unwrap_err();
        assert_eq!(err.to_string(), "unknown channel `irc`");
    }

    #[test]
    fn message_json_uses_lowercase_enums_and_omits_empty_parts() {
        let msg = Message::new(
            SessionId::new(),
            ChannelKind::Grpc,
            Direction::Inbound,
            Role::User,
            "hi",
        );
        let json = serde_json::to_value(&msg).unwrap();
        assert_eq!(json["channel"], "grpc");
        assert_eq!(json["role"], "user");
        assert!(json.get("tool_calls").is_none());
        let back: Message = serde_json::from_value(json).unwrap();
        assert_eq!(back, msg);
    }
}
