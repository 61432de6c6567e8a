//! The vault: seal and open a user's secrets in one call.
//!
//! Composes the [`MasterKey`] with per-user [`DataKey`]s kept wrapped in a
//! [`WrappedKeyStore`] (the gateway implements it over the store's user data key methods). A
//! user's data key is created on first use; when replicas race to create it, the store keeps the
//! first and everyone uses that one. Unwrapped data keys are cached in memory, bounded by
//! [`DEFAULT_CACHE_CAPACITY`] (least recently used evicted). The record id is the associated data,
//! so a sealed secret copied to another record does not open.
//!
//! Must never contain storage code or log secrets.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use nexus_core::UserId;
use secrecy::SecretString;
use zeroize::Zeroizing;

use crate::envelope::DataKey;
use crate::error::SecurityError;
use crate::master_key::MasterKey;

/// How many unwrapped data keys a vault keeps in memory by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 1024;

/// Where wrapped data keys live (one per user).
#[async_trait]
pub trait WrappedKeyStore: Send + Sync {
    /// The user's wrapped data key, if one was stored.
    async fn get_wrapped_key(&self, user: UserId) -> Result<Option<Vec<u8>>, SecurityError>;

    /// Stores `wrapped` unless the user already has a key, and returns the stored key (the
    /// first writer wins, so concurrent replicas agree on one key).
    async fn put_wrapped_key_if_absent(
        &self,
        user: UserId,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, SecurityError>;
}

/// Seals and opens per-user secrets. Cheap to share behind an `Arc`.
pub struct Vault {
    master: MasterKey,
    store: Arc<dyn WrappedKeyStore>,
    cache: Mutex<KeyCache>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        f.debug_struct("Vault")
            .field("master", &self.master)
            .field("cached_keys", &cache.entries.len())
            .field("cache_capacity", &cache.capacity)
            .finish_non_exhaustive()
    }
}

impl Vault {
    /// A vault over `store`, caching up to [`DEFAULT_CACHE_CAPACITY`] unwrapped data keys.
    pub fn new(master: MasterKey, store: Arc<dyn WrappedKeyStore>) -> Self {
        Self {
            master,
            store,
            cache: Mutex::new(KeyCache::new(DEFAULT_CACHE_CAPACITY)),
        }
    }

    /// Sets how many unwrapped data keys stay in memory (at least one).
    #[must_use]
    pub fn with_cache_capacity(self, capacity: usize) -> Self {
        Self {
            cache: Mutex::new(KeyCache::new(capacity)),
            ..self
        }
    }

    /// Encrypts `plaintext` for `user`, bound to `record_id`. Creates the user's data key on
    /// first use.
    pub async fn seal_for(
        &self,
        user: UserId,
        record_id: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        let key = self.data_key(user, true).await?;
        Ok(key.seal(plaintext, record_id))
    }

