//! The fake's defaults: credentials, the bot's identity, gateway timing and rate limits.

use std::time::Duration;

/// The bot token the fake accepts by default.
pub const DEFAULT_TOKEN: &str = "fake-discord-bot-token";

/// The bot's user id by default (a snowflake, as a string like every Discord id).
pub const DEFAULT_BOT_ID: &str = "1100000000000000001";

/// The id of the guild every group channel belongs to by default.
pub const DEFAULT_GUILD_ID: &str = "1200000000000000001";

/// How a [`FakeDiscord`](super::FakeDiscord) behaves.
#[derive(Debug, Clone)]
pub struct FakeDiscordConfig {
    /// The bot token checked in `Authorization: Bot <token>` and in IDENTIFY / RESUME.
    pub token: String,
    /// The bot's user id.
    pub bot_id: String,
    /// The bot's user name.
    pub bot_name: String,
    /// The guild group channels belong to.
    pub guild_id: String,
    /// The `heartbeat_interval` sent in HELLO (Discord: 41.25 s; keep it short in tests).
    pub heartbeat_interval: Duration,
    /// Whether the privileged Message Content intent is enabled for the bot in the developer
    /// portal (default true). When false, an IDENTIFY asking for MESSAGE_CONTENT (1 << 15) is
    /// closed with 4014, as on the real gateway. A session without the intent receives guild
    /// messages that do not mention the bot with empty `content` and `attachments`.
    pub message_content_enabled: bool,
    /// Messages a bot may create per channel per [`message_window`](Self::message_window)
    /// (Discord: 5 per 5 s).
    pub message_limit: u32,
    /// The window of [`message_limit`](Self::message_limit).
    pub message_window: Duration,
    /// Requests per window on every other route bucket (edits, typing, `/users/@me`…).
    pub other_limit: u32,
    /// REST requests kept for inspection (the newest).
    pub max_recorded: usize,
}

impl Default for FakeDiscordConfig {
    fn default() -> Self {
        FakeDiscordConfig {
            token: DEFAULT_TOKEN.to_owned(),
            bot_id: DEFAULT_BOT_ID.to_owned(),
            bot_name: "nexus-bot".to_owned(),
            guild_id: DEFAULT_GUILD_ID.to_owned(),
            heartbeat_interval: Duration::from_millis(41_250),
            message_content_enabled: true,
            message_limit: 5,
            message_window: Duration::from_secs(5),
            other_limit: 50,
            max_recorded: 1024,
        }
    }
}
