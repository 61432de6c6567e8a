//! The Gemini provider against the fake: the conformance suite, then Gemini wire details.
//! Tests without a server sit beside their code (`payload`, `decode`, `config`, `schema`,
//! `callid`).

use std::sync::Arc;
use std::time::Duration;

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, ContentBlock, LlmError, LlmProvider,
    StopReason, ToolSpec, Usage,
};
use nexus_testkit::FakeGemini;
use nexus_testkit::gemini::Reply;
use serde_json::{Value, json};

use super::GeminiProvider;
use super::callid::{self, CallOrigin, FOREIGN_SIGNATURE};
use super::config::GeminiConfig;
use crate::classify::google::SERVER_DEADLINE;
use crate::retry::{RetryPolicy, Retrying};
use crate::testing::{self, ContextOverflow, Harness, ProviderOptions, Scenario, WireImage};

/// The Gemini provider in front of a [`FakeGemini`].
struct GeminiHarness {
    fake: FakeGemini,
}

impl GeminiHarness {
    async fn start() -> GeminiHarness {
        GeminiHarness {
            fake: FakeGemini::start().await,
        }
    }

    fn config(&self, key: &str) -> GeminiConfig {
        GeminiConfig::new(key)
            .with_base_url(&self.fake.base_url())
            .unwrap()
    }

    fn default_provider(&self) -> GeminiProvider {
        GeminiProvider::new(self.config(self.fake.api_key())).unwrap()
    }
}

impl Harness for GeminiHarness {
    fn provider(&self, options: ProviderOptions) -> Arc<dyn LlmProvider> {
        let key = if options.valid_key {
            self.fake.api_key()
        } else {
            "AIzaSy-not-the-right-key-000000000000"
        };
        let mut config = self.config(key);
        config.first_byte_timeout = options.first_byte_timeout;
        config.idle_timeout = options.idle_timeout;
        config.connect_timeout = Duration::from_secs(2);
        Arc::new(GeminiProvider::new(config).unwrap())
    }

    fn model(&self) -> String {
        "gemini-2.5-flash".to_owned()
    }

    fn script(&self, scenario: Scenario) {
        let reply = match scenario {
            Scenario::Text(text) => Reply::text(text),
            Scenario::TextWithUsage(text, u) => {
                Reply::text(text).usage(u.input_tokens, u.output_tokens, u.cache_read_tokens)
            }
            Scenario::MaxTokens(text) => Reply::text(text).finish_reason("MAX_TOKENS"),
            Scenario::ToolCalls(calls) => Reply::function_calls(calls).thought_signature(),
            Scenario::RateLimited(delay) => Reply::rate_limited(delay),
            Scenario::QuotaExceeded => Reply::daily_quota_exhausted(),
            Scenario::ContextLengthExceeded => Reply::context_too_long(),
            Scenario::BadRequest => Reply::error(400, "INVALID_ARGUMENT"),
            Scenario::ServerError => Reply::error(500, "INTERNAL"),
            Scenario::Overloaded => Reply::error(503, "UNAVAILABLE"),
            Scenario::CutAfter(n) => Reply::cut_after(n),
            Scenario::Malformed => Reply::malformed(),
            Scenario::InStreamError => Reply::in_stream_error(),
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
        for content in request.body["contents"].as_array().into_iter().flatten() {
            for part in content["parts"].as_array().into_iter().flatten() {
                if let Some(inline) = part.get("inlineData") {
                    images.push(WireImage {
                        media_type: inline["mimeType"].as_str().unwrap_or_default().to_owned(),
                        data: inline["data"].as_str().unwrap_or_default().to_owned(),
                    });
                }
            }
        }
        images
    }

    fn request_count(&self) -> u64 {
        self.fake.model_call_count()
    }

    fn context_overflow(&self) -> ContextOverflow {
        ContextOverflow::ProseOnly
    }
}

crate::provider_conformance_tests!(GeminiHarness::start().await);

// ---- Gemini wire details ----

pub(super) fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: "Weather of a city".into(),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": false}),
    }
}

