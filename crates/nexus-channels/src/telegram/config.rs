//! The Telegram channel's configuration, checked before an adapter is built.

use std::time::Duration;

use nexus_core::ChannelError;

use crate::settings::{ChannelSecrets, ChannelSettings, ReceiveMode};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// The public Bot API.
pub const DEFAULT_API_BASE: &str = "https://api.telegram.org";

/// How long one `getUpdates` long poll waits for an update by default.
pub const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest long-poll timeout accepted.
const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(120);

/// How a Telegram channel receives updates.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TelegramMode {
    /// `getUpdates` long polling (no public URL needed). The default.
    Polling {
        /// How long one poll waits for an update, in whole seconds (1–120). Default: 30 s.
        timeout: Duration,
    },
    /// `setWebhook`: Telegram POSTs updates to `url`, which the gateway routes to
    /// [`ChannelAdapter::webhook`](nexus_core::ChannelAdapter::webhook).
    Webhook {
        /// The public HTTPS URL Telegram posts to (Nexus serves `/channels/{id}/webhook`).
        url: Url,
        /// The secret Telegram sends back in `X-Telegram-Bot-Api-Secret-Token`: 1–256
        /// characters of `A-Z a-z 0-9 _ -`.
        secret: SecretString,
    },
}

impl Default for TelegramMode {
    fn default() -> Self {
        TelegramMode::Polling {
            timeout: DEFAULT_POLL_TIMEOUT,
        }
    }
}

/// A Telegram bot connection.
#[derive(Debug, Clone)]
pub struct TelegramConfig {
    /// The Bot API base URL. Default: [`DEFAULT_API_BASE`]; a self-hosted Bot API server, a
    /// proxy or a fake otherwise. Calls go to `{api_base}/bot{token}/{method}`.
    pub api_base: Url,
    /// The bot token from @BotFather (`123456:ABC…`). Never logged.
    pub token: SecretString,
    /// How updates arrive. Default: long polling with a 30 s timeout.
    pub mode: TelegramMode,
}

impl TelegramConfig {
    /// A polling configuration for `token` against the public Bot API.
    ///
    /// # Panics
    /// Never: the default base URL is a valid constant.
    pub fn new(token: SecretString) -> Self {
        TelegramConfig {
            api_base: default_api_base(),
            token,
            mode: TelegramMode::default(),
        }
    }

    /// Checks what can be checked without calling Telegram; a bad value is `Fatal` (it will
    /// not fix itself on restart).
    /// A configuration from a channel's stored settings and secrets: `secrets.token`
    /// (required), `settings.api_base` (optional), and in webhook mode `settings.webhook_url`
    /// and `secrets.webhook_secret` (both required).
    pub fn from_settings(
        settings: &ChannelSettings,
        secrets: &ChannelSecrets,
    ) -> Result<Self, ChannelError> {
        let fatal = |message: &str| ChannelError::Fatal {
            message: message.to_owned(),
        };
        let url = |what: &str, value: &str| {
            Url::parse(value).map_err(|e| ChannelError::Fatal {
                message: format!("the Telegram {what} `{value}` is not a URL: {e}"),
            })
        };
        let token = secrets
            .token
            .clone()
            .ok_or_else(|| fatal("the Telegram channel has no bot token"))?;
        let mut config = TelegramConfig::new(SecretString::from(token));
        if let Some(base) = &settings.api_base {
            config.api_base = url("API base", base)?;
        }
        config.mode = match settings.mode {
            ReceiveMode::Polling => TelegramMode::default(),
            ReceiveMode::Webhook => {
                let webhook = settings
                    .webhook_url
                    .as_deref()
                    .ok_or_else(|| fatal("the Telegram webhook has no URL"))?;
                let secret = secrets
                    .webhook_secret
                    .clone()
                    .ok_or_else(|| fatal("the Telegram webhook has no secret"))?;
                TelegramMode::Webhook {
                    url: url("webhook URL", webhook)?,
                    secret: SecretString::from(secret),
                }
            }
            other => {
                return Err(ChannelError::Fatal {
                    message: format!(
                        "Telegram receives by polling or webhook, not {}",
                        other.as_str()
                    ),
                });
            }
        };
        Ok(config)
    }

    pub(crate) fn validate(&self) -> Result<(), ChannelError> {
        let fatal = |message: String| Err(ChannelError::Fatal { message });
        let token = self.token.expose_secret();
        if token.is_empty() {
            return fatal("the Telegram bot token is empty".to_owned());
        }
        if token
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '/' | '?' | '#' | '%'))
        {
            return fatal(
                "the Telegram bot token contains characters a token never has (spaces, '/', '?', '#', '%')"
                    .to_owned(),
            );
        }
        if !matches!(self.api_base.scheme(), "http" | "https") || self.api_base.cannot_be_a_base() {
            return fatal(format!(
                "the Telegram API base URL must be an http(s) URL, not {}",
                self.api_base
            ));
        }
        match &self.mode {
            TelegramMode::Polling { timeout } => {
                if *timeout < Duration::from_secs(1) || *timeout > MAX_POLL_TIMEOUT {
                    return fatal(format!(
                        "the Telegram polling timeout must be 1–{} s, not {} ms",
                        MAX_POLL_TIMEOUT.as_secs(),
                        timeout.as_millis()
                    ));
                }
            }
            TelegramMode::Webhook { secret, .. } => {
                let secret = secret.expose_secret();
                let charset = secret
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if secret.is_empty() || secret.len() > 256 || !charset {
                    return fatal(
                        "the Telegram webhook secret must be 1–256 characters of A-Z, a-z, 0-9, '_' and '-'"
                            .to_owned(),
                    );
                }
            }
        }
        Ok(())
    }
}

/// [`DEFAULT_API_BASE`] as a URL.
pub fn default_api_base() -> Url {
    Url::parse(DEFAULT_API_BASE).unwrap_or_else(|_| unreachable!("a valid constant URL"))
}
