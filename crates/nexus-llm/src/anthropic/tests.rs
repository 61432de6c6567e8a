//! The Anthropic provider against the fake: the conformance suite, then Anthropic wire
//! details (headers, body shape and cache breakpoints, usage arithmetic, error kinds), then
//! decoding corner cases without a server.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, ContentBlock, ImageSource, LlmError,
    LlmProvider, StopReason, ToolSpec, Usage,
};
use nexus_testkit::FakeAnthropic;
use nexus_testkit::anthropic::Reply;
use serde_json::{Value, json};

use super::AnthropicProvider;
use super::config::AnthropicConfig;
use super::decode::Decoder;
use super::payload;
use crate::pump::Decode;
use crate::sse::SseEvent;
use crate::testing::{self, Harness, ProviderOptions, Scenario, WireImage};

/// The Anthropic provider in front of a [`FakeAnthropic`].
struct AnthropicHarness {
    fake: FakeAnthropic,
}

impl AnthropicHarness {
    async fn start() -> AnthropicHarness {
        AnthropicHarness {
            fake: FakeAnthropic::start().await,
        }
    }

    fn config(&self, key: &str) -> AnthropicConfig {
        AnthropicConfig::new(key)
            .with_base_url(&self.fake.base_url())
            .unwrap()
    }

    fn provider_with(&self, config: AnthropicConfig) -> AnthropicProvider {
        AnthropicProvider::new(config).unwrap()
    }
}

impl Harness for AnthropicHarness {
    fn provider(&self, options: ProviderOptions) -> Arc<dyn LlmProvider> {
        let key = if options.valid_key {
            self.fake.api_key()
        } else {
            "sk-ant-not-the-right-key-0000"
        };
        let mut config = self.config(key);
        config.first_byte_timeout = options.first_byte_timeout;
        config.idle_timeout = options.idle_timeout;
        config.connect_timeout = Duration::from_secs(2);
        Arc::new(self.provider_with(config))
    }

    fn model(&self) -> String {
        "claude-sonnet-4-5".to_owned()
    }

    fn script(&self, scenario: Scenario) {
        let reply = match scenario {
            Scenario::Text(text) => Reply::text(text),
            Scenario::TextWithUsage(text, u) => Reply::text(text).usage(
                u.input_tokens - u.cache_read_tokens - u.cache_write_tokens,
                u.output_tokens,
                u.cache_read_tokens,
                u.cache_write_tokens,
            ),
            Scenario::MaxTokens(text) => Reply::text(text).stop_reason("max_tokens"),
            Scenario::ToolCalls(calls) => Reply::tool_use(calls),
            Scenario::RateLimited(delay) => {
                Reply::error(429, "rate_limit_error").retry_after(delay)
            }
            Scenario::QuotaExceeded => Reply::error(402, "billing_error"),
            // Anthropic's only structured "too big" answer (see `classify_anthropic`).
            Scenario::ContextLengthExceeded => Reply::error(413, "request_too_large"),
            Scenario::BadRequest => Reply::error(400, "invalid_request_error"),
            Scenario::ServerError => Reply::error(500, "api_error"),
            Scenario::Overloaded => Reply::overloaded(),
            Scenario::CutAfter(n) => Reply::cut_after(n),
            Scenario::Malformed => Reply::malformed(),
            Scenario::InStreamError => Reply::in_stream_error("api_error"),
            Scenario::Noisy(text) => Reply::text(text).noisy(),
            Scenario::SlowFirstByte(delay) => Reply::text("too late").first_byte_delay(delay),
            Scenario::Stall(delay) => Reply::text("one two three").token_delay(delay),
        };
        self.fake.push(reply);
    }

