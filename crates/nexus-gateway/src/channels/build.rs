//! Building a channel's adapter from its settings and secrets.

use std::fmt;
use std::sync::Arc;

use nexus_channels::discord::{DiscordAdapter, DiscordConfig};
use nexus_channels::slack::{SlackAdapter, SlackConfig};
use nexus_channels::telegram::{TelegramAdapter, TelegramConfig};
use nexus_channels::{ChannelContext, ChannelSecrets, ChannelSettings};
use nexus_core::{ChannelAdapter, ChannelError, ChannelKind};

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
                let config = TelegramConfig::from_settings(settings, secrets)?;
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
