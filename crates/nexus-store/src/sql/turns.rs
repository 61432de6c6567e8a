//! Both backends: the inbox (enqueue, turn commit), the outbox, usage records and leases.
//!
//! The two write transactions of a turn (`enqueue`, `complete_turn`) are each one [`Batch`]:
//! no statement needs the result of an earlier one in Rust, because the later statements read
//! what they need (the reserved seq, whether the turn was claimed) in SQL. SQLite sends such a
//! batch in one trip and commits several of them together; both run under [`with_retry`].

use std::time::Duration;

use async_trait::async_trait;
use nexus_core::{ChannelKind, DeliveryId, Message, SessionId, TurnId};
use sqlx::{Executor, QueryBuilder};
use uuid::Uuid;

use super::batch::Batch;
use super::{Arg, PushArg, RowsAffected, SqlDb, SqlStore};
use crate::codec::{
    self, Cols, MessageJson, db, delivery_cols, inbox_cols, message_cols, signed, usage_cols,
    write_error,
};
use crate::error::{StoreError, StoreResult};
use crate::records::{
    CommitOutcome, Delivery, DeliveryStatus, EnqueueOutcome, InboxItem, NewInbound, TurnCommit,
    UsageFilter, UsageGrouping, UsageRecord, UsageTotal,
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

/// ` AND NOT EXISTS (…)`: no inbox item has the dedupe key bound as `$first`, `$first + 1`,
/// `$first + 2`.
fn not_duplicate(first: usize) -> String {
    format!(
        " AND NOT EXISTS (SELECT 1 FROM inbox WHERE dedupe_channel = ${first} \
         AND dedupe_account = ${} AND dedupe_external_id = ${})",
        first + 1,
        first + 2
    )
}

/// One run of the enqueue transaction ([`InboxStore::enqueue`] retries it), as one batch:
/// reserve the message's seq, insert the message and its inbox item (each only if the session
/// exists and the dedupe key is new), then read back the item that holds the key.
async fn enqueue_once<S: SqlStore>(
    store: &S,
    inbound: &NewInbound,
    json: &MessageJson,
) -> StoreResult<Enqueued> {
    let m = &inbound.message;
    let now = codec::now();
    let turn_id = TurnId::new();
    let key = inbound.dedupe.as_ref().map(|k| {
        (
            k.channel.as_str(),
            k.account.as_str(),
            k.external_id.as_str(),
        )
    });
    let guard = |first: usize| key.map(|_| not_duplicate(first)).unwrap_or_default();
    let bind_key = |b: &mut Batch<S::Db>| {
        if let Some((channel, account, external_id)) = key {
            b.arg(channel).arg(account).arg(external_id);
        }
    };

    let mut b = Batch::<S::Db>::new();
    b.stmt(&format!(
        "UPDATE sessions SET next_seq = next_seq + 1, updated_at = $2 WHERE id = $1{}",
        guard(3)
    ))
    .arg(m.session_id.as_uuid())
    .arg(S::Db::time(now));
    bind_key(&mut b);
    b.stmt(&format!(
        concat!(
            "INSERT INTO messages (",
            message_cols!(),
            ") SELECT $1, s.id, s.next_seq - 1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
             FROM sessions AS s WHERE s.id = $12{}"
        ),
        guard(13)
    ))
    .arg(m.id.as_uuid())
    .arg(m.channel.as_str())
    .arg(m.direction.as_str())
    .arg(m.role.as_str())
    .arg(m.content.as_str())
    .arg(json.tool_calls.as_str())
    .arg(m.tool_call_id.as_deref())
    .arg(m.is_error)
    .arg(json.attachments.as_str())
    .arg(json.metadata.as_str())
    .arg(S::Db::time(m.created_at))
    .arg(m.session_id.as_uuid());
    bind_key(&mut b);
    b.stmt(&format!(
        "INSERT INTO inbox (turn_id, session_id, message_id, message_seq, status, attempts, \
         dedupe_channel, dedupe_account, dedupe_external_id, created_at) \
         SELECT $1, s.id, $2, s.next_seq - 1, 'pending', 0, $3, $4, $5, $6 \
         FROM sessions AS s WHERE s.id = $7{}",
        guard(3)
    ))
    .arg(turn_id.as_uuid())
    .arg(m.id.as_uuid())
    .arg(key.map(|k| k.0))
    .arg(key.map(|k| k.1))
    .arg(key.map(|k| k.2))
    .arg(S::Db::time(now))
    .arg(m.session_id.as_uuid());
    let lookup = if key.is_some() {
        " OR (dedupe_channel = $2 AND dedupe_account = $3 AND dedupe_external_id = $4)"
    } else {
        ""
    };
    b.stmt(&format!(
        concat!("SELECT ", inbox_cols!(), " FROM inbox WHERE turn_id = $1{}"),
        lookup
    ))
    .arg(turn_id.as_uuid());
    bind_key(&mut b);

    let groups = match store.write_batch(b).await {
        Ok(groups) => groups,
        // The key was inserted by another writer after this batch's check (PostgreSQL; SQLite
        // writers never overlap).
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() && key.is_some() => {
            return Ok(Enqueued::LostRace);
        }
        Err(e) => return Err(write_error("message", "session", e)),
    };
    let Some(row) = groups.get(3).and_then(|rows| rows.first()) else {
        return Err(StoreError::NotFound { what: "session" });
    };
    let item = codec::inbox_item(row)?;
    Ok(Enqueued::Done(if item.turn_id == turn_id {
        EnqueueOutcome::Enqueued(item)
    } else {
        EnqueueOutcome::Duplicate(item)
    }))
}

/// Appends ` AND EXISTS (…)` to a statement built piece by piece: the inbox item `turn` was
/// completed by `commit_id` (by this transaction).
fn push_claimed<D: SqlDb>(b: &mut Batch<D>, turn: Uuid, commit_id: Uuid) {
    b.push(" AND EXISTS (SELECT 1 FROM inbox WHERE turn_id = ")
        .push_arg(turn)
        .push(" AND commit_id = ")
        .push_arg(commit_id)
        .push(")");
}

/// One run of the turn-commit transaction ([`InboxStore::complete_turn`] retries it), as one
/// batch: the inbox item is marked done with a fresh commit id, and every later statement
/// writes only if that commit id is the item's, so a turn completed before (or by a racing
/// replica) gets nothing written twice.
async fn complete_turn_once<S: SqlStore>(
    store: &S,
    commit: &TurnCommit,
    json: &[MessageJson],
) -> StoreResult<CommitOutcome> {
    let now = codec::now();
    let commit_id = Uuid::new_v4();
    let turn = commit.turn_id.as_uuid();
    let session = commit.session_id.as_uuid();
    let n = signed("message count", commit.messages.len() as u64)?;

    let mut b = Batch::<S::Db>::new();
    b.stmt(
        "UPDATE inbox SET status = 'done', completed_at = $3, commit_id = $4 \
         WHERE turn_id = $1 AND session_id = $2 AND status = 'pending' RETURNING turn_id",
    )
    .arg(turn)
    .arg(session)
    .arg(S::Db::time(now))
    .arg(commit_id);
    if n > 0 {
        b.stmt(
            "UPDATE sessions SET next_seq = next_seq + $2, updated_at = $3 WHERE id = $1 \
             AND EXISTS (SELECT 1 FROM inbox WHERE turn_id = $4 AND commit_id = $5)",
        )
        .arg(session)
        .arg(n)
        .arg(S::Db::time(now))
        .arg(turn)
        .arg(commit_id);
    }
    for (i, chunk) in commit.messages.chunks(ROWS_PER_INSERT).enumerate() {
        let start = i * ROWS_PER_INSERT;
        let seqs = MessageSeqs {
            session,
            reserved: n,
            offset: signed("message seq", start as u64)?,
        };
        insert_messages(&mut b, &seqs, chunk, json.get(start..start + chunk.len()))?;
        push_claimed(&mut b, turn, commit_id);
    }
    for chunk in commit.usage.chunks(ROWS_PER_INSERT) {
        insert_usage(&mut b, chunk)?;
        push_claimed(&mut b, turn, commit_id);
    }
    if let Some(d) = &commit.delivery {
        b.stmt(
            "INSERT INTO deliveries (id, turn_id, session_id, message_id, channel, status, \
             attempts, created_at, updated_at) SELECT $1, $2, $3, $4, $5, $6, 0, $7, $7 \
             WHERE EXISTS (SELECT 1 FROM inbox WHERE turn_id = $2 AND commit_id = $8)",
        )
        .arg(d.id.as_uuid())
        .arg(turn)
        .arg(session)
        .arg(d.message_id.as_uuid())
        .arg(d.channel.as_str())
        .arg(d.status.as_str())
        .arg(S::Db::time(now))
        .arg(commit_id);
    }
    let groups = store
        .write_batch(b)
        .await
        .map_err(|e| write_error("turn record", "session", e))?;
    if groups.first().is_some_and(|rows| !rows.is_empty()) {
        return Ok(CommitOutcome::Committed);
    }
    match turn_session(store.db(), commit.turn_id).await? {
        Some(owner) if owner == session => Ok(CommitOutcome::AlreadyCompleted),
        Some(_) => Err(StoreError::NotFound {
            what: "inbox item of the session",
        }),
        None => Err(StoreError::NotFound { what: "inbox item" }),
    }
}

/// The session of an inbox item, if it exists.
async fn turn_session<'c, D: SqlDb>(
    conn: impl Executor<'c, Database = D>,
    turn: TurnId,
) -> StoreResult<Option<Uuid>> {
    sqlx::query("SELECT session_id FROM inbox WHERE turn_id = $1")
        .arg(turn.as_uuid())
        .fetch_optional(conn)
        .await
        .map_err(db)?
        .map(|row| row.uuid("session_id"))
        .transpose()
}

