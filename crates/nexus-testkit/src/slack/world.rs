//! The fake workspace: channels, messages with their `ts`, files, and the faults scripted per
//! Web API method.

use std::collections::{HashMap, VecDeque};

/// What kind of conversation a channel id names (by its prefix, as Slack's ids do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChannelType {
    /// `C…`: a public channel (`channel_type: channel`).
    Public,
    /// `G…`: a private channel (`channel_type: group`).
    Private,
    /// `D…`: a direct message with the bot (`channel_type: im`).
    Im,
}

impl ChannelType {
    /// The type a channel id's prefix names.
    pub(crate) fn of(channel: &str) -> ChannelType {
        match channel.as_bytes().first() {
            Some(b'D') => ChannelType::Im,
            Some(b'G') => ChannelType::Private,
            _ => ChannelType::Public,
        }
    }

    /// The `channel_type` field of `message` events.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ChannelType::Public => "channel",
            ChannelType::Private => "group",
            ChannelType::Im => "im",
        }
    }
}

/// A message in the workspace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stored {
    pub(crate) channel: String,
    pub(crate) ts: String,
    pub(crate) thread_ts: Option<String>,
    pub(crate) text: String,
    /// The author's user id.
    pub(crate) user: String,
    /// Posted by the bot through the Web API.
    pub(crate) by_bot: bool,
    pub(crate) edits: u32,
}

/// A file someone shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredFile {
    pub(crate) name: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Vec<u8>,
}

/// A scripted failure of a Web API method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fault {
    /// HTTP 429 with `Retry-After: secs`.
    RateLimited { retry_after_secs: u64 },
    /// HTTP 200 `{"ok":false,"error":…}`.
    Error(String),
}

/// Everything the workspace holds.
#[derive(Debug, Default)]
pub(crate) struct World {
    /// Source of `ts` values: microseconds after 1700000000.000000.
    clock: u64,
    channels: HashMap<String, ChannelType>,
    dms: HashMap<String, String>,
    pub(crate) messages: Vec<Stored>,
    pub(crate) files: HashMap<String, StoredFile>,
    faults: HashMap<String, VecDeque<Fault>>,
    next_file: u64,
}

impl World {
    /// A fresh `ts`, unique and increasing, shaped like Slack's (`1700000000.000100`).
    pub(crate) fn next_ts(&mut self) -> String {
        self.clock += 100;
        let secs = 1_700_000_000 + self.clock / 1_000_000;
        format!("{secs}.{:06}", self.clock % 1_000_000)
    }

    /// Makes `channel` exist.
    pub(crate) fn create_channel(&mut self, channel: &str) {
        self.channels
            .entry(channel.to_owned())
            .or_insert_with(|| ChannelType::of(channel));
    }

    /// Whether `channel` exists.
    pub(crate) fn has_channel(&self, channel: &str) -> bool {
        self.channels.contains_key(channel)
    }

    /// The direct-message channel between the bot and `user`, created on first use.
    pub(crate) fn dm_channel(&mut self, user: &str) -> String {
        if let Some(id) = self.dms.get(user) {
            return id.clone();
        }
        let id = format!("D{:08}", self.dms.len() + 1);
        self.dms.insert(user.to_owned(), id.clone());
        self.channels.insert(id.clone(), ChannelType::Im);
        id
    }

    /// Keeps a shared file and returns its id (`F…`).
    pub(crate) fn add_file(&mut self, file: StoredFile) -> String {
        self.next_file += 1;
        let id = format!("F{:08}", self.next_file);
        self.files.insert(id.clone(), file);
        id
    }

    /// The message `ts` in `channel`.
    pub(crate) fn message_mut(&mut self, channel: &str, ts: &str) -> Option<&mut Stored> {
        self.messages
            .iter_mut()
            .find(|m| m.channel == channel && m.ts == ts)
    }

    /// The author of the message `ts` in `channel`.
    pub(crate) fn author(&self, channel: &str, ts: &str) -> Option<String> {
        self.messages
            .iter()
            .find(|m| m.channel == channel && m.ts == ts)
            .map(|m| m.user.clone())
    }

    /// Scripts `fault` for the next `calls` calls of `method`.
    pub(crate) fn add_fault(&mut self, method: &str, fault: Fault, calls: usize) {
        let queue = self.faults.entry(method.to_owned()).or_default();
        queue.extend(std::iter::repeat_n(fault, calls));
    }

    /// The fault scripted for this call of `method`, if any.
    pub(crate) fn take_fault(&mut self, method: &str) -> Option<Fault> {
        self.faults.get_mut(method)?.pop_front()
    }
}
