//! Building a channel's adapter from its settings and secrets.

use std::fmt;
use std::sync::Arc;

use nexus_channels::ReceiveMode;
use nexus_channels::discord::{DiscordAdapter, DiscordConfig};
use nexus_channels::slack::{SlackAdapter, SlackConfig};
use nexus_channels::telegram::{TelegramAdapter, TelegramConfig, TelegramMode};
use nexus_channels::{ChannelContext, ChannelSecrets, ChannelSettings};
use nexus_core::{ChannelAdapter, ChannelError, ChannelKind};
use secrecy::SecretString;

/// Builds the adapter of a channel (tests may substitute their own).
pub trait AdapterFactory: Send + Sync + fmt::Debug {
    /// The adapter for a channel of `kind` with these settings and secrets.
    fn build(
        &self,
        kind: ChannelKind,
        settings: &ChannelSettings,
        secrets: &ChannelSecrets,
        ctx: ChannelContext,
    ) -> Result<Arc<dyn ChannelAdapter>, ChannelError>;
}

/// The real adapters.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlatformAdapters;

impl AdapterFactory for PlatformAdapters {
    fn build(
        &self,
        kind: ChannelKind,
        settings: &ChannelSettings,
        secrets: &ChannelSecrets,
        ctx: ChannelContext,
    ) -> Result<Arc<dyn ChannelAdapter>, ChannelError> {
        match kind {
            ChannelKind::Telegram => {
                let config = telegram(settings, secrets)?;
                Ok(Arc::new(TelegramAdapter::new(config, ctx)?))
            }
            ChannelKind::Slack => {
                let config = SlackConfig::from_settings(settings, secrets)?;
                Ok(Arc::new(SlackAdapter::new(config, ctx)?))
            }
            ChannelKind::Discord => {
                let config = DiscordConfig::from_settings(settings, secrets)?;
                Ok(Arc::new(DiscordAdapter::new(config, ctx)?))
            }
            other => Err(ChannelError::Unsupported {
                what: format!("{other} is not a chat platform with an adapter"),
            }),
        }
    }
}

fn fatal(message: String) -> ChannelError {
    ChannelError::Fatal { message }
}

fn url(what: &str, value: &str) -> Result<url::Url, ChannelError> {
    url::Url::parse(value).map_err(|e| fatal(format!("the {what} `{value}` is not a URL: {e}")))
}

fn telegram(
    settings: &ChannelSettings,
    secrets: &ChannelSecrets,
) -> Result<TelegramConfig, ChannelError> {
    let token = secrets
        .token
        .clone()
        .ok_or_else(|| fatal("the Telegram channel has no bot token".to_owned()))?;
    let mut config = TelegramConfig::new(SecretString::from(token));
    if let Some(base) = &settings.api_base {
        config.api_base = url("Telegram API base", base)?;
    }
    config.mode = match settings.mode {
        ReceiveMode::Polling => TelegramMode::default(),
        ReceiveMode::Webhook => {
            let webhook = settings
                .webhook_url
                .as_deref()
                .ok_or_else(|| fatal("the Telegram webhook has no URL".to_owned()))?;
            let secret = secrets
                .webhook_secret
                .clone()
                .ok_or_else(|| fatal("the Telegram webhook has no secret".to_owned()))?;
            TelegramMode::Webhook {
                url: url("Telegram webhook URL", webhook)?,
                secret: SecretString::from(secret),
            }
        }
        other => {
            return Err(fatal(format!(
                "Telegram receives by polling or webhook, not {}",
                other.as_str()
            )));
        }
    };
    Ok(config)
}
