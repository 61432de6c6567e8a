//! Slack's JSON: Socket Mode frames, the `event_callback` envelope, `message` and
//! `app_mention` events and their files, and the mapping of an event to a draft inbound
//! message (which events are dropped, who is addressed, the session scope, the dedupe key).

use chrono::{DateTime, Utc};
use nexus_core::{ChatRef, Conversation, Metadata, Sender};
use serde::Deserialize;
use serde_json::Value;

use super::client::Identity;

/// A Socket Mode frame from Slack.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// The connection is ready.
    Hello,
    /// Slack will close this connection: open another one.
    Disconnect {
        /// `refresh_requested`, `warning`, `link_disabled`, …
        reason: String,
    },
    /// Something to acknowledge with its `envelope_id`.
    Envelope {
        envelope_id: String,
        /// `events_api`, `slash_commands`, `interactive`.
        kind: String,
        payload: Value,
        /// 0 for a first delivery.
        retry_attempt: u64,
    },
    /// Any other frame type.
    Other(String),
}

/// Parses a text frame.
pub(crate) fn frame(text: &str) -> Result<Frame, serde_json::Error> {
    let mut value: Value = serde_json::from_str(text)?;
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if let Some(envelope_id) = value.get("envelope_id").and_then(Value::as_str) {
        return Ok(Frame::Envelope {
            envelope_id: envelope_id.to_owned(),
            retry_attempt: value
                .get("retry_attempt")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            payload: value
                .get_mut("payload")
                .map(Value::take)
                .unwrap_or(Value::Null),
            kind,
        });
    }
    Ok(match kind.as_str() {
        "hello" => Frame::Hello,
        "disconnect" => Frame::Disconnect {
            reason: value
                .get("reason")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        },
        _ => Frame::Other(kind),
    })
}

/// The outer envelope of Events API deliveries.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Callback {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) event_id: Option<String>,
    #[serde(default)]
    pub(crate) team_id: Option<String>,
    #[serde(default)]
    pub(crate) event: Option<Value>,
}

/// A `message` or `app_mention` event (the fields the adapter reads).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct MessageEvent {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    #[serde(default)]
    pub(crate) subtype: Option<String>,
    #[serde(default)]
    pub(crate) channel: Option<String>,
    #[serde(default)]
    pub(crate) channel_type: Option<String>,
    #[serde(default)]
    pub(crate) user: Option<String>,
    #[serde(default)]
    pub(crate) bot_id: Option<String>,
    #[serde(default)]
    pub(crate) username: Option<String>,
    #[serde(default)]
    pub(crate) user_profile: Option<Profile>,
    #[serde(default)]
    pub(crate) text: Option<String>,
    #[serde(default)]
    pub(crate) ts: Option<String>,
    #[serde(default)]
    pub(crate) thread_ts: Option<String>,
    #[serde(default)]
    pub(crate) parent_user_id: Option<String>,
    #[serde(default)]
    pub(crate) files: Vec<SlackFile>,
}

/// The author's profile some message events carry.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Profile {
    #[serde(default)]
    pub(crate) display_name: Option<String>,
    #[serde(default)]
    pub(crate) real_name: Option<String>,
}

/// A shared file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub(crate) struct SlackFile {
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) title: Option<String>,
    #[serde(default)]
    pub(crate) mimetype: Option<String>,
    #[serde(default)]
    pub(crate) size: Option<u64>,
    #[serde(default)]
    pub(crate) url_private_download: Option<String>,
}

impl SlackFile {
    /// The name to store it under.
    pub(crate) fn display_name(&self) -> String {
        self.name
            .clone()
            .or_else(|| self.title.clone())
            .or_else(|| self.id.clone())
            .unwrap_or_else(|| "file".to_owned())
    }
}

