//! Records that exist only in storage: inbox items, deliveries, usage, leases, and the inputs of
//! the store's transactional operations.

use chrono::{DateTime, Utc};
use nexus_core::{
    AgentId, ChannelCredentialId, ChannelKind, DeliveryId, Message, MessageId, SessionId, TurnId,
    Usage, UserId,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The deduplication key of an inbound platform event: unique per channel + account + external
/// id (Telegram `update_id`, Slack `event_id`, Discord message id, a client's idempotency key).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DedupeKey {
    /// The platform.
    pub channel: ChannelKind,
    /// The account (channel credential id, or the API key's user for gRPC).
    pub account: String,
    /// The platform's id of the event.
    pub external_id: String,
}

/// An inbound message to commit: the user message and, optionally, its deduplication key.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInbound {
    /// The message (role user, direction inbound); its `seq` is assigned by the store.
    pub message: Message,
    /// Set for platform events and idempotent API calls.
    pub dedupe: Option<DedupeKey>,
}

/// State of an inbox item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InboxStatus {
    /// Waiting for (or in) a turn.
    Pending,
    /// Answered: the turn's results are committed.
    Done,
    /// Given up: the turn failed and will not be retried.
    Failed,
}

impl InboxStatus {
    /// The lowercase name used in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            InboxStatus::Pending => "pending",
            InboxStatus::Done => "done",
            InboxStatus::Failed => "failed",
        }
    }
}

/// One inbound message waiting for, or having had, its turn. Its id is the turn's id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxItem {
    /// The turn that answers the message.
    pub turn_id: TurnId,
    /// The session.
    pub session_id: SessionId,
    /// The user message.
    pub message_id: MessageId,
    /// The user message's position in the session.
    pub message_seq: i64,
    /// State.
    pub status: InboxStatus,
    /// How many times a turn was started for it (crash recovery counts attempts).
    pub attempts: u32,
    /// Why it failed, when it did.
    pub error: Option<String>,
    /// When it was committed.
    pub created_at: DateTime<Utc>,
    /// When it reached `Done` or `Failed`.
    pub completed_at: Option<DateTime<Utc>>,
}

/// What [`crate::InboxStore::enqueue`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnqueueOutcome {
    /// The message and its inbox item were committed.
    Enqueued(InboxItem),
    /// An item with the same deduplication key exists; nothing was written.
    Duplicate(InboxItem),
}

impl EnqueueOutcome {
    /// The inbox item, new or existing.
    pub fn item(&self) -> &InboxItem {
        match self {
            EnqueueOutcome::Enqueued(item) | EnqueueOutcome::Duplicate(item) => item,
        }
    }
}

/// State of an outbound delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not yet sent.
    Pending,
    /// A send was attempted and its outcome is unknown (reconcile before resending).
    Ambiguous,
    /// The platform accepted it; `platform_message_id` is set.
    Delivered,
    /// Given up.
    Failed,
}

impl DeliveryStatus {
    /// The lowercase name used in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Ambiguous => "ambiguous",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// The delivery of a turn's reply to its channel (the outbox).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    /// Unique id.
    pub id: DeliveryId,
    /// The turn whose reply this is (one delivery per turn).
    pub turn_id: TurnId,
    /// The session.
    pub session_id: SessionId,
    /// The final assistant message delivered.
    pub message_id: MessageId,
    /// The channel to deliver on.
    pub channel: ChannelKind,
    /// State.
    pub status: DeliveryStatus,
    /// The platform's id of the sent message, once known.
    pub platform_message_id: Option<String>,
    /// Send attempts so far.
    pub attempts: u32,
    /// The last failure, if any.
    pub last_error: Option<String>,
    /// When the record was created.
    pub created_at: DateTime<Utc>,
    /// When the record last changed.
    pub updated_at: DateTime<Utc>,
}

/// The usage of one model call, with who and what it is billed to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Unique id.
    pub id: Uuid,
    /// The turn.
    pub turn_id: TurnId,
    /// The session.
    pub session_id: SessionId,
    /// The session's user.
    pub user_id: UserId,
    /// The agent.
    pub agent_id: AgentId,
    /// The model, as `provider/model`.
    pub model: String,
    /// Tokens.
    pub usage: Usage,
    /// Cost in millionths of a US dollar, when the price is known.
    pub cost_micros: Option<i64>,
    /// When the call finished.
    pub created_at: DateTime<Utc>,
}

/// Everything a finished turn writes, committed in one transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct TurnCommit {
    /// The turn (inbox item) being completed.
    pub turn_id: TurnId,
    /// The session.
    pub session_id: SessionId,
    /// Assistant and tool messages, in order; the store assigns their `seq`.
    pub messages: Vec<Message>,
    /// Usage of every model call of the turn.
    pub usage: Vec<UsageRecord>,
    /// The reply's delivery record, `Delivered` when it was already streamed to its client.
    pub delivery: Option<NewDelivery>,
}