pub(super) fn full_request() -> CompletionRequest {
    let mut request = CompletionRequest {
        model: "gemini-2.5-flash".into(),
        system: Some("Be brief.".into()),
        tools: vec![weather_tool()],
        max_output_tokens: Some(300),
        temperature: Some(0.5),
        ..CompletionRequest::default()
    };
    request.messages = vec![
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
    .into();
    request
}

fn has_key_anywhere(value: &Value, key: &str) -> bool {
    match value {
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k == key || has_key_anywhere(v, key)),
        Value::Array(items) => items.iter().any(|v| has_key_anywhere(v, key)),
        _ => false,
    }
}

#[tokio::test]
async fn request_goes_to_stream_generate_content_with_the_key_only_in_a_header() {
    let h = GeminiHarness::start().await;
    h.fake.push(Reply::text("ok"));
    let outcome = testing::run(&h.default_provider(), full_request()).await;
    assert_eq!(outcome.error, None);
    let recorded = h.fake.last_request().unwrap();
    assert_eq!(recorded.method, "POST");
    assert_eq!(
        recorded.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    );
    assert_eq!(recorded.query.as_deref(), Some("alt=sse"));
    assert_eq!(recorded.api_key.as_deref(), Some(h.fake.api_key()));
    assert_eq!(recorded.accept.as_deref(), Some("text/event-stream"));
    assert_eq!(recorded.content_type.as_deref(), Some("application/json"));
    assert!(!recorded.body.to_string().contains(h.fake.api_key()));
}

#[tokio::test]
async fn request_body_follows_the_generate_content_wire_format() {
    let h = GeminiHarness::start().await;
    h.fake.push(Reply::text("ok"));
    let outcome = testing::run(&h.default_provider(), full_request()).await;
    assert_eq!(outcome.error, None);
    let body = h.fake.last_request().unwrap().body;
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
            {"role": "model", "parts": [{
                "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                "thoughtSignature": FOREIGN_SIGNATURE
            }]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"result": "sunny"}}},
                {"text": "And tomorrow?"}
            ]}
        ])
    );
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [{
            "name": "get_weather",
            "description": "Weather of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"]}
        }]}])
    );
    assert_eq!(
        body["generationConfig"],
        json!({"maxOutputTokens": 300, "temperature": 0.5})
    );
    assert!(
        !has_key_anywhere(&body["contents"], "id"),
        "call ids are never sent"
    );
    assert!(body.get("model").is_none());
}

#[tokio::test]
async fn thought_signatures_are_echoed_unchanged_on_the_next_request() {
    let h = GeminiHarness::start().await;
    let provider = h.default_provider();
    h.fake.push(
        Reply::function_calls(vec![
            ("get_weather", json!({"city": "Paris"})),
            ("get_weather", json!({"city": "Rome"})),
        ])
        .thought_signature(),
    );
    let mut req = testing::request(&h, "Weather in Paris and Rome?");
    req.tools = vec![weather_tool()];
    let first = testing::run(&provider, req.clone()).await;
    assert_eq!(first.error, None);
    let calls: Vec<(String, String, Value)> = first
        .chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::ToolUse { id, name, input } => {
                Some((id.clone(), name.clone(), input.clone()))
            }
            _ => None,
        })
        .collect();
    assert_eq!(calls.len(), 2);
    let issued = h.fake.issued_signatures();
    assert_eq!(issued.len(), 1);
    assert_eq!(
        callid::origin(&calls[0].0),
        CallOrigin::Gemini {
            signature: Some(issued[0].clone())
        }
    );
    assert_eq!(
        callid::origin(&calls[1].0),
        CallOrigin::Gemini { signature: None }
    );

    // The runtime's next request: the calls as the model made them, then their results.
    req.messages_mut().push(ChatMessage {
        role: ChatRole::Assistant,
        content: calls
            .iter()
            .map(|(id, name, input)| ContentBlock::ToolUse {
                id: id.clone(),
                name: name.clone(),
                input: input.clone(),
            })
            .collect(),
    });
    req.messages_mut().push(ChatMessage {
        role: ChatRole::User,
        content: calls
            .iter()
            .map(|(id, _, _)| ContentBlock::ToolResult {
                tool_use_id: id.clone(),
                content: "sunny".into(),
                is_error: false,
            })
            .collect(),
    });
    h.fake.push(Reply::text("Sunny in both."));
    let second = testing::run(&provider, req.clone()).await;
    assert_eq!(second.error, None, "the fake refused the echo");
    let body = h.fake.last_request().unwrap().body;
    let parts = &body["contents"][1]["parts"];
    assert_eq!(parts[0]["thoughtSignature"], json!(issued[0]));
    assert!(parts[1].get("thoughtSignature").is_none());

    // A history that lost the signature is refused, as Gemini 3 refuses it.
    let ContentBlock::ToolUse { id, .. } = &mut req.messages_mut()[1].content[0] else {
        unreachable!()
    };
    *id = "gem_0123456789abcdef".into();
    let lost = testing::run(&provider, req).await;
    assert!(
        matches!(lost.error, Some(LlmError::BadRequest { .. })),
        "{lost:?}"
    );
}

