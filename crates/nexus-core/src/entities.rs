//! The entities of the data model: users, their API keys, agents, sessions and channel
//! credentials. Validation of user-supplied fields happens in the constructors callers use at
//! the edge (gateway, CLI); the store trusts these types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{AgentId, ApiKeyId, ChannelCredentialId, SessionId, UserId};
use crate::message::{ChannelKind, UnknownVariant};
use crate::tool::ToolPolicy;

/// The step limit of the agent loop when an agent does not set one.
pub const DEFAULT_MAX_STEPS: u32 = 8;

/// What a user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UserRole {
    /// Manages users, keys and every agent.
    Admin,
    /// Owns agents, sessions and credentials of their own.
    User,
    /// Reads what they are shown; cannot chat or change anything.
    Viewer,
}

impl UserRole {
    /// The lowercase name used in storage and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            UserRole::Admin => "admin",
            UserRole::User => "user",
            UserRole::Viewer => "viewer",
        }
    }
}

impl fmt::Display for UserRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for UserRole {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(UserRole::Admin),
            "user" => Ok(UserRole::User),
            "viewer" => Ok(UserRole::Viewer),
            other => Err(UnknownVariant {
                what: "role",
                value: other.to_owned(),
            }),
        }
    }
}

/// An account holder: owns agents, sessions, keys and credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique id.
    pub id: UserId,
    /// Unique login name.
    pub name: String,
    /// What the user may do.
    pub role: UserRole,
    /// When the user was created.
    pub created_at: DateTime<Utc>,
}

/// A programmatic access credential. Only a hash of the secret is ever stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// Unique id.
    pub id: ApiKeyId,
    /// The user the key acts as.
    pub user_id: UserId,
    /// A label chosen by the user.
    pub name: String,
    /// The first characters of the key, shown in listings to tell keys apart.
    pub prefix: String,
    /// SHA-256 of the full key, hex encoded.
    pub hash: String,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When the key was last used to authenticate, if ever (updated coarsely).
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the key was revoked; a revoked key never authenticates again.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A configured AI agent: personality, model chain and tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    /// Unique id.
    pub id: AgentId,
    /// The owning user.
    pub owner_id: UserId,
    /// Name, unique per owner (`[a-z0-9_-]`, 1–64 characters).
    pub name: String,
    /// Free text shown in listings.
    pub description: String,
    /// The system prompt. Kept byte-stable across turns so provider prompt caches stay warm.
    pub system_prompt: String,
    /// Primary model as `provider/model`, e.g. `openai/gpt-4o-mini`.
    pub model: String,
    /// Fallback models, tried in order when the primary fails over.
    pub fallback_models: Vec<String>,
    /// Names of the tools the agent may call (`mcp:{server}` allows all tools of an MCP
    /// server).
    pub tools: Vec<String>,
    /// What the agent's tools may do beyond their names (network access of sandboxed code).
    #[serde(default)]
    pub tool_policy: ToolPolicy,
    /// Upper bound of model calls in one turn.
    pub max_steps: u32,
    /// Upper bound of output tokens per model call; provider default when `None`.
    pub max_output_tokens: Option<u32>,
    /// Sampling temperature; provider default when `None`.
    pub temperature: Option<f32>,
    /// When the agent was created.
    pub created_at: DateTime<Utc>,
    /// When the agent was last changed.
    pub updated_at: DateTime<Utc>,
}

/// A conversation thread, scoped to user + agent + channel + chat (+ thread).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Unique id.
    pub id: SessionId,
    /// The user the session belongs to.
    pub user_id: UserId,
    /// The agent that answers in the session.
    pub agent_id: AgentId,
    /// The channel the session lives on.
    pub channel: ChannelKind,
    /// The platform scope inside the channel (chat id, plus thread or topic id); for sessions
    /// created over the API, the session id itself.
    pub scope: String,
    /// A short title (the start of the first message), for listings.
    pub title: String,
    /// When the session was created.
    pub created_at: DateTime<Utc>,
    /// When a message was last added.
    pub updated_at: DateTime<Utc>,
}

/// Whether a channel connection should run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelStatus {
    /// Started with the server.
    Active,
    /// Kept but not started.
    Paused,
}

impl ChannelStatus {
    /// The lowercase name used in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelStatus::Active => "active",
            ChannelStatus::Paused => "paused",
        }
    }
}

impl FromStr for ChannelStatus {
    type Err = UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(ChannelStatus::Active),
            "paused" => Ok(ChannelStatus::Paused),
            other => Err(UnknownVariant {
                what: "channel status",
                value: other.to_owned(),
            }),
        }
    }
}

/// Credentials of one channel connection (a bot token, app token, signing secret…), bound to
/// one agent. The secret part is only ever stored sealed (see `nexus-security`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelCredential {
    /// Unique id; also the associated data of the sealed secret.
    pub id: ChannelCredentialId,
    /// The owning user, whose data key seals the secret.
    pub user_id: UserId,
    /// The agent that answers on this channel.
    pub agent_id: AgentId,
    /// The platform.
    pub kind: ChannelKind,
    /// A label, unique per user.
    pub name: String,
    /// Non-secret settings (mode, API base URL, access policy…) as JSON.
    pub settings: serde_json::Value,
    /// The sealed secret: nonce and ciphertext, as produced by the sealing code.
    #[serde(skip)]
    pub sealed_secret: Vec<u8>,
    /// Whether the channel should run.
    pub status: ChannelStatus,
    /// When the credential was created.
    pub created_at: DateTime<Utc>,
}
