//! Who the fake bot is and how the fake times its deliveries.

use std::time::Duration;

/// The bot token (`xoxb-…`) [`FakeSlackConfig::default`] accepts.
pub const DEFAULT_BOT_TOKEN: &str = "xoxb-1-fake-nexus-0123456789";
/// The app-level token (`xapp-…`) [`FakeSlackConfig::default`] accepts.
pub const DEFAULT_APP_TOKEN: &str = "xapp-1-A0FAKE-fake-nexus-0123456789";
/// The bot's user id by default.
pub const DEFAULT_BOT_USER_ID: &str = "U0BOT";

/// The fake workspace and its timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSlackConfig {
    /// The bot token accepted by the Web API and for file downloads.
    pub bot_token: String,
    /// The app-level token accepted by `apps.connections.open`.
    pub app_token: String,
    /// The bot's user id (`auth.test` `user_id`). Default [`DEFAULT_BOT_USER_ID`].
    pub bot_user_id: String,
    /// The bot's bot id (`auth.test` `bot_id`). Default `B0BOT`.
    pub bot_id: String,
    /// The bot's user name (`auth.test` `user`). Default `nexus`.
    pub bot_name: String,
    /// The workspace id. Default `T0FAKE`.
    pub team_id: String,
    /// The workspace name. Default `Fake Workspace`.
    pub team: String,
    /// The app id (Socket Mode `hello`, `api_app_id`). Default `A0FAKE`.
    pub app_id: String,
    /// Socket Mode: how long an envelope may stay unacknowledged before it is delivered again.
    /// Default 3 s, as Slack.
    pub socket_ack_timeout: Duration,
    /// Socket Mode: how many times an unacknowledged envelope is delivered again. Default 3.
    pub socket_redeliveries: u32,
    /// Socket Mode: how long a connection told to `disconnect` stays open before the fake
    /// closes it. Default 10 s.
    pub disconnect_grace: Duration,
    /// Events API: how long the fake waits for an answer before it retries (`http_timeout`).
    /// Default 3 s, as Slack.
    pub events_timeout: Duration,
    /// Events API: the delays before retries 1, 2 and 3. Default: at once, 1 min, 5 min.
    pub events_retry_delays: Vec<Duration>,
    /// Whether the bot's own posts and edits come back as events (`message` with `bot_id`,
    /// `message_changed`), as they do on Slack for a bot subscribed to channel messages.
    /// Default true.
    pub echo_bot_messages: bool,
    /// How many Web API calls [`calls`](super::FakeSlack::calls) keeps (the newest).
    /// Default 1000.
    pub max_recorded: usize,
}

impl Default for FakeSlackConfig {
    fn default() -> Self {
        FakeSlackConfig {
            bot_token: DEFAULT_BOT_TOKEN.to_owned(),
            app_token: DEFAULT_APP_TOKEN.to_owned(),
            bot_user_id: DEFAULT_BOT_USER_ID.to_owned(),
            bot_id: "B0BOT".to_owned(),
            bot_name: "nexus".to_owned(),
            team_id: "T0FAKE".to_owned(),
            team: "Fake Workspace".to_owned(),
            app_id: "A0FAKE".to_owned(),
            socket_ack_timeout: Duration::from_secs(3),
            socket_redeliveries: 3,
            disconnect_grace: Duration::from_secs(10),
            events_timeout: Duration::from_secs(3),
            events_retry_delays: vec![
                Duration::ZERO,
                Duration::from_secs(60),
                Duration::from_secs(300),
            ],
            echo_bot_messages: true,
            max_recorded: 1000,
        }
    }
}
