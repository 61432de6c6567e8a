//! The Anthropic provider against the fake: the conformance suite here, then
//! - `payload`: the request body and its cache breakpoints, without a server;
//! - `wire`: headers, usage, error kinds and config against the fake;
//! - `decoding`: stream corner cases, without a server.

mod decoding;
mod payload;
mod wire;

use std::sync::Arc;
use std::time::Duration;

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, ContentBlock, ImageSource,
    LlmProvider, ToolSpec, Usage,
};
use nexus_testkit::FakeAnthropic;
use nexus_testkit::anthropic::Reply;
use serde_json::json;

use super::AnthropicProvider;
use super::config::AnthropicConfig;
use crate::testing::{Harness, ProviderOptions, Scenario, WireImage};

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

// ---- fixtures shared by the test modules ----

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
        ]
        .into(),
        tools: vec![tool("get_weather"), tool("get_time")],
        max_output_tokens: Some(300),
        temperature: Some(0.5),
        affinity: None,
    }
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