/// A message event made ready for the router, before its files are downloaded.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Draft {
    /// `{channel}:{ts}`: the same for an `app_mention` and the `message` of one post, and for
    /// every retry.
    pub(crate) external_id: String,
    pub(crate) chat: ChatRef,
    pub(crate) sender: Sender,
    pub(crate) conversation: Conversation,
    pub(crate) addressed: bool,
    pub(crate) text: String,
    pub(crate) reply_to: Option<String>,
    pub(crate) files: Vec<SlackFile>,
    pub(crate) metadata: Metadata,
    pub(crate) received_at: DateTime<Utc>,
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mapped {
    /// Acknowledge and drop, for this reason.
    Drop(&'static str),
    /// Hand to the router.
    Deliver(Box<Draft>),
}

/// Subtypes that are messages people wrote; every other subtype (edits, deletions, joins…)
/// is dropped.
fn is_message_subtype(subtype: Option<&str>) -> bool {
    matches!(
        subtype,
        None | Some("file_share") | Some("thread_broadcast") | Some("bot_message")
    )
}

/// When a `ts` (`"1700000000.000100"`) was, read as integers (never as a float).
pub(crate) fn ts_time(ts: &str) -> Option<DateTime<Utc>> {
    let (secs, micros) = ts.split_once('.').unwrap_or((ts, "0"));
    let secs: i64 = secs.parse().ok()?;
    let digits: String = micros.chars().take(6).collect();
    let micros: u32 = format!("{digits:0<6}").parse().ok()?;
    DateTime::from_timestamp(secs, micros.checked_mul(1000)?)
}

/// `text` without a leading `<@BOT>` or `<@BOT|name>`.
pub(crate) fn strip_mention(text: &str, bot_user: &str) -> String {
    let trimmed = text.trim_start();
    if let Some(rest) = trimmed.strip_prefix("<@")
        && let Some((inside, after)) = rest.split_once('>')
        && inside.split('|').next() == Some(bot_user)
    {
        return after.trim_start().to_owned();
    }
    text.to_owned()
}

/// Maps `event` (of the envelope `callback`) for the bot `me`; `bot_thread(channel, ts)` says
/// whether the bot posted in the thread under `ts`.
pub(crate) fn map(
    callback: &Callback,
    event: MessageEvent,
    me: &Identity,
    bot_thread: impl Fn(&str, &str) -> bool,
) -> Mapped {
    let mention = match event.kind.as_str() {
        "app_mention" => true,
        "message" => false,
        _ => return Mapped::Drop("not a message event"),
    };
    if !is_message_subtype(event.subtype.as_deref()) {
        return Mapped::Drop("not a new message");
    }
    let own = event.user.as_deref() == Some(me.user_id.as_str())
        || (event.bot_id.is_some() && event.bot_id == me.bot_id);
    if own {
        return Mapped::Drop("the bot's own message");
    }
    let (Some(channel), Some(ts)) = (event.channel.clone(), event.ts.clone()) else {
        return Mapped::Drop("no channel or ts");
    };
    let direct = match event.channel_type.as_deref() {
        Some(kind) => kind == "im",
        None => channel.starts_with('D'),
    };
    let raw_text = event.text.clone().unwrap_or_default();
    let in_thread = event.thread_ts.as_deref().is_some_and(|t| t != ts);
    let addressed = direct
        || mention
        || raw_text.contains(&format!("<@{}>", me.user_id))
        || raw_text.contains(&format!("<@{}|", me.user_id))
        || event.thread_ts.as_deref().is_some_and(|thread| {
            event.parent_user_id.as_deref() == Some(me.user_id.as_str())
                || bot_thread(&channel, thread)
        });
    let thread_id = match (&event.thread_ts, direct) {
        (Some(thread), _) => Some(thread.clone()),
        (None, true) => None,
        (None, false) => Some(ts.clone()),
    };
    let is_bot = event.bot_id.is_some() || event.subtype.as_deref() == Some("bot_message");
    let display_name = event
        .user_profile
        .as_ref()
        .and_then(|p| {
            p.display_name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| p.real_name.clone().filter(|n| !n.is_empty()))
        })
        .or_else(|| event.username.clone());
    let sender_id = event
        .user
        .clone()
        .or_else(|| event.bot_id.clone())
        .unwrap_or_default();
    let mut metadata = Metadata::new();
    if let Some(id) = &callback.event_id {
        metadata.insert("slack_event_id".into(), Value::String(id.clone()));
    }
    if let Some(team) = &callback.team_id {
        metadata.insert("slack_team_id".into(), Value::String(team.clone()));
    }
    metadata.insert("slack_channel".into(), Value::String(channel.clone()));
    metadata.insert("slack_ts".into(), Value::String(ts.clone()));
    if let Some(thread) = &event.thread_ts {
        metadata.insert("slack_thread_ts".into(), Value::String(thread.clone()));
    }
    Mapped::Deliver(Box::new(Draft {
        external_id: format!("{channel}:{ts}"),
        reply_to: if in_thread {
            event.thread_ts.clone()
        } else {
            None
        },
        chat: ChatRef {
            chat_id: channel,
            thread_id,
        },
        sender: Sender {
            external_id: sender_id,
            display_name,
            is_bot,
        },
        conversation: if direct {
            Conversation::Direct
        } else {
            Conversation::Group
        },
        addressed,
        text: strip_mention(&raw_text, &me.user_id),
        files: event.files,
        metadata,
        received_at: ts_time(&ts).unwrap_or_else(Utc::now),
    }))
}
