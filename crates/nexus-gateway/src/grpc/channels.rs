//! Channel management over gRPC: add (checked against the platform, secrets sealed), list,
//! show (with health and pairings), pause/resume, access rules, remove, pairing approval.
//! Callers see and change their own channels; admins see and change all.

use std::str::FromStr;

use chrono::SecondsFormat;
use nexus_channels::{
    AccessPolicy, ChannelSecrets, ChannelSettings, DmPolicy, GroupPolicy, ReceiveMode,
};
use nexus_core::{ChannelCredential, ChannelCredentialId, ChannelKind, ChannelStatus};
use nexus_security::Principal;
use nexus_store::{ChannelHealth, Pairing, StoreError};
use tracing::info;

use super::GatewayService;
use crate::channels::{ChannelInput, ManageError, approve};
use crate::error::ApiError;
use crate::pb;
use crate::validate;

/// Longest secret accepted, in bytes.
const MAX_SECRET: usize = 4096;

impl From<ManageError> for ApiError {
    fn from(err: ManageError) -> Self {
        match err {
            ManageError::Invalid(m) => ApiError::InvalidArgument(m),
            ManageError::Verify { .. } => ApiError::InvalidArgument(err.to_string()),
            ManageError::Store(StoreError::Conflict { .. }) => {
                ApiError::AlreadyExists("you already have a channel of that name".to_owned())
            }
            ManageError::Store(e) => e.into(),
            ManageError::Seal(_) => ApiError::Internal(Box::new(err)),
        }
    }
}

fn secret(value: &str, what: &str) -> Result<Option<String>, ApiError> {
    let v = value.trim();
    if v.is_empty() {
        return Ok(None);
    }
    if v.len() > MAX_SECRET || v.chars().any(char::is_control) {
        return Err(ApiError::invalid(format!(
            "{what} must be at most {MAX_SECRET} bytes of printable text"
        )));
    }
    Ok(Some(v.to_owned()))
}

