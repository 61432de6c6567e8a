//! What people do on the fake: chats they write in (private chats, groups, forum topics) and
//! the `Message` objects of what they say, built as Telegram builds them (entities for the
//! bot mention and commands, `reply_to_message` with its author, photo sizes or a document,
//! topic messages replying to their topic's root message).

use serde_json::{Value, json};

use super::methods::store_file;
use super::state::{Chat, State};
use super::{Shared, now};
use crate::chat::{Place, UserSays};

/// Group ids at or below this are supergroups (`-100…`).
const SUPERGROUP_IDS: i64 = -1_000_000_000_000;

/// A stable numeric id for a non-numeric one (Telegram ids are numbers).
fn numeric(id: &str) -> i64 {
    id.parse().unwrap_or_else(|_| {
        let sum = id
            .bytes()
            .fold(17i64, |h, b| h.wrapping_mul(31).wrapping_add(i64::from(b)));
        sum.rem_euclid(1_000_000_000) + 1
    })
}

/// Makes sure group `chat_id` exists; a forum when `forum`.
pub(crate) fn ensure_group(state: &mut State, chat_id: i64, title: &str, forum: bool) {
    let chat = state.chats.entry(chat_id).or_insert_with(|| {
        let kind = if chat_id <= SUPERGROUP_IDS {
            "supergroup"
        } else {
            "group"
        };
        Chat::new(json!({"id": chat_id, "type": kind, "title": title}))
    });
    if forum {
        chat.json["type"] = json!("supergroup");
        chat.json["is_forum"] = json!(true);
    }
}

/// Makes sure forum topic `thread_id` exists in `chat_id`, with its root service message
/// (whose id is the thread id).
pub(crate) fn ensure_topic(state: &mut State, chat_id: i64, thread_id: i64, creator: &Value) {
    ensure_group(state, chat_id, "Forum", true);
    let Some(chat) = state.chats.get_mut(&chat_id) else {
        return;
    };
    if chat.topics.contains(&thread_id) {
        return;
    }
    chat.topics.push(thread_id);
    let root = json!({
        "message_id": thread_id,
        "from": creator,
        "chat": chat.json,
        "date": now(),
        "message_thread_id": thread_id,
        "forum_topic_created": {"name": format!("Topic {thread_id}"), "icon_color": 7_322_096},
    });
    chat.messages.insert(thread_id, root);
    chat.next_message_id = chat.next_message_id.max(thread_id + 1);
}

/// Builds, stores and returns the `Message` for `says`.
pub(crate) fn user_message(shared: &Shared, state: &mut State, says: &UserSays) -> Value {
    let user_id = numeric(&says.user_id);
    let user = json!({
        "id": user_id,
        "is_bot": says.is_bot,
        "first_name": says.user_name,
        "language_code": "en",
    });
    let (chat_id, thread) = match &says.place {
        Place::Direct => {
            state.chats.entry(user_id).or_insert_with(|| {
                Chat::new(json!({"id": user_id, "type": "private", "first_name": says.user_name}))
            });
            (user_id, None)
        }
        Place::Group { chat_id, thread_id } => {
            let chat_id = numeric(chat_id);
            match thread_id {
                Some(t) => {
                    let t = numeric(t);
                    ensure_topic(state, chat_id, t, &user);
                    (chat_id, Some(t))
                }
                None => {
                    ensure_group(state, chat_id, &format!("Group {chat_id}"), false);
                    (chat_id, None)
                }
            }
        }
    };
    let (text, entities) = text_and_entities(shared, says);
    let file = says.file.as_ref().map(|f| {
        let photo = f.content_type.starts_with("image/");
        if photo {
            let half = f.bytes.len().div_ceil(2);
            let thumb = store_file(state, f.bytes[..half].to_vec(), "photo");
            let full = store_file(state, f.bytes.clone(), "photo");
            json!({"photo": [
                {"file_id": thumb.0, "file_unique_id": thumb.1, "file_size": half, "width": 90, "height": 68},
                {"file_id": full.0, "file_unique_id": full.1, "file_size": f.bytes.len(), "width": 800, "height": 600},
            ]})
        } else {
            let (id, unique) = store_file(state, f.bytes.clone(), "document");
            json!({"document": {"file_id": id, "file_unique_id": unique, "file_name": f.name,
                "mime_type": f.content_type, "file_size": f.bytes.len()}})
        }
    });
    let Some(chat) = state.chats.get_mut(&chat_id) else {
        return Value::Null;
    };
    let message_id = chat.take_message_id();
    let mut m = json!({"message_id": message_id, "from": user, "chat": chat.json, "date": now()});
    if let Some(t) = thread {
        m["message_thread_id"] = json!(t);
        m["is_topic_message"] = json!(true);
    }
    let replied_id = says
        .reply_to
        .as_deref()
        .and_then(|r| r.parse::<i64>().ok())
        .or(thread);
    if let Some(replied) = replied_id.and_then(|id| chat.messages.get(&id)) {
        let mut replied = replied.clone();
        if let Some(obj) = replied.as_object_mut() {
            obj.remove("reply_to_message");
        }
        m["reply_to_message"] = replied;
    }
    let (text_key, entities_key) = match &file {
        Some(f) => {
            if let (Some(obj), Some(f)) = (m.as_object_mut(), f.as_object()) {
                obj.extend(f.clone());
            }
            ("caption", "caption_entities")
        }
        None => ("text", "entities"),
    };
    if !text.is_empty() || file.is_none() {
        m[text_key] = json!(text);
    }
    if !entities.is_empty() {
        m[entities_key] = json!(entities);
    }
    chat.messages.insert(message_id, m.clone());
    m
}

/// The text as the person types it (`@bot ` first when mentioning) and its entities.
fn text_and_entities(shared: &Shared, says: &UserSays) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut entities = Vec::new();
    if says.mention_bot {
        let mention = format!("@{}", shared.config.bot_username);
        entities.push(
            json!({"type": "mention", "offset": 0, "length": mention.encode_utf16().count()}),
        );
        text.push_str(&mention);
        text.push(' ');
    }
    if says.text.starts_with('/') {
        let command = says.text.split_whitespace().next().unwrap_or_default();
        entities.push(
            json!({"type": "bot_command", "offset": text.encode_utf16().count(),
            "length": command.encode_utf16().count()}),
        );
    }
    text.push_str(&says.text);
    (text, entities)
}
