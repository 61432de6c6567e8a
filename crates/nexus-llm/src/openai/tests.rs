//! The OpenAI provider against the fake: the conformance suite, then OpenAI wire details.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, ContentBlock, LlmError, LlmProvider,
    StopReason, ToolSpec,
};
use nexus_testkit::{FakeOpenAi, Reply};
use serde_json::{Value, json};

use super::OpenAiProvider;
use super::config::{Flavor, OpenAiConfig};
use super::decode::Decoder;
use super::payload;
use crate::sse::SseEvent;
use crate::testing::{self, Harness, ProviderOptions, Scenario, WireImage};

/// The OpenAI provider in front of a [`FakeOpenAi`].
struct OpenAiHarness {
    fake: FakeOpenAi,
}

impl OpenAiHarness {
    async fn start() -> OpenAiHarness {
        OpenAiHarness {
            fake: FakeOpenAi::start().await,
        }
    }

    fn config(&self, key: &str) -> OpenAiConfig {
        OpenAiConfig::new(key)
            .with_base_url(&self.fake.base_url())
            .unwrap()
    }
}

impl Harness for OpenAiHarness {
    fn provider(&self, options: ProviderOptions) -> Arc<dyn LlmProvider> {
        let key = if options.valid_key {
            self.fake.api_key()
        } else {
            "sk-not-the-right-key-0000"
        };
        let mut config = self.config(key);
        config.first_byte_timeout = options.first_byte_timeout;
        config.idle_timeout = options.idle_timeout;
        config.connect_timeout = Duration::from_secs(2);
        Arc::new(OpenAiProvider::new(config).unwrap())
    }

    fn model(&self) -> String {
        "gpt-4o-mini".to_owned()
    }

    fn script(&self, scenario: Scenario) {
        self.fake.push(reply_for(scenario));
    }

    fn last_request_images(&self) -> Vec<WireImage> {
        last_request_images(&self.fake)
    }

    fn request_count(&self) -> u64 {
        self.fake.request_count()
    }
}

/// The fake's reply for a conformance scenario.
pub(super) fn reply_for(scenario: Scenario) -> Reply {
    match scenario {
        Scenario::Text(text) => Reply::text(text),
        Scenario::TextWithUsage(text, u) => {
            Reply::text(text).usage(u.input_tokens, u.output_tokens, u.cache_read_tokens)
        }
        Scenario::MaxTokens(text) => Reply::text(text).finish_reason("length"),
        Scenario::ToolCalls(calls) => Reply::tool_calls(calls),
        Scenario::RateLimited(delay) => Reply::error(429, "rate_limit_exceeded").retry_after(delay),
        Scenario::QuotaExceeded => Reply::error(429, "insufficient_quota"),
        Scenario::ContextLengthExceeded => Reply::error(400, "context_length_exceeded"),
        Scenario::BadRequest => Reply::error(400, "invalid_value"),
        Scenario::ServerError => Reply::error(500, "server_error"),
        Scenario::Overloaded => Reply::error(503, "server_error"),
        Scenario::CutAfter(n) => Reply::cut_after(n),
        Scenario::Malformed => Reply::malformed(),
        Scenario::InStreamError => Reply::in_stream_error(),
        Scenario::Noisy(text) => Reply::text(text).noisy(),
        Scenario::SlowFirstByte(delay) => Reply::text("too late").first_byte_delay(delay),
        Scenario::Stall(delay) => Reply::text("one two three").token_delay(delay),
    }
}

/// The images of the fake's last request, as sent.
pub(super) fn last_request_images(fake: &FakeOpenAi) -> Vec<WireImage> {
    let Some(request) = fake.last_request() else {
        return Vec::new();
    };
    let mut images = Vec::new();
    for message in request.body["messages"].as_array().into_iter().flatten() {
        for part in message["content"].as_array().into_iter().flatten() {
            if part["type"] != "image_url" {
                continue;
            }
            let url = part["image_url"]["url"].as_str().unwrap_or_default();
            let (head, data) = url.split_once(";base64,").unwrap_or_default();
            images.push(WireImage {
                media_type: head.trim_start_matches("data:").to_owned(),
                data: data.to_owned(),
            });
        }
    }
    images
}

crate::provider_conformance_tests!(OpenAiHarness::start().await);

// ---- OpenAI wire details ----

