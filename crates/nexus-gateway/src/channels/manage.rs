//! Managing channels (add, pause, resume, remove, access, pairing approval): what the gRPC
//! API and the configuration file do, checked the same way.

use chrono::Utc;
use nexus_channels::{ChannelSecrets, ChannelSettings, ReceiveMode};
use nexus_core::{
    AgentId, BotIdentity, ChannelCredential, ChannelCredentialId, ChannelError, ChannelKind,
    ChannelStatus, UserId,
};
use nexus_store::{ChannelHealth, Pairing, Store, StoreError};
use rand::Rng;

use super::ChannelService;
use super::pairing;

/// A channel to add.
#[derive(Debug, Clone)]
pub struct ChannelInput {
    /// Its name, unique per owner.
    pub name: String,
    /// The platform.
    pub kind: ChannelKind,
    /// The agent answering on it.
    pub agent_id: AgentId,
    /// Its owner (approves pairings; their data key seals the secrets).
    pub owner: UserId,
    /// Settings (mode, base URLs, access).
    pub settings: ChannelSettings,
    /// Secrets (tokens, signing secret).
    pub secrets: ChannelSecrets,
}

/// Why a management operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManageError {
    /// The request is malformed (missing token, wrong mode for the platform…).
    #[error("{0}")]
    Invalid(String),
    /// The platform refused the credentials, or could not be reached to check them.
    #[error("checking the credentials with {kind} failed: {source}")]
    Verify {
        /// The platform.
        kind: ChannelKind,
        /// What it said.
        #[source]
        source: ChannelError,
    },
    /// Sealing the secrets failed.
    #[error("sealing the channel's secrets failed: {0}")]
    Seal(String),
    /// Storage failed (including name conflicts and missing records).
    #[error(transparent)]
    Store(#[from] StoreError),
}

const WEBHOOK_SECRET_LEN: usize = 48;

fn webhook_secret() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::rng();
    (0..WEBHOOK_SECRET_LEN)
        .map(|_| char::from(CHARS[rng.random_range(0..CHARS.len())]))
        .collect()
}

fn required<'a>(value: &'a Option<String>, what: &str) -> Result<&'a str, ManageError> {
    match value.as_deref().map(str::trim) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ManageError::Invalid(format!("{what} is required"))),
    }
}

