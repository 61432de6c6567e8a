//! Embeddings through the registry's OpenAI provider against the fake: batches, order,
//! dimensions, errors, and providers without embeddings.

#![allow(clippy::unwrap_used, reason = "test code")]

use nexus_core::llm::{EmbeddingRequest, LlmError};
use nexus_llm::ProviderRegistry;
use nexus_testkit::openai::FakeOpenAi;

fn registry(fake: &FakeOpenAi) -> ProviderRegistry {
    let key = fake.api_key().to_owned();
    let base = fake.base_url();
    ProviderRegistry::from_lookup(|name| match name {
        "OPENAI_API_KEY" => Some(key.clone()),
        "OPENAI_BASE_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test]
async fn inputs_are_embedded_in_batches_and_come_back_in_order() {
    let fake = FakeOpenAi::start().await;
    let (provider, model) = registry(&fake)
        .resolve("openai/text-embedding-3-small")
        .unwrap();
    let inputs: Vec<String> = (0..300).map(|i| format!("text number {}", i % 7)).collect();
    let out = provider
        .embed(EmbeddingRequest {
            model,
            inputs: inputs.clone(),
            dimensions: Some(64),
            task: None,
        })
        .await
        .unwrap();
    assert_eq!(out.vectors.len(), 300);
    assert!(out.vectors.iter().all(|v| v.len() == 64));
    // Equal texts, equal vectors; different texts, different vectors.
    assert_eq!(out.vectors[0], out.vectors[7]);
    assert_ne!(out.vectors[0], out.vectors[1]);
    assert!(out.input_tokens > 0);
    // Two calls: 256 + 44 inputs.
    let calls: Vec<_> = fake
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/embeddings"))
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0].body["input"].as_array().unwrap().len(), 256);
    assert_eq!(calls[0].body["dimensions"], 64);
}

#[tokio::test]
async fn embedding_errors_are_classified() {
    let fake = FakeOpenAi::start().await;
    let wrong = ProviderRegistry::from_lookup(|name| match name {
        "OPENAI_API_KEY" => Some("sk-wrong-000000000000".to_owned()),
        "OPENAI_BASE_URL" => Some(fake.base_url()),
        _ => None,
    })
    .unwrap();
    let (provider, model) = wrong.resolve("openai/text-embedding-3-small").unwrap();
    let err = provider
        .embed(EmbeddingRequest {
            model,
            inputs: vec!["x".into()],
            ..EmbeddingRequest::default()
        })
        .await
        .unwrap_err();
    assert!(matches!(err, LlmError::Auth { .. }), "{err:?}");
}

#[tokio::test]
async fn a_provider_without_embeddings_says_so() {
    let registry = ProviderRegistry::from_lookup(|name| {
        (name == "ANTHROPIC_API_KEY").then(|| "sk-ant-x".to_owned())
    })
    .unwrap();
    let (provider, model) = registry.resolve("anthropic/claude-sonnet-4-5").unwrap();
    let err = provider
        .embed(EmbeddingRequest {
            model,
            inputs: vec!["x".into()],
            ..EmbeddingRequest::default()
        })
        .await
        .unwrap_err();
    match err {
        LlmError::Unsupported { what } => assert!(what.contains("anthropic"), "{what}"),
        other => panic!("expected Unsupported, got {other:?}"),
    }
}

#[tokio::test]
async fn gemini_embeds_in_batches_of_a_hundred_with_task_types() {
    let fake = nexus_testkit::FakeGemini::start().await;
    let key = fake.api_key().to_owned();
    let base = fake.base_url();
    let registry = ProviderRegistry::from_lookup(|name| match name {
        "GEMINI_API_KEY" => Some(key.clone()),
        "GEMINI_BASE_URL" => Some(base.clone()),
        _ => None,
    })
    .unwrap();
    let (provider, model) = registry.resolve("gemini/gemini-embedding-001").unwrap();
    let inputs: Vec<String> = (0..150).map(|i| format!("doc {}", i % 10)).collect();
    let out = provider
        .embed(EmbeddingRequest {
            model,
            inputs,
            dimensions: Some(32),
            task: Some(nexus_core::llm::EmbeddingTask::Document),
        })
        .await
        .unwrap();
    assert_eq!(out.vectors.len(), 150);
    assert!(out.vectors.iter().all(|v| v.len() == 32));
    assert_eq!(out.vectors[3], out.vectors[13]);
    assert_ne!(out.vectors[3], out.vectors[4]);
}