    fn last_request_images(&self) -> Vec<WireImage> {
        let Some(request) = self.fake.last_request() else {
            return Vec::new();
        };
        let mut images = Vec::new();
        for message in request.body["messages"].as_array().into_iter().flatten() {
            for block in message["content"].as_array().into_iter().flatten() {
                if block["type"] != "image" || block["source"]["type"] != "base64" {
                    continue;
                }
                images.push(WireImage {
                    media_type: block["source"]["media_type"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    data: block["source"]["data"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
        }
        images
    }

    fn request_count(&self) -> u64 {
        self.fake.request_count()
    }
}

crate::provider_conformance_tests!(AnthropicHarness::start().await);

// ---- Anthropic wire details ----

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: format!("The {name} tool"),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

fn full_request() -> CompletionRequest {
    CompletionRequest {
        model: "claude-sonnet-4-5".into(),
        system: Some("Be brief.".into()),
        messages: vec![
            ChatMessage {
                role: ChatRole::User,
                content: vec![
                    ContentBlock::Text {
                        text: "Weather in Paris? See both pictures.".into(),
                    },
                    ContentBlock::Image {
                        source: ImageSource::Base64 {
                            media_type: "image/png".into(),
                            data: PNG.into(),
                        },
                    },
                    ContentBlock::Image {
                        source: ImageSource::Url {
                            url: "https://example.com/cloud.png".into(),
                        },
                    },
                ],
            },
            ChatMessage {
                role: ChatRole::Assistant,
                content: vec![
                    ContentBlock::Text {
                        text: "Checking.".into(),
                    },
                    ContentBlock::ToolUse {
                        id: "toolu_a".into(),
                        name: "get_weather".into(),
                        input: json!({"city": "Paris"}),
                    },
                    ContentBlock::ToolUse {
                        id: "toolu_b".into(),
                        name: "get_time".into(),
                        input: json!({"city": "Paris"}),
                    },
                ],
            },
            ChatMessage {
                role: ChatRole::User,
                content: vec![
                    // Text first on purpose: the provider must move the results before it.
                    ContentBlock::Text {
                        text: "And tomorrow?".into(),
                    },
                    ContentBlock::ToolResult {
                        tool_use_id: "toolu_a".into(),
                        content: "sunny".into(),
                        is_error: false,
                    },
                    ContentBlock::ToolResult {
                        tool_use_id: "toolu_b".into(),
                        content: "clock broken".into(),
                        is_error: true,
                    },
                ],
            },
        ],
        tools: vec![tool("get_weather"), tool("get_time")],
        max_output_tokens: Some(300),
        temperature: Some(0.5),
    }
}

/// Every block of `body` carrying `cache_control`, as `(where, block)`.
fn breakpoints(body: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
        if t.get("cache_control").is_some() {
            found.push((format!("tools.{i}"), t.clone()));
        }
    }
    for (i, b) in body["system"].as_array().into_iter().flatten().enumerate() {
        if b.get("cache_control").is_some() {
            found.push((format!("system.{i}"), b.clone()));
        }
    }
    for (i, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            if b.get("cache_control").is_some() {
                found.push((format!("messages.{i}.{j}"), b.clone()));
            }
        }
    }
    found
}

/// `value` without any `cache_control` field.
fn strip_cache_control(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "cache_control")
                .map(|(k, v)| (k.clone(), strip_cache_control(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_cache_control).collect()),
        other => other.clone(),
    }
}

fn body_of(request: &CompletionRequest) -> Value {
    serde_json::from_slice(&payload::to_body(request, 8192).unwrap()).unwrap()
}

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

#[test]
fn cache_breakpoints_mark_tools_system_the_previous_turn_and_the_tail() {
    let body = body_of(&full_request());
    let places: Vec<String> = breakpoints(&body).into_iter().map(|(p, _)| p).collect();
    // Last tool, the system block, the last block of the user message before the tail, and
    // the last block of the last message.
    assert_eq!(
        places,
        ["tools.1", "system.0", "messages.0.2", "messages.2.2"]
    );
    for (_, block) in breakpoints(&body) {
        assert_eq!(block["cache_control"], json!({"type": "ephemeral"}));
    }
}

#[test]
fn never_more_than_four_breakpoints_whatever_the_shape() {
    let mut shapes = Vec::new();
    let mut long = full_request();
    for i in 0..20 {
        long.messages
            .push(ChatMessage::text(ChatRole::Assistant, format!("reply {i}")));
        long.messages
            .push(ChatMessage::text(ChatRole::User, format!("question {i}")));
    }
    shapes.push(long);
    let mut bare = full_request();
    bare.tools.clear();
    bare.system = None;
    bare.messages.truncate(1);
    shapes.push(bare);
    let mut prefill = full_request();
    prefill
        .messages
        .push(ChatMessage::text(ChatRole::Assistant, "{"));
    shapes.push(prefill);
    for request in &shapes {
        let body = body_of(request);
        let count = breakpoints(&body).len();
        assert!((1..=4).contains(&count), "{count} breakpoints");
    }
    let bare = body_of(&shapes[1]);
    assert_eq!(
        breakpoints(&bare)
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        ["messages.0.2"]
    );
    assert!(bare.get("tools").is_none() && bare.get("system").is_none());
}

#[test]
fn the_next_turn_repeats_the_previous_request_byte_for_byte_but_for_the_markers() {
    let turn = full_request();
    let mut next = turn.clone();
    next.messages.push(ChatMessage::text(
        ChatRole::Assistant,
        "Sunny today, rain tomorrow.",
    ));
    next.messages
        .push(ChatMessage::text(ChatRole::User, "Thanks!"));
    let a = strip_cache_control(&body_of(&turn));
    let b = strip_cache_control(&body_of(&next));
    assert_eq!(a["tools"], b["tools"]);
    assert_eq!(a["system"], b["system"]);
    let (a_msgs, b_msgs) = (
        a["messages"].as_array().unwrap(),
        b["messages"].as_array().unwrap(),
    );
    assert_eq!(a_msgs[..], b_msgs[..a_msgs.len()]);
    // Building the same request twice gives the same bytes.
    assert_eq!(
        payload::to_body(&next, 8192).unwrap(),
        payload::to_body(&next, 8192).unwrap()
    );
}

#[test]
fn max_tokens_is_always_sent() {
    let mut req = full_request();
    req.max_output_tokens = None;
    assert_eq!(body_of(&req)["max_tokens"], 8192);
    req.model = "claude-3-haiku-20240307".into();
    assert_eq!(
        body_of(&req)["max_tokens"],
        4096,
        "capped by the model's output limit"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&payload::to_body(&req, 1000).unwrap()).unwrap()["max_tokens"],
        1000
    );
}

#[test]
fn empty_text_blocks_and_empty_messages_are_not_sent() {
    let mut req = full_request();
    req.messages[1].content.insert(
        0,
        ContentBlock::Text {
            text: String::new(),
        },
    );
    req.messages
        .insert(1, ChatMessage::text(ChatRole::Assistant, ""));
    let body = body_of(&req);
    assert_eq!(body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(body["messages"][1]["content"][0]["text"], "Checking.");
}

#[test]
fn what_the_api_cannot_express_is_unsupported_not_dropped() {
    let mut req = full_request();
    req.messages[1].content.push(ContentBlock::Image {
        source: ImageSource::Url {
            url: "https://x/y.png".into(),
        },
    });
    assert!(matches!(
        payload::to_body(&req, 8192),
        Err(LlmError::Unsupported { .. })
    ));
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
    req.messages.push(ChatMessage {
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
    req.messages.push(ChatMessage {
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

// ---- decoding corner cases, without a server ----

/// Decodes `(event name, data)` pairs, then the end of the body.
fn decode(events: &[(&str, &str)]) -> (Vec<CompletionChunk>, Result<(), LlmError>) {
    let mut decoder = Decoder::default();
    let mut out = VecDeque::new();
    for (name, data) in events {
        let event = SseEvent {
            event: Some((*name).to_owned()),
            data: (*data).to_owned(),
        };
        if let Err(err) = decoder.on_event(&event, &mut out) {
            return (out.into(), Err(err));
        }
    }
    let end = decoder.on_end(&mut out);
    (out.into(), end)
}

const START: (&str, &str) = (
    "message_start",
    r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":1}}}"#,
);
const STOP: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);

fn message_delta(reason: &str, usage: &str) -> String {
    format!(
        r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}","stop_sequence":null}},"usage":{usage}}}"#
    )
}

fn usage_of(chunks: &[CompletionChunk]) -> Vec<Usage> {
    chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::Usage { usage } => Some(*usage),
            _ => None,
        })
        .collect()
}

#[test]
fn usage_input_includes_cache_creation_and_cache_read() {
    let delta = message_delta("end_turn", r#"{"output_tokens":50}"#);
    let (chunks, end) = decode(&[START, ("message_delta", &delta), STOP]);
    end.unwrap();
    assert_eq!(
        usage_of(&chunks),
        vec![Usage {
            input_tokens: 1110,
            output_tokens: 50,
            cache_read_tokens: 1000,
            cache_write_tokens: 100,
        }]
    );
    assert_eq!(
        chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::EndTurn
        })
    );
}

#[test]
fn message_delta_usage_is_cumulative_and_replaces_rather_than_adds() {
    let first = message_delta("end_turn", r#"{"output_tokens":20}"#);
    let second = message_delta(
        "end_turn",
        r#"{"output_tokens":50,"input_tokens":12,"cache_read_input_tokens":1000,"cache_creation_input_tokens":null}"#,
    );
    let (chunks, end) = decode(&[
        START,
        ("message_delta", &first),
        ("message_delta", &second),
        STOP,
    ]);
    end.unwrap();
    assert_eq!(
        usage_of(&chunks),
        vec![Usage {
            input_tokens: 1112,
            output_tokens: 50,
            cache_read_tokens: 1000,
            cache_write_tokens: 100,
        }]
    );
}

#[test]
fn tool_input_fragments_are_joined_per_block_and_empty_input_is_an_empty_object() {
    let events = [
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_2","name":"now","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"[1,2]}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            &message_delta("tool_use", r#"{"output_tokens":9}"#),
        ),
        STOP,
    ];
    let (chunks, end) = decode(&events);
    end.unwrap();
    let uses: Vec<(String, Value)> = chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::ToolUse { id, input, .. } => Some((id.clone(), input.clone())),
            _ => None,
        })
        .collect();
    // Each call completes at its own block stop.
    assert_eq!(
        uses,
        vec![
            ("toolu_2".to_owned(), json!({})),
            ("toolu_1".to_owned(), json!({"a": [1, 2]}))
        ]
    );
    assert_eq!(
        chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::ToolUse
        })
    );
}

