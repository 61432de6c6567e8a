//! Both backends: the inbox (enqueue, turn commit), the outbox, usage records and leases. The two
//! write transactions of a turn (`enqueue`, `complete_turn`) are kept to a handful of
//! statements each; both run under [`with_retry`].

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexus_core::{ChannelKind, DeliveryId, Message, SessionId, TurnId};
use sqlx::{Executor, QueryBuilder};

use super::{Arg, PushArg, RowsAffected, SqlDb, SqlStore};
use crate::codec::{
    self, Cols, MessageJson, db, delivery_cols, first_seq, inbox_cols, message_cols, signed,
    usage_cols, write_error,
};
use crate::error::{StoreError, StoreResult};
use crate::records::{
    CommitOutcome, Delivery, DeliveryStatus, EnqueueOutcome, InboxItem, InboxStatus, NewInbound,
    TurnCommit, UsageFilter, UsageRecord,
};
use crate::retry::{retry_statement, with_retry};
use crate::traits::{InboxStore, LeaseStore, OutboxStore, UsageStore};

/// Rows per multi-row INSERT (SQLite allows 32766 bound values per statement, PostgreSQL
/// 65535).
const ROWS_PER_INSERT: usize = 200;

/// What one run of the enqueue transaction found.
enum Enqueued {
    Done(EnqueueOutcome),
    /// Another writer inserted the same dedupe key between our check and our insert.
    LostRace,
}

/// One run of the enqueue transaction ([`InboxStore::enqueue`] retries it).
async fn enqueue_once<S: SqlStore>(
    store: &S,
    inbound: &NewInbound,
    json: &MessageJson,
) -> StoreResult<Enqueued> {
    let m = &inbound.message;
    let (_writing, mut tx) = store.write().await?;
    if let Some(key) = &inbound.dedupe {
        let existing = sqlx::query(concat!(
            "SELECT ",
            inbox_cols!(),
            " FROM inbox WHERE dedupe_channel = $1 AND dedupe_account = $2 \
             AND dedupe_external_id = $3"
        ))
        .arg(key.channel.as_str())
        .arg(&key.account)
        .arg(&key.external_id)
        .fetch_optional(S::Db::conn(&mut tx))
        .await
        .map_err(db)?;
        if let Some(row) = existing {
            let item = codec::inbox_item(&row)?;
            tx.rollback().await.map_err(db)?;
            return Ok(Enqueued::Done(EnqueueOutcome::Duplicate(item)));
        }
    }
    let now = codec::now();
    let seq = bump_seq(S::Db::conn(&mut tx), m.session_id, 1, now).await?;
    insert_messages(
        S::Db::conn(&mut tx),
        m.session_id,
        std::slice::from_ref(m),
        seq,
        Some(json),
    )
    .await?;
    let turn_id = TurnId::new();
    let (channel, account, external_id) = match &inbound.dedupe {
        Some(k) => (
            Some(k.channel.as_str()),
            Some(&k.account),
            Some(&k.external_id),
        ),
        None => (None, None, None),
    };
    let inserted = sqlx::query(
        "INSERT INTO inbox (turn_id, session_id, message_id, message_seq, status, attempts, \
             dedupe_channel, dedupe_account, dedupe_external_id, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5, $6, $7, $8)",
    )
    .arg(turn_id.as_uuid())
    .arg(m.session_id.as_uuid())
    .arg(m.id.as_uuid())
    .arg(seq)
    .arg(channel)
    .arg(account)
    .arg(external_id)
    .arg(S::Db::time(now))
    .execute(S::Db::conn(&mut tx))
    .await;
    match inserted {
        Ok(_) => {}
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            tx.rollback().await.map_err(db)?;
            return Ok(Enqueued::LostRace);
        }
        Err(e) => return Err(db(e)),
    }
    tx.commit().await.map_err(db)?;
    Ok(Enqueued::Done(EnqueueOutcome::Enqueued(InboxItem {
        turn_id,
        session_id: m.session_id,
        message_id: m.id,
        message_seq: seq,
        status: InboxStatus::Pending,
        attempts: 0,
        error: None,
        created_at: now,
        completed_at: None,
    })))
}