    /// Decrypts what [`Vault::seal_for`] produced for the same user and record.
    pub async fn open_for(
        &self,
        user: UserId,
        record_id: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecurityError> {
        let key = self.data_key(user, false).await?;
        key.open(sealed, record_id)
    }

    /// Like [`Vault::open_for`], for secrets that are text (tokens, passwords).
    pub async fn open_string_for(
        &self,
        user: UserId,
        record_id: &[u8],
        sealed: &[u8],
    ) -> Result<SecretString, SecurityError> {
        let plain = self.open_for(user, record_id, sealed).await?;
        let text = std::str::from_utf8(&plain).map_err(|_| SecurityError::Malformed {
            detail: "sealed secret is not UTF-8 text",
        })?;
        Ok(SecretString::from(text))
    }

    /// The user's data key: from the cache, else unwrapped from the store, else (if `create`)
    /// generated and stored unless another writer got there first.
    async fn data_key(&self, user: UserId, create: bool) -> Result<Arc<DataKey>, SecurityError> {
        if let Some(key) = self.lock_cache().get(user) {
            return Ok(key);
        }
        let wrapped = match self.store.get_wrapped_key(user).await? {
            Some(wrapped) => wrapped,
            None if create => {
                let fresh = self.master.wrap_data_key(&DataKey::generate(), user);
                self.store.put_wrapped_key_if_absent(user, &fresh).await?
            }
            None => return Err(SecurityError::DataKeyMissing { user }),
        };
        let key = Arc::new(self.master.unwrap_data_key(&wrapped, user)?);
        self.lock_cache().insert(user, Arc::clone(&key));
        Ok(key)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, KeyCache> {
        // The cache holds no invariant a panic could break half-way.
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A small LRU map of unwrapped data keys. Eviction scans for the oldest entry, which is cheap
/// at the sizes used and keeps the code obvious.
struct KeyCache {
    entries: HashMap<UserId, (Arc<DataKey>, u64)>,
    capacity: usize,
    clock: u64,
}

impl KeyCache {
    fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            clock: 0,
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    fn get(&mut self, user: UserId) -> Option<Arc<DataKey>> {
        let now = self.tick();
        let (key, used) = self.entries.get_mut(&user)?;
        *used = now;
        Some(Arc::clone(key))
    }

    fn insert(&mut self, user: UserId, key: Arc<DataKey>) {
        let now = self.tick();
        if !self.entries.contains_key(&user) && self.entries.len() >= self.capacity {
            let oldest = self
                .entries
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(user, _)| *user);
            if let Some(oldest) = oldest {
                self.entries.remove(&oldest);
            }
        }
        self.entries.insert(user, (key, now));
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use secrecy::ExposeSecret;
    use tokio::sync::Barrier;

    use super::*;

    /// An in-memory store; with a barrier, `get` waits until that many callers have read,
    /// which forces concurrent first uses to race.
    #[derive(Default)]
    struct MemoryKeys {
        keys: Mutex<HashMap<UserId, Vec<u8>>>,
        barrier: Option<Barrier>,
        gets: AtomicUsize,
        puts: AtomicUsize,
    }

    #[async_trait]
    impl WrappedKeyStore for MemoryKeys {
        async fn get_wrapped_key(&self, user: UserId) -> Result<Option<Vec<u8>>, SecurityError> {
            self.gets.fetch_add(1, Ordering::SeqCst);
            let found = self.keys.lock().unwrap().get(&user).cloned();
            if let Some(barrier) = &self.barrier {
                barrier.wait().await;
            }
            Ok(found)
        }

        async fn put_wrapped_key_if_absent(
            &self,
            user: UserId,
            wrapped: &[u8],
        ) -> Result<Vec<u8>, SecurityError> {
            self.puts.fetch_add(1, Ordering::SeqCst);
            let mut keys = self.keys.lock().unwrap();
            Ok(keys.entry(user).or_insert_with(|| wrapped.to_vec()).clone())
        }
    }

    struct FailingKeys;

    #[async_trait]
    impl WrappedKeyStore for FailingKeys {
        async fn get_wrapped_key(&self, _: UserId) -> Result<Option<Vec<u8>>, SecurityError> {
            Err(SecurityError::storage(std::io::Error::other(
                "database down",
            )))
        }

        async fn put_wrapped_key_if_absent(
            &self,
            _: UserId,
            _: &[u8],
        ) -> Result<Vec<u8>, SecurityError> {
            Err(SecurityError::storage(std::io::Error::other(
                "database down",
            )))
        }
    }

    fn master() -> MasterKey {
        MasterKey::from_bytes([42; 32])
    }

    #[tokio::test]
    async fn sealed_secret_opens_for_the_same_user_and_record_only() {
        let store = Arc::new(MemoryKeys::default());
        let vault = Vault::new(master(), store.clone());
        let alice = UserId::new();
        let sealed = vault
            .seal_for(alice, b"cred-1", b"xoxb-token")
            .await
            .unwrap();
        assert_eq!(
            vault
                .open_for(alice, b"cred-1", &sealed)
                .await
                .unwrap()
                .as_slice(),
            b"xoxb-token"
        );
        assert_eq!(
            vault
                .open_string_for(alice, b"cred-1", &sealed)
                .await
                .unwrap()
                .expose_secret(),
            "xoxb-token"
        );
        // Copied to another record.
        assert!(matches!(
            vault.open_for(alice, b"cred-2", &sealed).await,
            Err(SecurityError::DecryptionFailed)
        ));
        // Opened as another user who has a key of their own.
        let bob = UserId::new();
        vault.seal_for(bob, b"x", b"y").await.unwrap();
        assert!(matches!(
            vault.open_for(bob, b"cred-1", &sealed).await,
            Err(SecurityError::DecryptionFailed)
        ));
        // A user without any key.
        assert!(matches!(
            vault.open_for(UserId::new(), b"cred-1", &sealed).await,
            Err(SecurityError::DataKeyMissing { .. })
        ));
    }

    #[tokio::test]
    async fn a_restarted_vault_opens_what_the_previous_one_sealed() {
        let store = Arc::new(MemoryKeys::default());
        let user = UserId::new();
        let sealed = Vault::new(master(), store.clone())
            .seal_for(user, b"r", b"secret")
            .await
            .unwrap();
        let reopened = Vault::new(master(), store.clone());
        assert_eq!(
            reopened
                .open_for(user, b"r", &sealed)
                .await
                .unwrap()
                .as_slice(),
            b"secret"
        );

        let other_master = Vault::new(MasterKey::from_bytes([1; 32]), store);
        assert!(matches!(
            other_master.open_for(user, b"r", &sealed).await,
            Err(SecurityError::DecryptionFailed)
        ));
    }

    #[tokio::test]
    async fn concurrent_first_seals_for_a_user_end_with_one_data_key() {
        let store = Arc::new(MemoryKeys {
            barrier: Some(Barrier::new(2)),
            ..MemoryKeys::default()
        });
        let vault = Vault::new(master(), store.clone());
        let user = UserId::new();
        let (a, b) = tokio::join!(
            vault.seal_for(user, b"r1", b"one"),
            vault.seal_for(user, b"r2", b"two")
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        // Both saw no key and both tried to store one; the store kept one.
        assert_eq!(store.puts.load(Ordering::SeqCst), 2);
        assert_eq!(store.keys.lock().unwrap().len(), 1);

        // A fresh vault (no cache) opens both with the single stored key.
        let fresh = Vault::new(
            master(),
            Arc::new(MemoryKeys {
                keys: Mutex::new(store.keys.lock().unwrap().clone()),
                ..MemoryKeys::default()
            }),
        );
        assert_eq!(
            fresh.open_for(user, b"r1", &a).await.unwrap().as_slice(),
            b"one"
        );
        assert_eq!(
            fresh.open_for(user, b"r2", &b).await.unwrap().as_slice(),
            b"two"
        );
    }

    #[tokio::test]
    async fn data_keys_are_cached_and_the_cache_is_bounded() {
        let store = Arc::new(MemoryKeys::default());
        let vault = Vault::new(master(), store.clone()).with_cache_capacity(2);
        let users = [UserId::new(), UserId::new(), UserId::new()];
        let sealed = vault.seal_for(users[0], b"r", b"s").await.unwrap();
        let gets = store.gets.load(Ordering::SeqCst);
        vault.open_for(users[0], b"r", &sealed).await.unwrap();
        assert_eq!(store.gets.load(Ordering::SeqCst), gets, "served from cache");

        vault.seal_for(users[1], b"r", b"s").await.unwrap();
        vault.open_for(users[0], b"r", &sealed).await.unwrap(); // users[0] most recent
        vault.seal_for(users[2], b"r", b"s").await.unwrap(); // evicts users[1]
        assert_eq!(vault.lock_cache().entries.len(), 2);
        assert!(vault.lock_cache().entries.contains_key(&users[0]));
        assert!(!vault.lock_cache().entries.contains_key(&users[1]));
    }

    #[tokio::test]
    async fn store_failures_surface_as_storage_errors() {
        let vault = Vault::new(master(), Arc::new(FailingKeys));
        let err = vault.seal_for(UserId::new(), b"r", b"s").await.unwrap_err();
        assert!(matches!(err, SecurityError::Storage(_)), "{err:?}");
        assert!(err.to_string().contains("database down"));
    }

    #[tokio::test]
    async fn debug_of_vault_shows_no_key_material() {
        let vault = Vault::new(
            MasterKey::from_bytes([0xEE; 32]),
            Arc::new(MemoryKeys::default()),
        );
        vault.seal_for(UserId::new(), b"r", b"s").await.unwrap();
        let shown = format!("{vault:?}");
        assert!(shown.contains("REDACTED"));
        assert!(!shown.to_lowercase().contains("ee"), "{shown}");
    }
}