#[tokio::test]
async fn json_schema_only_keys_never_reach_the_wire() {
    let h = GeminiHarness::start().await;
    h.fake.push(Reply::text("ok"));
    let mut req = testing::request(&h, "hi");
    req.tools = vec![
        ToolSpec {
            name: "search".into(),
            description: "Search the web".into(),
            parameters: json!({
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "additionalProperties": false,
                "properties": {
                    "query": {"type": "string", "minLength": 1, "default": "rust"},
                    "filter": {"$ref": "#/definitions/Filter"},
                    "mode": {"const": "fast"},
                    "limit": {"type": ["integer", "null"], "exclusiveMinimum": 0}
                },
                "required": ["query"],
                "definitions": {"Filter": {"type": "object", "additionalProperties": false,
                                           "properties": {"site": {"type": "string"}}}}
            }),
        },
        ToolSpec {
            name: "now".into(),
            description: "The time".into(),
            parameters: json!({"type": "object", "properties": {}, "additionalProperties": false}),
        },
    ];
    let outcome = testing::run(&h.default_provider(), req).await;
    assert_eq!(outcome.error, None, "the fake refused the schema");
    let body = h.fake.last_request().unwrap().body;
    let declarations = &body["tools"][0]["functionDeclarations"];
    for key in [
        "$schema",
        "additionalProperties",
        "$ref",
        "definitions",
        "const",
        "default",
        "exclusiveMinimum",
    ] {
        assert!(!has_key_anywhere(declarations, key), "{key} was sent");
    }
    assert_eq!(
        declarations[0]["parameters"]["properties"]["filter"]["properties"]["site"],
        json!({"type": "string"})
    );
    assert_eq!(
        declarations[0]["parameters"]["properties"]["limit"],
        json!({"type": "integer", "nullable": true})
    );
    assert!(declarations[1].get("parameters").is_none());
}

#[tokio::test]
async fn usage_counts_cached_input_and_thinking_output() {
    let h = GeminiHarness::start().await;
    h.fake.push(
        Reply::text("thought hard")
            .usage(1200, 7, 1024)
            .thoughts_tokens(30),
    );
    let outcome = testing::run(&h.default_provider(), testing::request(&h, "hi")).await;
    assert_eq!(outcome.error, None);
    let usage: Vec<Usage> = outcome
        .chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::Usage { usage } => Some(*usage),
            _ => None,
        })
        .collect();
    assert_eq!(
        usage,
        vec![Usage {
            input_tokens: 1200,
            output_tokens: 37,
            cache_read_tokens: 1024,
            cache_write_tokens: 0,
        }]
    );
}