fn full_request() -> CompletionRequest {
    CompletionRequest {
        model: "gpt-4o-mini".into(),
        system: Some("Be brief.".into()),
        messages: vec![
            ChatMessage::text(ChatRole::User, "Weather in Paris?"),
            ChatMessage {
                role: ChatRole::Assistant,
                content: vec![ContentBlock::ToolUse {
                    id: "call_a".into(),
                    name: "get_weather".into(),
                    input: json!({"city": "Paris"}),
                }],
            },
            ChatMessage {
                role: ChatRole::User,
                content: vec![
                    ContentBlock::ToolResult {
                        tool_use_id: "call_a".into(),
                        content: "sunny".into(),
                        is_error: false,
                    },
                    ContentBlock::Text {
                        text: "And tomorrow?".into(),
                    },
                ],
            },
        ]
        .into(),
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: "Weather of a city".into(),
            parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        }],
        max_output_tokens: Some(300),
        temperature: Some(0.5),
        affinity: Some("session-1".into()),
    }
}

#[tokio::test]
async fn request_body_follows_the_chat_completions_wire_format() {
    let h = OpenAiHarness::start().await;
    h.fake.push(Reply::text("ok"));
    let outcome = testing::run(
        h.provider(ProviderOptions::default()).as_ref(),
        full_request(),
    )
    .await;
    assert_eq!(outcome.error, None);
    let recorded = h.fake.last_request().unwrap();
    assert_eq!(recorded.path, "/v1/chat/completions");
    assert_eq!(
        recorded.authorization.as_deref(),
        Some(format!("Bearer {}", h.fake.api_key()).as_str())
    );
    assert_eq!(recorded.accept.as_deref(), Some("text/event-stream"));
    let body = recorded.body;
    assert_eq!(body["model"], "gpt-4o-mini");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["max_completion_tokens"], 300);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["temperature"], 0.5);
    let messages = body["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["system", "user", "assistant", "tool", "user"]);
    assert_eq!(messages[0]["content"], "Be brief.");
    assert_eq!(messages[1]["content"], "Weather in Paris?");
    assert_eq!(messages[2]["content"], Value::Null);
    let call = &messages[2]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value =
        serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Paris"}));
    assert_eq!(
        messages[3],
        json!({"role": "tool", "tool_call_id": "call_a", "content": "sunny"})
    );
    assert_eq!(messages[4]["content"], "And tomorrow?");
    assert_eq!(body["tools"][0]["type"], "function");
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["tools"][0]["function"]["parameters"]["type"], "object");
}

#[test]
fn no_tools_means_no_tools_field_and_failed_results_are_marked() {
    let mut req = full_request();
    req.tools.clear();
    req.system = None;
    if let ContentBlock::ToolResult { is_error, .. } = &mut req.messages_mut()[2].content[0] {
        *is_error = true;
    }
    let body: Value =
        serde_json::from_slice(&payload::to_body(&req, Flavor::OpenAi, true).unwrap()).unwrap();
    assert!(
        body.get("tools").is_none(),
        "the API rejects an empty tools array"
    );
    assert_eq!(body["messages"][0]["role"], "user");
    assert_eq!(body["messages"][2]["content"], "Error: sunny");
}

#[test]
fn image_in_an_assistant_message_is_unsupported_not_dropped() {
    let mut req = full_request();
    req.messages_mut()[1].content.push(ContentBlock::Image {
        source: nexus_core::llm::ImageSource::Url {
            url: "https://x/y.png".into(),
        },
    });
    assert!(matches!(
        payload::to_body(&req, Flavor::OpenAi, true),
        Err(LlmError::Unsupported { .. })
    ));
}

#[tokio::test]
async fn organization_and_project_headers_are_sent() {
    let h = OpenAiHarness::start().await;
    let mut config = h.config(h.fake.api_key());
    config.organization = Some("org-123".into());
    config.project = Some("proj_456".into());
    let provider = OpenAiProvider::new(config).unwrap();
    let outcome = testing::run(&provider, testing::request(&h, "hi")).await;
    assert_eq!(outcome.error, None);
    let recorded = h.fake.last_request().unwrap();
    assert_eq!(recorded.organization.as_deref(), Some("org-123"));
    assert_eq!(recorded.project.as_deref(), Some("proj_456"));
}

#[tokio::test]
async fn default_fake_reply_echoes_through_the_provider() {
    let h = OpenAiHarness::start().await;
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
            .any(|c| matches!(c, CompletionChunk::Usage { .. }))
    );
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = OpenAiConfig::new("sk-x")
        .with_base_url(&format!("http://{addr}/v1"))
        .unwrap();
    let provider = OpenAiProvider::new(config).unwrap();
    let err = provider.complete(full_request()).await.err().unwrap();
    assert!(matches!(err, LlmError::Transport { .. }), "{err:?}");
}

