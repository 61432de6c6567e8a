//! Retrying: a wrapper around any [`LlmProvider`] that sends a failed call again.
//!
//! Which errors are worth retrying is decided by [`LlmError::is_retryable`], an exhaustive
//! match in `nexus-core` (it must live beside the `#[non_exhaustive]` enum to be exhaustive):
//! rate limits, overload, server errors, timeouts, broken connections and streams.
//!
//! A call is only retried while nothing has reached the caller: the wrapper waits for the
//! first chunk of the stream; an error before it is retried, an error after it is passed on.
//! Text a user may have seen is never silently replayed.
//!
//! Delays grow exponentially from [`RetryPolicy::initial_delay`] with random jitter; a delay
//! the provider asked for (`retry-after`) is honoured instead. A provider that asks for more
//! than [`RetryPolicy::max_delay`] is not waited for: the error is returned at once, so a
//! model chain moves on to its next model instead of sleeping, and a caller without one
//! learns how long to wait. Sleeping uses `tokio::time`, so tests can pause the clock.
//!
//! This module must never classify errors itself or look at message text.

use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use nexus_core::llm::{
    ChunkStream, CompletionRequest, EmbeddingRequest, Embeddings, LlmError, LlmProvider, ModelInfo,
};

/// How [`Retrying`] retries.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Retries after the first attempt. Default: 3 (so at most 4 calls).
    pub max_retries: u32,
    /// Delay before the first retry; each later one doubles it. Default: 500 ms.
    pub initial_delay: Duration,
    /// Upper bound of one backoff delay, and the longest `retry-after` waited for (a longer
    /// one ends the retries at once). Default: 30 s.
    pub max_delay: Duration,
    /// Share of a backoff delay that is random, from 0.0 (none) to 1.0; a delay `d` becomes
    /// a uniform pick in `[d × (1 − jitter), d]`. Default: 0.5. Not applied to `retry-after`.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: 0.5,
        }
    }
}

impl RetryPolicy {
    /// Whether the provider asked for a longer wait than this policy accepts.
    fn too_long(&self, error: &LlmError) -> bool {
        error.retry_after().is_some_and(|d| d > self.max_delay)
    }

    /// The delay before retry number `retry` (0 for the first), given the provider's
    /// `retry_after` when it sent one.
    pub fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max_delay);
        }
        let factor = 2u32.saturating_pow(retry.min(31));
        let backoff = self
            .initial_delay
            .saturating_mul(factor)
            .min(self.max_delay);
        let jitter = self.jitter.clamp(0.0, 1.0);
        backoff.mul_f64(1.0 - jitter * random_unit())
    }
}

/// A number in `[0, 1)`, different on every call (not for cryptography).
fn random_unit() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let bits = RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed));
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

/// A provider that retries its inner provider's failed calls (see the module doc).
#[derive(Debug, Clone)]
pub struct Retrying {
    inner: Arc<dyn LlmProvider>,
    policy: RetryPolicy,
}

impl Retrying {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn LlmProvider>, policy: RetryPolicy) -> Retrying {
        Retrying { inner, policy }
    }

    /// The wrapped provider.
    pub fn inner(&self) -> &Arc<dyn LlmProvider> {
        &self.inner
    }

    /// The policy.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }
}

#[async_trait]
impl LlmProvider for Retrying {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.inner.models()
    }

    fn supports_tools(&self) -> bool {
        self.inner.supports_tools()
    }

    async fn complete(&self, mut request: CompletionRequest) -> Result<ChunkStream, LlmError> {
        let mut retry = 0u32;
        loop {
            let last = retry >= self.policy.max_retries;
            let attempt = if last {
                std::mem::take(&mut request)
            } else {
                request.clone()
            };
            let error = match self.inner.complete(attempt).await {
                Ok(mut stream) => match stream.next().await {
                    Some(Ok(first)) => {
                        let first = futures::stream::once(std::future::ready(Ok(first)));
                        return Ok(Box::pin(first.chain(stream)));
                    }
                    Some(Err(error)) => error,
                    None => return Ok(stream),
                },
                Err(error) => error,
            };
            if !self.wait_before_retry(retry, &error, "model call").await {
                return Err(error);
            }
            retry += 1;
        }
    }

    async fn embed(&self, request: EmbeddingRequest) -> Result<Embeddings, LlmError> {
        let mut retry = 0u32;
        loop {
            let error = match self.inner.embed(request.clone()).await {
                Ok(embeddings) => return Ok(embeddings),
                Err(error) => error,
            };
            if !self.wait_before_retry(retry, &error, "embeddings").await {
                return Err(error);
            }
            retry += 1;
        }
    }
}

