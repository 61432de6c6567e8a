//! Both backends: channel health, DM pairings and streamed replies.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use nexus_core::{ChannelCredentialId, TurnId, UserId};

use super::{Arg, RowsAffected, SqlDb, SqlStore};
use crate::codec::{self, Cols, db, write_error};
use crate::error::{StoreError, StoreResult};
use crate::records::{ChannelHealth, ChannelReply, ChannelState, Pairing};
use crate::retry::retry_statement;
use crate::traits::ChannelStore;

macro_rules! pairing_cols {
    () => {
        "channel_id, sender_id, sender_name, code, created_at, expires_at, approved_at"
    };
}

fn pairing(r: &impl Cols) -> StoreResult<Pairing> {
    Ok(Pairing {
        channel_id: r.uuid("channel_id")?.into(),
        sender_id: r.text("sender_id")?,
        sender_name: r.opt_text("sender_name")?,
        code: r.text("code")?,
        created_at: r.time("created_at")?,
        expires_at: r.time("expires_at")?,
        approved_at: r.opt_time("approved_at")?,
    })
}

fn health(r: &impl Cols) -> StoreResult<ChannelHealth> {
    let state = r.text("state")?;
    Ok(ChannelHealth {
        channel_id: r.uuid("channel_id")?.into(),
        state: state
            .parse::<ChannelState>()
            .map_err(|e| StoreError::Corrupt {
                what: "channel state",
                detail: e.to_string(),
            })?,
        last_error: r.opt_text("last_error")?,
        holder: r.opt_text("holder")?,
        updated_at: r.time("updated_at")?,
    })
}

#[async_trait]
impl<S: SqlStore> ChannelStore for S {
    async fn put_channel_health(&self, h: &ChannelHealth) -> StoreResult<()> {
        let at = h.updated_at;
        retry_statement("put_channel_health", || {
            sqlx::query(
                "INSERT INTO channel_health (channel_id, state, last_error, holder, updated_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (channel_id) DO UPDATE SET state = excluded.state, \
                 last_error = excluded.last_error, holder = excluded.holder, \
                 updated_at = excluded.updated_at",
            )
            .arg(h.channel_id.as_uuid())
            .arg(h.state.as_str())
            .arg(h.last_error.as_deref())
            .arg(h.holder.as_deref())
            .arg(S::Db::time(at))
            .execute(self.db())
        })
        .await
        .map_err(|e| match e {
            StoreError::Database(err) => write_error("channel health", "channel", err),
            other => other,
        })?;
        Ok(())
    }

    async fn get_channel_health(
        &self,
        channel_id: ChannelCredentialId,
    ) -> StoreResult<Option<ChannelHealth>> {
        sqlx::query(
            "SELECT channel_id, state, last_error, holder, updated_at \
             FROM channel_health WHERE channel_id = $1",
        )
        .arg(channel_id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| health(&r))
        .transpose()
    }

