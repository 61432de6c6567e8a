//! Agents, sessions, users and API keys.

use chrono::Utc;
use nexus_core::{
    Agent, AgentId, ApiKey, ApiKeyId, DEFAULT_MAX_STEPS, ToolPolicy, User, UserId, UserRole,
};
use nexus_security::{Principal, generate_api_key};
use nexus_store::SessionFilter;
use secrecy::ExposeSecret;
use tracing::info;

use super::{GatewayService, convert};
use crate::error::ApiError;
use crate::pb;
use crate::validate;

impl GatewayService {
    pub(crate) async fn create_agent_for(
        &self,
        principal: Principal,
        r: pb::CreateAgentRequest,
    ) -> Result<pb::Agent, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot create agents".into(),
            ));
        }
        validate::name("agent", &r.name, false)?;
        let model = if r.model.trim().is_empty() {
            self.settings.default_model.clone()
        } else {
            r.model.trim().to_owned()
        };
        validate::model(&model)?;
        for fallback in &r.fallback_models {
            validate::model(fallback)?;
        }
        let registry = self.runtime.tools();
        for tool in &r.tools {
            if !registry.contains(tool) {
                let known = registry.names();
                return Err(ApiError::invalid(format!(
                    "unknown tool `{tool}`; available: {}",
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                )));
            }
        }
        if r.system_prompt.len() > validate::MAX_SYSTEM_PROMPT {
            return Err(ApiError::invalid(format!(
                "system prompt is longer than {} bytes",
                validate::MAX_SYSTEM_PROMPT
            )));
        }
        if r.max_steps > validate::MAX_STEPS {
            return Err(ApiError::invalid(format!(
                "max_steps must be at most {}",
                validate::MAX_STEPS
            )));
        }
        if let Some(t) = r.temperature
            && !(0.0..=2.0).contains(&t)
        {
            return Err(ApiError::invalid("temperature must be between 0 and 2"));
        }
        let now = Utc::now();
        let agent = Agent {
            id: AgentId::new(),
            owner_id: principal.user_id,
            name: r.name,
            description: r.description,
            system_prompt: r.system_prompt,
            model,
            fallback_models: r.fallback_models,
            tools: r.tools,
            tool_policy: ToolPolicy {
                network: r.tool_policy.is_some_and(|p| p.network),
            },
            max_steps: if r.max_steps == 0 {
                DEFAULT_MAX_STEPS
            } else {
                r.max_steps
            },
            max_output_tokens: r.max_output_tokens.filter(|n| *n > 0),
            temperature: r.temperature,
            created_at: now,
            updated_at: now,
        };
        self.store.create_agent(&agent).await.map_err(|e| match e {
            nexus_store::StoreError::Conflict { .. } => {
                ApiError::AlreadyExists(format!("you already have an agent named `{}`", agent.name))
            }
            other => other.into(),
        })?;
        info!(agent = %agent.name, model = %agent.model, "Agent created");
        Ok(convert::agent(&agent))
    }

    pub(crate) async fn list_agents_for(
        &self,
        principal: Principal,
        r: pb::ListAgentsRequest,
    ) -> Result<pb::ListAgentsResponse, ApiError> {
        let owner = self.scope_to_caller(&principal, r.all_users)?;
        let agents = self.store.list_agents(owner).await?;
        Ok(pb::ListAgentsResponse {
            agents: agents.iter().map(convert::agent).collect(),
        })
    }

    pub(crate) async fn list_sessions_for(
        &self,
        principal: Principal,
        r: pb::ListSessionsRequest,
    ) -> Result<pb::ListSessionsResponse, ApiError> {
        let user_id = self.scope_to_caller(&principal, r.all_users)?;
        let agent_id = if r.agent.trim().is_empty() {
            None
        } else {
            Some(self.resolve_agent(&principal, &r.agent).await?.id)
        };
        let sessions = self
            .store
            .list_sessions(&SessionFilter {
                user_id,
                agent_id,
                limit: if r.limit == 0 { 50 } else { r.limit.min(1000) },
            })
            .await?;
        Ok(pb::ListSessionsResponse {
            sessions: sessions.iter().map(convert::session).collect(),
        })
    }

    pub(crate) async fn get_session_for(
        &self,
        principal: Principal,
        r: pb::GetSessionRequest,
    ) -> Result<pb::GetSessionResponse, ApiError> {
        let session = self
            .resolve_session(&principal, r.session_id.trim(), true)
            .await?;
        if r.after_seq < 0 {
            return Err(ApiError::invalid("after_seq must not be negative"));
        }
        let messages = self
            .store
            .list_messages(session.id, r.after_seq, r.limit)
            .await?;
        Ok(pb::GetSessionResponse {
            session: Some(convert::session(&session)),
            messages: messages
                .iter()
                .map(|m| convert::message(m, &self.settings.links))
                .collect(),
        })
    }

    pub(crate) async fn create_user_from(
        &self,
        r: pb::CreateUserRequest,
    ) -> Result<pb::User, ApiError> {
        validate::name("user", &r.name, true)?;
        let role = if r.role.trim().is_empty() {
            UserRole::User
        } else {
            r.role.trim().parse::<UserRole>().map_err(|_| {
                ApiError::invalid(format!(
                    "role `{}` is not one of admin, user, viewer",
                    r.role
                ))
            })?
        };
        let user = User {
            id: UserId::new(),
            name: r.name,
            role,
            created_at: Utc::now(),
        };
        self.store.create_user(&user).await.map_err(|e| match e {
            nexus_store::StoreError::Conflict { .. } => {
                ApiError::AlreadyExists(format!("a user named `{}` already exists", user.name))
            }
            other => other.into(),
        })?;
        info!(user = %user.name, role = %user.role, "User created");
        Ok(convert::user(&user))
    }

    pub(crate) async fn create_api_key_for(
        &self,
        principal: Principal,
        r: pb::CreateApiKeyRequest,
    ) -> Result<pb::CreateApiKeyResponse, ApiError> {
        let user = self.resolve_user(&r.user, principal.user_id).await?;
        let label = if r.name.trim().is_empty() {
            "default".to_owned()
        } else {
            r.name.trim().to_owned()
        };
        if label.len() > 64 {
            return Err(ApiError::invalid("key name is longer than 64 characters"));
        }
        let generated = generate_api_key();
        let key = ApiKey {
            id: ApiKeyId::new(),
            user_id: user.id,
            name: label,
            prefix: generated.prefix.clone(),
            hash: generated.hash.clone(),
            created_at: Utc::now(),
            last_used_at: None,
            revoked_at: None,
        };
        self.store.create_api_key(&key).await?;
        info!(user = %user.name, key_prefix = %key.prefix, "API key created");
        Ok(pb::CreateApiKeyResponse {
            key: Some(convert::api_key(&key)),
            secret: generated.plaintext.expose_secret().to_owned(),
        })
    }

    pub(crate) async fn list_api_keys_of(
        &self,
        r: pb::ListApiKeysRequest,
    ) -> Result<pb::ListApiKeysResponse, ApiError> {
        let user = if r.user.trim().is_empty() {
            None
        } else {
            Some(self.resolve_user(&r.user, UserId::new()).await?.id)
        };
        let keys = self.store.list_api_keys(user).await?;
        Ok(pb::ListApiKeysResponse {
            keys: keys.iter().map(convert::api_key).collect(),
        })
    }

    pub(crate) async fn revoke_api_key_by_id(
        &self,
        r: pb::RevokeApiKeyRequest,
    ) -> Result<pb::RevokeApiKeyResponse, ApiError> {
        let id: ApiKeyId = r
            .key_id
            .trim()
            .parse()
            .map_err(|_| ApiError::invalid(format!("key id `{}` is not a UUID", r.key_id)))?;
        if self.store.get_api_key(id).await?.is_none() {
            return Err(ApiError::not_found("API key", &r.key_id));
        }
        let revoked = self.store.revoke_api_key(id, Utc::now()).await?;
        self.auth.forget(id);
        info!(key_id = %id, revoked, "API key revoked");
        Ok(pb::RevokeApiKeyResponse { revoked })
    }

    /// `None` (everyone) for admins asking for all users, else the caller.
    fn scope_to_caller(
        &self,
        principal: &Principal,
        all_users: bool,
    ) -> Result<Option<UserId>, ApiError> {
        match (all_users, principal.is_admin()) {
            (true, true) => Ok(None),
            (true, false) => Err(ApiError::PermissionDenied(
                "only admins can list every user's records".to_owned(),
            )),
            (false, _) => Ok(Some(principal.user_id)),
        }
    }
}

/// The tools agents can be given: the fixed ones, then each source as `mcp:{name}` with the
/// tools it offers now.
pub(crate) fn list_tools(registry: &nexus_runtime::ToolRegistry) -> pb::ListToolsResponse {
    let fixed = registry.tools().map(|t| pb::ToolInfo {
        name: t.name().to_owned(),
        description: t.description().to_owned(),
        parameters_json: t.schema().to_string(),
        tools: Vec::new(),
        status: String::new(),
    });
    let sources = registry.sources().map(|s| pb::ToolInfo {
        name: format!("{}{}", nexus_tools::SOURCE_PREFIX, s.name()),
        description: format!("Every tool of the MCP server `{}`.", s.name()),
        parameters_json: String::new(),
        tools: s.tools().iter().map(|t| t.name().to_owned()).collect(),
        status: s.status(),
    });
    pb::ListToolsResponse {
        tools: fixed.chain(sources).collect(),
    }
}
