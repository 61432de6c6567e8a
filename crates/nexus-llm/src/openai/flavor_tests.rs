//! OpenRouter and other OpenAI-compatible servers: what differs from OpenAI on the wire.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::time::Duration;

use futures::StreamExt;
use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, LlmError, LlmProvider, ModelInfo,
    ToolSpec,
};
use nexus_testkit::{FakeOpenAi, Reply};
use serde_json::json;

use std::sync::Arc;

use super::OpenAiProvider;
use super::config::{Flavor, OpenAiConfig};
use super::tests::{last_request_images, reply_for};
use crate::testing::{ContextOverflow, Harness, ProviderOptions, Scenario, WireImage};

/// The OpenAI provider in its OpenRouter flavor, in front of the fake answering as OpenRouter
/// does; the conformance suite runs against it as against every provider.
struct OpenRouterHarness {
    fake: FakeOpenAi,
}

impl Harness for OpenRouterHarness {
    fn provider(&self, options: ProviderOptions) -> Arc<dyn LlmProvider> {
        let key = if options.valid_key {
            self.fake.api_key().to_owned()
        } else {
            "sk-or-v1-not-the-right-key".to_owned()
        };
        let base = self.fake.base_url();
        let mut config = OpenAiConfig::openrouter_from_lookup(|name| match name {
            "OPENROUTER_API_KEY" => Some(key.clone()),
            "OPENROUTER_BASE_URL" => Some(base.clone()),
            _ => None,
        })
        .unwrap()
        .unwrap();
        config.first_byte_timeout = options.first_byte_timeout;
        config.idle_timeout = options.idle_timeout;
        config.connect_timeout = Duration::from_secs(2);
        Arc::new(OpenAiProvider::new(config).unwrap())
    }

    fn model(&self) -> String {
        "meta-llama/llama-3.3-70b-instruct".to_owned()
    }

    fn script(&self, scenario: Scenario) {
        // OpenRouter's differences: 402 for credits, errors with numeric codes, comments and
        // cost in streams, an error chunk after the 200.
        let reply = match scenario {
            Scenario::QuotaExceeded => Reply::error(402, "insufficient_credits"),
            other => reply_for(other),
        };
        self.fake.push(reply.openrouter());
    }

    fn last_request_images(&self) -> Vec<WireImage> {
        last_request_images(&self.fake)
    }

    fn request_count(&self) -> u64 {
        self.fake.request_count()
    }

    /// OpenRouter reports an overflow as a 400 whose numeric code is the status: the kind is
    /// only in the prose.
    fn context_overflow(&self) -> ContextOverflow {
        ContextOverflow::ProseOnly
    }
}

mod openrouter_conformance {
    use super::OpenRouterHarness;
    use nexus_testkit::FakeOpenAi;

    crate::provider_conformance_tests!(OpenRouterHarness {
        fake: FakeOpenAi::start().await
    });
}

fn openrouter(fake: &FakeOpenAi) -> OpenAiProvider {
    let vars = [
        ("OPENROUTER_API_KEY", fake.api_key().to_owned()),
        ("OPENROUTER_BASE_URL", fake.base_url()),
        ("OPENROUTER_APP_URL", "https://nexus.example".to_owned()),
    ];
    let config = OpenAiConfig::openrouter_from_lookup(|name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.clone())
    })
    .unwrap()
    .unwrap();
    OpenAiProvider::new(config).unwrap()
}

fn request(model: &str) -> CompletionRequest {
    CompletionRequest {
        model: model.into(),
        messages: vec![ChatMessage::text(ChatRole::User, "hi")].into(),
        tools: vec![ToolSpec {
            name: "lookup".into(),
            description: "Looks things up".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }],
        max_output_tokens: Some(64),
        ..CompletionRequest::default()
    }
}

async fn run(
    provider: &OpenAiProvider,
    model: &str,
) -> Result<Vec<Result<CompletionChunk, LlmError>>, LlmError> {
    let stream = provider.complete(request(model)).await?;
    Ok(stream.collect().await)
}