    async fn update_channel_settings(
        &self,
        channel_id: ChannelCredentialId,
        settings: &serde_json::Value,
    ) -> StoreResult<()> {
        let settings = codec::json("channel credential settings", settings)?;
        let done = sqlx::query("UPDATE channel_credentials SET settings = $2 WHERE id = $1")
            .arg(channel_id.as_uuid())
            .arg(settings)
            .execute(self.db())
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "channel credential",
            });
        }
        Ok(())
    }

    async fn update_channel_secret(
        &self,
        channel_id: ChannelCredentialId,
        sealed_secret: &[u8],
    ) -> StoreResult<()> {
        let done = sqlx::query("UPDATE channel_credentials SET sealed_secret = $2 WHERE id = $1")
            .arg(channel_id.as_uuid())
            .arg(sealed_secret)
            .execute(self.db())
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "channel credential",
            });
        }
        Ok(())
    }

    async fn offer_pairing(&self, p: &Pairing) -> StoreResult<Pairing> {
        // A sender keeps an approved pairing or a code that is still valid; only an expired,
        // unapproved code is replaced.
        sqlx::query(concat!(
            "INSERT INTO channel_pairings (",
            pairing_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, NULL) \
             ON CONFLICT (channel_id, sender_id) DO UPDATE SET code = excluded.code, \
             sender_name = excluded.sender_name, created_at = excluded.created_at, \
             expires_at = excluded.expires_at \
             WHERE channel_pairings.approved_at IS NULL \
             AND channel_pairings.expires_at <= excluded.created_at"
        ))
        .arg(p.channel_id.as_uuid())
        .arg(&p.sender_id)
        .arg(p.sender_name.as_deref())
        .arg(&p.code)
        .arg(S::Db::time(p.created_at))
        .arg(S::Db::time(p.expires_at))
        .execute(self.db())
        .await
        .map_err(|e| write_error("pairing code", "channel", e))?;
        sqlx::query(concat!(
            "SELECT ",
            pairing_cols!(),
            " FROM channel_pairings WHERE channel_id = $1 AND sender_id = $2"
        ))
        .arg(p.channel_id.as_uuid())
        .arg(&p.sender_id)
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| pairing(&r))
        .transpose()?
        .ok_or(StoreError::NotFound { what: "pairing" })
    }

    async fn approve_pairing(
        &self,
        code: &str,
        owner: Option<UserId>,
        at: DateTime<Utc>,
    ) -> StoreResult<Option<Pairing>> {
        let row = match owner {
            Some(owner) => {
                sqlx::query(concat!(
                    "UPDATE channel_pairings SET approved_at = $2 \
                     WHERE code = $1 AND approved_at IS NULL AND expires_at > $2 \
                     AND channel_id IN (SELECT id FROM channel_credentials WHERE user_id = $3) \
                     RETURNING ",
                    pairing_cols!()
                ))
                .arg(code)
                .arg(S::Db::time(at))
                .arg(owner.as_uuid())
                .fetch_optional(self.db())
                .await
            }
            None => {
                sqlx::query(concat!(
                    "UPDATE channel_pairings SET approved_at = $2 \
                     WHERE code = $1 AND approved_at IS NULL AND expires_at > $2 \
                     RETURNING ",
                    pairing_cols!()
                ))
                .arg(code)
                .arg(S::Db::time(at))
                .fetch_optional(self.db())
                .await
            }
        };
        row.map_err(db)?.map(|r| pairing(&r)).transpose()
    }

    async fn list_pairings(&self, channel_id: ChannelCredentialId) -> StoreResult<Vec<Pairing>> {
        sqlx::query(concat!(
            "SELECT ",
            pairing_cols!(),
            " FROM channel_pairings WHERE channel_id = $1 ORDER BY created_at DESC, sender_id"
        ))
        .arg(channel_id.as_uuid())
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(pairing)
        .collect()
    }

    async fn is_paired(
        &self,
        channel_id: ChannelCredentialId,
        sender_id: &str,
    ) -> StoreResult<bool> {
        let row = sqlx::query(
            "SELECT channel_id FROM channel_pairings \
             WHERE channel_id = $1 AND sender_id = $2 AND approved_at IS NOT NULL",
        )
        .arg(channel_id.as_uuid())
        .arg(sender_id)
        .fetch_optional(self.db())
        .await
        .map_err(db)?;
        Ok(row.is_some())
    }

    async fn revoke_pairing(
        &self,
        channel_id: ChannelCredentialId,
        sender_id: &str,
    ) -> StoreResult<bool> {
        let done =
            sqlx::query("DELETE FROM channel_pairings WHERE channel_id = $1 AND sender_id = $2")
                .arg(channel_id.as_uuid())
                .arg(sender_id)
                .execute(self.db())
                .await
                .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }

    async fn put_channel_reply(&self, reply: &ChannelReply) -> StoreResult<()> {
        let ids = codec::json("channel reply message ids", &reply.message_ids)?;
        sqlx::query(
            "INSERT INTO channel_replies (turn_id, channel_id, message_ids, updated_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (turn_id) DO UPDATE SET message_ids = excluded.message_ids, \
             updated_at = excluded.updated_at",
        )
        .arg(reply.turn_id.as_uuid())
        .arg(reply.channel_id.as_uuid())
        .arg(ids)
        .arg(S::Db::time(reply.updated_at))
        .execute(self.db())
        .await
        .map_err(|e| write_error("channel reply", "turn or channel", e))?;
        Ok(())
    }

    async fn get_channel_reply(&self, turn_id: TurnId) -> StoreResult<Option<ChannelReply>> {
        let row = sqlx::query(
            "SELECT turn_id, channel_id, message_ids, updated_at \
             FROM channel_replies WHERE turn_id = $1",
        )
        .arg(turn_id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?;
        let Some(r) = row else { return Ok(None) };
        let ids = r.text("message_ids")?;
        Ok(Some(ChannelReply {
            turn_id: r.uuid("turn_id")?.into(),
            channel_id: r.uuid("channel_id")?.into(),
            message_ids: serde_json::from_str(&ids).map_err(|e| StoreError::Corrupt {
                what: "channel reply message ids",
                detail: e.to_string(),
            })?,
            updated_at: r.time("updated_at")?,
        }))
    }
}
