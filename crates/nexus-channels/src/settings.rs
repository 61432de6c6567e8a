//! A channel's stored settings (non-secret, kept as JSON beside the sealed secret) and its
//! secrets (sealed with the owner's data key; never logged).

use std::fmt;

use nexus_core::ChannelKind;
use serde::{Deserialize, Serialize};

/// Who may talk to the bot in direct messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DmPolicy {
    /// Anyone.
    Open,
    /// Only the platform user ids in [`AccessPolicy::allow`].
    Allowlist,
    /// The allowlist, plus anyone the channel's owner approved: an unknown sender gets a
    /// one-time code to give the owner (`nexus channel approve CODE`).
    #[default]
    Pairing,
}

impl DmPolicy {
    /// The name used in settings and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            DmPolicy::Open => "open",
            DmPolicy::Allowlist => "allowlist",
            DmPolicy::Pairing => "pairing",
        }
    }
}

/// When the bot answers in groups.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// Only when mentioned or replied to.
    #[default]
    Mention,
    /// Every message (for groups made for the bot).
    All,
    /// Never.
    Off,
}

impl GroupPolicy {
    /// The name used in settings and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            GroupPolicy::Mention => "mention",
            GroupPolicy::All => "all",
            GroupPolicy::Off => "off",
        }
    }
}

/// A channel's access rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessPolicy {
    /// Direct messages.
    #[serde(default)]
    pub dm: DmPolicy,
    /// Platform user ids always allowed (in direct messages under `allowlist` and `pairing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<String>,
    /// Groups.
    #[serde(default)]
    pub groups: GroupPolicy,
    /// Tools answers on this channel may use, narrowing each agent's own list (`mcp:NAME` or
    /// full tool names); `None` leaves the agent's list as it is, an empty list allows none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
}

/// How a channel receives events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReceiveMode {
    /// Telegram `getUpdates` long polling (the Telegram default).
    Polling,
    /// Telegram `setWebhook`: updates are POSTed to Nexus's HTTP server.
    Webhook,
    /// Discord Gateway WebSocket (the only Discord mode).
    Gateway,
    /// Slack Socket Mode (with an app-level token).
    Socket,
    /// Slack Events API: events are POSTed to Nexus's HTTP server, signed.
    Events,
}

impl ReceiveMode {
    /// The name used in settings and on the command line.
    pub const fn as_str(self) -> &'static str {
        match self {
            ReceiveMode::Polling => "polling",
            ReceiveMode::Webhook => "webhook",
            ReceiveMode::Gateway => "gateway",
            ReceiveMode::Socket => "socket",
            ReceiveMode::Events => "events",
        }
    }
}

impl ReceiveMode {
    /// The mode named `mode` for a channel of `kind`; an empty name is the platform's default
    /// (Telegram polling, Discord gateway, Slack Socket Mode — Slack's final mode follows the
    /// secrets given). An error message names the modes that apply.
    pub fn for_kind(kind: ChannelKind, mode: &str) -> Result<ReceiveMode, String> {
        Ok(match (kind, mode.trim()) {
            (ChannelKind::Telegram, "" | "polling") => ReceiveMode::Polling,
            (ChannelKind::Telegram, "webhook") => ReceiveMode::Webhook,
            (ChannelKind::Discord, "" | "gateway") => ReceiveMode::Gateway,
            (ChannelKind::Slack, "" | "socket") => ReceiveMode::Socket,
            (ChannelKind::Slack, "events") => ReceiveMode::Events,
            (_, other) => {
                return Err(format!(
                    "mode `{other}` does not apply to {kind}: Telegram takes polling or webhook, \
                     Slack socket or events, Discord gateway"
                ));
            }
        })
    }
}

/// A channel's non-secret settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSettings {
    /// How events arrive.
    pub mode: ReceiveMode,
    /// The platform API's base URL when not the public one (a self-hosted Telegram Bot API
    /// server, a proxy, a fake in tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base: Option<String>,
    /// Discord: the Gateway URL to use instead of the one `GET /gateway/bot` names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway_url: Option<String>,
    /// Webhook modes: the public URL the platform posts to (Nexus serves it at
    /// `/channels/{id}/webhook` of its HTTP server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Access rules.
    #[serde(default)]
    pub access: AccessPolicy,
}

/// A channel's secrets, sealed as one JSON document. `Debug` never shows them.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSecrets {
    /// Telegram bot token or Discord bot token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    /// Slack bot token (`xoxb-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot_token: Option<String>,
    /// Slack app-level token (`xapp-…`) for Socket Mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_token: Option<String>,
    /// Slack signing secret for the Events API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    /// Telegram webhook secret token, generated when the channel is added.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_secret: Option<String>,
}

impl fmt::Debug for ChannelSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ChannelSecrets")
            .field("token", &shown(&self.token))
            .field("bot_token", &shown(&self.bot_token))
            .field("app_token", &shown(&self.app_token))
            .field("signing_secret", &shown(&self.signing_secret))
            .field("webhook_secret", &shown(&self.webhook_secret))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_default_to_pairing_and_mention_gating() {
        let s: ChannelSettings = serde_json::from_str(r#"{"mode":"polling"}"#).unwrap();
        assert_eq!(s.access.dm, DmPolicy::Pairing);
        assert_eq!(s.access.groups, GroupPolicy::Mention);
        assert_eq!(s.mode, ReceiveMode::Polling);
    }

    #[test]
    fn modes_default_per_platform_and_foreign_modes_are_refused() {
        assert_eq!(
            ReceiveMode::for_kind(ChannelKind::Telegram, ""),
            Ok(ReceiveMode::Polling)
        );
        assert_eq!(
            ReceiveMode::for_kind(ChannelKind::Slack, "events"),
            Ok(ReceiveMode::Events)
        );
        assert_eq!(
            ReceiveMode::for_kind(ChannelKind::Discord, ""),
            Ok(ReceiveMode::Gateway)
        );
        let err = ReceiveMode::for_kind(ChannelKind::Discord, "webhook").unwrap_err();
        assert!(err.contains("does not apply to discord"), "{err}");
    }

    #[test]
    fn secrets_never_show_in_debug() {
        let s = ChannelSecrets {
            token: Some("123:ABC".into()),
            ..Default::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("ABC"), "{shown}");
    }
}