/// Checks a channel's settings and secrets fit its platform, filling in what is derived
/// (Telegram's webhook secret and URL, the receive mode of Slack). `public_url` is the
/// server's public base URL, for webhook URLs not given explicitly.
pub(crate) fn prepare(
    id: ChannelCredentialId,
    kind: ChannelKind,
    settings: &mut ChannelSettings,
    secrets: &mut ChannelSecrets,
    public_url: Option<&url::Url>,
) -> Result<(), ManageError> {
    let invalid = |m: &str| Err(ManageError::Invalid(m.to_owned()));
    for (what, url) in [
        ("api base", &settings.api_base),
        ("gateway URL", &settings.gateway_url),
        ("webhook URL", &settings.webhook_url),
    ] {
        if let Some(url) = url
            && url::Url::parse(url).is_err()
        {
            return Err(ManageError::Invalid(format!(
                "the {what} `{url}` is not a URL"
            )));
        }
    }
    match kind {
        ChannelKind::Telegram => {
            let token = required(&secrets.token, "a Telegram bot token (--token)")?;
            let (id_part, rest) = token.split_once(':').unwrap_or(("", ""));
            if id_part.is_empty() || !id_part.bytes().all(|b| b.is_ascii_digit()) || rest.is_empty()
            {
                return invalid(
                    "a Telegram bot token looks like `123456789:AA…` (from @BotFather)",
                );
            }
            match settings.mode {
                ReceiveMode::Polling => {}
                ReceiveMode::Webhook => {
                    if settings.webhook_url.is_none() {
                        let Some(base) = public_url else {
                            return invalid(
                                "webhook mode needs --webhook-url or the server's public URL",
                            );
                        };
                        let url = base
                            .join(&format!("channels/{id}/webhook"))
                            .map_err(|e| ManageError::Invalid(e.to_string()))?;
                        settings.webhook_url = Some(url.to_string());
                    }
                    if secrets.webhook_secret.is_none() {
                        secrets.webhook_secret = Some(webhook_secret());
                    }
                }
                _ => return invalid("Telegram receives by `polling` or `webhook`"),
            }
        }
        ChannelKind::Discord => {
            required(&secrets.token, "a Discord bot token (--token)")?;
            if settings.mode != ReceiveMode::Gateway {
                return invalid("Discord receives over its `gateway`");
            }
        }
        ChannelKind::Slack => {
            let bot = required(&secrets.bot_token, "a Slack bot token (--bot-token xoxb-…)")?;
            if !bot.starts_with("xoxb-") {
                return invalid("a Slack bot token starts with `xoxb-`");
            }
            settings.mode = match (&secrets.app_token, &secrets.signing_secret) {
                (Some(app), None) if app.starts_with("xapp-") => ReceiveMode::Socket,
                (Some(_), None) => return invalid("a Slack app-level token starts with `xapp-`"),
                (None, Some(s)) if !s.trim().is_empty() => {
                    if settings.webhook_url.is_none()
                        && let Some(base) = public_url
                        && let Ok(url) = base.join(&format!("channels/{id}/webhook"))
                    {
                        settings.webhook_url = Some(url.to_string());
                    }
                    ReceiveMode::Events
                }
                (Some(_), Some(_)) => {
                    return invalid(
                        "give either --app-token (Socket Mode) or --signing-secret (Events API), \
                         not both",
                    );
                }
                _ => {
                    return invalid(
                        "Slack needs --app-token xapp-… (Socket Mode) or --signing-secret \
                         (Events API)",
                    );
                }
            };
        }
        other => {
            return Err(ManageError::Invalid(format!(
                "{other} is not a channel platform; use telegram, discord or slack"
            )));
        }
    }
    Ok(())
}

impl ChannelService {
    /// Adds a channel: checks its input, checks the credentials against the platform, seals
    /// the secrets with the owner's data key, stores it, and starts it.
    pub async fn add(
        &self,
        mut input: ChannelInput,
        public_url: Option<&url::Url>,
    ) -> Result<(ChannelCredential, BotIdentity), ManageError> {
        let name = input.name.trim().to_owned();
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(ManageError::Invalid(
                "a channel name is 1-64 letters, digits, `-` or `_`".to_owned(),
            ));
        }
        let id = ChannelCredentialId::new();
        prepare(
            id,
            input.kind,
            &mut input.settings,
            &mut input.secrets,
            public_url,
        )?;
        let identity = self
            .verify(input.kind, &input.settings, &input.secrets, id)
            .await?;
        let plain =
            serde_json::to_vec(&input.secrets).map_err(|e| ManageError::Seal(e.to_string()))?;
        let sealed = self
            .inner
            .vault
            .seal_for(input.owner, id.as_uuid().as_bytes(), &plain)
            .await
            .map_err(|e| ManageError::Seal(e.to_string()))?;
        let settings =
            serde_json::to_value(&input.settings).map_err(|e| ManageError::Seal(e.to_string()))?;
        let channel = ChannelCredential {
            id,
            user_id: input.owner,
            agent_id: input.agent_id,
            kind: input.kind,
            name,
            settings,
            sealed_secret: sealed,
            status: ChannelStatus::Active,
            created_at: Utc::now(),
        };
        self.inner.store.create_channel_credential(&channel).await?;
        self.sync().await?;
        Ok((channel, identity))
    }

    /// Checks credentials against the platform without storing anything.
    pub async fn verify(
        &self,
        kind: ChannelKind,
        settings: &ChannelSettings,
        secrets: &ChannelSecrets,
        id: ChannelCredentialId,
    ) -> Result<BotIdentity, ManageError> {
        let verify = |source| ManageError::Verify { kind, source };
        let adapter = self
            .inner
            .factory
            .build(kind, settings, secrets, self.context(id).map_err(verify)?)
            .map_err(verify)?;
        adapter.verify().await.map_err(verify)
    }

    /// Pauses or resumes a channel.
    pub async fn set_status(
        &self,
        id: ChannelCredentialId,
        status: ChannelStatus,
    ) -> Result<(), ManageError> {
        self.inner.store.set_channel_status(id, status).await?;
        self.sync().await?;
        Ok(())
    }

    /// Replaces a channel's settings (access rules, base URLs) and restarts it.
    pub async fn update_settings(
        &self,
        channel: &ChannelCredential,
        settings: &ChannelSettings,
    ) -> Result<(), ManageError> {
        let value =
            serde_json::to_value(settings).map_err(|e| ManageError::Invalid(e.to_string()))?;
        self.inner
            .store
            .update_channel_settings(channel.id, &value)
            .await?;
        self.sync().await?;
        Ok(())
    }

    /// Deletes a channel and stops it; false if it did not exist.
    pub async fn remove(&self, id: ChannelCredentialId) -> Result<bool, ManageError> {
        let removed = self.inner.store.delete_channel_credential(id).await?;
        self.sync().await?;
        Ok(removed)
    }

    /// A channel's last reported health.
    pub async fn health(
        &self,
        id: ChannelCredentialId,
    ) -> Result<Option<ChannelHealth>, ManageError> {
        Ok(self.inner.store.get_channel_health(id).await?)
    }
}