/// Where the seqs of inserted messages come from: the session's `next_seq` after it was raised
/// by `reserved` in the same transaction; the first message inserted gets
/// `next_seq - reserved + offset`.
struct MessageSeqs {
    session: Uuid,
    reserved: i64,
    offset: i64,
}

/// Adds the insert of `messages` as one statement (`INSERT … SELECT … FROM (VALUES …)`, open for
/// more `AND` conditions); `json` holds their pre-encoded JSON columns (encoded here when
/// absent).
fn insert_messages<D: SqlDb>(
    b: &mut Batch<D>,
    seqs: &MessageSeqs,
    messages: &[Message],
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
    b.begin_stmt()
        .push(concat!(
            "INSERT INTO messages (",
            message_cols!(),
            ") SELECT v.column1, s.id, s.next_seq - "
        ))
        .push_arg(seqs.reserved)
        .push(
            " + v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, \
             v.column9, v.column10, v.column11, v.column12 FROM (",
        );
    {
        let mut rows = b.values();
        for ((m, j), offset) in messages.iter().zip(json).zip(seqs.offset..) {
            rows.row()
                .value(m.id.as_uuid())
                .value(offset)
                .value(m.channel.as_str())
                .value(m.direction.as_str())
                .value(m.role.as_str())
                .value(m.content.as_str())
                .value(j.tool_calls.as_str())
                .value(m.tool_call_id.as_deref())
                .value(m.is_error)
                .value(j.attachments.as_str())
                .value(j.metadata.as_str())
                .value(D::time(m.created_at));
        }
    }
    b.push(") AS v, sessions AS s WHERE s.id = ")
        .push_arg(seqs.session);
    Ok(())
}

