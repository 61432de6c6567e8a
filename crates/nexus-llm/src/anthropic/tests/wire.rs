//! Against the fake: headers and body on the wire, usage, error kinds, tool calls, the
//! connection pool, and configuration.

use std::time::Duration;

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, ContentBlock, LlmError, LlmProvider, StopReason, Usage,
};
use nexus_testkit::anthropic::Reply;
use serde_json::json;

use super::{AnthropicHarness, PNG, full_request, usage_of};
use crate::anthropic::AnthropicProvider;
use crate::anthropic::config::AnthropicConfig;
use crate::testing::{self, Harness, ProviderOptions};

#[tokio::test]
async fn request_follows_the_messages_wire_format() {
    let h = AnthropicHarness::start().await;
    h.fake.push(Reply::text("ok"));
    let outcome = testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        full_request(),
    )
    .await;
    assert_eq!(outcome.error, None);
    let recorded = h.fake.last_request().unwrap();
    assert_eq!(recorded.path, "/v1/messages");
    assert_eq!(recorded.api_key.as_deref(), Some(h.fake.api_key()));
    assert_eq!(recorded.anthropic_version.as_deref(), Some("2023-06-01"));
    assert_eq!(recorded.anthropic_beta, None);
    assert_eq!(recorded.content_type.as_deref(), Some("application/json"));
    let body = recorded.body;
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(body["max_tokens"], 300);
    assert_eq!(body["stream"], true);
    assert_eq!(body["temperature"], 0.5);
    assert_eq!(
        body["system"],
        json!([{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(body["tools"][0]["name"], "get_weather");
    assert_eq!(body["tools"][0]["description"], "The get_weather tool");
    assert_eq!(body["tools"][0]["input_schema"]["type"], "object");
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        messages[0]["content"][1]["source"],
        json!({"type": "base64", "media_type": "image/png", "data": PNG})
    );
    assert_eq!(
        messages[0]["content"][2]["source"],
        json!({"type": "url", "url": "https://example.com/cloud.png"})
    );
    assert_eq!(
        messages[1]["content"][1],
        json!({"type": "tool_use", "id": "toolu_a", "name": "get_weather", "input": {"city": "Paris"}})
    );
    let last = messages[2]["content"].as_array().unwrap();
    let kinds: Vec<&str> = last.iter().map(|b| b["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["tool_result", "tool_result", "text"]);
    assert_eq!(
        last[0],
        json!({"type": "tool_result", "tool_use_id": "toolu_a", "content": "sunny"})
    );
    assert_eq!(last[1]["is_error"], true);
}

#[tokio::test]
async fn beta_features_are_sent_as_one_header() {
    let h = AnthropicHarness::start().await;
    let mut config = h.config(h.fake.api_key());
    config.beta = vec![
        "context-1m-2025-08-07".into(),
        " files-api-2025-04-14 ".into(),
    ];
    let outcome = testing::run(&h.provider_with(config), testing::request(&h, "hi")).await;
    assert_eq!(outcome.error, None);
    assert_eq!(
        h.fake.last_request().unwrap().anthropic_beta.as_deref(),
        Some("context-1m-2025-08-07,files-api-2025-04-14")
    );
}

#[tokio::test]
async fn usage_adds_cached_tokens_to_input() {
    let h = AnthropicHarness::start().await;
    h.fake.push(Reply::text("cached").usage(30, 9, 2000, 500));
    let outcome = testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        testing::request(&h, "hi"),
    )
    .await;
    let usage = outcome.chunks.iter().find_map(|c| match c {
        CompletionChunk::Usage { usage } => Some(*usage),
        _ => None,
    });
    assert_eq!(
        usage,
        Some(Usage {
            input_tokens: 2530,
            output_tokens: 9,
            cache_read_tokens: 2000,
            cache_write_tokens: 500,
        })
    );
}

#[tokio::test]
async fn default_fake_reply_echoes_and_reports_usage() {
    let h = AnthropicHarness::start().await;
    let outcome = testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        testing::request(&h, "ping"),
    )
    .await;
    assert_eq!(outcome.text(), "You said: ping");
    assert!(
        outcome
            .chunks
            .iter()
            .any(|c| matches!(c, CompletionChunk::Usage { usage } if usage.input_tokens > 0))
    );
}

/// Sends one request to a fake answering `reply`; returns the error.
async fn error_for(reply: Reply) -> Option<LlmError> {
    let h = AnthropicHarness::start().await;
    h.fake.push(reply);
    testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        testing::request(&h, "hi"),
    )
    .await
    .error
}

#[tokio::test]
async fn each_http_error_type_becomes_its_error_kind() {
    let cases: Vec<(Reply, LlmError)> = vec![
        (
            Reply::error(400, "invalid_request_error").message("bad"),
            LlmError::BadRequest {
                message: "bad".into(),
            },
        ),
        (
            Reply::error(401, "authentication_error"),
            LlmError::Auth {
                message: "invalid x-api-key".into(),
            },
        ),
        (
            Reply::error(403, "permission_error").message("no"),
            LlmError::Auth {
                message: "no".into(),
            },
        ),
        (
            Reply::error(402, "billing_error").message("pay"),
            LlmError::QuotaExceeded {
                message: "pay".into(),
            },
        ),
        (
            Reply::error(404, "not_found_error"),
            LlmError::ModelNotFound {
                model: "claude-sonnet-4-5".into(),
            },
        ),
        (
            Reply::error(413, "request_too_large").message("big"),
            LlmError::ContextLengthExceeded {
                message: "big".into(),
            },
        ),
        (
            Reply::error(429, "rate_limit_error").retry_after(Duration::from_secs(3)),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(3)),
            },
        ),
        (
            Reply::error(429, "rate_limit_error")
                .retry_after(Duration::from_secs(3))
                .retry_after_ms(Duration::from_millis(1250)),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_millis(1250)),
            },
        ),
        (
            Reply::error(500, "api_error"),
            LlmError::Server { status: 500 },
        ),
        (
            Reply::error(504, "timeout_error"),
            LlmError::Server { status: 504 },
        ),
        (
            Reply::overloaded().retry_after(Duration::from_secs(2)),
            LlmError::Overloaded {
                retry_after: Some(Duration::from_secs(2)),
            },
        ),
        (
            Reply::error(400, "invalid_request_error").should_retry(true),
            LlmError::Server { status: 400 },
        ),
        (
            Reply::overloaded().should_retry(false),
            LlmError::BadRequest {
                message: "Overloaded (HTTP 529; the provider asked not to retry)".into(),
            },
        ),
    ];
    for (reply, want) in cases {
        let label = format!("{reply:?}");
        assert_eq!(error_for(reply).await, Some(want), "{label}");
    }
}

