//! The store contract, split by aggregate. Every backend implements all of it, and the
//! conformance suite in [`crate::testing`] pins its behaviour on every backend.
//!
//! Rules every implementation follows:
//! - Writes that belong together happen in one transaction, retried on serialization failures
//!   (SQLSTATE 40001) a bounded number of times.
//! - Messages of a session get consecutive `seq` numbers (1, 2, …) assigned inside the
//!   transaction that inserts them, from the session's own counter.
//! - Reads of a missing record return `Ok(None)`; writes to a missing record return
//!   `Err(StoreError::NotFound)`; unique violations return `Err(StoreError::Conflict)`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexus_core::{
    Agent, AgentId, ApiKey, ApiKeyId, ChannelCredential, ChannelCredentialId, ChannelKind,
    ChannelStatus, DeliveryId, Message, Session, SessionId, TurnId, User, UserId,
};

use crate::error::StoreResult;
use crate::records::{
    Backend, ChannelHealth, ChannelReply, CommitOutcome, Delivery, DeliveryStatus, EnqueueOutcome,
    InboxItem, MigrationStatus, NewInbound, Pairing, ProviderCredential, SessionFilter, TurnCommit,
    UsageFilter, UsageGrouping, UsageRecord, UsageTotal,
};

/// Users and their wrapped data keys.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user; `Conflict` if the name is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;
    /// A user by id.
    async fn get_user(&self, id: UserId) -> StoreResult<Option<User>>;
    /// A user by name.
    async fn get_user_by_name(&self, name: &str) -> StoreResult<Option<User>>;
    /// All users, by name.
    async fn list_users(&self) -> StoreResult<Vec<User>>;
    /// How many users exist.
    async fn count_users(&self) -> StoreResult<u64>;
    /// Stores the user's wrapped data key unless one exists, and returns the stored one (the
    /// first writer wins, so concurrent replicas agree on one key).
    async fn put_user_data_key(&self, user_id: UserId, wrapped: &[u8]) -> StoreResult<Vec<u8>>;
    /// The user's wrapped data key.
    async fn get_user_data_key(&self, user_id: UserId) -> StoreResult<Option<Vec<u8>>>;
}

