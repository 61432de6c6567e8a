//! What both SQL backends share: reading rows into domain types, the column lists the SELECTs
//! use, parsing stored enum names and JSON, and mapping database errors to [`StoreError`].
//!
//! Each backend only says how one column of its row type is read ([`Cols`]); every record is
//! then decoded here, once. Nothing read from the database is trusted: a bad enum name, bad JSON
//! or an out-of-range number is `StoreError::Corrupt`, never a panic. Must never contain SQL
//! that differs between dialects.

use std::str::FromStr;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use nexus_core::message::UnknownVariant;
use nexus_core::{
    Agent, ApiKey, ChannelCredential, ChannelKind, ChannelStatus, Direction, Message, Role,
    Session, Usage, User, UserRole,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{StoreError, StoreResult};
use crate::records::{
    Delivery, DeliveryStatus, InboxItem, InboxStatus, MigrationStatus, ProviderCredential,
    UsageRecord,
};

/// Reads one column of a row of one backend, mapping a value of the wrong type to `Corrupt`.
pub(crate) trait Cols {
    fn uuid(&self, col: &'static str) -> StoreResult<Uuid>;
    fn text(&self, col: &'static str) -> StoreResult<String>;
    fn opt_text(&self, col: &'static str) -> StoreResult<Option<String>>;
    fn int(&self, col: &'static str) -> StoreResult<i64>;
    fn opt_int(&self, col: &'static str) -> StoreResult<Option<i64>>;
    fn flag(&self, col: &'static str) -> StoreResult<bool>;
    fn bytes(&self, col: &'static str) -> StoreResult<Vec<u8>>;
    fn time(&self, col: &'static str) -> StoreResult<DateTime<Utc>>;
    fn opt_time(&self, col: &'static str) -> StoreResult<Option<DateTime<Utc>>>;
    fn opt_f32(&self, col: &'static str) -> StoreResult<Option<f32>>;
}

/// Maps a `try_get` failure: a value that does not decode is corrupt data, anything else (a
/// missing column) is a database error.
pub(crate) fn column_error(col: &'static str, err: sqlx::Error) -> StoreError {
    match err {
        sqlx::Error::ColumnDecode { source, .. } => StoreError::Corrupt {
            what: col,
            detail: source.to_string(),
        },
        other => StoreError::Database(other),
    }
}

/// Maps a failed write: a unique violation is `Conflict { what }`, a foreign key violation is
/// `NotFound { what: missing }` (the referenced record does not exist), the rest `Database`.
pub(crate) fn write_error(
    what: &'static str,
    missing: &'static str,
    err: sqlx::Error,
) -> StoreError {
    if let sqlx::Error::Database(db) = &err {
        if db.is_unique_violation() {
            return StoreError::Conflict { what };
        }
        if db.is_foreign_key_violation() {
            return StoreError::NotFound { what: missing };
        }
    }
    StoreError::Database(err)
}

/// Maps any other database error.
pub(crate) fn db(err: sqlx::Error) -> StoreError {
    StoreError::Database(err)
}

/// The current time at the precision both backends store (microseconds), so that a value
/// written and read back compares equal.
pub(crate) fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// `at` truncated to microseconds.
pub(crate) fn truncate(at: DateTime<Utc>) -> DateTime<Utc> {
    at.duration_trunc(TimeDelta::microseconds(1)).unwrap_or(at)
}

/// Serializes a value stored as JSON text.
pub(crate) fn json<T: Serialize + ?Sized>(what: &'static str, value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt {
        what,
        detail: format!("cannot encode: {e}"),
    })
}

fn from_json<T: DeserializeOwned>(what: &'static str, text: &str) -> StoreResult<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        detail: e.to_string(),
    })
}

fn parse<T: FromStr<Err = UnknownVariant>>(what: &'static str, text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|e: UnknownVariant| StoreError::Corrupt {
            what,
            detail: e.to_string(),
        })
}

fn unsigned<T: TryFrom<i64>>(what: &'static str, value: i64) -> StoreResult<T> {
    T::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("{value} is out of range"),
    })
}

/// A count or size as stored (a signed 64-bit column); `Corrupt` past `i64::MAX`.
pub(crate) fn signed(what: &'static str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("{value} does not fit a 64-bit column"),
    })
}

fn inbox_status(text: &str) -> StoreResult<InboxStatus> {
    [InboxStatus::Pending, InboxStatus::Done, InboxStatus::Failed]
        .into_iter()
        .find(|s| s.as_str() == text)
        .ok_or_else(|| StoreError::Corrupt {
            what: "inbox status",
            detail: format!("unknown inbox status `{text}`"),
        })
}

fn delivery_status(text: &str) -> StoreResult<DeliveryStatus> {
    [
        DeliveryStatus::Pending,
        DeliveryStatus::Ambiguous,
        DeliveryStatus::Delivered,
        DeliveryStatus::Failed,
    ]
    .into_iter()
    .find(|s| s.as_str() == text)
    .ok_or_else(|| StoreError::Corrupt {
        what: "delivery status",
        detail: format!("unknown delivery status `{text}`"),
    })
}

// Column lists, shared by both dialects (the schemas use the same names). Macros rather than
// constants so that `concat!` builds `&'static str` statements from them.

macro_rules! user_cols {
    () => {
        "id, name, role, created_at"
    };
}
macro_rules! api_key_cols {
    () => {
        "id, user_id, name, prefix, hash, created_at, last_used_at, revoked_at"
    };
}
macro_rules! agent_cols {
    () => {
        "id, owner_id, name, description, system_prompt, model, fallback_models, tools, \
         max_steps, max_output_tokens, temperature, created_at, updated_at, tool_policy"
    };
}
macro_rules! session_cols {
    () => {
        "id, user_id, agent_id, channel, scope, title, created_at, updated_at"
    };
}
macro_rules! message_cols {
    () => {
        "id, session_id, seq, channel, direction, role, content, tool_calls, tool_call_id, \
         is_error, attachments, metadata, created_at"
    };
}
macro_rules! inbox_cols {
    () => {
        "turn_id, session_id, message_id, message_seq, status, attempts, error, created_at, \
         completed_at"
    };
}
macro_rules! delivery_cols {
    () => {
        "id, turn_id, session_id, message_id, channel, status, platform_message_id, attempts, \
         last_error, created_at, updated_at"
    };
}
macro_rules! usage_cols {
    () => {
        "id, turn_id, session_id, user_id, agent_id, model, input_tokens, output_tokens, \
         cache_read_tokens, cache_write_tokens, cost_micros, created_at"
    };
}
macro_rules! channel_credential_cols {
    () => {
        "id, user_id, agent_id, kind, name, settings, sealed_secret, status, created_at"
    };
}
macro_rules! provider_credential_cols {
    () => {
        "id, user_id, provider, sealed_secret, created_at"
    };
}
pub(crate) use {
    agent_cols, api_key_cols, channel_credential_cols, delivery_cols, inbox_cols, message_cols,
    provider_credential_cols, session_cols, usage_cols, user_cols,
};

pub(crate) fn user(r: &impl Cols) -> StoreResult<User> {
    Ok(User {
        id: r.uuid("id")?.into(),
        name: r.text("name")?,
        role: parse::<UserRole>("user role", &r.text("role")?)?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn api_key(r: &impl Cols) -> StoreResult<ApiKey> {
    Ok(ApiKey {
        id: r.uuid("id")?.into(),
        user_id: r.uuid("user_id")?.into(),
        name: r.text("name")?,
        prefix: r.text("prefix")?,
        hash: r.text("hash")?,
        created_at: r.time("created_at")?,
        last_used_at: r.opt_time("last_used_at")?,
        revoked_at: r.opt_time("revoked_at")?,
    })
}

pub(crate) fn agent(r: &impl Cols) -> StoreResult<Agent> {
    Ok(Agent {
        id: r.uuid("id")?.into(),
        owner_id: r.uuid("owner_id")?.into(),
        name: r.text("name")?,
        description: r.text("description")?,
        system_prompt: r.text("system_prompt")?,
        model: r.text("model")?,
        fallback_models: from_json("agent fallback_models", &r.text("fallback_models")?)?,
        tools: from_json("agent tools", &r.text("tools")?)?,
        tool_policy: from_json("agent tool_policy", &r.text("tool_policy")?)?,
        max_steps: unsigned("agent max_steps", r.int("max_steps")?)?,
        max_output_tokens: r
            .opt_int("max_output_tokens")?
            .map(|v| unsigned("agent max_output_tokens", v))
            .transpose()?,
        temperature: r.opt_f32("temperature")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) fn session(r: &impl Cols) -> StoreResult<Session> {
    Ok(Session {
        id: r.uuid("id")?.into(),
        user_id: r.uuid("user_id")?.into(),
        agent_id: r.uuid("agent_id")?.into(),
        channel: parse::<ChannelKind>("session channel", &r.text("channel")?)?,
        scope: r.text("scope")?,
        title: r.text("title")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) fn message(r: &impl Cols) -> StoreResult<Message> {
    Ok(Message {
        id: r.uuid("id")?.into(),
        session_id: r.uuid("session_id")?.into(),
        seq: r.int("seq")?,
        channel: parse::<ChannelKind>("message channel", &r.text("channel")?)?,
        direction: parse::<Direction>("message direction", &r.text("direction")?)?,
        role: parse::<Role>("message role", &r.text("role")?)?,
        content: r.text("content")?,
        tool_calls: from_json("message tool_calls", &r.text("tool_calls")?)?,
        tool_call_id: r.opt_text("tool_call_id")?,
        is_error: r.flag("is_error")?,
        attachments: from_json("message attachments", &r.text("attachments")?)?,
        metadata: from_json("message metadata", &r.text("metadata")?)?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn inbox_item(r: &impl Cols) -> StoreResult<InboxItem> {
    Ok(InboxItem {
        turn_id: r.uuid("turn_id")?.into(),
        session_id: r.uuid("session_id")?.into(),
        message_id: r.uuid("message_id")?.into(),
        message_seq: r.int("message_seq")?,
        status: inbox_status(&r.text("status")?)?,
        attempts: unsigned("inbox attempts", r.int("attempts")?)?,
        error: r.opt_text("error")?,
        created_at: r.time("created_at")?,
        completed_at: r.opt_time("completed_at")?,
    })
}

pub(crate) fn delivery(r: &impl Cols) -> StoreResult<Delivery> {
    Ok(Delivery {
        id: r.uuid("id")?.into(),
        turn_id: r.uuid("turn_id")?.into(),
        session_id: r.uuid("session_id")?.into(),
        message_id: r.uuid("message_id")?.into(),
        channel: parse::<ChannelKind>("delivery channel", &r.text("channel")?)?,
        status: delivery_status(&r.text("status")?)?,
        platform_message_id: r.opt_text("platform_message_id")?,
        attempts: unsigned("delivery attempts", r.int("attempts")?)?,
        last_error: r.opt_text("last_error")?,
        created_at: r.time("created_at")?,
        updated_at: r.time("updated_at")?,
    })
}

pub(crate) fn usage_record(r: &impl Cols) -> StoreResult<UsageRecord> {
    Ok(UsageRecord {
        id: r.uuid("id")?,
        turn_id: r.uuid("turn_id")?.into(),
        session_id: r.uuid("session_id")?.into(),
        user_id: r.uuid("user_id")?.into(),
        agent_id: r.uuid("agent_id")?.into(),
        model: r.text("model")?,
        usage: Usage {
            input_tokens: unsigned("usage input_tokens", r.int("input_tokens")?)?,
            output_tokens: unsigned("usage output_tokens", r.int("output_tokens")?)?,
            cache_read_tokens: unsigned("usage cache_read_tokens", r.int("cache_read_tokens")?)?,
            cache_write_tokens: unsigned("usage cache_write_tokens", r.int("cache_write_tokens")?)?,
        },
        cost_micros: r.opt_int("cost_micros")?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn channel_credential(r: &impl Cols) -> StoreResult<ChannelCredential> {
    Ok(ChannelCredential {
        id: r.uuid("id")?.into(),
        user_id: r.uuid("user_id")?.into(),
        agent_id: r.uuid("agent_id")?.into(),
        kind: parse::<ChannelKind>("channel credential kind", &r.text("kind")?)?,
        name: r.text("name")?,
        settings: from_json("channel credential settings", &r.text("settings")?)?,
        sealed_secret: r.bytes("sealed_secret")?,
        status: parse::<ChannelStatus>("channel credential status", &r.text("status")?)?,
        created_at: r.time("created_at")?,
    })
}

pub(crate) fn provider_credential(r: &impl Cols) -> StoreResult<ProviderCredential> {
    Ok(ProviderCredential {
        id: r.uuid("id")?,
        user_id: r.uuid("user_id")?.into(),
        provider: r.text("provider")?,
        sealed_secret: r.bytes("sealed_secret")?,
        created_at: r.time("created_at")?,
    })
}

/// The JSON columns of a message, encoded once for an insert.
pub(crate) struct MessageJson {
    pub(crate) tool_calls: String,
    pub(crate) attachments: String,
    pub(crate) metadata: String,
}

impl MessageJson {
    pub(crate) fn of(message: &Message) -> StoreResult<Self> {
        Ok(MessageJson {
            tool_calls: json("message tool_calls", &message.tool_calls)?,
            attachments: json("message attachments", &message.attachments)?,
            metadata: json("message metadata", &message.metadata)?,
        })
    }
}

/// Row limit for a `limit` argument where 0 means "no limit".
pub(crate) fn limit_or_all(limit: u32) -> i64 {
    if limit == 0 {
        i64::MAX
    } else {
        i64::from(limit)
    }
}

/// Row limit for a `limit` argument where 0 means the store's default.
pub(crate) fn limit_or_default(limit: u32, default: u32) -> i64 {
    i64::from(if limit == 0 { default } else { limit })
}

/// Compares the migrations a build embeds with the versions a database has applied.
pub(crate) fn migration_status(
    migrator: &sqlx::migrate::Migrator,
    applied: Vec<i64>,
) -> MigrationStatus {
    let pending = migrator
        .iter()
        .filter(|m| !m.migration_type.is_down_migration())
        .map(|m| m.version)
        .filter(|v| !applied.contains(v))
        .collect();
    MigrationStatus { applied, pending }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_statuses_are_corrupt() {
        assert!(matches!(
            inbox_status("weird"),
            Err(StoreError::Corrupt {
                what: "inbox status",
                ..
            })
        ));
        assert!(matches!(
            delivery_status("sent"),
            Err(StoreError::Corrupt {
                what: "delivery status",
                ..
            })
        ));
        assert_eq!(inbox_status("done").unwrap(), InboxStatus::Done);
    }

    #[test]
    fn negative_counts_are_corrupt() {
        assert!(unsigned::<u32>("x", -1).is_err());
        assert_eq!(unsigned::<u32>("x", 7).unwrap(), 7);
    }

    #[test]
    fn now_has_microsecond_precision() {
        assert_eq!(now().timestamp_subsec_nanos() % 1_000, 0);
    }
}
