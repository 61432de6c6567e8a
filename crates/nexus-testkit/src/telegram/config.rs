//! Configuration of the fake: the bot it plays and how it delivers webhooks.

use std::time::Duration;

/// The token [`FakeTelegramConfig::default`] accepts.
pub const DEFAULT_TOKEN: &str = "123456789:AAFakeTelegramToken_0123456789abcdef";

/// Who the fake's bot is and how the fake behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeTelegramConfig {
    /// The bot token accepted in `/bot{token}/…`. Default: [`DEFAULT_TOKEN`]. Its leading
    /// digits are the bot's user id.
    pub token: String,
    /// The bot's `username` (without `@`). Default: `nexus_fake_bot`.
    pub bot_username: String,
    /// The bot's `first_name`. Default: `Nexus`.
    pub bot_first_name: String,
    /// Delivery attempts per update when a webhook answers non-2xx or cannot be reached,
    /// before the fake gives the update up (as Telegram does after "a reasonable number").
    /// Default: 3.
    pub webhook_attempts: u32,
    /// Pause between webhook delivery attempts. Default: 20 ms.
    pub webhook_retry_delay: Duration,
    /// How long one webhook POST may take before it counts as failed. Default: 10 s.
    pub webhook_timeout: Duration,
    /// How many received API calls [`requests`](super::FakeTelegram::requests) keeps (the
    /// newest). Default: 1000.
    pub max_recorded: usize,
}

impl Default for FakeTelegramConfig {
    fn default() -> Self {
        FakeTelegramConfig {
            token: DEFAULT_TOKEN.to_owned(),
            bot_username: "nexus_fake_bot".to_owned(),
            bot_first_name: "Nexus".to_owned(),
            webhook_attempts: 3,
            webhook_retry_delay: Duration::from_millis(20),
            webhook_timeout: Duration::from_secs(10),
            max_recorded: 1000,
        }
    }
}

impl FakeTelegramConfig {
    /// The bot's user id: the digits before the `:` of the token (0 if there are none).
    pub fn bot_id(&self) -> i64 {
        self.token
            .split(':')
            .next()
            .and_then(|digits| digits.parse().ok())
            .unwrap_or(0)
    }
}