/// API keys (stored hashed).
#[async_trait]
pub trait ApiKeyStore: Send + Sync {
    /// Stores a key record; `Conflict` if the hash exists.
    async fn create_api_key(&self, key: &ApiKey) -> StoreResult<()>;
    /// The key whose hash is `hash`, revoked or not.
    async fn get_api_key_by_hash(&self, hash: &str) -> StoreResult<Option<ApiKey>>;
    /// A key by id.
    async fn get_api_key(&self, id: ApiKeyId) -> StoreResult<Option<ApiKey>>;
    /// Keys of one user, or all keys, oldest first.
    async fn list_api_keys(&self, user_id: Option<UserId>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key; `false` if it does not exist or was already revoked.
    async fn revoke_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Records a use of the key.
    async fn touch_api_key(&self, id: ApiKeyId, at: DateTime<Utc>) -> StoreResult<()>;
}

/// Agents.
#[async_trait]
pub trait AgentStore: Send + Sync {
    /// Creates an agent; `Conflict` if the owner has one of that name.
    async fn create_agent(&self, agent: &Agent) -> StoreResult<()>;
    /// An agent by id.
    async fn get_agent(&self, id: AgentId) -> StoreResult<Option<Agent>>;
    /// An agent by owner and name.
    async fn get_agent_by_name(&self, owner: UserId, name: &str) -> StoreResult<Option<Agent>>;
    /// Agents of one owner, or all, by name.
    async fn list_agents(&self, owner: Option<UserId>) -> StoreResult<Vec<Agent>>;
    /// Replaces every field but `id`, `owner_id` and `created_at`; `NotFound` if missing,
    /// `Conflict` if the new name is taken.
    async fn update_agent(&self, agent: &Agent) -> StoreResult<()>;
    /// Deletes an agent; `false` if it did not exist.
    async fn delete_agent(&self, id: AgentId) -> StoreResult<bool>;
}

/// Sessions and their message history.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Creates a session; `Conflict` if one exists for the same user, agent, channel and scope.
    async fn create_session(&self, session: &Session) -> StoreResult<()>;
    /// A session by id.
    async fn get_session(&self, id: SessionId) -> StoreResult<Option<Session>>;
    /// The session of a user, agent, channel and scope.
    async fn find_session(
        &self,
        user_id: UserId,
        agent_id: AgentId,
        channel: ChannelKind,
        scope: &str,
    ) -> StoreResult<Option<Session>>;
    /// Sessions matching `filter`, most recently updated first.
    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<Session>>;
    /// Messages of a session with `seq > after_seq`, in order, at most `limit` (0: no limit).
    async fn list_messages(
        &self,
        session_id: SessionId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// The last `limit` messages of a session, in order (the context window of a turn).
    async fn recent_messages(&self, session_id: SessionId, limit: u32)
    -> StoreResult<Vec<Message>>;
    /// Frees the session's scope so the next message in that chat starts a new session (a
    /// channel's `/new`): the session keeps its history under the scope `scope#id`. `false`
    /// if it did not exist.
    async fn retire_session(&self, id: SessionId) -> StoreResult<bool>;
}

/// The inbox: inbound messages waiting for their turn, and the turn's commit.
#[async_trait]
pub trait InboxStore: Send + Sync {
    /// In one transaction: if `dedupe` matches an existing item, returns it as `Duplicate` and
    /// writes nothing; otherwise appends the message to its session (assigning `seq`, touching
    /// the session's `updated_at`) and creates a pending inbox item whose turn id is new.
    /// `NotFound` if the session does not exist.
    async fn enqueue(&self, inbound: &NewInbound) -> StoreResult<EnqueueOutcome>;
    /// An inbox item by turn id.
    async fn get_inbox_item(&self, turn_id: TurnId) -> StoreResult<Option<InboxItem>>;
    /// Pending items of a session, oldest message first.
    async fn pending_inbox(&self, session_id: SessionId) -> StoreResult<Vec<InboxItem>>;
    /// Sessions that have pending items (for recovery on start), at most `limit`.
    async fn sessions_with_pending(&self, limit: u32) -> StoreResult<Vec<SessionId>>;
    /// Counts a start of a turn for the item and returns the new attempt count.
    async fn begin_attempt(&self, turn_id: TurnId) -> StoreResult<u32>;
    /// In one transaction, if the item is still pending: appends the messages (assigning
    /// `seq`), stores the usage records and the delivery record, and marks the item done.
    /// Otherwise writes nothing and returns `AlreadyCompleted`.
    async fn complete_turn(&self, commit: &TurnCommit) -> StoreResult<CommitOutcome>;
    /// Marks a pending item failed with a reason; `AlreadyCompleted` if it was not pending.
    async fn fail_turn(&self, turn_id: TurnId, error: &str) -> StoreResult<CommitOutcome>;
}

/// The outbox: deliveries of replies to channels.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The delivery of a turn.
    async fn get_delivery_for_turn(&self, turn_id: TurnId) -> StoreResult<Option<Delivery>>;
    /// Deliveries on a channel that are `Pending` or `Ambiguous`, oldest first, at most `limit`.
    async fn pending_deliveries(
        &self,
        channel: ChannelKind,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;
    /// Sets a delivery's state, the platform message id (kept when `None`) and last error,
    /// and counts an attempt. `NotFound` if missing.
    async fn update_delivery(
        &self,
        id: DeliveryId,
        status: DeliveryStatus,
        platform_message_id: Option<&str>,
        error: Option<&str>,
    ) -> StoreResult<()>;
}

/// Usage records (written by [`InboxStore::complete_turn`]).
#[async_trait]
pub trait UsageStore: Send + Sync {
    /// Usage records matching `filter`, oldest first.
    async fn list_usage(&self, filter: &UsageFilter) -> StoreResult<Vec<UsageRecord>>;

