//! The person's side of the fake ([`ChatPlatform`](crate::chat::ChatPlatform)): messages
//! written by people, dispatched as `MESSAGE_CREATE`, and the bot's messages read back.

use std::time::Duration;

use serde_json::{Value, json};

use super::Shared;
use super::gateway::MESSAGE_CONTENT;
use super::messages::with_guild;
use super::model::{Model, Stored, timestamp, user_json};
use crate::chat::{BotMessage, Place, Said, UserSays};
use crate::journal::lock;

/// The GUILD_MESSAGES and DIRECT_MESSAGES intents.
const GUILD_MESSAGES: u64 = 1 << 9;
const DIRECT_MESSAGES: u64 = 1 << 12;

/// How long `say` waits for a gateway session, then for its dispatch to be written.
const SAY_WAIT: Duration = Duration::from_secs(10);

/// The parts of a message object.
pub(crate) struct NewMessage<'a> {
    pub(crate) id: &'a str,
    pub(crate) channel_id: &'a str,
    pub(crate) author: Value,
    pub(crate) content: &'a str,
    pub(crate) mentions: Vec<Value>,
    pub(crate) referenced: Option<Value>,
    pub(crate) attachments: Vec<Value>,
}

/// A message object as REST returns it (the gateway adds `guild_id` and `member`).
pub(crate) fn message_json(m: NewMessage<'_>) -> Value {
    let mut message = json!({
        "id": m.id,
        "channel_id": m.channel_id,
        "author": m.author,
        "content": m.content,
        "timestamp": timestamp(),
        "edited_timestamp": null,
        "tts": false,
        "mention_everyone": false,
        "mentions": m.mentions,
        "mention_roles": [],
        "attachments": m.attachments,
        "embeds": [],
        "components": [],
        "pinned": false,
        "type": if m.referenced.is_some() { 19 } else { 0 },
        "flags": 0,
    });
    if let (Some(obj), Some(referenced)) = (message.as_object_mut(), m.referenced) {
        let reference = json!({
            "type": 0,
            "message_id": referenced.get("id").cloned().unwrap_or(Value::Null),
            "channel_id": referenced.get("channel_id").cloned().unwrap_or(Value::Null),
        });
        obj.insert("message_reference".to_owned(), reference);
        obj.insert("referenced_message".to_owned(), referenced);
    }
    message
}

/// Where a person's message lands: `(channel id, guild id)`.
fn place(model: &mut Model, shared: &Shared, says: &UserSays) -> (String, Option<String>) {
    let guild = &shared.config.guild_id;
    match &says.place {
        Place::Direct => (model.dm_channel(&says.user_id), None),
        Place::Group { chat_id, thread_id } => {
            model.ensure_channel(chat_id, guild, None);
            match thread_id {
                Some(thread) => {
                    model.ensure_channel(thread, guild, Some(chat_id));
                    (thread.clone(), Some(guild.clone()))
                }
                None => (chat_id.clone(), Some(guild.clone())),
            }
        }
    }
}

/// The message as the current session receives it under its intents: `None` without
/// GUILD_MESSAGES (guilds) or DIRECT_MESSAGES (DMs); content, attachments and embeds emptied
/// in guilds without MESSAGE_CONTENT unless the bot is mentioned.
fn visible(model: &Model, says: &UserSays, in_guild: bool, message: &Value) -> Option<Value> {
    let intents = model
        .current
        .as_ref()
        .and_then(|id| model.sessions.get(id))
        .map_or(u64::MAX, |s| s.intents);
    let needed = if in_guild {
        GUILD_MESSAGES
    } else {
        DIRECT_MESSAGES
    };
    if intents & needed == 0 {
        return None;
    }
    let mut d = message.clone();
    if in_guild
        && intents & MESSAGE_CONTENT == 0
        && !says.mention_bot
        && let Some(obj) = d.as_object_mut()
    {
        obj.insert("content".to_owned(), Value::String(String::new()));
        obj.insert("attachments".to_owned(), json!([]));
        obj.insert("embeds".to_owned(), json!([]));
    }
    Some(d)
}

/// Posts what the person says and dispatches it; returns once the dispatch is written to the
/// bot's gateway connection (or after [`SAY_WAIT`], the event then waiting for a RESUME).
pub(crate) async fn say(shared: &Shared, says: UserSays) -> Said {
    shared.wait_until(SAY_WAIT, |m| m.current.is_some()).await;
    let config = &shared.config;
    let (said, dispatched) = {
        let mut model = lock(&shared.model);
        let (channel, guild) = place(&mut model, shared, &says);
        let bot = user_json(&config.bot_id, &config.bot_name, true);
        let mut content = says.text.clone();
        let mut mentions = Vec::new();
        if says.mention_bot {
            content = format!("<@{}> {}", config.bot_id, says.text);
            mentions.push(bot.clone());
        }
        let referenced = says
            .reply_to
            .as_ref()
            .and_then(|id| model.messages.get(id))
            .map(|m| m.json.clone());
        // A reply pings the replied-to author by default, who then appears in `mentions`.
        let replied_author = referenced
            .as_ref()
            .and_then(|r| r.pointer("/author/id"))
            .cloned();
        if replied_author == Some(Value::String(config.bot_id.clone())) && !says.mention_bot {
            mentions.push(bot);
        }
        let mut attachments = Vec::new();
        if let Some(file) = &says.file {
            let id = model.snowflake();
            let path = format!("/attachments/{channel}/{id}/{}", file.name);
            let url = format!("http://{}{path}", shared.addr);
            attachments.push(
                json!({"id": id, "filename": file.name, "size": file.bytes.len(),
                "url": url, "proxy_url": url, "content_type": file.content_type}),
            );
            model
                .files
                .insert(path, (file.content_type.clone(), file.bytes.clone()));
        }
        let id = model.snowflake();
        let message = message_json(NewMessage {
            id: &id,
            channel_id: &channel,
            author: user_json(&says.user_id, &says.user_name, says.is_bot),
            content: &content,
            mentions,
            referenced: referenced.clone(),
            attachments,
        });
        model.messages.insert(
            id.clone(),
            Stored {
                channel_id: channel.clone(),
                author_id: says.user_id.clone(),
                json: message.clone(),
                edits: 0,
                reply_to: referenced.and(says.reply_to.clone()),
            },
        );
        let dispatched = match visible(&model, &says, guild.is_some(), &message) {
            Some(d) => model.dispatch("MESSAGE_CREATE", with_guild(&d, guild.as_deref())),
            None => None,
        };
        (
            Said {
                message_id: id,
                chat_id: channel,
            },
            dispatched,
        )
    };
    if let Some((session, seq)) = dispatched {
        shared
            .wait_until(SAY_WAIT, |m| {
                m.sessions.get(&session).is_some_and(|s| s.sent_upto >= seq)
            })
            .await;
    }
    said
}

/// The bot's messages, oldest first. A thread is its own channel: its messages carry the
/// thread's channel id as both `chat_id` and `thread_id`.
pub(crate) fn bot_messages(model: &Model) -> Vec<BotMessage> {
    model
        .bot_order
        .iter()
        .filter_map(|id| {
            let m = model.messages.get(id)?;
            let in_thread = model
                .channels
                .get(&m.channel_id)
                .is_some_and(|c| c.parent_id.is_some());
            Some(BotMessage {
                id: id.clone(),
                chat_id: m.channel_id.clone(),
                thread_id: in_thread.then(|| m.channel_id.clone()),
                text: m
                    .json
                    .get("content")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned(),
                edits: m.edits,
                reply_to: m.reply_to.clone(),
            })
        })
        .collect()
}
