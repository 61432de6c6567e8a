//! What the fake remembers: chats and their messages, the queue of unconfirmed updates, the
//! webhook, stored files, the bot's sent messages, scripted faults and webhook deliveries.

use std::collections::{HashMap, VecDeque};

use serde_json::{Value, json};

use super::script::Fault;

/// An error answer: HTTP status = `error_code`, with the real envelope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) description: String,
    pub(crate) parameters: Option<Value>,
}

impl ApiError {
    pub(crate) fn new(code: u16, description: impl Into<String>) -> Self {
        ApiError {
            code,
            description: description.into(),
            parameters: None,
        }
    }

    /// 400 `Bad Request: {what}`.
    pub(crate) fn bad_request(what: impl std::fmt::Display) -> Self {
        ApiError::new(400, format!("Bad Request: {what}"))
    }

    pub(crate) fn body(&self) -> Value {
        let mut body =
            json!({"ok": false, "error_code": self.code, "description": self.description});
        if let Some(p) = &self.parameters {
            body["parameters"] = p.clone();
        }
        body
    }
}

/// A chat the fake knows.
#[derive(Debug, Clone)]
pub(crate) struct Chat {
    /// The `Chat` object.
    pub(crate) json: Value,
    /// Its messages by id (the people's and the bot's), as `Message` objects.
    pub(crate) messages: HashMap<i64, Value>,
    pub(crate) next_message_id: i64,
    /// Forum topics (thread ids) of a forum supergroup.
    pub(crate) topics: Vec<i64>,
    /// `sendChatAction` typing calls.
    pub(crate) typing: u32,
}

impl Chat {
    pub(crate) fn new(json: Value) -> Self {
        Chat {
            json,
            messages: HashMap::new(),
            next_message_id: 1,
            topics: Vec::new(),
            typing: 0,
        }
    }

    pub(crate) fn is_forum(&self) -> bool {
        self.json["is_forum"].as_bool() == Some(true)
    }

    pub(crate) fn take_message_id(&mut self) -> i64 {
        let id = self.next_message_id;
        self.next_message_id += 1;
        id
    }
}

/// A file people sent, downloadable through `getFile`.
#[derive(Debug, Clone)]
pub(crate) struct StoredFile {
    pub(crate) unique_id: String,
    pub(crate) path: String,
    pub(crate) bytes: Vec<u8>,
}

/// A message the bot sent, as the fake shows it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BotRecord {
    pub(crate) chat_id: i64,
    pub(crate) message_id: i64,
    pub(crate) thread_id: Option<i64>,
    pub(crate) text: String,
    pub(crate) edits: u32,
    pub(crate) reply_to: Option<i64>,
}

/// The registered webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookInfo {
    /// The URL updates are POSTed to.
    pub url: String,
    /// The `secret_token` sent back in `X-Telegram-Bot-Api-Secret-Token`.
    pub secret_token: Option<String>,
    /// The `allowed_updates` given with it.
    pub allowed_updates: Option<Vec<String>>,
}

/// One attempt to POST an update to the webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookDelivery {
    /// The update's id.
    pub update_id: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The HTTP status the webhook answered, `None` when it could not be reached.
    pub status: Option<u16>,
}

/// A file the bot sent with `sendPhoto` / `sendDocument`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentFile {
    /// `sendPhoto` or `sendDocument`.
    pub method: String,
    /// The chat.
    pub chat_id: i64,
    /// The part's file name.
    pub filename: Option<String>,
    /// The part's content type.
    pub content_type: Option<String>,
    /// The bytes.
    pub bytes: Vec<u8>,
    /// The caption, if any.
    pub caption: Option<String>,
}

/// Everything mutable, behind one lock.
#[derive(Debug, Default)]
pub(crate) struct State {
    pub(crate) chats: HashMap<i64, Chat>,
    /// Unconfirmed updates, oldest first (an injected duplicate appears twice).
    pub(crate) updates: VecDeque<Value>,
    pub(crate) next_update_id: i64,
    /// The last `allowed_updates` given (getUpdates or setWebhook).
    pub(crate) allowed_updates: Option<Vec<String>>,
    pub(crate) webhook: Option<WebhookInfo>,
    pub(crate) last_webhook_error: Option<(i64, String)>,
    /// Bumped by each getUpdates; an older poll still waiting is terminated with 409.
    pub(crate) poll_generation: u64,
    pub(crate) files: HashMap<String, StoredFile>,
    pub(crate) bot_log: Vec<BotRecord>,
    pub(crate) sent_files: Vec<SentFile>,
    pub(crate) faults: Vec<(String, u32, Fault)>,
    pub(crate) duplicate_next: u32,
    pub(crate) deliveries: Vec<WebhookDelivery>,
    /// Set when the fake's handle is dropped: waiting polls return.
    pub(crate) closed: bool,
}

/// Update kinds delivered when `allowed_updates` was never given.
const NOT_BY_DEFAULT: &[&str] = &["chat_member", "message_reaction", "message_reaction_count"];

impl State {
    pub(crate) fn new() -> Self {
        State {
            next_update_id: 700_000_001,
            ..State::default()
        }
    }

    /// Queues `update` (giving it the next `update_id`) unless `allowed_updates` excludes its
    /// kind; returns its id.
    pub(crate) fn enqueue(&mut self, mut update: Value) -> Option<i64> {
        let kind = update
            .as_object()
            .and_then(|o| o.keys().find(|k| *k != "update_id").cloned())
            .unwrap_or_default();
        let allowed = match &self.allowed_updates {
            Some(list) if !list.is_empty() => list.contains(&kind),
            _ => !NOT_BY_DEFAULT.contains(&kind.as_str()),
        };
        if !allowed {
            return None;
        }
        let id = self.next_update_id;
        self.next_update_id += 1;
        update["update_id"] = json!(id);
        let copies = if self.duplicate_next > 0 {
            self.duplicate_next -= 1;
            2
        } else {
            1
        };
        for _ in 0..copies {
            self.updates.push_back(update.clone());
        }
        Some(id)
    }

    /// Forgets updates below `offset` (confirmed); a negative offset keeps only the last
    /// `-offset` updates.
    pub(crate) fn confirm(&mut self, offset: i64) {
        if offset < 0 {
            let keep = usize::try_from(offset.unsigned_abs()).unwrap_or(usize::MAX);
            while self.updates.len() > keep {
                self.updates.pop_front();
            }
        } else {
            self.updates
                .retain(|u| u["update_id"].as_i64().is_some_and(|id| id >= offset));
        }
    }

    /// Whether an update with `id` still waits for delivery.
    pub(crate) fn is_pending(&self, id: i64) -> bool {
        self.updates
            .iter()
            .any(|u| u["update_id"].as_i64() == Some(id))
    }

    /// Takes the scripted fault for `method`, if one is due. `RejectEntities` only fires on
    /// calls with a `parse_mode`.
    pub(crate) fn take_fault(&mut self, method: &str, has_parse_mode: bool) -> Option<Fault> {
        let index = self.faults.iter().position(|(m, _, f)| {
            m.eq_ignore_ascii_case(method) && (has_parse_mode || *f != Fault::RejectEntities)
        })?;
        let (_, left, fault) = &mut self.faults[index];
        let fault = fault.clone();
        *left -= 1;
        if *left == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }

    pub(crate) fn chat_mut(&mut self, chat_id: i64) -> Result<&mut Chat, ApiError> {
        self.chats
            .get_mut(&chat_id)
            .ok_or_else(|| ApiError::bad_request("chat not found"))
    }
}
