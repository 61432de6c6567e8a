//! Failover along an agent's model chain: a primary model and its fallbacks.
//!
//! A [`ModelChain`] is itself an [`LlmProvider`]. A call goes to the first candidate whose
//! circuit breaker admits it; if that candidate fails before the first chunk of its answer, the
//! kind of the error decides (`LlmError::failover`): most failures move on to the next
//! candidate, a context-length error moves on to a candidate with a larger window, and a bad
//! request stops the chain (every candidate would refuse it). Once a chunk has been passed on,
//! the call is committed to its candidate: a later error reaches the caller, the turn is never
//! restarted silently on another model.
//!
//! A switch is invisible except as a [`CompletionChunk::Failover`] before the answer's first
//! chunk (the runtime turns it into a turn event) and a log line naming both candidates. When
//! every candidate fails, the call fails with one `ChainExhausted` error that lists them.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use nexus_core::llm::{
    ChunkStream, CompletionChunk, CompletionRequest, Failover, LlmError, LlmProvider, ModelInfo,
};
use tracing::warn;

use crate::breaker::{Admission, Breakers};

/// One model of a chain.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// `provider/model`, for logs, breakers and events.
    pub address: String,
    /// The provider serving it, or why there is none (a provider that is not configured).
    pub provider: Result<Arc<dyn LlmProvider>, LlmError>,
    /// The model's name at the provider.
    pub model: String,
    /// Its context window, when known (for context-length failover).
    pub context_window: Option<u32>,
}

/// A primary model and its fallbacks, tried in order.
#[derive(Debug, Clone)]
pub struct ModelChain {
    candidates: Vec<Candidate>,
    breakers: Arc<Breakers>,
}

impl ModelChain {
    /// A chain over `candidates` (in order of preference) sharing `breakers` with the
    /// process's other chains.
    pub fn new(candidates: Vec<Candidate>, breakers: Arc<Breakers>) -> Self {
        ModelChain {
            candidates,
            breakers,
        }
    }

    /// The candidates, in order.
    pub fn candidates(&self) -> &[Candidate] {
        &self.candidates
    }
}

/// Why candidates were left, for the `Failover` chunks and the final error.
struct Attempts {
    /// `(address, error)` of candidates that failed and were not yet announced.
    pending: Vec<(String, LlmError)>,
    /// Every candidate left and why, for `ChainExhausted`.
    summary: Vec<String>,
}

impl Attempts {
    fn left(&mut self, address: &str, error: LlmError) {
        self.summary.push(format!("{address}: {error}"));
        self.pending.push((address.to_owned(), error));
    }

    fn skipped(&mut self, address: &str, why: &str) {
        self.summary.push(format!("{address}: {why}"));
    }
}

/// What a failed attempt means for the rest of the chain.
enum Next {
    Continue,
    /// Only candidates with a context window larger than this one.
    Larger(Option<u32>),
    Stop(LlmError),
}

impl ModelChain {
    /// Records `error` of `candidate` and decides how to go on.
    fn failed(&self, candidate: &Candidate, error: LlmError, attempts: &mut Attempts) -> Next {
        if error.counts_against_provider() {
            self.breakers.failure(&candidate.address);
        }
        match error.failover() {
            Failover::Stop => Next::Stop(error),
            Failover::Next => {
                attempts.left(&candidate.address, error);
                Next::Continue
            }
            Failover::LargerContext => {
                attempts.left(&candidate.address, error);
                Next::Larger(candidate.context_window)
            }
        }
    }
}

/// Whether `chunk` is part of the answer (text, tool calls, its end), after which the call is
/// committed to its candidate.
fn is_answer(chunk: &CompletionChunk) -> bool {
    match chunk {
        CompletionChunk::TextDelta { text } => !text.is_empty(),
        CompletionChunk::Usage { .. } => false,
        // Tool calls, the end, another chain's failover, and anything newer.
        _ => true,
    }
}