/// One run of the turn-commit transaction ([`InboxStore::complete_turn`] retries it).
async fn complete_turn_once<S: SqlStore>(
    store: &S,
    commit: &TurnCommit,
    json: &[MessageJson],
) -> StoreResult<CommitOutcome> {
    let now = codec::now();
    let (_writing, mut tx) = store.write().await?;
    let done = sqlx::query(
        "UPDATE inbox SET status = 'done', completed_at = $2 \
         WHERE turn_id = $1 AND status = 'pending' RETURNING session_id",
    )
    .arg(commit.turn_id.as_uuid())
    .arg(S::Db::time(now))
    .fetch_optional(S::Db::conn(&mut tx))
    .await
    .map_err(db)?;
    let Some(row) = done else {
        let exists = turn_exists(S::Db::conn(&mut tx), commit.turn_id).await?;
        tx.rollback().await.map_err(db)?;
        return if exists {
            Ok(CommitOutcome::AlreadyCompleted)
        } else {
            Err(StoreError::NotFound { what: "inbox item" })
        };
    };
    let session = row.uuid("session_id")?;
    if session != commit.session_id.as_uuid() {
        tx.rollback().await.map_err(db)?;
        return Err(StoreError::NotFound {
            what: "inbox item of the session",
        });
    }
    if !commit.messages.is_empty() {
        let first = bump_seq(
            S::Db::conn(&mut tx),
            commit.session_id,
            commit.messages.len(),
            now,
        )
        .await?;
        for (i, chunk) in commit.messages.chunks(ROWS_PER_INSERT).enumerate() {
            let start = i * ROWS_PER_INSERT;
            let seq = first + signed("message seq", start as u64)?;
            let json = json.get(start..start + chunk.len());
            insert_messages_json(S::Db::conn(&mut tx), commit.session_id, chunk, seq, json).await?;
        }
    }
    for chunk in commit.usage.chunks(ROWS_PER_INSERT) {
        insert_usage(S::Db::conn(&mut tx), chunk).await?;
    }
    if let Some(d) = &commit.delivery {
        sqlx::query(
            "INSERT INTO deliveries (id, turn_id, session_id, message_id, channel, status, \
                 attempts, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
        )
        .arg(d.id.as_uuid())
        .arg(commit.turn_id.as_uuid())
        .arg(commit.session_id.as_uuid())
        .arg(d.message_id.as_uuid())
        .arg(d.channel.as_str())
        .arg(d.status.as_str())
        .arg(S::Db::time(now))
        .execute(S::Db::conn(&mut tx))
        .await
        .map_err(|e| write_error("delivery", "delivered message", e))?;
    }
    tx.commit().await.map_err(db)?;
    Ok(CommitOutcome::Committed)
}

/// Reserves `n` consecutive seq numbers of a session (touching its `updated_at`) and returns
/// the first. `NotFound` if the session does not exist.
async fn bump_seq<'c, D: SqlDb>(
    conn: impl Executor<'c, Database = D>,
    session: SessionId,
    n: usize,
    now: DateTime<Utc>,
) -> StoreResult<i64> {
    let n = signed("message count", n as u64)?;
    let row = sqlx::query(
        "UPDATE sessions SET next_seq = next_seq + $2, updated_at = $3 WHERE id = $1 \
         RETURNING next_seq",
    )
    .arg(session.as_uuid())
    .arg(n)
    .arg(D::time(now))
    .fetch_optional(conn)
    .await
    .map_err(db)?;
    let next = row
        .ok_or(StoreError::NotFound { what: "session" })?
        .int("next_seq")?;
    Ok(first_seq(next, n as usize))
}

async fn turn_exists<'c, D: SqlDb>(
    conn: impl Executor<'c, Database = D>,
    turn: TurnId,
) -> StoreResult<bool> {
    sqlx::query("SELECT EXISTS (SELECT 1 FROM inbox WHERE turn_id = $1) AS found")
        .arg(turn.as_uuid())
        .fetch_one(conn)
        .await
        .map_err(db)?
        .flag("found")
}

async fn insert_messages<'c, D: SqlDb>(
    conn: impl Executor<'c, Database = D>,
    session: SessionId,
    messages: &[Message],
    first_seq: i64,
    json: Option<&MessageJson>,
) -> StoreResult<()> {
    insert_messages_json(
        conn,
        session,
        messages,
        first_seq,
        json.map(std::slice::from_ref),
    )
    .await
}

/// Inserts `messages` with seq `first_seq`, `first_seq + 1`, … in one statement; `json` holds
/// their pre-encoded JSON columns (encoded here when absent).
async fn insert_messages_json<'c, D: SqlDb>(
    conn: impl Executor<'c, Database = D>,
    session: SessionId,
    messages: &[Message],
    first_seq: i64,
    json: Option<&[MessageJson]>,
) -> StoreResult<()> {
    let encoded;
    let json = match json {
        Some(json) if json.len() == messages.len() => json,
        _ => {
            encoded = messages
                .iter()
                .map(MessageJson::of)
                .collect::<StoreResult<Vec<_>>>()?;
            &encoded
        }
    };
    let mut q = QueryBuilder::<D>::new(concat!("INSERT INTO messages (", message_cols!(), ") "));
    let mut seq = first_seq;
    q.push_values(messages.iter().zip(json), |mut b, (m, j)| {
        b.push_arg(m.id.as_uuid())
            .push_arg(session.as_uuid())
            .push_arg(seq)
            .push_arg(m.channel.as_str())
            .push_arg(m.direction.as_str())
            .push_arg(m.role.as_str())
            .push_arg(m.content.as_str())
            .push_arg(j.tool_calls.as_str())
            .push_arg(m.tool_call_id.as_deref())
            .push_arg(m.is_error)
            .push_arg(j.attachments.as_str())
            .push_arg(j.metadata.as_str())
            .push_arg(D::time(m.created_at));
        seq += 1;
    });
    q.build()
        .execute(conn)
        .await
        .map_err(|e| write_error("message", "session", e))?;
    Ok(())
}