/// Adds the insert of usage `records` as one statement (`INSERT … SELECT … FROM (VALUES …)
/// WHERE 1 = 1`, open for more `AND` conditions).
fn insert_usage<D: SqlDb>(b: &mut Batch<D>, records: &[UsageRecord]) -> StoreResult<()> {
    b.begin_stmt().push(concat!(
        "INSERT INTO usage (",
        usage_cols!(),
        ") SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, \
         v.column8, v.column9, v.column10, v.column11, v.column12 FROM ("
    ));
    {
        let mut rows = b.values();
        for r in records {
            rows.row()
                .value(r.id)
                .value(r.turn_id.as_uuid())
                .value(r.session_id.as_uuid())
                .value(r.user_id.as_uuid())
                .value(r.agent_id.as_uuid())
                .value(r.model.as_str())
                .value(signed("usage input_tokens", r.usage.input_tokens)?)
                .value(signed("usage output_tokens", r.usage.output_tokens)?)
                .value(signed(
                    "usage cache_read_tokens",
                    r.usage.cache_read_tokens,
                )?)
                .value(signed(
                    "usage cache_write_tokens",
                    r.usage.cache_write_tokens,
                )?)
                .value(r.cost_micros)
                .value(D::time(r.created_at));
        }
    }
    b.push(") AS v WHERE 1 = 1");
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
        // A batch, so that SQLite commits it together with the other writes waiting.
        let groups = retry_statement("begin_attempt", || {
            let mut b = Batch::<S::Db>::new();
            b.stmt(
                "UPDATE inbox SET attempts = attempts + 1 WHERE turn_id = $1 RETURNING attempts",
            )
            .arg(turn_id.as_uuid());
            self.write_batch(b)
        })
        .await?;
        let row = groups
            .into_iter()
            .next()
            .and_then(|rows| rows.into_iter().next());
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
        if turn_session(self.db(), turn_id).await?.is_some() {
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

/// Appends the conditions of `filter` on the `usage` table aliased `u` (after a `WHERE 1 = 1`).
fn push_usage_filter<D: SqlDb>(q: &mut QueryBuilder<D>, filter: &UsageFilter) {
    if let Some(user) = filter.user_id {
        q.push(" AND u.user_id = ").push_arg(user.as_uuid());
    }
    if let Some(agent) = filter.agent_id {
        q.push(" AND u.agent_id = ").push_arg(agent.as_uuid());
    }
    if let Some(session) = filter.session_id {
        q.push(" AND u.session_id = ").push_arg(session.as_uuid());
    }
    if let Some(since) = filter.since {
        q.push(" AND u.created_at >= ").push_arg(D::time(since));
    }
}

/// A token or call count summed by the database, which must not be negative.
fn count(what: &'static str, value: i64) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::Corrupt {
        what,
        detail: format!("{value} is negative"),
    })
}

