//! Failover over real HTTP: two OpenAI providers pointed at two fakes, in one model chain,
//! each wrapped in the retry policy the registry uses.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, LlmError, LlmProvider,
};
use nexus_llm::{
    BreakerPolicy, Breakers, Candidate, ModelChain, OpenAiConfig, OpenAiProvider, RetryPolicy,
    Retrying,
};
use nexus_testkit::openai::{FakeOpenAi, Reply};

fn provider(fake: &FakeOpenAi) -> Arc<dyn LlmProvider> {
    let config = OpenAiConfig::new(fake.api_key())
        .with_base_url(&fake.base_url())
        .unwrap();
    let policy = RetryPolicy {
        max_retries: 1,
        initial_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
        jitter: 0.0,
    };
    Arc::new(Retrying::new(
        Arc::new(OpenAiProvider::new(config).unwrap()),
        policy,
    ))
}

fn chain(primary: &FakeOpenAi, fallback: &FakeOpenAi, breakers: Arc<Breakers>) -> ModelChain {
    ModelChain::new(
        vec![
            Candidate {
                address: "openai/primary-model".into(),
                provider: Ok(provider(primary)),
                model: "primary-model".into(),
                context_window: Some(128_000),
            },
            Candidate {
                address: "backup/fallback-model".into(),
                provider: Ok(provider(fallback)),
                model: "fallback-model".into(),
                context_window: Some(128_000),
            },
        ],
        breakers,
    )
}

fn request() -> CompletionRequest {
    CompletionRequest {
        model: "openai/primary-model".into(),
        messages: vec![ChatMessage::text(ChatRole::User, "hello")].into(),
        ..CompletionRequest::default()
    }
}

async fn run(chain: &ModelChain) -> Result<(Vec<CompletionChunk>, String), LlmError> {
    let mut stream = chain.complete(request()).await?;
    let mut chunks = Vec::new();
    let mut text = String::new();
    while let Some(item) = stream.next().await {
        let chunk = item?;
        if let CompletionChunk::TextDelta { text: t } = &chunk {
            text.push_str(t);
        }
        chunks.push(chunk);
    }
    Ok((chunks, text))
}

#[tokio::test]
async fn primary_rate_limited_then_fallback_answers() {
    let primary = FakeOpenAi::start().await;
    let fallback = FakeOpenAi::start().await;
    for _ in 0..2 {
        primary
            .push(Reply::error(429, "rate_limit_exceeded").retry_after(Duration::from_millis(10)));
    }
    fallback.push(Reply::text("from the fallback"));
    let chain = chain(&primary, &fallback, Arc::new(Breakers::default()));
    let (chunks, text) = run(&chain).await.unwrap();
    assert_eq!(text, "from the fallback");
    assert!(matches!(
        &chunks[0],
        CompletionChunk::Failover { from, to, .. }
            if from == "openai/primary-model" && to == "backup/fallback-model"
    ));
    // The retry policy ran first (two calls), then the fallback got the model it serves.
    assert_eq!(primary.request_count(), 2);
    let sent = fallback.last_request().unwrap();
    assert_eq!(sent.body["model"], "fallback-model");
}

#[tokio::test]
async fn all_candidates_down_gives_one_error_without_hanging() {
    let primary = FakeOpenAi::start().await;
    let fallback = FakeOpenAi::start().await;
    for _ in 0..2 {
        primary.push(Reply::error(500, "server_error"));
        fallback.push(Reply::error(503, "server_error"));
    }
    let chain = chain(&primary, &fallback, Arc::new(Breakers::default()));
    let err = tokio::time::timeout(Duration::from_secs(10), run(&chain))
        .await
        .expect("the chain must not hang")
        .unwrap_err();
    let LlmError::ChainExhausted { attempts } = &err else {
        panic!("expected ChainExhausted, got {err:?}");
    };
    assert!(attempts.contains("openai/primary-model"), "{attempts}");
    assert!(attempts.contains("backup/fallback-model"), "{attempts}");
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_on_a_failing_primary_and_recovers() {
    let primary = FakeOpenAi::start().await;
    let fallback = FakeOpenAi::start().await;
    let breakers = Arc::new(Breakers::new(BreakerPolicy {
        failures_to_open: 2,
        open_for: Duration::from_secs(30),
    }));
    let chain = chain(&primary, &fallback, Arc::clone(&breakers));
    // Two failed turns (two calls each, with the retry) open the primary's breaker.
    for _ in 0..4 {
        primary.push(Reply::error(500, "server_error"));
    }
    for _ in 0..2 {
        assert!(!run(&chain).await.unwrap().1.is_empty());
    }
    assert_eq!(primary.request_count(), 4);
    // Open: the primary is not asked at all.
    run(&chain).await.unwrap();
    assert_eq!(primary.request_count(), 4);
    // After the pause one probe goes through; it succeeds and closes the breaker.
    tokio::time::advance(Duration::from_secs(31)).await;
    primary.push(Reply::text("primary is back"));
    let (_, text) = run(&chain).await.unwrap();
    assert_eq!(text, "primary is back");
    assert_eq!(primary.request_count(), 5);
}
