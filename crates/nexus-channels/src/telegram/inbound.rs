//! An update mapped to an [`InboundMessage`] (before its files are downloaded): who wrote,
//! where, whether the bot is addressed, the text with the bot's mention and command suffix
//! removed, and the platform ids kept in metadata. Pure: no I/O here.

use std::ops::Range;

use chrono::{DateTime, Utc};
use nexus_core::{
    ChannelCredentialId, ChannelKind, ChatRef, Conversation, InboundMessage, Metadata, Sender,
};
use serde_json::json;

use super::payload::{Message, MessageEntity, Update, User};

/// Who the bot is, for mention detection and dropping its own messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bot {
    pub(crate) id: i64,
    pub(crate) username: String,
}

/// A file a message carries, to download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileRef {
    pub(crate) file_id: String,
    pub(crate) name: String,
    pub(crate) content_type: Option<String>,
    pub(crate) size: Option<u64>,
}

/// What to do with an update.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Disposition {
    /// Deliver this message once its files are attached.
    Deliver {
        message: Box<InboundMessage>,
        files: Vec<FileRef>,
    },
    /// Acknowledge and drop, for this reason.
    Ignore(&'static str),
}

/// Maps `update`, received on `account`, for `bot`.
pub(crate) fn map_update(update: &Update, bot: &Bot, account: ChannelCredentialId) -> Disposition {
    let Some(m) = &update.message else {
        return Disposition::Ignore("not a new message (edit, channel post or other event)");
    };
    let Some(from) = &m.from else {
        return Disposition::Ignore("a message without an author");
    };
    if from.id == bot.id {
        return Disposition::Ignore("the bot's own message");
    }
    let (raw_text, entities) = match (&m.text, &m.caption) {
        (Some(text), _) => (text.as_str(), m.entities.as_slice()),
        (None, Some(caption)) => (caption.as_str(), m.caption_entities.as_slice()),
        (None, None) => ("", &[][..]),
    };
    let files = files(m);
    if raw_text.trim().is_empty() && files.is_empty() {
        return Disposition::Ignore("no text or file (a service message)");
    }
    let (text, mentioned) = clean_text(raw_text, entities, bot);
    let topic = m.is_topic_message.then_some(m.message_thread_id).flatten();
    // In a forum topic, a message that replies to nothing replies to the topic's root.
    let reply = m
        .reply_to_message
        .as_deref()
        .filter(|r| topic != Some(r.message_id));
    let replies_to_bot = reply
        .and_then(|r| r.from.as_ref())
        .is_some_and(|u| u.id == bot.id);
    let direct = m.chat.kind == "private";
    let mut metadata = Metadata::new();
    metadata.insert("telegram_update_id".into(), json!(update.update_id));
    metadata.insert("telegram_message_id".into(), json!(m.message_id));
    metadata.insert("telegram_chat_id".into(), json!(m.chat.id));
    metadata.insert("telegram_chat_type".into(), json!(m.chat.kind));
    if let Some(t) = topic {
        metadata.insert("telegram_thread_id".into(), json!(t));
    }
    if let Some(username) = &from.username {
        metadata.insert("telegram_username".into(), json!(username));
    }
    let message = InboundMessage {
        channel: ChannelKind::Telegram,
        account_id: account,
        external_id: update.update_id.to_string(),
        message_id: m.message_id.to_string(),
        chat: ChatRef {
            chat_id: m.chat.id.to_string(),
            thread_id: topic.map(|t| t.to_string()),
        },
        sender: sender(from),
        conversation: if direct {
            Conversation::Direct
        } else {
            Conversation::Group
        },
        addressed: direct || mentioned || replies_to_bot,
        text,
        attachments: Vec::new(),
        reply_to: reply.map(|r| r.message_id.to_string()),
        metadata,
        received_at: DateTime::from_timestamp(m.date, 0).unwrap_or_else(Utc::now),
    };
    Disposition::Deliver {
        message: Box::new(message),
        files,
    }
}