fn optional(value: &str) -> Option<String> {
    let v = value.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

/// A list of short names, trimmed, empty ones dropped; `refusal` when one is too long or holds
/// control characters.
fn entries(list: &[String], refusal: &str) -> Result<Vec<String>, ApiError> {
    let out: Vec<String> = list
        .iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if out
        .iter()
        .any(|s| s.len() > 128 || s.chars().any(char::is_control))
    {
        return Err(ApiError::invalid(refusal));
    }
    Ok(out)
}

fn access(a: Option<&pb::ChannelAccess>) -> Result<AccessPolicy, ApiError> {
    let Some(a) = a else {
        return Ok(AccessPolicy::default());
    };
    let dm = match a.dm.trim() {
        "" | "pairing" => DmPolicy::Pairing,
        "open" => DmPolicy::Open,
        "allowlist" => DmPolicy::Allowlist,
        other => {
            return Err(ApiError::invalid(format!(
                "direct-message policy `{other}` is not one of open, allowlist, pairing"
            )));
        }
    };
    let groups = match a.groups.trim() {
        "" | "mention" => GroupPolicy::Mention,
        "all" => GroupPolicy::All,
        "off" => GroupPolicy::Off,
        other => {
            return Err(ApiError::invalid(format!(
                "group policy `{other}` is not one of mention, all, off"
            )));
        }
    };
    let allow = entries(&a.allow, "allowlist entries are platform user ids")?;
    let tools = match &a.tools {
        Some(t) => Some(entries(
            &t.tools,
            "tool entries are tool names or mcp:NAME",
        )?),
        None => None,
    };
    Ok(AccessPolicy {
        dm,
        allow,
        groups,
        tools,
    })
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn pb_access(a: &AccessPolicy) -> pb::ChannelAccess {
    pb::ChannelAccess {
        dm: a.dm.as_str().to_owned(),
        allow: a.allow.clone(),
        groups: a.groups.as_str().to_owned(),
        tools: a.tools.as_ref().map(|t| pb::ToolLimit { tools: t.clone() }),
    }
}

fn pb_channel(
    c: &ChannelCredential,
    health: Option<&ChannelHealth>,
    pairings: &[Pairing],
) -> pb::Channel {
    let settings: Option<ChannelSettings> = serde_json::from_value(c.settings.clone()).ok();
    pb::Channel {
        id: c.id.to_string(),
        name: c.name.clone(),
        kind: c.kind.as_str().to_owned(),
        agent_id: c.agent_id.to_string(),
        owner_id: c.user_id.to_string(),
        status: c.status.as_str().to_owned(),
        mode: settings
            .as_ref()
            .map(|s| s.mode.as_str().to_owned())
            .unwrap_or_default(),
        api_base: settings
            .as_ref()
            .and_then(|s| s.api_base.clone())
            .unwrap_or_default(),
        webhook_url: settings
            .as_ref()
            .and_then(|s| s.webhook_url.clone())
            .unwrap_or_default(),
        gateway_url: settings
            .as_ref()
            .and_then(|s| s.gateway_url.clone())
            .unwrap_or_default(),
        access: settings.as_ref().map(|s| pb_access(&s.access)),
        created_at: time(c.created_at),
        state: health
            .map(|h| h.state.as_str().to_owned())
            .unwrap_or_default(),
        last_error: health
            .and_then(|h| h.last_error.clone())
            .unwrap_or_default(),
        state_updated_at: health.map(|h| time(h.updated_at)).unwrap_or_default(),
        holder: health.and_then(|h| h.holder.clone()).unwrap_or_default(),
        pairings: pairings
            .iter()
            .map(|p| pb::ChannelPairing {
                sender_id: p.sender_id.clone(),
                sender_name: p.sender_name.clone().unwrap_or_default(),
                code: if p.approved_at.is_some() {
                    String::new()
                } else {
                    p.code.clone()
                },
                expires_at: time(p.expires_at),
                approved: p.approved_at.is_some(),
            })
            .collect(),
    }
}

impl GatewayService {
    /// A channel by id (any the caller may access) or by name (the caller's own).
    async fn resolve_channel(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<ChannelCredential, ApiError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ApiError::invalid("channel is required (a name or an id)"));
        }
        let found = match reference.parse::<uuid::Uuid>() {
            Ok(id) => self
                .store
                .get_channel_credential(ChannelCredentialId::from(id))
                .await?
                .filter(|c| principal.can_access(c.user_id)),
            Err(_) => self
                .store
                .list_channel_credentials(Some(principal.user_id))
                .await?
                .into_iter()
                .find(|c| c.name == reference),
        };
        found.ok_or_else(|| {
            ApiError::NotFound(format!(
                "channel `{reference}` not found; `nexus channel list` shows your channels"
            ))
        })
    }

    async fn show_channel(&self, c: &ChannelCredential) -> Result<pb::Channel, ApiError> {
        let health = self.channels.health(c.id).await?;
        let pairings = self.store.list_pairings(c.id).await?;
        Ok(pb_channel(c, health.as_ref(), &pairings))
    }

    pub(crate) async fn add_channel_for(
        &self,
        principal: Principal,
        r: pb::AddChannelRequest,
    ) -> Result<pb::AddChannelResponse, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot add channels".into(),
            ));
        }
        let kind = ChannelKind::from_str(r.kind.trim()).ok().filter(|k| {
            matches!(
                k,
                ChannelKind::Telegram | ChannelKind::Discord | ChannelKind::Slack
            )
        });
        let Some(kind) = kind else {
            return Err(ApiError::invalid(format!(
                "channel kind `{}` is not one of telegram, discord, slack",
                r.kind
            )));
        };
        let name = optional(&r.name).unwrap_or_else(|| kind.as_str().to_owned());
        validate::name("channel", &name, false)?;
        let agent = self.resolve_agent(&principal, &r.agent).await?;
        let mode = ReceiveMode::for_kind(kind, &r.mode).map_err(ApiError::InvalidArgument)?;
        let settings = ChannelSettings {
            mode,
            api_base: optional(&r.api_base),
            gateway_url: optional(&r.gateway_url),
            webhook_url: optional(&r.webhook_url),
            access: access(r.access.as_ref())?,
        };
        let secrets = ChannelSecrets {
            token: secret(&r.token, "token")?,
            bot_token: secret(&r.bot_token, "bot_token")?,
            app_token: secret(&r.app_token, "app_token")?,
            signing_secret: secret(&r.signing_secret, "signing_secret")?,
            webhook_secret: None,
        };
        let (channel, bot) = self
            .channels
            .add(
                ChannelInput {
                    name,
                    kind,
                    agent_id: agent.id,
                    owner: agent.owner_id,
                    settings,
                    secrets,
                },
                Some(&self.public_url),
            )
            .await?;
        info!(channel_id = %channel.id, channel = %kind, name = %channel.name, bot = %bot.name, "Channel added");
        Ok(pb::AddChannelResponse {
            channel: Some(self.show_channel(&channel).await?),
            bot_id: bot.id,
            bot_name: bot.name,
        })
    }

    pub(crate) async fn list_channels_for(
        &self,
        principal: Principal,
    ) -> Result<pb::ListChannelsResponse, ApiError> {
        let owner = (!principal.is_admin()).then_some(principal.user_id);
        let channels = self.store.list_channel_credentials(owner).await?;
        let mut out = Vec::with_capacity(channels.len());
        for c in &channels {
            let health = self.channels.health(c.id).await?;
            out.push(pb_channel(c, health.as_ref(), &[]));
        }
        Ok(pb::ListChannelsResponse { channels: out })
    }

    pub(crate) async fn get_channel_for(
        &self,
        principal: Principal,
        r: pb::GetChannelRequest,
    ) -> Result<pb::Channel, ApiError> {
        let channel = self.resolve_channel(&principal, &r.channel).await?;
        self.show_channel(&channel).await
    }

    pub(crate) async fn remove_channel_for(
        &self,
        principal: Principal,
        r: pb::RemoveChannelRequest,
    ) -> Result<pb::RemoveChannelResponse, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot remove channels".into(),
            ));
        }
        let channel = self.resolve_channel(&principal, &r.channel).await?;
        let removed = self.channels.remove(channel.id).await?;
        info!(channel_id = %channel.id, "Channel removed");
        Ok(pb::RemoveChannelResponse { removed })
    }

    pub(crate) async fn set_channel_status_for(
        &self,
        principal: Principal,
        r: pb::SetChannelStatusRequest,
    ) -> Result<pb::Channel, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot change channels".into(),
            ));
        }
        let channel = self.resolve_channel(&principal, &r.channel).await?;
        let status = if r.paused {
            ChannelStatus::Paused
        } else {
            ChannelStatus::Active
        };
        self.channels.set_status(channel.id, status).await?;
        let channel = self
            .resolve_channel(&principal, &channel.id.to_string())
            .await?;
        self.show_channel(&channel).await
    }

    pub(crate) async fn set_channel_access_for(
        &self,
        principal: Principal,
        r: pb::SetChannelAccessRequest,
    ) -> Result<pb::Channel, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot change channels".into(),
            ));
        }
        let channel = self.resolve_channel(&principal, &r.channel).await?;
        let mut settings: ChannelSettings = serde_json::from_value(channel.settings.clone())
            .map_err(|e| ApiError::Internal(Box::new(e)))?;
        settings.access = access(r.access.as_ref())?;
        self.channels.update_settings(&channel, &settings).await?;
        let channel = self
            .resolve_channel(&principal, &channel.id.to_string())
            .await?;
        self.show_channel(&channel).await
    }

    pub(crate) async fn approve_pairing_for(
        &self,
        principal: Principal,
        r: pb::ApprovePairingRequest,
    ) -> Result<pb::ApprovePairingResponse, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot approve pairings".into(),
            ));
        }
        let owner = (!principal.is_admin()).then_some(principal.user_id);
        let pairing = approve(self.store.as_ref(), &r.code, owner)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(
                    "no pending pairing has this code on your channels (codes expire after an \
                     hour; the sender gets a new one by writing again)"
                        .to_owned(),
                )
            })?;
        let channel = self
            .store
            .get_channel_credential(pairing.channel_id)
            .await?;
        info!(channel_id = %pairing.channel_id, sender = %pairing.sender_id, "Pairing approved");
        Ok(pb::ApprovePairingResponse {
            channel_id: pairing.channel_id.to_string(),
            channel_name: channel.map(|c| c.name).unwrap_or_default(),
            sender_id: pairing.sender_id,
            sender_name: pairing.sender_name.unwrap_or_default(),
        })
    }
}
