//! Several keys in a provider's variable rotate over real HTTP: a refused key rests, the
//! call goes out with the next, and a conversation keeps the key that worked.

#![allow(clippy::unwrap_used, reason = "test code")]

use futures::StreamExt;
use nexus_core::llm::{ChatMessage, ChatRole, CompletionChunk, CompletionRequest};
use nexus_llm::ProviderRegistry;
use nexus_testkit::openai::FakeOpenAi;

#[tokio::test]
async fn a_refused_key_rests_and_the_next_one_answers() {
    let fake = FakeOpenAi::start().await;
    let keys = format!("sk-revoked-0000000000000000, {}", fake.api_key());
    let base = fake.base_url();
    let registry = ProviderRegistry::from_lookup(|name| match name {
        "OPENAI_API_KEY" => Some(keys.clone()),
        "OPENAI_BASE_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap();
    let (provider, model) = registry.resolve("openai/gpt-4o-mini").unwrap();
    assert_eq!(provider.name(), "openai");
    for session in ["a", "b", "c", "d"] {
        for _ in 0..2 {
            let request = CompletionRequest {
                model: model.clone(),
                messages: vec![ChatMessage::text(ChatRole::User, "hi")].into(),
                affinity: Some(session.to_owned()),
                ..CompletionRequest::default()
            };
            let chunks: Vec<_> = provider.complete(request).await.unwrap().collect().await;
            assert!(
                chunks
                    .iter()
                    .any(|c| matches!(c, Ok(CompletionChunk::TextDelta { .. }))),
                "{chunks:?}"
            );
        }
    }
    // The revoked key was tried at most once: then it rested.
    let refused = fake
        .requests()
        .iter()
        .filter(|r| r.authorization.as_deref() != Some(&format!("Bearer {}", fake.api_key())))
        .count();
    assert!(refused <= 1, "{refused} calls with the revoked key");
    assert_eq!(fake.request_count() as usize, 8 + refused);
}