async fn insert_usage<'c, D: SqlDb>(
    conn: impl Executor<'c, Database = D>,
    records: &[UsageRecord],
) -> StoreResult<()> {
    let mut rows = Vec::with_capacity(records.len());
    for r in records {
        rows.push((
            r,
            [
                signed("usage input_tokens", r.usage.input_tokens)?,
                signed("usage output_tokens", r.usage.output_tokens)?,
                signed("usage cache_read_tokens", r.usage.cache_read_tokens)?,
                signed("usage cache_write_tokens", r.usage.cache_write_tokens)?,
            ],
        ));
    }
    let mut q = QueryBuilder::<D>::new(concat!("INSERT INTO usage (", usage_cols!(), ") "));
    q.push_values(rows, |mut b, (r, tokens)| {
        b.push_arg(r.id)
            .push_arg(r.turn_id.as_uuid())
            .push_arg(r.session_id.as_uuid())
            .push_arg(r.user_id.as_uuid())
            .push_arg(r.agent_id.as_uuid())
            .push_arg(r.model.as_str())
            .push_arg(tokens[0])
            .push_arg(tokens[1])
            .push_arg(tokens[2])
            .push_arg(tokens[3])
            .push_arg(r.cost_micros)
            .push_arg(D::time(r.created_at));
    });
    q.build()
        .execute(conn)
        .await
        .map_err(|e| write_error("usage record", "usage record", e))?;
    Ok(())
}

#[async_trait]
impl<S: SqlStore> InboxStore for S {
    async fn enqueue(&self, inbound: &NewInbound) -> StoreResult<EnqueueOutcome> {
        let json = MessageJson::of(&inbound.message)?;
        // A lost dedupe race means the other item is now committed: the next run returns it.
        for _ in 0..crate::retry::MAX_ATTEMPTS {
            let run = with_retry("enqueue", || enqueue_once(self, inbound, &json)).await?;
            if let Enqueued::Done(outcome) = run {
                return Ok(outcome);
            }
        }
        Err(StoreError::Conflict {
            what: "inbox dedupe key",
        })
    }

    async fn get_inbox_item(&self, turn_id: TurnId) -> StoreResult<Option<InboxItem>> {
        sqlx::query(concat!(
            "SELECT ",
            inbox_cols!(),
            " FROM inbox WHERE turn_id = $1"
        ))
        .arg(turn_id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::inbox_item(&r))
        .transpose()
    }

    async fn pending_inbox(&self, session_id: SessionId) -> StoreResult<Vec<InboxItem>> {
        sqlx::query(concat!(
            "SELECT ",
            inbox_cols!(),
            " FROM inbox WHERE session_id = $1 AND status = 'pending' ORDER BY message_seq"
        ))
        .arg(session_id.as_uuid())
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(codec::inbox_item)
        .collect()
    }