/// Approves the pending pairing with `code` (as typed) on a channel of `owner` (any channel
/// when `None`, for admins).
pub async fn approve(
    store: &dyn Store,
    code: &str,
    owner: Option<UserId>,
) -> Result<Option<Pairing>, StoreError> {
    store
        .approve_pairing(&pairing::normalize(code), owner, Utc::now())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_channels::AccessPolicy;

    fn settings(mode: ReceiveMode) -> ChannelSettings {
        ChannelSettings {
            mode,
            api_base: None,
            gateway_url: None,
            webhook_url: None,
            access: AccessPolicy::default(),
        }
    }

    #[test]
    fn telegram_webhook_gets_a_secret_and_a_url_under_the_public_url() {
        let id = ChannelCredentialId::new();
        let mut s = settings(ReceiveMode::Webhook);
        let mut secrets = ChannelSecrets {
            token: Some("123:ABC".into()),
            ..Default::default()
        };
        let base = url::Url::parse("https://nexus.example.com/").unwrap();
        prepare(id, ChannelKind::Telegram, &mut s, &mut secrets, Some(&base)).unwrap();
        assert_eq!(
            s.webhook_url.as_deref(),
            Some(format!("https://nexus.example.com/channels/{id}/webhook").as_str())
        );
        assert_eq!(secrets.webhook_secret.as_ref().map(String::len), Some(48));
    }

    #[test]
    fn malformed_tokens_and_mixed_slack_modes_are_refused_with_the_fix() {
        let id = ChannelCredentialId::new();
        let mut secrets = ChannelSecrets {
            token: Some("not-a-token".into()),
            ..Default::default()
        };
        let err = prepare(
            id,
            ChannelKind::Telegram,
            &mut settings(ReceiveMode::Polling),
            &mut secrets,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("@BotFather"), "{err}");

        let mut slack = ChannelSecrets {
            bot_token: Some("xoxb-1".into()),
            app_token: Some("xapp-1".into()),
            signing_secret: Some("s".into()),
            ..Default::default()
        };
        let err = prepare(
            id,
            ChannelKind::Slack,
            &mut settings(ReceiveMode::Socket),
            &mut slack,
            None,
        )
        .unwrap_err();
        assert!(err.to_string().contains("not both"), "{err}");

        slack.signing_secret = None;
        let mut s = settings(ReceiveMode::Events);
        prepare(id, ChannelKind::Slack, &mut s, &mut slack, None).unwrap();
        assert_eq!(s.mode, ReceiveMode::Socket);
    }
}

