//! `[[channels]]` in the configuration file: channels kept in line with the file at every
//! start (created when missing, their settings and secrets updated when changed). Secrets are
//! never written in the file: each names the environment variable holding it.
//!
//! ```toml
//! [[channels]]
//! name = "support"
//! kind = "telegram"            # telegram | discord | slack
//! agent = "assistant"          # an agent of the owner
//! owner = "admin"              # default: the bootstrap admin
//! token_env = "TELEGRAM_BOT_TOKEN"
//! mode = "polling"             # telegram: polling | webhook
//! # api_base = "http://127.0.0.1:8081"   # a self-hosted Bot API server
//! [channels.access]
//! dm = "pairing"               # open | allowlist | pairing
//! allow = ["123456789"]
//! groups = "mention"           # mention | all | off
//! ```

use nexus_channels::{AccessPolicy, ChannelSecrets, ChannelSettings, ReceiveMode};
use nexus_core::ChannelKind;
use serde::Deserialize;

use crate::config::ConfigError;

/// One `[[channels]]` entry as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSection {
    /// Unique among the owner's channels.
    pub name: String,
    /// `telegram`, `discord` or `slack`.
    pub kind: String,
    /// The agent answering (a name of the owner's agents).
    pub agent: String,
    /// The owning user's name; default the bootstrap admin.
    pub owner: Option<String>,
    /// Telegram / Discord: the variable holding the bot token.
    pub token_env: Option<String>,
    /// Slack: the variable holding the bot token (`xoxb-…`).
    pub bot_token_env: Option<String>,
    /// Slack Socket Mode: the variable holding the app-level token (`xapp-…`).
    pub app_token_env: Option<String>,
    /// Slack Events API: the variable holding the signing secret.
    pub signing_secret_env: Option<String>,
    /// Telegram: `polling` (default) or `webhook`.
    pub mode: Option<String>,
    /// The platform API's base URL.
    pub api_base: Option<String>,
    /// Discord: the Gateway URL.
    pub gateway_url: Option<String>,
    /// Webhook modes: the public URL the platform posts to.
    pub webhook_url: Option<String>,
    /// Access rules.
    #[serde(default)]
    pub access: AccessPolicy,
}

/// A configured channel, validated, with its secrets read from the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfiguredChannel {
    /// Name.
    pub name: String,
    /// Platform.
    pub kind: ChannelKind,
    /// Agent name.
    pub agent: String,
    /// Owner's user name, when not the bootstrap admin.
    pub owner: Option<String>,
    /// Settings.
    pub settings: ChannelSettings,
    /// Secrets (redacted in `Debug`).
    pub secrets: ChannelSecrets,
}

/// Validates the `[[channels]]` entries and reads their secrets.
pub(crate) fn resolve(
    sections: Vec<ChannelSection>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ConfiguredChannel>, ConfigError> {
    let mut out: Vec<ConfiguredChannel> = Vec::with_capacity(sections.len());
    for (i, s) in sections.into_iter().enumerate() {
        let key = |field: &str| format!("channels[{i}].{field}");
        if out.iter().any(|c| c.name == s.name && c.owner == s.owner) {
            return Err(ConfigError::new(
                &key("name"),
                format!("the name `{}` is used twice", s.name),
                "Give every channel of an owner its own name.",
            ));
        }
        let kind = match s.kind.as_str() {
            "telegram" => ChannelKind::Telegram,
            "discord" => ChannelKind::Discord,
            "slack" => ChannelKind::Slack,
            other => {
                return Err(ConfigError::new(
                    &key("kind"),
                    format!("unknown kind `{other}`"),
                    "Use \"telegram\", \"discord\" or \"slack\".",
                ));
            }
        };
        let secret = |field: &str, var: &Option<String>| -> Result<Option<String>, ConfigError> {
            let Some(var) = var else { return Ok(None) };
            match env(var).filter(|v| !v.trim().is_empty()) {
                Some(value) => Ok(Some(value.trim().to_owned())),
                None => Err(ConfigError::new(
                    &key(field),
                    format!("the environment variable {var} is not set"),
                    format!("Set {var} to the secret, or remove the channel."),
                )),
            }
        };
        let secrets = ChannelSecrets {
            token: secret("token_env", &s.token_env)?,
            bot_token: secret("bot_token_env", &s.bot_token_env)?,
            app_token: secret("app_token_env", &s.app_token_env)?,
            signing_secret: secret("signing_secret_env", &s.signing_secret_env)?,
            webhook_secret: None,
        };
        let mode = ReceiveMode::for_kind(kind, s.mode.as_deref().unwrap_or_default()).map_err(
            |problem| {
                ConfigError::new(
                    &key("mode"),
                    problem,
                    "Slack's mode follows its secrets: app_token_env for Socket Mode, \
                     signing_secret_env for the Events API.",
                )
            },
        )?;
        let needed = match kind {
            ChannelKind::Slack => secrets.bot_token.is_some(),
            _ => secrets.token.is_some(),
        };
        if !needed {
            let field = if kind == ChannelKind::Slack {
                "bot_token_env"
            } else {
                "token_env"
            };
            return Err(ConfigError::new(
                &key(field),
                "missing",
                format!("Name the environment variable holding the {kind} bot token."),
            ));
        }
        out.push(ConfiguredChannel {
            name: s.name,
            kind,
            agent: s.agent,
            owner: s.owner,
            settings: ChannelSettings {
                mode,
                api_base: s.api_base,
                gateway_url: s.gateway_url,
                webhook_url: s.webhook_url,
                access: s.access,
            },
            secrets,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(toml_text: &str) -> Vec<ChannelSection> {
        #[derive(Deserialize)]
        struct File {
            channels: Vec<ChannelSection>,
        }
        toml::from_str::<File>(toml_text).unwrap().channels
    }

    #[test]
    fn a_channel_reads_its_token_from_the_named_variable() {
        let env = |k: &str| (k == "TG").then(|| "123:abc".to_owned());
        let channels = resolve(
            section(
                r#"
                [[channels]]
                name = "support"
                kind = "telegram"
                agent = "assistant"
                token_env = "TG"
                [channels.access]
                dm = "open"
                "#,
            ),
            &env,
        )
        .unwrap();
        assert_eq!(channels[0].secrets.token.as_deref(), Some("123:abc"));
        assert_eq!(channels[0].settings.mode, ReceiveMode::Polling);
        assert_eq!(
            channels[0].settings.access.dm,
            nexus_channels::DmPolicy::Open
        );
    }

    #[test]
    fn a_missing_variable_names_the_key_and_the_variable() {
        let err = resolve(
            section(
                r#"
                [[channels]]
                name = "s"
                kind = "slack"
                agent = "assistant"
                bot_token_env = "SLACK_BOT"
                "#,
            ),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(err.key, "channels[0].bot_token_env");
        assert!(err.fix.contains("SLACK_BOT"), "{err}");
    }

    #[test]
    fn unknown_fields_and_kinds_are_refused() {
        let err = toml::from_str::<ChannelSection>(
            "name = \"a\"\nkind = \"telegram\"\nagent = \"b\"\ntoken = \"inline\"",
        )
        .unwrap_err();
        assert!(err.to_string().contains("token"), "{err}");
        let err = resolve(
            section("[[channels]]\nname = \"a\"\nkind = \"irc\"\nagent = \"b\""),
            &|_| None,
        )
        .unwrap_err();
        assert_eq!(err.key, "channels[0].kind");
    }
}