#[test]
fn openrouter_is_configured_by_its_variables() {
    let config = OpenAiConfig::openrouter_from_lookup(|name| {
        (name == "OPENROUTER_API_KEY").then(|| "sk-or-v1-x".to_owned())
    })
    .unwrap()
    .unwrap();
    assert_eq!(config.name, "openrouter");
    assert_eq!(config.flavor, Flavor::OpenRouter);
    assert_eq!(config.base_url.as_str(), "https://openrouter.ai/api/v1");
    assert_eq!(config.headers, [("X-Title".to_owned(), "Nexus".to_owned())]);
    assert!(
        OpenAiConfig::openrouter_from_lookup(|_| None)
            .unwrap()
            .is_none()
    );
    let err = OpenAiConfig::openrouter_from_lookup(|name| match name {
        "OPENROUTER_API_KEY" => Some("k".into()),
        "OPENROUTER_BASE_URL" => Some("ftp://x".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("OPENROUTER_BASE_URL"), "{err}");
}

#[tokio::test]
async fn openrouter_streams_through_processing_comments_and_reports_its_cost() {
    let fake = FakeOpenAi::start().await;
    fake.push(
        Reply::text("routed answer here")
            .openrouter()
            .usage(100, 20, 0)
            .cost(0.001_234),
    );
    let provider = openrouter(&fake);
    assert_eq!(provider.name(), "openrouter");
    let items = run(&provider, "meta-llama/llama-3.3-70b-instruct")
        .await
        .unwrap();
    let text: String = items
        .iter()
        .filter_map(|i| match i {
            Ok(CompletionChunk::TextDelta { text }) => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(text, "routed answer here");
    assert!(
        items
            .iter()
            .any(|i| matches!(i, Ok(CompletionChunk::Cost { micros: 1_234 }))),
        "{items:?}"
    );
    let sent = fake.last_request().unwrap();
    assert_eq!(sent.body["model"], "meta-llama/llama-3.3-70b-instruct");
    assert_eq!(sent.body["max_tokens"], 64);
    assert!(sent.body.get("max_completion_tokens").is_none());
    assert_eq!(sent.header("x-title"), Some("Nexus"));
    assert_eq!(sent.header("http-referer"), Some("https://nexus.example"));
}

#[tokio::test]
async fn openrouter_errors_are_classified_by_status_with_numeric_codes() {
    let fake = FakeOpenAi::start().await;
    let provider = openrouter(&fake);
    type Expect = fn(&LlmError) -> bool;
    let cases: Vec<(Reply, Expect)> = vec![
        (
            Reply::error(429, "rate_limited")
                .openrouter()
                .retry_after(Duration::from_secs(3)),
            |e| matches!(e, LlmError::RateLimited { retry_after: Some(d) } if *d == Duration::from_secs(3)),
        ),
        (Reply::error(402, "credits").openrouter(), |e| {
            matches!(e, LlmError::QuotaExceeded { .. })
        }),
        (Reply::error(502, "upstream").openrouter(), |e| {
            matches!(e, LlmError::Server { status: 502 })
        }),
        (Reply::error(400, "bad").openrouter(), |e| {
            matches!(e, LlmError::BadRequest { .. })
        }),
    ];
    for (reply, expected) in cases {
        fake.push(reply);
        let err = run(&provider, "x/y").await.err().unwrap();
        assert!(expected(&err), "{err:?}");
    }
}

#[tokio::test]
async fn openrouter_error_after_the_200_ends_the_stream_with_an_error() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::in_stream_error().openrouter());
    let items = run(&openrouter(&fake), "x/y").await.unwrap();
    match items.last() {
        Some(Err(LlmError::InStream { message })) => {
            assert!(message.contains("invalid response"), "{message}");
        }
        other => panic!("expected an in-stream error, got {other:?}"),
    }
}

#[tokio::test]
async fn a_compatible_server_is_named_keyless_and_gets_no_tools_for_a_chat_only_model() {
    let fake = FakeOpenAi::start().await;
    let mut config = OpenAiConfig::compatible("ollama", &fake.base_url(), None).unwrap();
    config.models = vec![
        ModelInfo {
            name: "llama3.2".into(),
            context_window: Some(131_072),
            supports_tools: true,
        },
        ModelInfo {
            name: "tinyllama".into(),
            context_window: Some(2_048),
            supports_tools: false,
        },
    ];
    let provider = OpenAiProvider::new(config).unwrap();
    assert_eq!(provider.name(), "ollama");
    assert_eq!(provider.models().len(), 2);

    // The fake wants a key; a keyless server is told apart by the missing header.
    fake.push(Reply::text("ok"));
    let _ = run(&provider, "tinyllama").await;
    let sent = fake.last_request().unwrap();
    assert!(sent.authorization.is_none());
    assert!(sent.body.get("tools").is_none(), "{}", sent.body);
    assert_eq!(sent.body["max_tokens"], 64);

    fake.push(Reply::text("ok"));
    let _ = run(&provider, "llama3.2").await;
    let sent = fake.last_request().unwrap();
    assert_eq!(sent.body["tools"][0]["function"]["name"], "lookup");
}