async fn error_of(h: &GeminiHarness, reply: Reply, model: &str) -> Option<LlmError> {
    h.fake.push(reply);
    let mut req = testing::request(h, "hi");
    req.model = model.to_owned();
    testing::run(&h.default_provider(), req).await.error
}

#[tokio::test]
async fn each_google_error_becomes_the_right_kind() {
    let h = GeminiHarness::start().await;
    let model = "gemini-2.5-flash";
    assert_eq!(
        error_of(&h, Reply::rate_limited(Duration::from_secs(37)), model).await,
        Some(LlmError::RateLimited {
            retry_after: Some(Duration::from_secs(37))
        })
    );
    assert!(matches!(
        error_of(&h, Reply::daily_quota_exhausted(), model).await,
        Some(LlmError::QuotaExceeded { .. })
    ));
    assert_eq!(
        error_of(&h, Reply::error(404, "NOT_FOUND"), model).await,
        Some(LlmError::ModelNotFound {
            model: model.into()
        })
    );
    assert!(matches!(
        error_of(&h, Reply::error(403, "PERMISSION_DENIED"), model).await,
        Some(LlmError::Auth { .. })
    ));
    assert!(matches!(
        error_of(&h, Reply::error(400, "FAILED_PRECONDITION"), model).await,
        Some(LlmError::BadRequest { .. })
    ));
    assert!(matches!(
        error_of(&h, Reply::context_too_long(), model).await,
        Some(LlmError::BadRequest { .. })
    ));
    assert_eq!(
        error_of(&h, Reply::error(500, "INTERNAL"), model).await,
        Some(LlmError::Server { status: 500 })
    );
    assert_eq!(
        error_of(
            &h,
            Reply::error(503, "UNAVAILABLE").retry_delay(Duration::from_millis(1500)),
            model
        )
        .await,
        Some(LlmError::Overloaded {
            retry_after: Some(Duration::from_millis(1500))
        })
    );
    assert_eq!(
        error_of(&h, Reply::error(504, "DEADLINE_EXCEEDED"), model).await,
        Some(LlmError::Timeout {
            stage: SERVER_DEADLINE
        })
    );
    // A model the service does not have: the fake's own 404, the script untouched.
    assert_eq!(
        error_of(&h, Reply::text("unused"), "claude-3-opus").await,
        Some(LlmError::ModelNotFound {
            model: "claude-3-opus".into()
        })
    );
    assert_eq!(h.fake.pending_replies(), 1);
}

#[tokio::test]
async fn wrong_and_missing_keys_are_auth_errors() {
    let h = GeminiHarness::start().await;
    for key in ["AIzaSy-wrong", ""] {
        let provider = GeminiProvider::new(h.config(key)).unwrap();
        let outcome = testing::run(&provider, testing::request(&h, "hi")).await;
        assert!(
            matches!(outcome.error, Some(LlmError::Auth { .. })),
            "{key:?}: {outcome:?}"
        );
    }
}

#[tokio::test]
async fn an_error_opening_the_stream_is_classified_and_retried() {
    let h = GeminiHarness::start().await;
    h.fake.push(Reply::stream_error(0, 503, "UNAVAILABLE"));
    let outcome = testing::run(&h.default_provider(), testing::request(&h, "hi")).await;
    assert!(
        matches!(outcome.error, Some(LlmError::Overloaded { .. })),
        "{outcome:?}"
    );
    h.fake.push(Reply::stream_error(0, 503, "UNAVAILABLE"));
    h.fake.push(Reply::text("fine now"));
    let policy = RetryPolicy {
        initial_delay: Duration::from_millis(10),
        jitter: 0.0,
        ..RetryPolicy::default()
    };
    let retrying = Retrying::new(Arc::new(h.default_provider()), policy);
    let before = h.fake.model_call_count();
    let outcome = testing::run(&retrying, testing::request(&h, "hi")).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "fine now");
    assert_eq!(h.fake.model_call_count() - before, 2);
}

