//! What a Slack channel needs: the Web API base, the bot token, and how events arrive.

use std::fmt;

use nexus_core::ChannelError;
use secrecy::SecretString;
use url::Url;

use crate::settings::{ChannelSecrets, ChannelSettings, ReceiveMode};

/// The public Web API base.
pub const DEFAULT_API_BASE: &str = "https://slack.com/api/";

/// How events reach the adapter.
#[derive(Clone)]
#[non_exhaustive]
pub enum SlackMode {
    /// Socket Mode: the adapter opens a WebSocket with an app-level token (`xapp-…`, scope
    /// `connections:write`). Needs no public URL.
    Socket {
        /// The app-level token.
        app_token: SecretString,
    },
    /// Events API: Slack POSTs signed events to Nexus's `/channels/{id}/webhook`.
    Events {
        /// The app's signing secret (Basic Information page).
        signing_secret: SecretString,
    },
}

impl fmt::Debug for SlackMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SlackMode::Socket { .. } => f.write_str("Socket { app_token: <redacted> }"),
            SlackMode::Events { .. } => f.write_str("Events { signing_secret: <redacted> }"),
        }
    }
}

/// A Slack channel's configuration.
#[derive(Debug, Clone)]
pub struct SlackConfig {
    /// The Web API base, ending in `/`. Default [`DEFAULT_API_BASE`].
    pub api_base: Url,
    /// The bot token (`xoxb-…`).
    pub bot_token: SecretString,
    /// How events arrive.
    pub mode: SlackMode,
}

/// The public Web API base.
pub fn default_api_base() -> Url {
    Url::parse(DEFAULT_API_BASE).expect("the built-in Slack API URL parses")
}

impl SlackConfig {
    /// Socket Mode with the public API.
    pub fn socket(bot_token: SecretString, app_token: SecretString) -> Self {
        SlackConfig {
            api_base: default_api_base(),
            bot_token,
            mode: SlackMode::Socket { app_token },
        }
    }

    /// Events API with the public API.
    pub fn events(bot_token: SecretString, signing_secret: SecretString) -> Self {
        SlackConfig {
            api_base: default_api_base(),
            bot_token,
            mode: SlackMode::Events { signing_secret },
        }
    }

    /// The configuration stored settings and secrets describe: mode `socket` needs
    /// `bot_token` and `app_token`, mode `events` `bot_token` and `signing_secret`;
    /// `api_base` replaces the public API. `Fatal` when something is missing or wrong.
    pub fn from_settings(
        settings: &ChannelSettings,
        secrets: &ChannelSecrets,
    ) -> Result<Self, ChannelError> {
        let fatal = |message: &str| ChannelError::Fatal {
            message: message.to_owned(),
        };
        let secret = |value: &Option<String>, what: &str| {
            value
                .as_deref()
                .filter(|v| !v.is_empty())
                .map(|v| SecretString::from(v.to_owned()))
                .ok_or_else(|| fatal(&format!("the Slack channel has no {what}")))
        };
        let bot_token = secret(&secrets.bot_token, "bot token (xoxb-…)")?;
        let mut config = match settings.mode {
            ReceiveMode::Socket => SlackConfig::socket(
                bot_token,
                secret(
                    &secrets.app_token,
                    "app-level token (xapp-…) for Socket Mode",
                )?,
            ),
            ReceiveMode::Events => SlackConfig::events(
                bot_token,
                secret(&secrets.signing_secret, "signing secret for the Events API")?,
            ),
            other => {
                return Err(fatal(&format!(
                    "Slack receives in mode socket or events, not {}",
                    other.as_str()
                )));
            }
        };
        if let Some(base) = &settings.api_base {
            let mut url = Url::parse(base).map_err(|err| {
                fatal(&format!("the Slack API base {base:?} is not a URL: {err}"))
            })?;
            if !url.path().ends_with('/') {
                let path = format!("{}/", url.path());
                url.set_path(&path);
            }
            config.api_base = url;
        }
        Ok(config)
    }
}
