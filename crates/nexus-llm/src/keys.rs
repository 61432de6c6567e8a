//! Several API keys of one provider: a call goes out with one key; a key that is rate limited,
//! out of quota or refused cools down for a while and the call moves on to the next key.
//!
//! A conversation (the request's `affinity`, a session id) sticks to the key that last served
//! it, so the provider's prompt cache for it stays warm; conversations without a key yet are
//! spread over the keys by a hash of their affinity. When every key is cooling down, the call
//! fails as rate limited with the time until the first key is free, so the retry wrapper
//! around this one waits exactly that long.
//!
//! Configured by a comma-separated list in the provider's key variable
//! (`OPENAI_API_KEY=sk-a,sk-b`); see `ProviderRegistry::from_lookup`.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::cache::TtlCache;
use nexus_core::llm::{
    ChunkStream, CompletionRequest, EmbeddingRequest, Embeddings, LlmError, LlmProvider, ModelInfo,
};
use tokio::time::Instant;
use tracing::warn;

/// How long a rate-limited key rests when the provider did not say.
const RATE_LIMIT_COOLDOWN: Duration = Duration::from_secs(30);
/// How long a key out of quota or refused rests.
const DEAD_KEY_COOLDOWN: Duration = Duration::from_secs(15 * 60);
/// How long a conversation remembers its key after its last call.
const STICKY_FOR: Duration = Duration::from_secs(60 * 60);
/// Conversations remembered at most.
const STICKY_CAPACITY: usize = 50_000;

struct Slot {
    provider: Arc<dyn LlmProvider>,
    /// When the key may be used again.
    resting_until: Mutex<Option<Instant>>,
}

impl Slot {
    fn resting(&self, now: Instant) -> Option<Duration> {
        let until = *self
            .resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.filter(|u| *u > now).map(|u| u - now)
    }

    fn rest(&self, until: Instant) {
        *self
            .resting_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(until);
    }
}

/// One provider behind several keys (one provider instance per key).
pub struct KeyRotation {
    slots: Vec<Slot>,
    sticky: TtlCache<String, usize>,
    /// Spreads calls without affinity.
    next: AtomicUsize,
}

impl std::fmt::Debug for KeyRotation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRotation")
            .field("provider", &self.name())
            .field("keys", &self.slots.len())
            .finish()
    }
}

impl KeyRotation {
    /// Rotation over `providers`, the same provider with one key each (at least one).
    pub fn new(providers: Vec<Arc<dyn LlmProvider>>) -> Result<KeyRotation, LlmError> {
        if providers.is_empty() {
            return Err(LlmError::BadRequest {
                message: "a key rotation needs at least one key".to_owned(),
            });
        }
        Ok(KeyRotation {
            slots: providers
                .into_iter()
                .map(|provider| Slot {
                    provider,
                    resting_until: Mutex::new(None),
                })
                .collect(),
            sticky: TtlCache::new(STICKY_FOR, STICKY_CAPACITY),
            next: AtomicUsize::new(0),
        })
    }

    /// Keys in the rotation.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether there is no key (never: [`KeyRotation::new`] refuses that).
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// The key a call starts with.
    fn first_slot(&self, affinity: Option<&str>) -> usize {
        let n = self.slots.len();
        match affinity {
            Some(a) => match self.sticky.get(&a.to_owned()) {
                Some(i) if i < n => i,
                _ => {
                    let mut h = DefaultHasher::new();
                    a.hash(&mut h);
                    // The modulo is below n, which is a usize.
                    #[allow(clippy::cast_possible_truncation, reason = "reduced modulo n")]
                    let i = (h.finish() % n as u64) as usize;
                    i
                }
            },
            None => self.next.fetch_add(1, Ordering::Relaxed) % n,
        }
    }
}

/// How long a key rests after `error`, or `None` if the error is not the key's.
fn rest_for(error: &LlmError) -> Option<Duration> {
    match error {
        LlmError::RateLimited { retry_after } => Some(
            retry_after
                .unwrap_or(RATE_LIMIT_COOLDOWN)
                .max(Duration::from_secs(1)),
        ),
        LlmError::QuotaExceeded { .. } | LlmError::Auth { .. } => Some(DEAD_KEY_COOLDOWN),
        _ => None,
    }
}

