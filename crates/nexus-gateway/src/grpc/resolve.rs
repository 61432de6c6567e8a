//! Turning references given by callers (names or ids) into records they may see.

use nexus_core::{Agent, AgentId, Session, SessionId, User, UserId};
use nexus_security::Principal;

use super::GatewayService;
use crate::error::ApiError;

impl GatewayService {
    /// An agent by id (any the caller may access) or by name (the caller's own).
    pub(crate) async fn resolve_agent(
        &self,
        principal: &Principal,
        reference: &str,
    ) -> Result<Agent, ApiError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ApiError::invalid("agent is required (a name or an id)"));
        }
        let key = (principal.user_id, reference.to_owned());
        if let Some(agent) = self.agents.get(&key) {
            return Ok(agent);
        }
        let found = match reference.parse::<AgentId>() {
            Ok(id) => self
                .store
                .get_agent(id)
                .await?
                .filter(|a| principal.can_access(a.owner_id)),
            Err(_) => {
                self.store
                    .get_agent_by_name(principal.user_id, reference)
                    .await?
            }
        };
        let agent = found.ok_or_else(|| {
            ApiError::NotFound(format!(
                "agent `{reference}` not found; `nexus agent list` shows your agents"
            ))
        })?;
        self.agents.insert(key, agent.clone());
        Ok(agent)
    }

    /// A session by id, if it is the caller's (or the caller is an admin and `admin_may_read`).
    pub(crate) async fn resolve_session(
        &self,
        principal: &Principal,
        reference: &str,
        admin_may_read: bool,
    ) -> Result<Session, ApiError> {
        let id: SessionId = reference
            .parse()
            .map_err(|_| ApiError::invalid(format!("session id `{reference}` is not a UUID")))?;
        let session = match self.sessions.get(&id) {
            Some(s) => Some(s),
            None => {
                let read = self.store.get_session(id).await?;
                if let Some(s) = &read {
                    self.sessions.insert(id, s.clone());
                }
                read
            }
        };
        session
            .filter(|s| s.user_id == principal.user_id || (admin_may_read && principal.is_admin()))
            .ok_or_else(|| ApiError::not_found("session", reference))
    }

    /// A user by id or name; empty means `default`.
    pub(crate) async fn resolve_user(
        &self,
        reference: &str,
        default: UserId,
    ) -> Result<User, ApiError> {
        let reference = reference.trim();
        let found = if reference.is_empty() {
            self.store.get_user(default).await?
        } else if let Ok(id) = reference.parse::<UserId>() {
            self.store.get_user(id).await?
        } else {
            self.store.get_user_by_name(reference).await?
        };
        found.ok_or_else(|| ApiError::not_found("user", reference))
    }
}