    /// Usage matching `filter`, added up per group, ordered by key.
    async fn usage_summary(
        &self,
        filter: &UsageFilter,
        by: UsageGrouping,
    ) -> StoreResult<Vec<UsageTotal>>;
}

/// Channel credentials and users' provider keys, both stored sealed.
#[async_trait]
pub trait CredentialStore: Send + Sync {
    /// Stores a channel credential; `Conflict` if the user has one of that name.
    async fn create_channel_credential(&self, credential: &ChannelCredential) -> StoreResult<()>;
    /// A channel credential by id.
    async fn get_channel_credential(
        &self,
        id: ChannelCredentialId,
    ) -> StoreResult<Option<ChannelCredential>>;
    /// Channel credentials of one user, or all, by name.
    async fn list_channel_credentials(
        &self,
        user_id: Option<UserId>,
    ) -> StoreResult<Vec<ChannelCredential>>;
    /// Sets a channel's status; `NotFound` if missing.
    async fn set_channel_status(
        &self,
        id: ChannelCredentialId,
        status: ChannelStatus,
    ) -> StoreResult<()>;
    /// Deletes a channel credential; `false` if it did not exist.
    async fn delete_channel_credential(&self, id: ChannelCredentialId) -> StoreResult<bool>;
    /// Stores or replaces a user's key for a provider.
    async fn put_provider_credential(&self, credential: &ProviderCredential) -> StoreResult<()>;
    /// A user's key for a provider.
    async fn get_provider_credential(
        &self,
        user_id: UserId,
        provider: &str,
    ) -> StoreResult<Option<ProviderCredential>>;
    /// A user's provider keys, by provider name.
    async fn list_provider_credentials(
        &self,
        user_id: UserId,
    ) -> StoreResult<Vec<ProviderCredential>>;
    /// Deletes a user's key for a provider; `false` if there was none.
    async fn delete_provider_credential(
        &self,
        user_id: UserId,
        provider: &str,
    ) -> StoreResult<bool>;
}

/// Channel connections at run time: health, DM pairing, streamed replies.
#[async_trait]
pub trait ChannelStore: Send + Sync {
    /// Records a channel's health (replacing the previous report).
    async fn put_channel_health(&self, health: &ChannelHealth) -> StoreResult<()>;
    /// A channel's last reported health.
    async fn get_channel_health(
        &self,
        channel_id: ChannelCredentialId,
    ) -> StoreResult<Option<ChannelHealth>>;
    /// Replaces a channel's settings; `NotFound` if missing.
    async fn update_channel_settings(
        &self,
        channel_id: ChannelCredentialId,
        settings: &serde_json::Value,
    ) -> StoreResult<()>;
    /// Replaces a channel's sealed secret; `NotFound` if missing.
    async fn update_channel_secret(
        &self,
        channel_id: ChannelCredentialId,
        sealed_secret: &[u8],
    ) -> StoreResult<()>;
    /// Issues `pairing` unless the sender already has a pairing that is approved or still
    /// valid at `pairing.created_at`; returns the sender's pairing as stored afterwards.
    /// `Conflict` if the code is taken (draw another).
    async fn offer_pairing(&self, pairing: &Pairing) -> StoreResult<Pairing>;
    /// Approves the pending pairing with `code` if it is valid at `at`, limited to channels
    /// owned by `owner` when given; the approved pairing, or `None`.
    async fn approve_pairing(
        &self,
        code: &str,
        owner: Option<UserId>,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Pairing>>;
    /// The pairings of a channel (pending and approved), newest first.
    async fn list_pairings(&self, channel_id: ChannelCredentialId) -> StoreResult<Vec<Pairing>>;
    /// Whether the owner approved `sender_id` on the channel.
    async fn is_paired(
        &self,
        channel_id: ChannelCredentialId,
        sender_id: &str,
    ) -> StoreResult<bool>;
    /// Withdraws a sender's pairing (approved or not); `false` if there was none.
    async fn revoke_pairing(
        &self,
        channel_id: ChannelCredentialId,
        sender_id: &str,
    ) -> StoreResult<bool>;
    /// Records the platform messages a streamed reply has created so far.
    async fn put_channel_reply(&self, reply: &ChannelReply) -> StoreResult<()>;
    /// The platform messages of a turn's reply, if any were created.
    async fn get_channel_reply(&self, turn_id: TurnId) -> StoreResult<Option<ChannelReply>>;
}

/// Leases: ownership of a session or a channel connection by one replica, with expiry.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes the lease `name` for `holder` for `ttl` if it is free, expired, or already
    /// `holder`'s (which renews it). Returns whether `holder` now holds it.
    async fn try_acquire_lease(&self, name: &str, holder: &str, ttl: Duration)
    -> StoreResult<bool>;
    /// Gives the lease up if `holder` holds it.
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;
}

/// The whole store: every aggregate plus health and migrations.
#[async_trait]
pub trait Store:
    UserStore
    + ApiKeyStore
    + AgentStore
    + SessionStore
    + InboxStore
    + OutboxStore
    + UsageStore
    + CredentialStore
    + ChannelStore
    + LeaseStore
    + std::fmt::Debug
{
    /// Which database this is.
    fn backend(&self) -> Backend;
    /// Checks the database answers.
    async fn ping(&self) -> StoreResult<()>;
    /// Which migrations are applied and pending.
    async fn migration_status(&self) -> StoreResult<MigrationStatus>;
    /// Applies pending migrations.
    async fn migrate(&self) -> StoreResult<()>;
    /// Closes the connection pool.
    async fn close(&self);
}