#[tokio::test]
async fn unknown_model_is_model_not_found() {
    let h = AnthropicHarness::start().await;
    let mut req = testing::request(&h, "hi");
    req.model = "gpt-4o".into();
    let outcome = testing::run(h.provider(ProviderOptions::default()).as_ref(), req).await;
    assert_eq!(
        outcome.error,
        Some(LlmError::ModelNotFound {
            model: "gpt-4o".into()
        })
    );
}

#[tokio::test]
async fn mid_stream_overload_is_overloaded_after_the_text_so_far() {
    let h = AnthropicHarness::start().await;
    h.fake.push(Reply::in_stream_error("overloaded_error"));
    let outcome = testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        testing::request(&h, "hi"),
    )
    .await;
    assert_eq!(outcome.text(), "Partial answer ");
    assert_eq!(
        outcome.error,
        Some(LlmError::Overloaded { retry_after: None })
    );
}

#[tokio::test]
async fn tool_call_after_thinking_and_text_keeps_call_position_zero() {
    let h = AnthropicHarness::start().await;
    h.fake.push(
        Reply::tool_use(vec![("get_weather", json!({"city": "Oslo"}))])
            .thinking("The user wants weather.")
            .preamble("Let me check."),
    );
    let outcome = testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        testing::request(&h, "weather?"),
    )
    .await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "Let me check.");
    assert!(outcome.chunks.iter().any(|c| matches!(
        c,
        CompletionChunk::ToolUseStart { index: 0, name, .. } if name == "get_weather"
    )));
    assert!(outcome.chunks.iter().any(|c| matches!(
        c,
        CompletionChunk::ToolUse { input, .. } if *input == json!({"city": "Oslo"})
    )));
    assert_eq!(
        outcome.chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::ToolUse
        })
    );
}