fn sender(from: &User) -> Sender {
    let name = match (&from.last_name, from.first_name.is_empty()) {
        (Some(last), false) => Some(format!("{} {last}", from.first_name)),
        (None, false) => Some(from.first_name.clone()),
        (_, true) => from.username.clone(),
    };
    Sender {
        external_id: from.id.to_string(),
        display_name: name,
        is_bot: from.is_bot,
    }
}

/// The files of `m`: the largest photo size, a document, audio, video or voice note.
fn files(m: &Message) -> Vec<FileRef> {
    let mut files = Vec::new();
    if let Some(p) = m
        .photo
        .iter()
        .max_by_key(|p| (p.width * p.height, p.file_size.unwrap_or(0)))
    {
        files.push(FileRef {
            file_id: p.file_id.clone(),
            name: format!("photo_{}.jpg", m.message_id),
            content_type: Some("image/jpeg".to_owned()),
            size: p.file_size,
        });
    }
    let kinds = [
        (&m.document, "document"),
        (&m.audio, "audio"),
        (&m.video, "video"),
        (&m.voice, "voice.ogg"),
    ];
    for (meta, default_name) in kinds {
        if let Some(f) = meta {
            files.push(FileRef {
                file_id: f.file_id.clone(),
                name: f
                    .file_name
                    .clone()
                    .unwrap_or_else(|| default_name.to_owned()),
                content_type: f.mime_type.clone(),
                size: f.file_size,
            });
        }
    }
    files
}

/// The byte range of the UTF-16 range `offset..offset + length` of `text`.
pub(crate) fn byte_range(text: &str, offset: usize, length: usize) -> Option<Range<usize>> {
    let end = offset.checked_add(length)?;
    let mut start = None;
    let mut units = 0;
    for (i, c) in text.char_indices() {
        if units == offset && start.is_none() {
            start = Some(i);
        }
        if units == end {
            return start.map(|s| s..i);
        }
        units += c.len_utf16();
    }
    if units == offset && start.is_none() {
        start = Some(text.len());
    }
    if units == end {
        return start.map(|s| s..text.len());
    }
    None
}

/// `text` without a leading mention of the bot and without `@botname` after commands, and
/// whether an entity addresses the bot (its mention, a command for it, a text mention).
pub(crate) fn clean_text(text: &str, entities: &[MessageEntity], bot: &Bot) -> (String, bool) {
    let mention = format!("@{}", bot.username);
    let mut addressed = false;
    let mut cuts: Vec<Range<usize>> = Vec::new();
    for e in entities {
        let Some(range) = byte_range(text, e.offset, e.length) else {
            continue;
        };
        let slice = &text[range.clone()];
        match e.kind.as_str() {
            "mention" if !bot.username.is_empty() && slice.eq_ignore_ascii_case(&mention) => {
                addressed = true;
                if text[..range.start].trim().is_empty() {
                    let rest = &text[range.end..];
                    let spaces = rest.len() - rest.trim_start().len();
                    cuts.push(0..range.end + spaces);
                }
            }
            "text_mention" if e.user.as_ref().is_some_and(|u| u.id == bot.id) => {
                addressed = true;
            }
            "bot_command" => {
                if let Some(at) = slice.rfind('@')
                    && !bot.username.is_empty()
                    && slice[at + 1..].eq_ignore_ascii_case(&bot.username)
                {
                    addressed = true;
                    cuts.push(range.start + at..range.end);
                }
            }
            _ => {}
        }
    }
    cuts.sort_by_key(|r| std::cmp::Reverse(r.start));
    let mut out = text.to_owned();
    let mut last_start = usize::MAX;
    for cut in cuts {
        if cut.end <= last_start {
            out.replace_range(cut.clone(), "");
            last_start = cut.start;
        }
    }
    (out, addressed)
}