#[test]
fn input_given_whole_at_the_start_is_used_when_no_fragment_follows() {
    let (chunks, end) = decode(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"x":1}}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        STOP,
    ]);
    end.unwrap();
    assert!(chunks.contains(&CompletionChunk::ToolUse {
        id: "t".into(),
        name: "f".into(),
        input: json!({"x": 1})
    }));
}

#[test]
fn invalid_tool_input_is_malformed() {
    let (_, end) = decode(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{oops"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
    ]);
    assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
}

#[test]
fn thinking_signature_ping_and_unknown_events_are_ignored() {
    let (chunks, end) = decode(&[
        START,
        ("ping", r#"{"type":"ping"}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"hi"}}"#,
        ),
        (
            "brand_new_event",
            r#"{"type":"brand_new_event","payload":[1,2,3]}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "message_delta",
            &message_delta("end_turn", r#"{"output_tokens":3}"#),
        ),
        STOP,
    ]);
    end.unwrap();
    let texts: Vec<&str> = chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["hi"]);
}

#[test]
fn stop_reasons_map_to_neutral_ones() {
    for (wire, want) in [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("model_context_window_exceeded", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("refusal", StopReason::ContentFilter),
        ("pause_turn", StopReason::EndTurn),
        ("a_reason_from_the_future", StopReason::EndTurn),
    ] {
        let delta = message_delta(wire, r#"{"output_tokens":1}"#);
        let (chunks, end) = decode(&[START, ("message_delta", &delta), STOP]);
        end.unwrap();
        assert_eq!(
            chunks.last(),
            Some(&CompletionChunk::Done { stop_reason: want }),
            "{wire}"
        );
    }
}

#[test]
fn end_after_the_stop_reason_completes_but_earlier_is_interrupted() {
    let delta = message_delta("end_turn", r#"{"output_tokens":1}"#);
    let (chunks, end) = decode(&[START, ("message_delta", &delta)]);
    end.unwrap();
    assert!(matches!(chunks.last(), Some(CompletionChunk::Done { .. })));
    let (_, end) = decode(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
    ]);
    assert_eq!(end, Err(LlmError::StreamInterrupted));
}

#[test]
fn error_events_are_typed_and_invalid_json_is_malformed() {
    let (_, end) = decode(&[
        START,
        (
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
    ]);
    assert_eq!(end, Err(LlmError::Overloaded { retry_after: None }));
    let (_, end) = decode(&[
        START,
        (
            "error",
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
        ),
    ]);
    assert_eq!(
        end,
        Err(LlmError::InStream {
            message: "Internal server error".into()
        })
    );
    let (_, end) = decode(&[START, ("content_block_delta", "{\"type\":\"content_")]);
    assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
}