#[tokio::test]
async fn a_turn_with_more_blocks_than_the_lookback_still_reads_the_previous_request() {
    let h = AnthropicHarness::start().await;
    let provider = h.provider(ProviderOptions::default());
    let mut req = testing::request(&h, "Check all twelve services.");
    req.system = Some("Follow the runbook of each service carefully. ".repeat(200));
    let first = testing::run(provider.as_ref(), req.clone()).await;
    let first_input = usage_of(&first.chunks)[0].input_tokens;
    // Twelve parallel calls and their results: 24 blocks, beyond the 20-block lookback from
    // the tail; the breakpoint on the previous user message still hits.
    let ids: Vec<String> = (0..12).map(|i| format!("toolu_{i:02}")).collect();
    req.messages_mut().push(ChatMessage {
        role: ChatRole::Assistant,
        content: ids
            .iter()
            .map(|id| ContentBlock::ToolUse {
                id: id.clone(),
                name: "get_weather".into(),
                input: json!({"city": id}),
            })
            .collect(),
    });
    req.messages_mut().push(ChatMessage {
        role: ChatRole::User,
        content: ids
            .iter()
            .map(|id| ContentBlock::ToolResult {
                tool_use_id: id.clone(),
                content: "healthy".into(),
                is_error: false,
            })
            .collect(),
    });
    let second = testing::run(provider.as_ref(), req).await;
    assert_eq!(second.error, None);
    let usage = usage_of(&second.chunks)[0];
    assert_eq!(usage.cache_read_tokens, first_input);
    assert!(usage.cache_write_tokens > 0);
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = AnthropicConfig::new("sk-ant-x")
        .with_base_url(&format!("http://{addr}"))
        .unwrap();
    let provider = AnthropicProvider::new(config).unwrap();
    let err = provider.complete(full_request()).await.err().unwrap();
    assert!(matches!(err, LlmError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn sequential_calls_reuse_one_pooled_connection() {
    let h = AnthropicHarness::start().await;
    let provider = h.provider(ProviderOptions::default());
    for i in 0..20 {
        let outcome = testing::run(provider.as_ref(), testing::request(&h, &format!("n{i}"))).await;
        assert_eq!(outcome.error, None);
        // Let the background drain hand the connection back to the pool.
        tokio::task::yield_now().await;
    }
    assert_eq!(h.fake.request_count(), 20);
    assert!(
        h.fake.connection_count() <= 2,
        "{} connections",
        h.fake.connection_count()
    );
}

#[test]
fn debug_of_config_and_provider_never_shows_the_key() {
    let key = "sk-ant-super-secret-value-123";
    let config = AnthropicConfig::new(key);
    assert!(!format!("{config:?}").contains(key));
    let provider = AnthropicProvider::new(config).unwrap();
    assert!(!format!("{provider:?}").contains(key));
    assert!(!format!("{provider:#?}").contains("super-secret"));
}

#[test]
fn zero_default_max_tokens_is_refused_at_construction() {
    let mut config = AnthropicConfig::new("k");
    config.default_max_tokens = 0;
    assert!(AnthropicProvider::new(config).is_err());
}

#[test]
fn from_env_without_key_is_not_configured_and_bad_url_names_the_variable() {
    assert!(AnthropicConfig::from_lookup(|_| None).unwrap().is_none());
    assert!(
        AnthropicConfig::from_lookup(|n| (n == "ANTHROPIC_API_KEY").then(|| " ".into()))
            .unwrap()
            .is_none()
    );
    let err = AnthropicConfig::from_lookup(|n| match n {
        "ANTHROPIC_API_KEY" => Some("sk-ant-x".into()),
        "ANTHROPIC_BASE_URL" => Some("not a url".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("ANTHROPIC_BASE_URL"), "{err}");
}

#[test]
fn base_url_with_or_without_a_path_targets_v1_messages() {
    let config = AnthropicConfig::from_lookup(|n| (n == "ANTHROPIC_API_KEY").then(|| "k".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        config.messages_url().as_str(),
        "https://api.anthropic.com/v1/messages"
    );
    for (base, want) in [
        ("http://127.0.0.1:9", "http://127.0.0.1:9/v1/messages"),
        ("http://127.0.0.1:9/", "http://127.0.0.1:9/v1/messages"),
        (
            "https://gateway.example/anthropic/",
            "https://gateway.example/anthropic/v1/messages",
        ),
    ] {
        let config = AnthropicConfig::new("k").with_base_url(base).unwrap();
        assert_eq!(config.messages_url().as_str(), want);
    }
}
