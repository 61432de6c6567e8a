//! Authentication of API calls by `authorization: Bearer <api key>`.
//!
//! Keys are looked up by their SHA-256 hash. A short-lived cache keeps the database off the hot
//! path; revoking a key through this server drops it from the cache at once, and other replicas
//! see the revocation within the cache lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use nexus_core::ApiKeyId;
use nexus_security::{Principal, hash_api_key, looks_like_api_key};
use nexus_store::Store;
use tracing::warn;

use crate::error::ApiError;

/// How long a verified key is trusted without asking the database again.
const CACHE_TTL: Duration = Duration::from_secs(2);
/// How often `last_used_at` of a key is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Cached keys at most (a flood of distinct valid keys cannot grow memory without bound).
const CACHE_CAP: usize = 10_000;

#[derive(Debug, Clone)]
struct Cached {
    principal: Principal,
    verified: Instant,
    touched: Instant,
}

/// Verifies API keys.
#[derive(Debug)]
pub struct Authenticator {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<String, Cached>>,
}

impl Authenticator {
    /// An authenticator over the store's keys and users.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Authenticator {
            store,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        // Single inserts/removes only: a poisoned map is still consistent.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The caller of a request carrying `authorization` metadata.
    pub async fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, ApiError> {
        let header = authorization.ok_or_else(|| {
            ApiError::Unauthenticated(
                "missing `authorization: Bearer <api key>`; pass --api-key or set NEXUS_API_KEY"
                    .to_owned(),
            )
        })?;
        let key = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthenticated("authorization must be `Bearer <api key>`".to_owned())
            })?;
        if !looks_like_api_key(key) {
            return Err(ApiError::Unauthenticated("invalid API key".to_owned()));
        }
        let hash = hash_api_key(key);
        let now = Instant::now();
        if let Some(hit) = self.cache().get_mut(&hash)
            && now.duration_since(hit.verified) < CACHE_TTL
        {
            return Ok(hit.principal);
        }
        let Some(record) = self.store.get_api_key_by_hash(&hash).await? else {
            return Err(ApiError::Unauthenticated("invalid API key".to_owned()));
        };
        if record.revoked_at.is_some() {
            self.cache().remove(&hash);
            return Err(ApiError::Unauthenticated(
                "this API key was revoked".to_owned(),
            ));
        }
        let Some(user) = self.store.get_user(record.user_id).await? else {
            return Err(ApiError::Unauthenticated(
                "the key's user no longer exists".to_owned(),
            ));
        };
        let principal = Principal {
            user_id: user.id,
            role: user.role,
            api_key_id: record.id,
        };
        let touch = {
            let mut cache = self.cache();
            if cache.len() >= CACHE_CAP {
                cache.retain(|_, c| now.duration_since(c.verified) < CACHE_TTL);
                if cache.len() >= CACHE_CAP {
                    cache.clear();
                }
            }
            let last_touch = cache.get(&hash).map(|c| c.touched);
            let touched = match last_touch {
                Some(t) if now.duration_since(t) < TOUCH_EVERY => t,
                _ => now,
            };
            cache.insert(
                hash,
                Cached {
                    principal,
                    verified: now,
                    touched,
                },
            );
            touched == now
        };
        if touch && let Err(err) = self.store.touch_api_key(record.id, Utc::now()).await {
            warn!(error = %err, "Could not record the use of an API key");
        }
        Ok(principal)
    }

    /// Forgets a key at once (after revocation).
    pub fn forget(&self, key_id: ApiKeyId) {
        self.cache().retain(|_, c| c.principal.api_key_id != key_id);
    }
}