/// Whether a candidate's window is larger than `than` (unknown windows never qualify, except
/// when the failed one's was unknown too: then any known window may be larger).
fn larger(window: Option<u32>, than: Option<u32>) -> bool {
    match (window, than) {
        (Some(w), Some(t)) => w > t,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

#[async_trait]
impl LlmProvider for ModelChain {
    fn name(&self) -> &str {
        "chain"
    }

    fn models(&self) -> Vec<ModelInfo> {
        self.candidates
            .iter()
            .map(|c| ModelInfo {
                name: c.address.clone(),
                context_window: c.context_window,
                supports_tools: c.provider.as_ref().is_ok_and(|p| p.supports_tools()),
            })
            .collect()
    }

    fn supports_tools(&self) -> bool {
        self.candidates
            .iter()
            .any(|c| c.provider.as_ref().is_ok_and(|p| p.supports_tools()))
    }

    async fn complete(&self, request: CompletionRequest) -> Result<ChunkStream, LlmError> {
        let mut attempts = Attempts {
            pending: Vec::new(),
            summary: Vec::new(),
        };
        let mut need_larger: Option<Option<u32>> = None;
        for candidate in &self.candidates {
            if let Some(than) = need_larger
                && !larger(candidate.context_window, than)
            {
                attempts.skipped(&candidate.address, "context window not larger");
                continue;
            }
            let error = match &candidate.provider {
                // An unconfigured provider fails its turn in the chain at once.
                Err(error) => error.clone(),
                Ok(provider) => {
                    if let Admission::Rejected { retry_in } =
                        self.breakers.admit(&candidate.address)
                    {
                        attempts.skipped(
                            &candidate.address,
                            &format!(
                                "skipped after repeated failures (next try in {}s)",
                                retry_in.as_secs().max(1)
                            ),
                        );
                        continue;
                    }
                    match self.attempt(provider.as_ref(), candidate, &request).await {
                        Ok((held, stream)) => {
                            self.breakers.success(&candidate.address);
                            return Ok(self.committed(candidate, attempts.pending, held, stream));
                        }
                        Err(error) => error,
                    }
                }
            };
            match self.failed(candidate, error, &mut attempts) {
                Next::Continue => {}
                Next::Larger(window) => need_larger = Some(window),
                Next::Stop(error) => return Err(error),
            }
        }
        // A chain of one reports its own error unchanged.
        if self.candidates.len() == 1
            && let Some((_, error)) = attempts.pending.pop()
        {
            return Err(error);
        }
        Err(LlmError::ChainExhausted {
            attempts: if attempts.summary.is_empty() {
                "the agent has no model".to_owned()
            } else {
                attempts.summary.join("; ")
            },
        })
    }
}

impl ModelChain {
    /// Calls `candidate` and reads its stream up to the first chunk that is part of the answer:
    /// those chunks (usage of the prompt is held, so an error right after the stream opened
    /// still moves on) and the rest of the stream, or the error before it.
    async fn attempt(
        &self,
        provider: &dyn LlmProvider,
        candidate: &Candidate,
        request: &CompletionRequest,
    ) -> Result<(Vec<CompletionChunk>, ChunkStream), LlmError> {
        let mut call = request.clone();
        call.model.clone_from(&candidate.model);
        let mut stream = provider.complete(call).await?;
        let mut held = Vec::new();
        loop {
            match stream.next().await {
                Some(Ok(chunk)) => {
                    let answer = is_answer(&chunk);
                    held.push(chunk);
                    if answer {
                        return Ok((held, stream));
                    }
                }
                Some(Err(error)) => return Err(error),
                None => return Err(LlmError::StreamInterrupted),
            }
        }
    }

    /// The answer of `candidate`: the failover notices, the chunks read so far, then the rest,
    /// with later errors counted against it.
    fn committed(
        &self,
        candidate: &Candidate,
        left: Vec<(String, LlmError)>,
        held: Vec<CompletionChunk>,
        rest: ChunkStream,
    ) -> ChunkStream {
        let notices: Vec<Result<CompletionChunk, LlmError>> = left
            .into_iter()
            .map(|(from, reason)| {
                warn!(
                    from = %from,
                    to = %candidate.address,
                    reason = %reason,
                    "Model failover"
                );
                Ok(CompletionChunk::Failover {
                    from,
                    to: candidate.address.clone(),
                    reason: reason.to_string(),
                })
            })
            .collect();
        let breakers = Arc::clone(&self.breakers);
        let address = candidate.address.clone();
        let rest = rest.inspect(move |item| {
            if let Err(error) = item
                && error.counts_against_provider()
            {
                breakers.failure(&address);
            }
        });
        Box::pin(
            futures::stream::iter(notices)
                .chain(futures::stream::iter(held.into_iter().map(Ok)))
                .chain(rest),
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use nexus_core::llm::{StopReason, Usage};

    use super::*;
    use crate::breaker::BreakerPolicy;

    /// What a scripted provider does on one call.
    #[derive(Debug, Clone)]
    enum Act {
        /// Fails before the stream.
        Refuse(LlmError),
        /// Streams these items.
        Stream(Vec<Result<CompletionChunk, LlmError>>),
    }

    #[derive(Debug)]
    struct Scripted {
        acts: Mutex<VecDeque<Act>>,
        calls: AtomicUsize,
        models: Mutex<Vec<String>>,
    }

    impl Scripted {
        fn new(acts: Vec<Act>) -> Arc<Self> {
            Arc::new(Scripted {
                acts: Mutex::new(acts.into()),
                calls: AtomicUsize::new(0),
                models: Mutex::new(Vec::new()),
            })
        }
        fn calls(&self) -> usize {
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
        async fn complete(&self, request: CompletionRequest) -> Result<ChunkStream, LlmError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.models.lock().unwrap().push(request.model);
            let act = self
                .acts
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or_else(|| answer("default"));
            match act {
                Act::Refuse(error) => Err(error),
                Act::Stream(items) => Ok(Box::pin(futures::stream::iter(items))),
            }
        }
    }

    fn answer(text: &str) -> Act {
        Act::Stream(vec![
            Ok(CompletionChunk::Usage {
                usage: Usage::default(),
            }),
            Ok(CompletionChunk::TextDelta { text: text.into() }),
            Ok(CompletionChunk::Done {
                stop_reason: StopReason::EndTurn,
            }),
        ])
    }

    fn rate_limited() -> LlmError {
        LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    fn candidate(address: &str, provider: Arc<Scripted>, window: Option<u32>) -> Candidate {
        Candidate {
            address: address.into(),
            provider: Ok(provider),
            model: address.split_once('/').unwrap().1.into(),
            context_window: window,
        }
    }

    fn chain(candidates: Vec<Candidate>) -> ModelChain {
        ModelChain::new(
            candidates,
            Arc::new(Breakers::new(BreakerPolicy {
                failures_to_open: 2,
                open_for: Duration::from_secs(30),
            })),
        )
    }

    async fn collect(stream: ChunkStream) -> Vec<Result<CompletionChunk, LlmError>> {
        stream.collect().await
    }

    fn text_of(items: &[Result<CompletionChunk, LlmError>]) -> String {
        items
            .iter()
            .filter_map(|i| match i {
                Ok(CompletionChunk::TextDelta { text }) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[tokio::test]
    async fn a_rate_limited_primary_fails_over_with_a_notice_naming_both() {
        let primary = Scripted::new(vec![Act::Refuse(rate_limited())]);
        let fallback = Scripted::new(vec![answer("from fallback")]);
        let chain = chain(vec![
            candidate("a/one", Arc::clone(&primary), None),
            candidate("b/two", Arc::clone(&fallback), None),
        ]);
        let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
        match &items[0] {
            Ok(CompletionChunk::Failover { from, to, reason }) => {
                assert_eq!((from.as_str(), to.as_str()), ("a/one", "b/two"));
                assert!(reason.contains("rate limited"), "{reason}");
            }
            other => panic!("expected a failover notice first, got {other:?}"),
        }
        assert_eq!(text_of(&items), "from fallback");
        assert_eq!(fallback.models.lock().unwrap().as_slice(), ["two"]);
    }

    #[tokio::test]
    async fn an_error_before_the_first_text_still_fails_over() {
        let primary = Scripted::new(vec![Act::Stream(vec![
            Ok(CompletionChunk::Usage {
                usage: Usage::default(),
            }),
            Err(LlmError::Overloaded { retry_after: None }),
        ])]);
        let fallback = Scripted::new(vec![answer("ok")]);
        let chain = chain(vec![
            candidate("a/one", primary, None),
            candidate("b/two", fallback, None),
        ]);
        let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
        assert!(matches!(items[0], Ok(CompletionChunk::Failover { .. })));
        assert_eq!(text_of(&items), "ok");
    }

    #[tokio::test]
    async fn after_the_first_text_an_error_reaches_the_caller_and_nothing_restarts() {
        let primary = Scripted::new(vec![Act::Stream(vec![
            Ok(CompletionChunk::TextDelta {
                text: "partial".into(),
            }),
            Err(LlmError::StreamInterrupted),
        ])]);
        let fallback = Scripted::new(vec![answer("never")]);
        let chain = chain(vec![
            candidate("a/one", primary, None),
            candidate("b/two", Arc::clone(&fallback), None),
        ]);
        let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
        assert_eq!(text_of(&items), "partial");
        assert!(matches!(
            items.last(),
            Some(Err(LlmError::StreamInterrupted))
        ));
        assert_eq!(fallback.calls(), 0);
    }

    #[tokio::test]
    async fn a_bad_request_stops_the_chain() {
        let primary = Scripted::new(vec![Act::Refuse(LlmError::BadRequest {
            message: "no".into(),
        })]);
        let fallback = Scripted::new(vec![answer("never")]);
        let chain = chain(vec![
            candidate("a/one", primary, None),
            candidate("b/two", Arc::clone(&fallback), None),
        ]);
        let err = chain
            .complete(CompletionRequest::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, LlmError::BadRequest { .. }));
        assert_eq!(fallback.calls(), 0);
    }

    #[tokio::test]
    async fn context_length_goes_to_a_larger_window_only() {
        let primary = Scripted::new(vec![Act::Refuse(LlmError::ContextLengthExceeded {
            message: "too long".into(),
        })]);
        let same = Scripted::new(vec![answer("never")]);
        let larger = Scripted::new(vec![answer("big")]);
        let chain = chain(vec![
            candidate("a/small", primary, Some(8_000)),
            candidate("b/same", Arc::clone(&same), Some(8_000)),
            candidate("c/large", larger, Some(200_000)),
        ]);
        let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
        assert_eq!(text_of(&items), "big");
        assert_eq!(same.calls(), 0);
    }

    #[tokio::test]
    async fn all_candidates_down_is_one_error_listing_each() {
        let chain = chain(vec![
            candidate(
                "a/one",
                Scripted::new(vec![Act::Refuse(rate_limited())]),
                None,
            ),
            Candidate {
                address: "b/two".into(),
                provider: Err(LlmError::NotConfigured {
                    provider: "b".into(),
                    env_var: "B_API_KEY".into(),
                }),
                model: "two".into(),
                context_window: None,
            },
            candidate("c/three", Scripted::new(vec![Act::Stream(vec![])]), None),
        ]);
        let err = chain
            .complete(CompletionRequest::default())
            .await
            .err()
            .unwrap();
        let LlmError::ChainExhausted { attempts } = err else {
            panic!("expected ChainExhausted, got {err:?}");
        };
        for needle in [
            "a/one: rate limited",
            "b/two: provider `b`",
            "B_API_KEY",
            "c/three",
        ] {
            assert!(
                attempts.contains(needle),
                "{needle} missing from: {attempts}"
            );
        }
    }

    #[tokio::test]
    async fn a_chain_of_one_reports_its_own_error() {
        let chain = chain(vec![candidate(
            "a/one",
            Scripted::new(vec![Act::Refuse(rate_limited())]),
            None,
        )]);
        let err = chain
            .complete(CompletionRequest::default())
            .await
            .err()
            .unwrap();
        assert!(matches!(err, LlmError::RateLimited { .. }));
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_breaker_skips_the_model_until_it_half_opens() {
        let primary = Scripted::new(vec![
            Act::Refuse(LlmError::Server { status: 500 }),
            Act::Refuse(LlmError::Server { status: 500 }),
            answer("primary again"),
        ]);
        let fallback = Scripted::new(Vec::new());
        let chain = chain(vec![
            candidate("a/one", Arc::clone(&primary), None),
            candidate("b/two", fallback, None),
        ]);
        for _ in 0..2 {
            let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
            assert_eq!(text_of(&items), "default");
        }
        // Open after two failures: the primary is not called at all.
        let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
        assert_eq!(text_of(&items), "default");
        assert!(
            !items
                .iter()
                .any(|i| matches!(i, Ok(CompletionChunk::Failover { .. })))
        );
        assert_eq!(primary.calls(), 2);

        tokio::time::advance(Duration::from_secs(30)).await;
        let items = collect(chain.complete(CompletionRequest::default()).await.unwrap()).await;
        assert_eq!(text_of(&items), "primary again");
        assert_eq!(primary.calls(), 3);
    }
}