/// The delivery record written with a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Unique id.
    pub id: DeliveryId,
    /// The final assistant message.
    pub message_id: MessageId,
    /// The channel to deliver on.
    pub channel: ChannelKind,
    /// Initial state.
    pub status: DeliveryStatus,
}

/// What a turn-completing operation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitOutcome {
    /// The turn's results are now committed.
    Committed,
    /// The inbox item was no longer pending (another worker finished it); nothing was written.
    AlreadyCompleted,
}

/// Which sessions to list.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionFilter {
    /// Only this user's sessions.
    pub user_id: Option<UserId>,
    /// Only this agent's sessions.
    pub agent_id: Option<AgentId>,
    /// At most this many, most recently updated first (0 means the store's default of 100).
    pub limit: u32,
}

/// Which usage records to read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UsageFilter {
    /// Only this user's usage.
    pub user_id: Option<UserId>,
    /// Only this agent's usage.
    pub agent_id: Option<AgentId>,
    /// Only this session's usage.
    pub session_id: Option<SessionId>,
    /// Only usage at or after this time.
    pub since: Option<DateTime<Utc>>,
}

/// How a usage summary is grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageGrouping {
    /// By `provider/model`.
    Model,
    /// By agent.
    Agent,
    /// By user.
    User,
    /// By UTC day (`YYYY-MM-DD`).
    Day,
}

/// Usage added up over one group of a summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageTotal {
    /// What the group is: the model, the agent's or user's id, or the day.
    pub key: String,
    /// How people know it: the model, the agent's or user's name (empty when deleted), the
    /// day.
    pub label: String,
    /// Model calls.
    pub calls: u64,
    /// Turns those calls belonged to.
    pub turns: u64,
    /// Tokens.
    pub usage: Usage,
    /// Cost in millionths of a US dollar, of the calls whose price was known.
    pub cost_micros: i64,
    /// Calls without a known price (not in `cost_micros`).
    pub unpriced_calls: u64,
}

/// A user's provider API key, stored sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderCredential {
    /// Unique id; also the associated data of the sealed key.
    pub id: Uuid,
    /// The owning user.
    pub user_id: UserId,
    /// The provider's name (`openai`, `anthropic`, …); unique per user.
    pub provider: String,
    /// The sealed key.
    pub sealed_secret: Vec<u8>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// Which migrations a database has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions applied.
    pub applied: Vec<i64>,
    /// Versions this build knows and the database lacks.
    pub pending: Vec<i64>,
}

impl MigrationStatus {
    /// Whether the database is up to date.
    pub fn is_current(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Which database a store talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite.
    Sqlite,
    /// PostgreSQL or CockroachDB.
    Postgres,
}

/// What a channel connection is doing, as its supervisor last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelState {
    /// Connecting (or registering its webhook).
    Starting,
    /// Connected and receiving.
    Running,
    /// Failed; waiting before the next attempt.
    Backoff,
    /// Stopped for good until its configuration changes (rejected token, fatal close code).
    Failed,
    /// Not running (paused, or the server stopped).
    Stopped,
}

impl ChannelState {
    /// The lowercase name used in storage and on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            ChannelState::Starting => "starting",
            ChannelState::Running => "running",
            ChannelState::Backoff => "backoff",
            ChannelState::Failed => "failed",
            ChannelState::Stopped => "stopped",
        }
    }
}

impl std::str::FromStr for ChannelState {
    type Err = nexus_core::message::UnknownVariant;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            ChannelState::Starting,
            ChannelState::Running,
            ChannelState::Backoff,
            ChannelState::Failed,
            ChannelState::Stopped,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
        .ok_or_else(|| nexus_core::message::UnknownVariant {
            what: "channel state",
            value: s.to_owned(),
        })
    }
}

/// The health of a channel connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelHealth {
    /// The channel.
    pub channel_id: ChannelCredentialId,
    /// Its state.
    pub state: ChannelState,
    /// The last error, kept until the next one (also while running again).
    pub last_error: Option<String>,
    /// The replica running it.
    pub holder: Option<String>,
    /// When the state was reported.
    pub updated_at: DateTime<Utc>,
}

/// A direct-message pairing: an unknown sender's one-time code, and once the channel's owner
/// approved it, that sender's permission to talk to the bot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pairing {
    /// The channel.
    pub channel_id: ChannelCredentialId,
    /// The sender's platform user id.
    pub sender_id: String,
    /// The sender's display name, when the platform gave one.
    pub sender_name: Option<String>,
    /// The code the sender was given (unique across channels).
    pub code: String,
    /// When the code was issued.
    pub created_at: DateTime<Utc>,
    /// When the code stops being accepted.
    pub expires_at: DateTime<Utc>,
    /// When the owner approved it; `None` while pending.
    pub approved_at: Option<DateTime<Utc>>,
}

/// The platform messages a streamed reply has created so far, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelReply {
    /// The turn being answered.
    pub turn_id: TurnId,
    /// The channel it is answered on.
    pub channel_id: ChannelCredentialId,
    /// Platform message ids, first first.
    pub message_ids: Vec<String>,
    /// When the list last changed.
    pub updated_at: DateTime<Utc>,
}
