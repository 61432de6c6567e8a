//! The Bot API methods that send and read messages and files: `getMe`, `sendMessage`,
//! `editMessageText`, `sendChatAction`, `sendPhoto`, `sendDocument`, `getFile`. Updates and
//! webhooks are in `updates` and `webhook`.

use serde_json::{Value, json};

use super::html::{self, Parsed, utf16_len};
use super::params::Params;
use super::state::{ApiError, BotRecord, SentFile, State, StoredFile};
use super::{Shared, now};

/// Every method the fake serves, in canonical spelling.
pub(crate) const METHODS: &[&str] = &[
    "getMe",
    "getUpdates",
    "setWebhook",
    "deleteWebhook",
    "getWebhookInfo",
    "sendMessage",
    "editMessageText",
    "sendChatAction",
    "sendPhoto",
    "sendDocument",
    "getFile",
];

/// The canonical name of `method` (matched case-insensitively), if the fake serves it.
pub(crate) fn canonical(method: &str) -> Option<&'static str> {
    METHODS
        .iter()
        .copied()
        .find(|m| m.eq_ignore_ascii_case(method))
}

const MAX_TEXT: usize = 4096;
const MAX_CAPTION: usize = 1024;
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;
const MAX_DOCUMENT_BYTES: usize = 50 * 1024 * 1024;
/// The cloud Bot API serves files up to this size.
const MAX_DOWNLOAD_BYTES: usize = 20 * 1024 * 1024;
const ACTIONS: &[&str] = &[
    "typing",
    "upload_photo",
    "record_video",
    "upload_video",
    "record_voice",
    "upload_voice",
    "upload_document",
    "choose_sticker",
    "find_location",
    "record_video_note",
    "upload_video_note",
];

/// The bot as a `User`.
pub(crate) fn bot_user(shared: &Shared) -> Value {
    json!({
        "id": shared.config.bot_id(),
        "is_bot": true,
        "first_name": shared.config.bot_first_name,
        "username": shared.config.bot_username,
    })
}

pub(crate) fn get_me(shared: &Shared) -> Value {
    let mut me = bot_user(shared);
    me["can_join_groups"] = json!(true);
    me["can_read_all_group_messages"] = json!(false);
    me["supports_inline_queries"] = json!(false);
    me
}

/// `text` after the entity parsing `parse_mode` asks for.
fn parse_text(p: &Params, text: &str) -> Result<Parsed, ApiError> {
    match p.str("parse_mode").unwrap_or_default().as_str() {
        "" => Ok(Parsed {
            text: text.to_owned(),
            entities: Vec::new(),
        }),
        "HTML" => html::parse(text)
            .map_err(|why| ApiError::bad_request(format!("can't parse entities: {why}"))),
        // Markdown dialects are not checked by the fake: their text is kept as sent.
        "MarkdownV2" | "Markdown" => Ok(Parsed {
            text: text.to_owned(),
            entities: Vec::new(),
        }),
        other => Err(ApiError::bad_request(format!(
            "unsupported parse_mode \"{other}\""
        ))),
    }
}

/// A checked message text.
fn message_text(p: &Params) -> Result<(String, Parsed), ApiError> {
    let raw = p.str("text").unwrap_or_default();
    let parsed = parse_text(p, &raw)?;
    if parsed.text.trim().is_empty() {
        return Err(ApiError::bad_request("message text is empty"));
    }
    if utf16_len(&parsed.text) > MAX_TEXT {
        return Err(ApiError::bad_request("message is too long"));
    }
    Ok((raw, parsed))
}

/// The thread a message goes to, checked against the chat's topics.
fn thread(state: &mut State, chat_id: i64, p: &Params) -> Result<Option<i64>, ApiError> {
    let thread = p.int("message_thread_id")?;
    let chat = state.chat_mut(chat_id)?;
    match thread {
        Some(t) if chat.is_forum() && !chat.topics.contains(&t) => {
            Err(ApiError::bad_request("message thread not found"))
        }
        other => Ok(other),
    }
}

