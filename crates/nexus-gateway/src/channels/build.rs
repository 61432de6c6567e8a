//! Building a channel's adapter from its settings and secrets.

use std::fmt;
use std::sync::Arc;

use nexus_channels::slack::{SlackAdapter, SlackConfig};
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
            ChannelKind::Slack => {
                let config = SlackConfig::from_settings(settings, secrets)?;
                Ok(Arc::new(SlackAdapter::new(config, ctx)?))
            }
            other => Err(ChannelError::Unsupported {
                what: format!("{other} adapters (temporary)"),
            }),
        }
    }
}
