//! Both backends: agents, sessions and the reads of a session's messages.

use async_trait::async_trait;
use nexus_core::{Agent, AgentId, ChannelKind, Message, Session, SessionId, UserId};
use sqlx::QueryBuilder;

use super::{Arg, PushArg, RowsAffected, SqlDb, SqlStore};
use crate::codec::{
    self, agent_cols, db, limit_or_all, limit_or_default, message_cols, session_cols, write_error,
};
use crate::error::{StoreError, StoreResult};
use crate::records::SessionFilter;
use crate::traits::{AgentStore, SessionStore};

/// Sessions listed when a filter sets no limit.
const DEFAULT_SESSION_LIMIT: u32 = 100;

#[async_trait]
impl<S: SqlStore> AgentStore for S {
    async fn create_agent(&self, a: &Agent) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO agents (",
            agent_cols!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .arg(a.id.as_uuid())
        .arg(a.owner_id.as_uuid())
        .arg(&a.name)
        .arg(&a.description)
        .arg(&a.system_prompt)
        .arg(&a.model)
        .arg(codec::json("agent fallback_models", &a.fallback_models)?)
        .arg(codec::json("agent tools", &a.tools)?)
        .arg(i64::from(a.max_steps))
        .arg(a.max_output_tokens.map(i64::from))
        .arg(a.temperature)
        .arg(S::Db::time(a.created_at))
        .arg(S::Db::time(a.updated_at))
        .arg(codec::json("agent tool_policy", &a.tool_policy)?)
        .execute(self.db())
        .await
        .map_err(|e| write_error("agent name", "owner", e))?;
        Ok(())
    }

    async fn get_agent(&self, id: AgentId) -> StoreResult<Option<Agent>> {
        sqlx::query(concat!(
            "SELECT ",
            agent_cols!(),
            " FROM agents WHERE id = $1"
        ))
        .arg(id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::agent(&r))
        .transpose()
    }

    async fn get_agent_by_name(&self, owner: UserId, name: &str) -> StoreResult<Option<Agent>> {
        sqlx::query(concat!(
            "SELECT ",
            agent_cols!(),
            " FROM agents WHERE owner_id = $1 AND name = $2"
        ))
        .arg(owner.as_uuid())
        .arg(name)
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::agent(&r))
        .transpose()
    }

    async fn list_agents(&self, owner: Option<UserId>) -> StoreResult<Vec<Agent>> {
        let rows = match owner {
            Some(owner) => {
                sqlx::query(concat!(
                    "SELECT ",
                    agent_cols!(),
                    " FROM agents WHERE owner_id = $1 ORDER BY name, id"
                ))
                .arg(owner.as_uuid())
                .fetch_all(self.db())
                .await
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    agent_cols!(),
                    " FROM agents ORDER BY name, id"
                ))
                .fetch_all(self.db())
                .await
            }
        };
        rows.map_err(db)?.iter().map(codec::agent).collect()
    }

    async fn update_agent(&self, a: &Agent) -> StoreResult<()> {
        let done = sqlx::query(
            "UPDATE agents SET name = $2, description = $3, system_prompt = $4, model = $5, \
             fallback_models = $6, tools = $7, max_steps = $8, max_output_tokens = $9, \
             temperature = $10, updated_at = $11, tool_policy = $12 WHERE id = $1",
        )
        .arg(a.id.as_uuid())
        .arg(&a.name)
        .arg(&a.description)
        .arg(&a.system_prompt)
        .arg(&a.model)
        .arg(codec::json("agent fallback_models", &a.fallback_models)?)
        .arg(codec::json("agent tools", &a.tools)?)
        .arg(i64::from(a.max_steps))
        .arg(a.max_output_tokens.map(i64::from))
        .arg(a.temperature)
        .arg(S::Db::time(a.updated_at))
        .arg(codec::json("agent tool_policy", &a.tool_policy)?)
        .execute(self.db())
        .await
        .map_err(|e| write_error("agent name", "agent", e))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound { what: "agent" });
        }
        Ok(())
    }

    async fn delete_agent(&self, id: AgentId) -> StoreResult<bool> {
        let done = sqlx::query("DELETE FROM agents WHERE id = $1")
            .arg(id.as_uuid())
            .execute(self.db())
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}

