//! The gRPC service `nexus.v1.Gateway`: authentication, request checks and mapping onto the
//! store and the runtime. Each handler authenticates first, then checks the caller may act on
//! the records involved; records of other users answer `NOT_FOUND`, never their existence.

mod admin;
mod channels;
mod chat;
pub(crate) mod convert;

pub use convert::DownloadLinks;
mod provider_keys;
mod resolve;
mod usage;

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use nexus_core::cache::TtlCache;
use nexus_core::{Agent, Session, SessionId, UserId};
use nexus_runtime::Runtime;
use nexus_security::{Principal, Vault};
use nexus_store::Store;
use tonic::{Request, Response, Status};

use crate::auth::Authenticator;
use crate::channels::ChannelService;
use crate::error::ApiError;
use crate::pb;
use crate::pb::gateway_server::Gateway;

/// Limits and defaults of the API.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest chat message, in bytes.
    pub max_message_bytes: usize,
    /// Model of agents created without one.
    pub default_model: String,
    /// Download links of stored files (tool outputs, attachments).
    pub links: convert::DownloadLinks,
}

/// The gRPC service.
#[derive(Debug, Clone)]
pub struct GatewayService {
    store: Arc<dyn Store>,
    runtime: Runtime,
    auth: Arc<Authenticator>,
    vault: Arc<Vault>,
    settings: Arc<ApiSettings>,
    /// Agents resolved recently, by caller and reference (name or id).
    agents: Arc<TtlCache<(UserId, String), Agent>>,
    /// Sessions read recently (their owner, agent and channel never change).
    sessions: Arc<TtlCache<SessionId, Session>>,
    /// The channels of this replica.
    channels: ChannelService,
    /// The server's public base URL (for webhook URLs).
    public_url: url::Url,
}

/// How long resolved agents and sessions are reused: an agent's change reaches new chats
/// within this time.
const LOOKUP_TTL: Duration = Duration::from_secs(2);
/// Cached lookups at most, per kind.
const LOOKUP_CAPACITY: usize = 4096;

impl GatewayService {
    /// A service over the store and runtime.
    pub fn new(
        store: Arc<dyn Store>,
        runtime: Runtime,
        auth: Arc<Authenticator>,
        vault: Arc<Vault>,
        settings: ApiSettings,
        channels: ChannelService,
        public_url: url::Url,
    ) -> Self {
        GatewayService {
            channels,
            public_url,
            store,
            runtime,
            auth,
            vault,
            settings: Arc::new(settings),
            agents: Arc::new(TtlCache::new(LOOKUP_TTL, LOOKUP_CAPACITY)),
            sessions: Arc::new(TtlCache::new(LOOKUP_TTL, LOOKUP_CAPACITY)),
        }
    }

    async fn principal<T>(&self, request: &Request<T>) -> Result<Principal, ApiError> {
        let header = request
            .metadata()
            .get("authorization")
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::Unauthenticated("authorization is not text".to_owned()))
            })
            .transpose()?;
        self.auth.authenticate(header).await
    }

    async fn admin<T>(&self, request: &Request<T>) -> Result<Principal, ApiError> {
        let principal = self.principal(request).await?;
        if principal.is_admin() {
            Ok(principal)
        } else {
            Err(ApiError::PermissionDenied(
                "this call needs an admin API key".to_owned(),
            ))
        }
    }
}

type ChatStream = Pin<Box<dyn Stream<Item = Result<pb::ChatEvent, Status>> + Send>>;

#[tonic::async_trait]
impl Gateway for GatewayService {
    type ChatStream = ChatStream;