#[async_trait]
impl<S: SqlStore> UsageStore for S {
    async fn usage_summary(
        &self,
        filter: &UsageFilter,
        by: UsageGrouping,
    ) -> StoreResult<Vec<UsageTotal>> {
        // (key, label, joins) per grouping; ids are shown as text.
        let (key, label, join) = match by {
            UsageGrouping::Model => ("u.model".to_owned(), "u.model".to_owned(), ""),
            UsageGrouping::Agent => (
                "u.agent_id".to_owned(),
                "MAX(a.name)".to_owned(),
                " LEFT JOIN agents AS a ON a.id = u.agent_id",
            ),
            UsageGrouping::User => (
                "u.user_id".to_owned(),
                "MAX(p.name)".to_owned(),
                " LEFT JOIN users AS p ON p.id = u.user_id",
            ),
            UsageGrouping::Day => {
                let day = S::Db::utc_day("u.created_at");
                (day.clone(), format!("MAX({day})"), "")
            }
        };
        // SUM of integers is NUMERIC on PostgreSQL and DECIMAL on CockroachDB: cast back.
        let mut q = QueryBuilder::<S::Db>::new(format!(
            "SELECT {key} AS grp, {label} AS label, CAST(COUNT(*) AS BIGINT) AS calls, \
             CAST(COUNT(DISTINCT u.turn_id) AS BIGINT) AS turns, \
             CAST(SUM(u.input_tokens) AS BIGINT) AS input_tokens, \
             CAST(SUM(u.output_tokens) AS BIGINT) AS output_tokens, \
             CAST(SUM(u.cache_read_tokens) AS BIGINT) AS cache_read_tokens, \
             CAST(SUM(u.cache_write_tokens) AS BIGINT) AS cache_write_tokens, \
             CAST(COALESCE(SUM(u.cost_micros), 0) AS BIGINT) AS cost_micros, \
             CAST(SUM(CASE WHEN u.cost_micros IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS unpriced \
             FROM usage AS u{join} WHERE 1 = 1"
        ));
        push_usage_filter(&mut q, filter);
        q.push(format!(" GROUP BY {key} ORDER BY {key}"));
        let rows = q.build().fetch_all(self.db()).await.map_err(db)?;
        rows.iter()
            .map(|r| {
                let key = match by {
                    UsageGrouping::Agent | UsageGrouping::User => r.uuid("grp")?.to_string(),
                    UsageGrouping::Model | UsageGrouping::Day => r.text("grp")?,
                };
                Ok(UsageTotal {
                    key,
                    label: r.opt_text("label")?.unwrap_or_default(),
                    calls: count("usage calls", r.int("calls")?)?,
                    turns: count("usage turns", r.int("turns")?)?,
                    usage: nexus_core::Usage {
                        input_tokens: count("usage input_tokens", r.int("input_tokens")?)?,
                        output_tokens: count("usage output_tokens", r.int("output_tokens")?)?,
                        cache_read_tokens: count(
                            "usage cache_read_tokens",
                            r.int("cache_read_tokens")?,
                        )?,
                        cache_write_tokens: count(
                            "usage cache_write_tokens",
                            r.int("cache_write_tokens")?,
                        )?,
                    },
                    cost_micros: r.int("cost_micros")?,
                    unpriced_calls: count("usage unpriced calls", r.int("unpriced")?)?,
                })
            })
            .collect()
    }

    async fn list_usage(&self, filter: &UsageFilter) -> StoreResult<Vec<UsageRecord>> {
        let mut q = QueryBuilder::<S::Db>::new(concat!(
            "SELECT ",
            usage_cols!(),
            " FROM usage AS u WHERE 1 = 1"
        ));
        push_usage_filter(&mut q, filter);
        q.push(" ORDER BY u.created_at, u.id");
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