#[async_trait]
impl LlmProvider for KeyRotation {
    fn name(&self) -> &str {
        self.slots.first().map_or("rotation", |s| s.provider.name())
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.slots
            .first()
            .map(|s| s.provider.models())
            .unwrap_or_default()
    }

    fn supports_tools(&self) -> bool {
        self.slots
            .first()
            .is_some_and(|s| s.provider.supports_tools())
    }

    async fn complete(&self, request: CompletionRequest) -> Result<ChunkStream, LlmError> {
        let affinity = request.affinity.clone();
        self.rotate(affinity.as_deref(), |provider| {
            provider.complete(request.clone())
        })
        .await
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<Embeddings, LlmError> {
        self.rotate(None, |provider| provider.embed(request.clone()))
            .await
    }
}

impl KeyRotation {
    /// Runs `call` with the key of `affinity` (or the next one in turn), moving on to the
    /// next key while the failure is the key's own, and sticking `affinity` to the key that
    /// answered.
    async fn rotate<'a, T, F, Fut>(&'a self, affinity: Option<&str>, call: F) -> Result<T, LlmError>
    where
        F: Fn(&'a Arc<dyn LlmProvider>) -> Fut,
        Fut: std::future::Future<Output = Result<T, LlmError>>,
    {
        let n = self.slots.len();
        let start = self.first_slot(affinity);
        let mut last_error = None;
        let mut soonest: Option<Duration> = None;
        for step in 0..n {
            let i = (start + step) % n;
            let slot = &self.slots[i];
            if let Some(left) = slot.resting(Instant::now()) {
                soonest = Some(soonest.map_or(left, |s| s.min(left)));
                continue;
            }
            match call(&slot.provider).await {
                Ok(answer) => {
                    if let Some(affinity) = affinity {
                        self.sticky.insert(affinity.to_owned(), i);
                    }
                    return Ok(answer);
                }
                Err(error) => match rest_for(&error) {
                    Some(rest) => {
                        warn!(
                            provider = self.name(),
                            key = i + 1,
                            keys = n,
                            rest_secs = rest.as_secs(),
                            error = %error,
                            "API key resting; trying the next key"
                        );
                        slot.rest(Instant::now() + rest);
                        soonest = Some(soonest.map_or(rest, |s| s.min(rest)));
                        last_error = Some(error);
                    }
                    None => return Err(error),
                },
            }
        }
        Self::all_resting(last_error, soonest)
    }

    /// The error when every key is resting.
    fn all_resting<T>(
        last_error: Option<LlmError>,
        soonest: Option<Duration>,
    ) -> Result<T, LlmError> {
        // Every key is resting. A quota or auth failure of the last key tried says more than a
        // generic rate limit when no key will be back soon.
        match (last_error, soonest) {
            (
                Some(error @ (LlmError::QuotaExceeded { .. } | LlmError::Auth { .. })),
                Some(left),
            ) if left >= DEAD_KEY_COOLDOWN / 2 => Err(error),
            (_, soonest) => Err(LlmError::RateLimited {
                retry_after: soonest,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::collections::VecDeque;

    use futures::StreamExt;
    use nexus_core::llm::CompletionChunk;

    use super::*;

    /// A provider standing for one key: answers with its name, or the scripted errors first.
    #[derive(Debug)]
    struct Key {
        label: &'static str,
        errors: Mutex<VecDeque<LlmError>>,
        calls: AtomicUsize,
    }

    impl Key {
        fn new(label: &'static str, errors: Vec<LlmError>) -> Arc<Key> {
            Arc::new(Key {
                label,
                errors: Mutex::new(errors.into()),
                calls: AtomicUsize::new(0),
            })
        }
    }

    #[async_trait]
    impl LlmProvider for Key {
        fn name(&self) -> &str {
            "openai"
        }
        fn models(&self) -> Vec<ModelInfo> {
            Vec::new()
        }
        fn supports_tools(&self) -> bool {
            true
        }
        async fn complete(&self, _: CompletionRequest) -> Result<ChunkStream, LlmError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            if let Some(e) = self.errors.lock().unwrap().pop_front() {
                return Err(e);
            }
            let chunk = CompletionChunk::TextDelta {
                text: self.label.to_owned(),
            };
            Ok(Box::pin(futures::stream::iter([Ok(chunk)])))
        }
    }

    fn rotation(keys: &[Arc<Key>]) -> KeyRotation {
        KeyRotation::new(
            keys.iter()
                .map(|k| Arc::clone(k) as Arc<dyn LlmProvider>)
                .collect(),
        )
        .unwrap()
    }

    async fn answer(r: &KeyRotation, affinity: &str) -> Result<String, LlmError> {
        let request = CompletionRequest {
            affinity: Some(affinity.to_owned()),
            ..CompletionRequest::default()
        };
        let mut stream = r.complete(request).await?;
        match stream.next().await {
            Some(Ok(CompletionChunk::TextDelta { text })) => Ok(text),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn rate_limited(secs: u64) -> LlmError {
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(secs)),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_session_sticks_to_its_key_until_the_key_rests() {
        let a = Key::new("a", vec![]);
        let b = Key::new("b", vec![]);
        let r = rotation(&[Arc::clone(&a), Arc::clone(&b)]);
        let first = answer(&r, "session-1").await.unwrap();
        for _ in 0..5 {
            assert_eq!(answer(&r, "session-1").await.unwrap(), first);
        }
        // Its key gets rate limited: the session moves to the other key, and stays there.
        let (mine, other) = if first == "a" { (&a, "b") } else { (&b, "a") };
        mine.errors.lock().unwrap().push_back(rate_limited(20));
        assert_eq!(answer(&r, "session-1").await.unwrap(), other);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(answer(&r, "session-1").await.unwrap(), other);
    }

    #[tokio::test(start_paused = true)]
    async fn sessions_spread_over_the_keys() {
        let keys = [
            Key::new("a", vec![]),
            Key::new("b", vec![]),
            Key::new("c", vec![]),
        ];
        let r = rotation(&keys);
        for s in 0..60 {
            answer(&r, &format!("session-{s}")).await.unwrap();
        }
        for k in &keys {
            assert!(
                k.calls.load(Ordering::SeqCst) >= 5,
                "{} barely used",
                k.label
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn quota_and_auth_failures_rest_a_key_for_long() {
        let a = Key::new(
            "a",
            vec![LlmError::QuotaExceeded {
                message: "no credit".into(),
            }],
        );
        let b = Key::new("b", vec![]);
        let r = rotation(&[Arc::clone(&a), Arc::clone(&b)]);
        // Whichever key a session starts on, it ends up answered by b.
        for s in 0..4 {
            assert_eq!(answer(&r, &format!("s{s}")).await.unwrap(), "b");
        }
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(answer(&r, "fresh").await.unwrap(), "b");
        assert_eq!(a.calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn all_keys_resting_is_a_rate_limit_with_the_soonest_return() {
        let a = Key::new("a", vec![rate_limited(10)]);
        let b = Key::new("b", vec![rate_limited(4)]);
        let r = rotation(&[Arc::clone(&a), Arc::clone(&b)]);
        match answer(&r, "s").await {
            Err(LlmError::RateLimited {
                retry_after: Some(d),
            }) => assert_eq!(d, Duration::from_secs(4)),
            other => panic!("expected a rate limit, got {other:?}"),
        }
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(answer(&r, "s").await.unwrap(), "b");
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_are_returned_without_rotating() {
        let a = Key::new("a", vec![LlmError::Server { status: 500 }]);
        let b = Key::new("b", vec![LlmError::Server { status: 500 }]);
        let r = rotation(&[Arc::clone(&a), Arc::clone(&b)]);
        assert!(matches!(
            answer(&r, "s").await,
            Err(LlmError::Server { status: 500 })
        ));
        assert_eq!(
            a.calls.load(Ordering::SeqCst) + b.calls.load(Ordering::SeqCst),
            1
        );
    }
}
