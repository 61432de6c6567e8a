//! Users' own provider API keys: sealed with the user's data key (the record id is the
//! associated data) before they reach the store, never returned, never logged.

use chrono::{SecondsFormat, Utc};
use nexus_security::Principal;
use nexus_store::ProviderCredential;
use tracing::info;

use super::GatewayService;
use crate::error::ApiError;
use crate::pb;
use crate::validate;

/// Longest provider key accepted, in bytes.
const MAX_PROVIDER_KEY: usize = 4096;

impl GatewayService {
    pub(crate) async fn set_provider_key_for(
        &self,
        principal: Principal,
        r: pb::SetProviderKeyRequest,
    ) -> Result<pb::ProviderKey, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot store keys".into(),
            ));
        }
        validate::name("provider", &r.provider, false)?;
        let key = r.api_key.trim();
        if key.is_empty() {
            return Err(ApiError::invalid("api_key is empty"));
        }
        if key.len() > MAX_PROVIDER_KEY || key.chars().any(char::is_control) {
            return Err(ApiError::invalid(format!(
                "api_key must be at most {MAX_PROVIDER_KEY} bytes of printable text"
            )));
        }
        let id = uuid::Uuid::new_v4();
        let sealed = self
            .vault
            .seal_for(principal.user_id, id.as_bytes(), key.as_bytes())
            .await
            .map_err(|e| ApiError::Internal(Box::new(e)))?;
        let credential = ProviderCredential {
            id,
            user_id: principal.user_id,
            provider: r.provider,
            sealed_secret: sealed,
            created_at: Utc::now(),
        };
        self.store.put_provider_credential(&credential).await?;
        info!(provider = %credential.provider, "Provider key stored (sealed)");
        Ok(provider_key(&credential))
    }

    pub(crate) async fn list_provider_keys_for(
        &self,
        principal: Principal,
    ) -> Result<pb::ListProviderKeysResponse, ApiError> {
        let keys = self
            .store
            .list_provider_credentials(principal.user_id)
            .await?;
        Ok(pb::ListProviderKeysResponse {
            keys: keys.iter().map(provider_key).collect(),
        })
    }

    pub(crate) async fn delete_provider_key_for(
        &self,
        principal: Principal,
        r: pb::DeleteProviderKeyRequest,
    ) -> Result<pb::DeleteProviderKeyResponse, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot delete keys".into(),
            ));
        }
        let deleted = self
            .store
            .delete_provider_credential(principal.user_id, r.provider.trim())
            .await?;
        Ok(pb::DeleteProviderKeyResponse { deleted })
    }
}

fn provider_key(c: &ProviderCredential) -> pb::ProviderKey {
    pb::ProviderKey {
        provider: c.provider.clone(),
        created_at: c.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
    }
}