#[tokio::test]
async fn an_error_after_text_is_in_stream() {
    let h = GeminiHarness::start().await;
    h.fake.push(Reply::stream_error(3, 503, "UNAVAILABLE"));
    let outcome = testing::run(&h.default_provider(), testing::request(&h, "hi")).await;
    assert!(!outcome.text().is_empty());
    assert!(
        matches!(outcome.error, Some(LlmError::InStream { .. })),
        "{outcome:?}"
    );
}

#[tokio::test]
async fn a_blocked_prompt_ends_with_a_content_filter_stop_and_usage() {
    let h = GeminiHarness::start().await;
    h.fake.push(Reply::blocked_prompt("SAFETY"));
    let outcome = testing::run(&h.default_provider(), testing::request(&h, "hi")).await;
    assert_eq!(outcome.error, None);
    assert!(matches!(
        outcome.chunks.as_slice(),
        [
            CompletionChunk::Usage { .. },
            CompletionChunk::Done {
                stop_reason: StopReason::ContentFilter
            }
        ]
    ));
}

#[tokio::test]
async fn safety_and_recitation_finishes_are_content_filter_stops() {
    let h = GeminiHarness::start().await;
    for reason in ["SAFETY", "RECITATION", "PROHIBITED_CONTENT"] {
        h.fake
            .push(Reply::text("I was saying").finish_reason(reason));
        let outcome = testing::run(&h.default_provider(), testing::request(&h, "hi")).await;
        assert_eq!(
            outcome.chunks.last(),
            Some(&CompletionChunk::Done {
                stop_reason: StopReason::ContentFilter
            }),
            "{reason}"
        );
    }
}

#[tokio::test]
async fn lf_separated_events_are_read_like_crlf_ones() {
    let h = GeminiHarness::start().await;
    h.fake
        .push(Reply::text("line feeds only").lf_separators().noisy());
    let outcome = testing::run(&h.default_provider(), testing::request(&h, "hi")).await;
    assert_eq!(outcome.error, None);
    assert_eq!(outcome.text(), "line feeds only");
}

#[tokio::test]
async fn default_fake_reply_echoes_through_the_provider() {
    let h = GeminiHarness::start().await;
    let outcome = testing::run(&h.default_provider(), testing::request(&h, "ping")).await;
    assert_eq!(outcome.text(), "You said: ping");
    assert!(matches!(
        outcome.chunks.last(),
        Some(CompletionChunk::Done {
            stop_reason: StopReason::EndTurn
        })
    ));
}

#[tokio::test]
async fn unreachable_server_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = GeminiConfig::new("AIza-x")
        .with_base_url(&format!("http://{addr}/v1beta"))
        .unwrap();
    let provider = GeminiProvider::new(config).unwrap();
    let err = provider.complete(full_request()).await.err().unwrap();
    assert!(matches!(err, LlmError::Transport { .. }), "{err:?}");
}

#[tokio::test]
async fn sequential_calls_reuse_one_pooled_connection() {
    let h = GeminiHarness::start().await;
    let provider = h.default_provider();
    for i in 0..20 {
        let outcome = testing::run(&provider, testing::request(&h, &format!("n{i}"))).await;
        assert_eq!(outcome.error, None);
        tokio::task::yield_now().await;
    }
    assert_eq!(h.fake.model_call_count(), 20);
    assert!(
        h.fake.connection_count() <= 2,
        "{} connections",
        h.fake.connection_count()
    );
}

#[test]
fn debug_of_config_and_provider_never_shows_the_key() {
    let key = "AIzaSy-super-secret-value-123";
    let config = GeminiConfig::new(key);
    assert!(!format!("{config:?}").contains(key));
    let provider = GeminiProvider::new(config).unwrap();
    assert!(!format!("{provider:?}").contains(key));
    assert!(!format!("{provider:#?}").contains("super-secret"));
}