impl Retrying {
    /// After failed attempt number `retry` (0 first): `false` when `error` ends the retries,
    /// else waits the policy's delay and says `true`.
    async fn wait_before_retry(&self, retry: u32, error: &LlmError, what: &'static str) -> bool {
        if retry >= self.policy.max_retries || !error.is_retryable() || self.policy.too_long(error)
        {
            return false;
        }
        let delay = self.policy.delay(retry, error.retry_after());
        tracing::warn!(
            provider = self.inner.name(),
            call = what,
            retry = retry + 1,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            error = %error,
            "Retrying"
        );
        tokio::time::sleep(delay).await;
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use nexus_core::llm::{CompletionChunk, StopReason};
    use tokio::time::Instant;

    use super::*;

    type Outcome = Result<Vec<Result<CompletionChunk, LlmError>>, LlmError>;

    /// A provider answering from a script; counts calls.
    #[derive(Debug, Default)]
    struct Scripted {
        outcomes: Mutex<VecDeque<Outcome>>,
        calls: AtomicU64,
    }

    impl Scripted {
        fn new(outcomes: Vec<Outcome>) -> Arc<Scripted> {
            Arc::new(Scripted {
                outcomes: Mutex::new(outcomes.into()),
                calls: AtomicU64::new(0),
            })
        }
        fn calls(&self) -> u64 {
            self.calls.load(Ordering::SeqCst)
        }
    }

    #[async_trait]
    impl LlmProvider for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn models(&self) -> Vec<ModelInfo> {
            Vec::new()
        }
        fn supports_tools(&self) -> bool {
            true
        }
        async fn complete(&self, _: CompletionRequest) -> Result<ChunkStream, LlmError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            let next = self.outcomes.lock().unwrap().pop_front();
            let items = next.unwrap_or(Err(LlmError::Server { status: 500 }))?;
            Ok(Box::pin(futures::stream::iter(items)))
        }
    }

    fn text(t: &str) -> Result<CompletionChunk, LlmError> {
        Ok(CompletionChunk::TextDelta { text: t.into() })
    }

    fn done() -> Result<CompletionChunk, LlmError> {
        Ok(CompletionChunk::Done {
            stop_reason: StopReason::EndTurn,
        })
    }

    fn no_jitter() -> RetryPolicy {
        RetryPolicy {
            jitter: 0.0,
            ..RetryPolicy::default()
        }
    }

    async fn collect(stream: ChunkStream) -> Vec<Result<CompletionChunk, LlmError>> {
        stream.collect().await
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limit_then_success_waits_the_asked_delay_and_answers_once() {
        let inner = Scripted::new(vec![
            Err(LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(7)),
            }),
            Ok(vec![text("hello"), done()]),
        ]);
        let retrying = Retrying::new(inner.clone(), no_jitter());
        let started = Instant::now();
        let chunks = collect(
            retrying
                .complete(CompletionRequest::default())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(chunks, vec![text("hello"), done()]);
        assert_eq!(inner.calls(), 2);
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(7) && waited < Duration::from_millis(7100),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn bad_request_is_never_retried() {
        let inner = Scripted::new(vec![Err(LlmError::BadRequest {
            message: "no".into(),
        })]);
        let retrying = Retrying::new(inner.clone(), no_jitter());
        let err = retrying
            .complete(CompletionRequest::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, LlmError::BadRequest { .. }));
        assert_eq!(inner.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn stream_error_before_the_first_chunk_is_retried() {
        let inner = Scripted::new(vec![
            Ok(vec![Err(LlmError::Overloaded { retry_after: None })]),
            Ok(vec![text("ok"), done()]),
        ]);
        let retrying = Retrying::new(inner.clone(), no_jitter());
        let chunks = collect(
            retrying
                .complete(CompletionRequest::default())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(chunks, vec![text("ok"), done()]);
        assert_eq!(inner.calls(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn no_retry_once_a_chunk_reached_the_caller() {
        let inner = Scripted::new(vec![
            Ok(vec![text("partial"), Err(LlmError::Server { status: 500 })]),
            Ok(vec![text("second answer"), done()]),
        ]);
        let retrying = Retrying::new(inner.clone(), no_jitter());
        let chunks = collect(
            retrying
                .complete(CompletionRequest::default())
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(
            chunks,
            vec![text("partial"), Err(LlmError::Server { status: 500 })]
        );
        assert_eq!(inner.calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn gives_up_after_max_retries_with_exponential_backoff() {
        let inner = Scripted::new(vec![]);
        let policy = RetryPolicy {
            max_retries: 2,
            ..no_jitter()
        };
        let retrying = Retrying::new(inner.clone(), policy);
        let started = Instant::now();
        let err = retrying
            .complete(CompletionRequest::default())
            .await
            .err()
            .unwrap();
        assert_eq!(err, LlmError::Server { status: 500 });
        assert_eq!(inner.calls(), 3);
        // 500 ms, then 1 s.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(1500) && waited < Duration::from_millis(1600),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_longer_than_max_delay_is_returned_at_once() {
        let inner = Scripted::new(vec![
            Err(LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(3600)),
            }),
            Ok(vec![done()]),
        ]);
        let policy = RetryPolicy {
            max_delay: Duration::from_secs(2),
            ..no_jitter()
        };
        let retrying = Retrying::new(Arc::clone(&inner) as Arc<dyn LlmProvider>, policy);
        let started = Instant::now();
        let err = retrying
            .complete(CompletionRequest::default())
            .await
            .err()
            .unwrap();
        assert_eq!(
            err,
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(3600))
            }
        );
        assert_eq!(started.elapsed(), Duration::ZERO);
        assert_eq!(inner.calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn jittered_delay_stays_within_its_band() {
        let policy = RetryPolicy::default();
        for retry in 0..6 {
            let full = policy
                .initial_delay
                .saturating_mul(1 << retry)
                .min(policy.max_delay);
            let d = policy.delay(retry, None);
            assert!(d <= full && d >= full.mul_f64(0.5), "{retry}: {d:?}");
        }
        assert!(policy.delay(40, None) <= policy.max_delay);
    }
}
