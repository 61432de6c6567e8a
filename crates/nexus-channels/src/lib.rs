//! Nexus channels: the messaging platforms people reach agents from.
//!
//! - [`format`]: the model's Markdown converted to each platform's markup and split into
//!   messages within each platform's limit; [`stream`]: the plan of a streamed reply (send,
//!   throttled edits, continuation messages, final text).
//! - [`context`]: what every adapter is given (HTTP client, media port, limits) and its
//!   inbound stream with router acknowledgements; [`http`], [`ws`], [`backoff`]: the shared
//!   transport mechanisms; [`settings`]: a channel's stored settings and sealed secrets.
//! - The Telegram, Discord and Slack adapters behind the `ChannelAdapter` seam.
//!
//! This crate must never know about storage, sessions or configuration files.

pub mod backoff;
pub mod context;
pub mod discord;
pub mod format;
pub mod http;
pub mod settings;
pub mod slack;
pub mod stream;
pub mod telegram;
pub mod testing;
pub mod ws;

pub use backoff::Backoff;
pub use context::{ChannelContext, Inbound, Limits, MediaStore};
pub use discord::{DiscordAdapter, DiscordConfig};
pub use format::{Platform, plain_text};
pub use settings::{
    AccessPolicy, ChannelSecrets, ChannelSettings, DmPolicy, GroupPolicy, ReceiveMode,
};
pub use slack::{SlackAdapter, SlackConfig, SlackMode};
pub use stream::{Action, StreamingReply};
pub use telegram::{TelegramAdapter, TelegramConfig, TelegramMode};