/// The message replied to, per `reply_parameters` (or the legacy `reply_to_message_id`).
fn replied(state: &mut State, chat_id: i64, p: &Params) -> Result<Option<Value>, ApiError> {
    let (id, lenient) = match p.json("reply_parameters")? {
        Some(rp) => {
            let id = rp["message_id"]
                .as_i64()
                .ok_or_else(|| ApiError::bad_request("message to be replied not found"))?;
            (
                id,
                rp["allow_sending_without_reply"].as_bool() == Some(true),
            )
        }
        None => match p.int("reply_to_message_id")? {
            Some(id) => (id, p.bool("allow_sending_without_reply")),
            None => return Ok(None),
        },
    };
    let chat = state.chat_mut(chat_id)?;
    match chat.messages.get(&id) {
        Some(m) => {
            let mut m = m.clone();
            if let Some(obj) = m.as_object_mut() {
                obj.remove("reply_to_message");
            }
            Ok(Some(m))
        }
        None if lenient => Ok(None),
        None => Err(ApiError::bad_request("message to be replied not found")),
    }
}

/// Stores a message the bot sent and logs it.
fn store_bot_message(
    shared: &Shared,
    state: &mut State,
    chat_id: i64,
    thread: Option<i64>,
    reply: Option<Value>,
    raw_text: String,
    fill: impl FnOnce(&mut Value),
) -> Result<Value, ApiError> {
    let chat = state.chat_mut(chat_id)?;
    let message_id = chat.take_message_id();
    let mut m = json!({
        "message_id": message_id,
        "from": bot_user(shared),
        "chat": chat.json,
        "date": now(),
    });
    if let Some(t) = thread {
        m["message_thread_id"] = json!(t);
        if chat.is_forum() {
            m["is_topic_message"] = json!(true);
        }
    }
    let reply_to = reply.as_ref().and_then(|r| r["message_id"].as_i64());
    if let Some(r) = reply {
        m["reply_to_message"] = r;
    }
    fill(&mut m);
    chat.messages.insert(message_id, m.clone());
    state.bot_log.push(BotRecord {
        chat_id,
        message_id,
        thread_id: thread,
        text: raw_text,
        edits: 0,
        reply_to,
    });
    Ok(m)
}

pub(crate) fn send_message(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let chat_id = p.chat_id()?;
    let (raw, parsed) = message_text(p)?;
    if let Some(lp) = p.json("link_preview_options")?
        && !lp.is_object()
    {
        return Err(ApiError::bad_request("can't parse link preview options"));
    }
    let mut state = shared.state();
    let thread = thread(&mut state, chat_id, p)?;
    let reply = replied(&mut state, chat_id, p)?;
    store_bot_message(shared, &mut state, chat_id, thread, reply, raw, |m| {
        m["text"] = json!(parsed.text);
        if !parsed.entities.is_empty() {
            m["entities"] = json!(parsed.entities);
        }
    })
}

pub(crate) fn edit_message_text(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let chat_id = p.chat_id()?;
    let message_id = p
        .int("message_id")?
        .ok_or_else(|| ApiError::bad_request("message identifier is not specified"))?;
    let (raw, parsed) = message_text(p)?;
    let bot_id = shared.config.bot_id();
    let mut state = shared.state();
    let chat = state.chat_mut(chat_id)?;
    let message = chat
        .messages
        .get_mut(&message_id)
        .ok_or_else(|| ApiError::bad_request("message to edit not found"))?;
    if message["from"]["id"].as_i64() != Some(bot_id) {
        return Err(ApiError::bad_request("message can't be edited"));
    }
    let entities = json!(parsed.entities);
    let old_entities = message.get("entities").cloned().unwrap_or(json!([]));
    if message["text"].as_str() == Some(parsed.text.as_str()) && old_entities == entities {
        return Err(ApiError::bad_request(
            "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message",
        ));
    }
    message["text"] = json!(parsed.text);
    message["edit_date"] = json!(now());
    match message.as_object_mut() {
        Some(obj) if parsed.entities.is_empty() => {
            obj.remove("entities");
        }
        _ => message["entities"] = entities,
    }
    let edited = message.clone();
    if let Some(record) = state
        .bot_log
        .iter_mut()
        .find(|r| r.chat_id == chat_id && r.message_id == message_id)
    {
        record.text = raw;
        record.edits += 1;
    }
    Ok(edited)
}

pub(crate) fn send_chat_action(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let chat_id = p.chat_id()?;
    let action = p.str("action").unwrap_or_default();
    if !ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::bad_request("wrong parameter action in request"));
    }
    let mut state = shared.state();
    thread(&mut state, chat_id, p)?;
    if action == "typing" {
        state.chat_mut(chat_id)?.typing += 1;
    }
    Ok(json!(true))
}