    async fn chat(
        &self,
        request: Request<pb::ChatRequest>,
    ) -> Result<Response<Self::ChatStream>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.chat_stream(principal, request.into_inner()).await?,
        ))
    }

    async fn create_agent(
        &self,
        request: Request<pb::CreateAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.create_agent_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_agents(
        &self,
        request: Request<pb::ListAgentsRequest>,
    ) -> Result<Response<pb::ListAgentsResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.list_agents_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_agent(
        &self,
        request: Request<pb::GetAgentRequest>,
    ) -> Result<Response<pb::Agent>, Status> {
        let principal = self.principal(&request).await?;
        let agent = self
            .resolve_agent(&principal, &request.into_inner().agent)
            .await?;
        Ok(Response::new(convert::agent(&agent)))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.list_sessions_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_session(
        &self,
        request: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.get_session_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn cancel_turn(
        &self,
        request: Request<pb::CancelTurnRequest>,
    ) -> Result<Response<pb::CancelTurnResponse>, Status> {
        let principal = self.principal(&request).await?;
        let r = request.into_inner();
        let session = self
            .resolve_session(&principal, r.session_id.trim(), true)
            .await?;
        let turn = self.runtime.cancel_turn(session.id);
        Ok(Response::new(pb::CancelTurnResponse {
            turn_id: turn.map(|t| t.to_string()).unwrap_or_default(),
        }))
    }

    async fn list_tools(
        &self,
        request: Request<pb::ListToolsRequest>,
    ) -> Result<Response<pb::ListToolsResponse>, Status> {
        self.principal(&request).await?;
        Ok(Response::new(admin::list_tools(self.runtime.tools())))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::User>, Status> {
        self.admin(&request).await?;
        Ok(Response::new(
            self.create_user_from(request.into_inner()).await?,
        ))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.admin(&request).await?;
        let users = self.store.list_users().await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListUsersResponse {
            users: users.iter().map(convert::user).collect(),
        }))
    }

    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyResponse>, Status> {
        let principal = self.admin(&request).await?;
        Ok(Response::new(
            self.create_api_key_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysResponse>, Status> {
        self.admin(&request).await?;
        Ok(Response::new(
            self.list_api_keys_of(request.into_inner()).await?,
        ))
    }

    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyResponse>, Status> {
        self.admin(&request).await?;
        Ok(Response::new(
            self.revoke_api_key_by_id(request.into_inner()).await?,
        ))
    }

    async fn set_provider_key(
        &self,
        request: Request<pb::SetProviderKeyRequest>,
    ) -> Result<Response<pb::ProviderKey>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.set_provider_key_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_provider_keys(
        &self,
        request: Request<pb::ListProviderKeysRequest>,
    ) -> Result<Response<pb::ListProviderKeysResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(self.list_provider_keys_for(principal).await?))
    }

    async fn delete_provider_key(
        &self,
        request: Request<pb::DeleteProviderKeyRequest>,
    ) -> Result<Response<pb::DeleteProviderKeyResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.delete_provider_key_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn get_usage(
        &self,
        request: Request<pb::GetUsageRequest>,
    ) -> Result<Response<pb::GetUsageResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.usage(&principal, request.into_inner()).await?,
        ))
    }

    async fn add_channel(
        &self,
        request: Request<pb::AddChannelRequest>,
    ) -> Result<Response<pb::AddChannelResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.add_channel_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn list_channels(
        &self,
        request: Request<pb::ListChannelsRequest>,
    ) -> Result<Response<pb::ListChannelsResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(self.list_channels_for(principal).await?))
    }

    async fn get_channel(
        &self,
        request: Request<pb::GetChannelRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.get_channel_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn remove_channel(
        &self,
        request: Request<pb::RemoveChannelRequest>,
    ) -> Result<Response<pb::RemoveChannelResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.remove_channel_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn set_channel_status(
        &self,
        request: Request<pb::SetChannelStatusRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.set_channel_status_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn set_channel_access(
        &self,
        request: Request<pb::SetChannelAccessRequest>,
    ) -> Result<Response<pb::Channel>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.set_channel_access_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn approve_pairing(
        &self,
        request: Request<pb::ApprovePairingRequest>,
    ) -> Result<Response<pb::ApprovePairingResponse>, Status> {
        let principal = self.principal(&request).await?;
        Ok(Response::new(
            self.approve_pairing_for(principal, request.into_inner())
                .await?,
        ))
    }

    async fn who_am_i(
        &self,
        request: Request<pb::WhoAmIRequest>,
    ) -> Result<Response<pb::User>, Status> {
        let principal = self.principal(&request).await?;
        let user = self
            .store
            .get_user(principal.user_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::Unauthenticated("the key's user no longer exists".into()))?;
        Ok(Response::new(convert::user(&user)))
    }
}