    async fn sessions_with_pending(&self, limit: u32) -> StoreResult<Vec<SessionId>> {
        sqlx::query("SELECT DISTINCT session_id FROM inbox WHERE status = 'pending' LIMIT $1")
            .arg(i64::from(limit))
            .fetch_all(self.db())
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.uuid("session_id").map(SessionId::from))
            .collect()
    }

    async fn begin_attempt(&self, turn_id: TurnId) -> StoreResult<u32> {
        let _writing = self.lock_writes().await;
        let row = retry_statement("begin_attempt", || {
            sqlx::query(
                "UPDATE inbox SET attempts = attempts + 1 WHERE turn_id = $1 RETURNING attempts",
            )
            .arg(turn_id.as_uuid())
            .fetch_optional(self.db())
        })
        .await?;
        let attempts = row
            .ok_or(StoreError::NotFound { what: "inbox item" })?
            .int("attempts")?;
        u32::try_from(attempts).map_err(|_| StoreError::Corrupt {
            what: "inbox attempts",
            detail: format!("{attempts} is out of range"),
        })
    }

    async fn complete_turn(&self, commit: &TurnCommit) -> StoreResult<CommitOutcome> {
        let json = commit
            .messages
            .iter()
            .map(MessageJson::of)
            .collect::<StoreResult<Vec<_>>>()?;
        with_retry("complete_turn", || complete_turn_once(self, commit, &json)).await
    }

    async fn fail_turn(&self, turn_id: TurnId, error: &str) -> StoreResult<CommitOutcome> {
        let now = codec::now();
        let _writing = self.lock_writes().await;
        let done = retry_statement("fail_turn", || {
            sqlx::query(
                "UPDATE inbox SET status = 'failed', error = $2, completed_at = $3 \
             WHERE turn_id = $1 AND status = 'pending'",
            )
            .arg(turn_id.as_uuid())
            .arg(error)
            .arg(S::Db::time(now))
            .execute(self.db())
        })
        .await?;
        if done.rows_affected() > 0 {
            return Ok(CommitOutcome::Committed);
        }
        if turn_exists(self.db(), turn_id).await? {
            Ok(CommitOutcome::AlreadyCompleted)
        } else {
            Err(StoreError::NotFound { what: "inbox item" })
        }
    }
}

#[async_trait]
impl<S: SqlStore> OutboxStore for S {
    async fn get_delivery_for_turn(&self, turn_id: TurnId) -> StoreResult<Option<Delivery>> {
        sqlx::query(concat!(
            "SELECT ",
            delivery_cols!(),
            " FROM deliveries WHERE turn_id = $1"
        ))
        .arg(turn_id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::delivery(&r))
        .transpose()
    }

    async fn pending_deliveries(
        &self,
        channel: ChannelKind,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        sqlx::query(concat!(
            "SELECT ",
            delivery_cols!(),
            " FROM deliveries WHERE channel = $1 AND status IN ('pending', 'ambiguous') \
             ORDER BY created_at, id LIMIT $2"
        ))
        .arg(channel.as_str())
        .arg(i64::from(limit))
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(codec::delivery)
        .collect()
    }

    async fn update_delivery(
        &self,
        id: DeliveryId,
        status: DeliveryStatus,
        platform_message_id: Option<&str>,
        error: Option<&str>,
    ) -> StoreResult<()> {
        let now = codec::now();
        let _writing = self.lock_writes().await;
        let done = retry_statement("update_delivery", || {
            sqlx::query(
                "UPDATE deliveries SET status = $2, \
             platform_message_id = COALESCE($3, platform_message_id), last_error = $4, \
             attempts = attempts + 1, updated_at = $5 WHERE id = $1",
            )
            .arg(id.as_uuid())
            .arg(status.as_str())
            .arg(platform_message_id)
            .arg(error)
            .arg(S::Db::time(now))
            .execute(self.db())
        })
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "delivery" });
        }
        Ok(())
    }
}

#[async_trait]
impl<S: SqlStore> UsageStore for S {
    async fn list_usage(&self, filter: &UsageFilter) -> StoreResult<Vec<UsageRecord>> {
        let mut q = QueryBuilder::<S::Db>::new(concat!(
            "SELECT ",
            usage_cols!(),
            " FROM usage WHERE 1 = 1"
        ));
        if let Some(user) = filter.user_id {
            q.push(" AND user_id = ").push_arg(user.as_uuid());
        }
        if let Some(agent) = filter.agent_id {
            q.push(" AND agent_id = ").push_arg(agent.as_uuid());
        }
        if let Some(session) = filter.session_id {
            q.push(" AND session_id = ").push_arg(session.as_uuid());
        }
        if let Some(since) = filter.since {
            q.push(" AND created_at >= ").push_arg(S::Db::time(since));
        }
        q.push(" ORDER BY created_at, id");
        q.build()
            .fetch_all(self.db())
            .await
            .map_err(db)?
            .iter()
            .map(codec::usage_record)
            .collect()
    }
}

#[async_trait]
impl<S: SqlStore> LeaseStore for S {
    async fn try_acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> StoreResult<bool> {
        let now = codec::now();
        let expires = now + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let _writing = self.lock_writes().await;
        let won = retry_statement("try_acquire_lease", || {
            sqlx::query(
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             expires_at = excluded.expires_at \
             WHERE leases.holder = excluded.holder OR leases.expires_at <= $4 \
             RETURNING holder",
            )
            .arg(name)
            .arg(holder)
            .arg(S::Db::time(expires))
            .arg(S::Db::time(now))
            .fetch_optional(self.db())
        })
        .await?;
        Ok(won.is_some())
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let _writing = self.lock_writes().await;
        retry_statement("release_lease", || {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .arg(name)
                .arg(holder)
                .execute(self.db())
        })
        .await?;
        Ok(())
    }
}