/// `sendPhoto` (`photo = true`) or `sendDocument`.
pub(crate) fn send_file(shared: &Shared, p: &Params, photo: bool) -> Result<Value, ApiError> {
    let chat_id = p.chat_id()?;
    let (field, method, max) = if photo {
        ("photo", "sendPhoto", MAX_PHOTO_BYTES)
    } else {
        ("document", "sendDocument", MAX_DOCUMENT_BYTES)
    };
    let caption_raw = p.str("caption");
    let caption = match &caption_raw {
        Some(c) => Some(parse_text(p, c)?),
        None => None,
    };
    if caption
        .as_ref()
        .is_some_and(|c| utf16_len(&c.text) > MAX_CAPTION)
    {
        return Err(ApiError::bad_request("message caption is too long"));
    }
    let mut state = shared.state();
    let upload = match (p.files.get(field), p.str(field)) {
        (Some(upload), _) => upload.clone(),
        (None, Some(id)) => match state.files.get(&id) {
            Some(f) => super::params::Upload {
                filename: None,
                content_type: None,
                bytes: f.bytes.clone().into(),
            },
            None => {
                return Err(ApiError::bad_request(
                    "wrong file identifier/HTTP URL specified",
                ));
            }
        },
        (None, None) => {
            return Err(ApiError::bad_request(format!(
                "there is no {field} in the request"
            )));
        }
    };
    if upload.bytes.is_empty() {
        return Err(ApiError::bad_request("file must be non-empty"));
    }
    if upload.bytes.len() > max {
        return Err(ApiError::bad_request("file is too big"));
    }
    let thread = thread(&mut state, chat_id, p)?;
    let reply = replied(&mut state, chat_id, p)?;
    let file_id = store_file(&mut state, upload.bytes.to_vec(), field);
    state.sent_files.push(SentFile {
        method: method.to_owned(),
        chat_id,
        filename: upload.filename.clone(),
        content_type: upload.content_type.clone(),
        bytes: upload.bytes.to_vec(),
        caption: caption_raw.clone(),
    });
    let size = upload.bytes.len();
    store_bot_message(
        shared,
        &mut state,
        chat_id,
        thread,
        reply,
        caption_raw.unwrap_or_default(),
        |m| {
            if photo {
                m["photo"] = json!([{"file_id": file_id.0, "file_unique_id": file_id.1,
                    "file_size": size, "width": 800, "height": 600}]);
            } else {
                m["document"] = json!({"file_id": file_id.0, "file_unique_id": file_id.1,
                    "file_size": size, "file_name": upload.filename,
                    "mime_type": upload.content_type});
            }
            if let Some(c) = caption {
                m["caption"] = json!(c.text);
                if !c.entities.is_empty() {
                    m["caption_entities"] = json!(c.entities);
                }
            }
        },
    )
}

/// Keeps `bytes` as a downloadable file; returns `(file_id, file_unique_id)`.
pub(crate) fn store_file(state: &mut State, bytes: Vec<u8>, folder: &str) -> (String, String) {
    let n = state.files.len() + 1;
    let file_id = format!("AgACAgFake{n:08}");
    let unique_id = format!("AQADFake{n:04}");
    let folder = if folder == "photo" {
        "photos"
    } else {
        "documents"
    };
    state.files.insert(
        file_id.clone(),
        StoredFile {
            unique_id: unique_id.clone(),
            path: format!("{folder}/file_{n}"),
            bytes,
        },
    );
    (file_id, unique_id)
}

pub(crate) fn get_file(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let id = p.str("file_id").unwrap_or_default();
    let state = shared.state();
    let file = state
        .files
        .get(&id)
        .ok_or_else(|| ApiError::bad_request("invalid file_id"))?;
    if file.bytes.len() > MAX_DOWNLOAD_BYTES {
        return Err(ApiError::bad_request("file is too big"));
    }
    Ok(json!({"file_id": id, "file_unique_id": file.unique_id,
        "file_size": file.bytes.len(), "file_path": file.path}))
}

/// The bytes of the stored file at `path`.
pub(crate) fn download(shared: &Shared, path: &str) -> Option<Vec<u8>> {
    let state = shared.state();
    state
        .files
        .values()
        .find(|f| f.path == path)
        .map(|f| f.bytes.clone())
}