#[async_trait]
impl<S: SqlStore> SessionStore for S {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(concat!(
            "INSERT INTO sessions (",
            session_cols!(),
            ", next_seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1)"
        ))
        .arg(s.id.as_uuid())
        .arg(s.user_id.as_uuid())
        .arg(s.agent_id.as_uuid())
        .arg(s.channel.as_str())
        .arg(&s.scope)
        .arg(&s.title)
        .arg(S::Db::time(s.created_at))
        .arg(S::Db::time(s.updated_at))
        .execute(self.db())
        .await
        .map_err(|e| write_error("session", "user or agent", e))?;
        Ok(())
    }

    async fn get_session(&self, id: SessionId) -> StoreResult<Option<Session>> {
        sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE id = $1"
        ))
        .arg(id.as_uuid())
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::session(&r))
        .transpose()
    }

    async fn find_session(
        &self,
        user_id: UserId,
        agent_id: AgentId,
        channel: ChannelKind,
        scope: &str,
    ) -> StoreResult<Option<Session>> {
        sqlx::query(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE user_id = $1 AND agent_id = $2 AND channel = $3 AND scope = $4"
        ))
        .arg(user_id.as_uuid())
        .arg(agent_id.as_uuid())
        .arg(channel.as_str())
        .arg(scope)
        .fetch_optional(self.db())
        .await
        .map_err(db)?
        .map(|r| codec::session(&r))
        .transpose()
    }

    async fn list_sessions(&self, filter: &SessionFilter) -> StoreResult<Vec<Session>> {
        let mut q = QueryBuilder::<S::Db>::new(concat!(
            "SELECT ",
            session_cols!(),
            " FROM sessions WHERE 1 = 1"
        ));
        if let Some(user) = filter.user_id {
            q.push(" AND user_id = ").push_arg(user.as_uuid());
        }
        if let Some(agent) = filter.agent_id {
            q.push(" AND agent_id = ").push_arg(agent.as_uuid());
        }
        q.push(" ORDER BY updated_at DESC, id LIMIT ")
            .push_arg(limit_or_default(filter.limit, DEFAULT_SESSION_LIMIT));
        q.build()
            .fetch_all(self.db())
            .await
            .map_err(db)?
            .iter()
            .map(codec::session)
            .collect()
    }

    async fn list_messages(
        &self,
        session_id: SessionId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        sqlx::query(concat!(
            "SELECT ",
            message_cols!(),
            " FROM messages WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .arg(session_id.as_uuid())
        .arg(after_seq)
        .arg(limit_or_all(limit))
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(codec::message)
        .collect()
    }

    async fn recent_messages(
        &self,
        session_id: SessionId,
        limit: u32,
    ) -> StoreResult<Vec<Message>> {
        let mut messages = sqlx::query(concat!(
            "SELECT ",
            message_cols!(),
            " FROM messages WHERE session_id = $1 ORDER BY seq DESC LIMIT $2"
        ))
        .arg(session_id.as_uuid())
        .arg(i64::from(limit))
        .fetch_all(self.db())
        .await
        .map_err(db)?
        .iter()
        .map(codec::message)
        .collect::<StoreResult<Vec<_>>>()?;
        messages.reverse();
        Ok(messages)
    }

    async fn retire_session(&self, id: SessionId) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE sessions SET scope = scope || '#' || $2 WHERE id = $1")
            .arg(id.as_uuid())
            .arg(id.to_string())
            .execute(self.db())
            .await
            .map_err(db)?;
        Ok(done.rows_affected() > 0)
    }
}