#[test]
fn debug_of_config_and_provider_never_shows_the_key() {
    let key = "sk-super-secret-value-123";
    let config = OpenAiConfig::new(key);
    assert!(!format!("{config:?}").contains(key));
    let provider = OpenAiProvider::new(config).unwrap();
    assert!(!format!("{provider:?}").contains(key));
    assert!(!format!("{provider:#?}").contains("super-secret"));
}

#[test]
fn from_env_without_key_is_not_configured_and_bad_url_names_the_variable() {
    assert!(OpenAiConfig::from_lookup(|_| None).unwrap().is_none());
    assert!(
        OpenAiConfig::from_lookup(|n| (n == "OPENAI_API_KEY").then(|| "  ".into()))
            .unwrap()
            .is_none()
    );
    let err = OpenAiConfig::from_lookup(|n| match n {
        "OPENAI_API_KEY" => Some("sk-x".into()),
        "OPENAI_BASE_URL" => Some("ftp://example.com".into()),
        _ => None,
    })
    .unwrap_err();
    assert!(err.to_string().contains("OPENAI_BASE_URL"), "{err}");
}

#[test]
fn base_url_with_or_without_trailing_slash_targets_chat_completions() {
    for base in ["http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1/"] {
        let config = OpenAiConfig::new("k").with_base_url(base).unwrap();
        assert_eq!(
            config.chat_completions_url().as_str(),
            "http://127.0.0.1:9/v1/chat/completions"
        );
    }
    let config = OpenAiConfig::from_lookup(|n| (n == "OPENAI_API_KEY").then(|| "k".into()))
        .unwrap()
        .unwrap();
    assert_eq!(
        config.chat_completions_url().as_str(),
        "https://api.openai.com/v1/chat/completions"
    );
}

// ---- decoding corner cases, without a server ----

fn decode(frames: &[&str]) -> (Vec<CompletionChunk>, Result<(), LlmError>) {
    let mut decoder = Decoder::default();
    let mut out = VecDeque::new();
    for data in frames {
        let event = SseEvent {
            event: None,
            data: (*data).to_owned(),
        };
        if let Err(err) = decoder.on_event(&event, &mut out) {
            return (out.into(), Err(err));
        }
    }
    let end = decoder.on_end(&mut out);
    (out.into(), end)
}

#[test]
fn usage_after_finish_comes_before_done() {
    let (chunks, end) = decode(&[
        r#"{"choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":2}}}"#,
        "[DONE]",
    ]);
    end.unwrap();
    assert!(
        matches!(chunks[1], CompletionChunk::Usage { usage } if usage.cache_read_tokens == 2 && usage.input_tokens == 5)
    );
    assert_eq!(
        chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::EndTurn
        })
    );
}

#[test]
fn end_without_done_after_finish_still_completes_but_without_finish_is_interrupted() {
    let (chunks, end) = decode(&[r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#]);
    end.unwrap();
    assert_eq!(
        chunks,
        vec![CompletionChunk::Done {
            stop_reason: StopReason::EndTurn
        }]
    );
    let (_, end) = decode(&[r#"{"choices":[{"index":0,"delta":{"content":"par"}}]}"#]);
    assert_eq!(end, Err(LlmError::StreamInterrupted));
}

#[test]
fn tool_calls_finished_with_stop_are_still_tool_use() {
    let (chunks, end) = decode(&[
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c1","function":{"name":"f","arguments":"{}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"id":"c2","function":{"name":"g","arguments":"{\"a\":1}"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        "[DONE]",
    ]);
    end.unwrap();
    let uses: Vec<&str> = chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::ToolUse { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        uses,
        ["f", "g"],
        "index-less calls with new ids are separate calls"
    );
    assert_eq!(
        chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::ToolUse
        })
    );
}

#[test]
fn error_object_in_stream_is_in_stream_error_and_refusal_is_text() {
    let (chunks, end) = decode(&[
        r#"{"choices":[{"index":0,"delta":{"refusal":"I can't help with that."}}]}"#,
        r#"{"error":{"message":"overloaded upstream","type":"server_error"}}"#,
    ]);
    assert_eq!(
        chunks,
        vec![CompletionChunk::TextDelta {
            text: "I can't help with that.".into()
        }]
    );
    assert_eq!(
        end,
        Err(LlmError::InStream {
            message: "overloaded upstream".into()
        })
    );
}

#[test]
fn invalid_tool_arguments_are_malformed() {
    let (_, end) = decode(&[
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"f","arguments":"{oops"}}]}}]}"#,
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    ]);
    assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
}

#[tokio::test]
async fn sequential_calls_reuse_one_pooled_connection() {
    let h = OpenAiHarness::start().await;
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