/// What applying the configuration did to one channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Created (credentials checked with the platform).
    Created,
    /// Settings or secrets changed.
    Updated,
    /// Already as configured.
    Unchanged,
}

impl ChannelService {
    /// Brings the `[[channels]]` of the configuration into the store: creates missing
    /// channels (checking their credentials), updates the settings and secrets of existing
    /// ones. Returns what happened to each, by name, or the error that stopped it.
    pub async fn apply_configured(
        &self,
        configured: &[crate::channel_config::ConfiguredChannel],
        public_url: Option<&url::Url>,
    ) -> Vec<(String, Result<Applied, ManageError>)> {
        let mut out = Vec::with_capacity(configured.len());
        for c in configured {
            out.push((c.name.clone(), self.apply_one(c, public_url).await));
        }
        out
    }

    async fn apply_one(
        &self,
        c: &crate::channel_config::ConfiguredChannel,
        public_url: Option<&url::Url>,
    ) -> Result<Applied, ManageError> {
        let store = &self.inner.store;
        let owner_name = c.owner.as_deref().unwrap_or(crate::bootstrap::ADMIN_USER);
        let owner = store.get_user_by_name(owner_name).await?.ok_or_else(|| {
            ManageError::Invalid(format!("channel {}: no user named `{owner_name}`", c.name))
        })?;
        let agent = store
            .get_agent_by_name(owner.id, &c.agent)
            .await?
            .ok_or_else(|| {
                ManageError::Invalid(format!(
                    "channel {}: user `{owner_name}` has no agent `{}`",
                    c.name, c.agent
                ))
            })?;
        let existing = store
            .list_channel_credentials(Some(owner.id))
            .await?
            .into_iter()
            .find(|e| e.name == c.name);
        let Some(existing) = existing else {
            self.add(
                ChannelInput {
                    name: c.name.clone(),
                    kind: c.kind,
                    agent_id: agent.id,
                    owner: owner.id,
                    settings: c.settings.clone(),
                    secrets: c.secrets.clone(),
                },
                public_url,
            )
            .await?;
            return Ok(Applied::Created);
        };
        if existing.kind != c.kind {
            return Err(ManageError::Invalid(format!(
                "channel {} exists as a {} channel; remove it (`nexus channel remove {}`) to \
                 make it {}",
                c.name, existing.kind, c.name, c.kind
            )));
        }
        let (stored_settings, stored_secrets) = self
            .open(&existing)
            .await
            .map_err(|e| ManageError::Seal(e.to_string()))?;
        let mut settings = c.settings.clone();
        let mut secrets = c.secrets.clone();
        // Derived values (webhook secret and URL) are kept, not regenerated.
        if secrets.webhook_secret.is_none() {
            secrets.webhook_secret = stored_secrets.webhook_secret.clone();
        }
        if settings.webhook_url.is_none() {
            settings.webhook_url = stored_settings.webhook_url.clone();
        }
        prepare(existing.id, c.kind, &mut settings, &mut secrets, public_url)?;
        let mut changed = false;
        if secrets != stored_secrets {
            self.verify(c.kind, &settings, &secrets, existing.id)
                .await?;
            let plain =
                serde_json::to_vec(&secrets).map_err(|e| ManageError::Seal(e.to_string()))?;
            let sealed = self
                .inner
                .vault
                .seal_for(owner.id, existing.id.as_uuid().as_bytes(), &plain)
                .await
                .map_err(|e| ManageError::Seal(e.to_string()))?;
            store.update_channel_secret(existing.id, &sealed).await?;
            changed = true;
        }
        if settings != stored_settings || existing.agent_id != agent.id {
            if existing.agent_id != agent.id {
                return Err(ManageError::Invalid(format!(
                    "channel {} answers with another agent; remove and re-add it to change the \
                     agent",
                    c.name
                )));
            }
            self.update_settings(&existing, &settings).await?;
            changed = true;
        }
        if changed {
            self.sync().await?;
            Ok(Applied::Updated)
        } else {
            Ok(Applied::Unchanged)
        }
    }
}
