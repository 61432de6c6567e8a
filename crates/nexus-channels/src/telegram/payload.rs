//! The Bot API's JSON shapes this adapter reads (PROTOCOLS.md §1), lenient where Telegram adds
//! fields: unknown fields are ignored and most fields are optional.

use serde::Deserialize;
use serde_json::Value;

/// The `{"ok":…}` envelope of every answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) ok: bool,
    #[serde(default)]
    pub(crate) result: Option<Value>,
    #[serde(default)]
    pub(crate) error_code: Option<u16>,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) parameters: Option<ResponseParameters>,
}

/// `parameters` of an error answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct ResponseParameters {
    /// Seconds to wait after a 429.
    #[serde(default)]
    pub(crate) retry_after: Option<u64>,
    /// The supergroup a group became.
    #[serde(default)]
    pub(crate) migrate_to_chat_id: Option<i64>,
}

/// An update; kinds other than `message` are not read (and are acknowledged and dropped).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Update {
    pub(crate) update_id: i64,
    #[serde(default)]
    pub(crate) message: Option<Message>,
}

/// A message.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Message {
    pub(crate) message_id: i64,
    #[serde(default)]
    pub(crate) message_thread_id: Option<i64>,
    #[serde(default)]
    pub(crate) is_topic_message: bool,
    #[serde(default)]
    pub(crate) from: Option<User>,
    #[serde(default)]
    pub(crate) date: i64,
    pub(crate) chat: Chat,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) entities: Vec<MessageEntity>,
    #[serde(default)]
    pub(crate) caption: Option<String>,
    #[serde(default)]
    pub(crate) caption_entities: Vec<MessageEntity>,
    #[serde(default)]
    pub(crate) photo: Vec<PhotoSize>,
    #[serde(default)]
    pub(crate) document: Option<FileMeta>,
    #[serde(default)]
    pub(crate) audio: Option<FileMeta>,
    #[serde(default)]
    pub(crate) video: Option<FileMeta>,
    #[serde(default)]
    pub(crate) voice: Option<FileMeta>,
    #[serde(default)]
    pub(crate) reply_to_message: Option<Box<Message>>,
}

/// A user or bot.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct User {
    pub(crate) id: i64,
    #[serde(default)]
    pub(crate) is_bot: bool,
    #[serde(default)]
    pub(crate) first_name: String,
    #[serde(default)]
    pub(crate) last_name: Option<String>,
    #[serde(default)]
    pub(crate) username: Option<String>,
}

/// A chat.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Chat {
    pub(crate) id: i64,
    #[serde(rename = "type")]
    pub(crate) kind: String,
}

/// A formatting or special entity; `offset` and `length` count UTF-16 units.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct MessageEntity {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) offset: usize,
    pub(crate) length: usize,
    #[serde(default)]
    pub(crate) user: Option<User>,
}

/// One size of a photo.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct PhotoSize {
    pub(crate) file_id: String,
    #[serde(default)]
    pub(crate) width: u64,
    #[serde(default)]
    pub(crate) height: u64,
    #[serde(default)]
    pub(crate) file_size: Option<u64>,
}

/// A document, audio, video or voice file.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct FileMeta {
    pub(crate) file_id: String,
    #[serde(default)]
    pub(crate) file_name: Option<String>,
    #[serde(default)]
    pub(crate) mime_type: Option<String>,
    #[serde(default)]
    pub(crate) file_size: Option<u64>,
}

/// `getFile`'s answer.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct File {
    #[serde(default)]
    pub(crate) file_size: Option<u64>,
    #[serde(default)]
    pub(crate) file_path: Option<String>,
}

/// The part of a sent `Message` the adapter keeps.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct SentId {
    pub(crate) message_id: i64,
}
