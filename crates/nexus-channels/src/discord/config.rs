//! What a Discord channel is configured with: API and gateway URLs, the bot token, the
//! gateway intents; and the gateway's timing (Discord's values by default, shorter in tests).

use std::time::Duration;

use nexus_core::ChannelError;
use secrecy::SecretString;
use url::Url;

use crate::settings::{ChannelSecrets, ChannelSettings};

/// The public REST API base.
pub const DEFAULT_API_BASE: &str = "https://discord.com/api/v10";

/// GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT (1 | 512 | 4096 | 32768).
pub const DEFAULT_INTENTS: u64 = 37_377;

/// A Discord bot connection's configuration.
#[derive(Debug, Clone)]
pub struct DiscordConfig {
    /// REST API base URL, `https://discord.com/api/v10` by default (a fake's in tests).
    pub api_base: Url,
    /// Gateway URL to use instead of the one `GET /gateway/bot` names (default: ask).
    pub gateway_url: Option<Url>,
    /// The bot token (sent as `Authorization: Bot <token>` and in IDENTIFY).
    pub token: SecretString,
    /// Gateway intents bit set, [`DEFAULT_INTENTS`] (37377) by default. MESSAGE_CONTENT
    /// (1 << 15) is privileged: it must be enabled in the developer portal.
    pub intents: u64,
}

impl DiscordConfig {
    /// The public API, the gateway `GET /gateway/bot` names, and the default intents.
    pub fn new(token: SecretString) -> Self {
        DiscordConfig {
            api_base: default_api_base(),
            gateway_url: None,
            token,
            intents: DEFAULT_INTENTS,
        }
    }

    /// A configuration from a channel's stored settings and secrets: `secrets.token`
    /// (required), `settings.api_base` and `settings.gateway_url` (optional URLs).
    pub fn from_settings(
        settings: &ChannelSettings,
        secrets: &ChannelSecrets,
    ) -> Result<Self, ChannelError> {
        let token = secrets.token.clone().ok_or_else(|| ChannelError::Fatal {
            message: "a Discord channel needs a bot token".to_owned(),
        })?;
        let mut config = DiscordConfig::new(SecretString::from(token));
        if let Some(base) = &settings.api_base {
            config.api_base = parse_url("api_base", base)?;
        }
        if let Some(gateway) = &settings.gateway_url {
            config.gateway_url = Some(parse_url("gateway_url", gateway)?);
        }
        Ok(config)
    }
}

fn default_api_base() -> Url {
    // A constant that parses; `Url::parse` cannot fail on it.
    Url::parse(DEFAULT_API_BASE).unwrap_or_else(|_| unreachable!("the default API base parses"))
}

fn parse_url(field: &str, value: &str) -> Result<Url, ChannelError> {
    Url::parse(value).map_err(|e| ChannelError::Fatal {
        message: format!("Discord {field} is not a URL: {e}"),
    })
}

/// Checks the URL schemes: `http(s)` for the API, `ws(s)` for the gateway.
pub(crate) fn validate(config: &DiscordConfig) -> Result<(), ChannelError> {
    if !matches!(config.api_base.scheme(), "https" | "http") {
        return Err(ChannelError::Fatal {
            message: format!(
                "Discord api_base must be http(s), not {}",
                config.api_base.scheme()
            ),
        });
    }
    if let Some(url) = &config.gateway_url
        && !matches!(url.scheme(), "wss" | "ws")
    {
        return Err(ChannelError::Fatal {
            message: format!("Discord gateway_url must be ws(s), not {}", url.scheme()),
        });
    }
    Ok(())
}

/// Gateway and delivery timing. The defaults follow Discord's documentation; tests shorten
/// them with [`DiscordAdapter::with_timing`](super::DiscordAdapter::with_timing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayTiming {
    /// Shortest wait after INVALID_SESSION `false` before IDENTIFY (Discord: 1 s).
    pub invalid_session_min: Duration,
    /// Longest such wait (Discord: 5 s).
    pub invalid_session_max: Duration,
    /// First reconnect delay after a dropped connection (doubling, jittered); default 1 s.
    pub reconnect_base: Duration,
    /// Longest reconnect delay; default 60 s.
    pub reconnect_max: Duration,
    /// Connection attempts in a row that may fail before `start` gives up with a transport
    /// error (the gateway then restarts the channel); default 8.
    pub max_reconnects: u32,
    /// How long to wait for HELLO after connecting; default 20 s.
    pub hello_timeout: Duration,
    /// Attempts at handing one message to the router before it is logged as lost (Discord
    /// cannot deliver it again); default 3.
    pub delivery_attempts: u32,
    /// First delay between those attempts (doubling); default 1 s.
    pub delivery_backoff: Duration,
}

impl Default for GatewayTiming {
    fn default() -> Self {
        GatewayTiming {
            invalid_session_min: Duration::from_secs(1),
            invalid_session_max: Duration::from_secs(5),
            reconnect_base: Duration::from_secs(1),
            reconnect_max: Duration::from_secs(60),
            max_reconnects: 8,
            hello_timeout: Duration::from_secs(20),
            delivery_attempts: 3,
            delivery_backoff: Duration::from_secs(1),
        }
    }
}
