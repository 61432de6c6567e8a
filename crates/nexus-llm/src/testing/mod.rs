//! The provider conformance suite: one set of behaviours every [`LlmProvider`] must show
//! against a protocol-faithful fake of its service (enabled by the `test-support` feature).
//!
//! A provider's tests implement [`Harness`] — build the provider pointed at the fake, script
//! the fake with a neutral [`Scenario`], read back what reached the wire — and expand
//! [`provider_conformance_tests!`](crate::provider_conformance_tests) to get one named test
//! per case:
//!
//! ```ignore
//! nexus_llm::provider_conformance_tests!(MyHarness::start().await);
//! ```
//!
//! The cases live in `cases` and are re-exported here. They use short real delays (hundreds of milliseconds) where a real socket must stay
//! silent; everything else is immediate. This module must never know a vendor's wire format.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionChunk, CompletionRequest, LlmError, LlmProvider, Usage,
};

mod cases;

pub use cases::*;

/// What the fake must answer to the next model call, in neutral terms; each harness maps it
/// to its vendor's wire.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Scenario {
    /// Stream `text`, one delta per word.
    Text(String),
    /// Stream `text`, then report `usage` (with cached input tokens).
    TextWithUsage(String, Usage),
    /// Stream `text` and stop because the output token limit was reached.
    MaxTokens(String),
    /// Stream tool calls `(name, arguments)`, arguments split across several fragments.
    ToolCalls(Vec<(String, serde_json::Value)>),
    /// Answer the vendor's "rate limited" error with a `retry-after` of this delay.
    RateLimited(Duration),
    /// Answer the vendor's "quota / billing exhausted" error.
    QuotaExceeded,
    /// Answer the vendor's "context length exceeded" error.
    ContextLengthExceeded,
    /// Answer a generic invalid-request error.
    BadRequest,
    /// Answer HTTP 500.
    ServerError,
    /// Answer the vendor's "overloaded" status (503 for OpenAI, 529 for Anthropic).
    Overloaded,
    /// Start streaming text, then drop the connection after this many data frames.
    CutAfter(usize),
    /// Send a data frame that is not valid JSON.
    Malformed,
    /// Start well, then send the vendor's in-stream error event.
    InStreamError,
    /// Stream `text` with unknown fields, unknown events and comments mixed in.
    Noisy(String),
    /// Wait this long before the first byte of the answer.
    SlowFirstByte(Duration),
    /// Stream text with this pause between frames.
    Stall(Duration),
}

/// How a vendor reports, on the wire, a conversation longer than the model's context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextOverflow {
    /// With a structured code or type: the provider must answer
    /// [`LlmError::ContextLengthExceeded`].
    Typed,
    /// Only in the prose of a generic invalid-argument error (Gemini: 400 `INVALID_ARGUMENT`
    /// "The input token count (…) exceeds the maximum …"). Providers never read message
    /// text, so the provider must answer [`LlmError::BadRequest`]: as final, never retried.
    ProseOnly,
}

/// How the harness builds the provider under test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderOptions {
    /// Whether the key is the one the fake accepts.
    pub valid_key: bool,
    /// The provider's first-byte deadline.
    pub first_byte_timeout: Duration,
    /// The provider's idle deadline.
    pub idle_timeout: Duration,
}

impl Default for ProviderOptions {
    fn default() -> Self {
        ProviderOptions {
            valid_key: true,
            first_byte_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// An image as it reached the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireImage {
    /// MIME type, e.g. `image/png`.
    pub media_type: String,
    /// Base64 of the bytes.
    pub data: String,
}

/// A provider under test and the fake behind it.
pub trait Harness: Send + Sync {
    /// The provider, pointed at the fake.
    fn provider(&self, options: ProviderOptions) -> Arc<dyn LlmProvider>;
    /// A model name the fake serves.
    fn model(&self) -> String;
    /// Queues the answer to the next model call.
    fn script(&self, scenario: Scenario);
    /// The base64 images of the last request the fake received, in order.
    fn last_request_images(&self) -> Vec<WireImage>;
    /// How many model calls the fake received.
    fn request_count(&self) -> u64;
    /// How the vendor reports a context window overflow. The default,
    /// [`ContextOverflow::Typed`], is the strict expectation; only a vendor without a
    /// structured signal overrides it.
    fn context_overflow(&self) -> ContextOverflow {
        ContextOverflow::Typed
    }
}

/// What one call produced: its chunks, and the error that ended it, if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// Chunks received, in order.
    pub chunks: Vec<CompletionChunk>,
    /// The error, from `complete` or from the stream.
    pub error: Option<LlmError>,
}

impl Outcome {
    /// The concatenated text deltas.
    pub fn text(&self) -> String {
        self.chunks
            .iter()
            .filter_map(|c| match c {
                CompletionChunk::TextDelta { text } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// Runs one call to the end.
pub async fn run(provider: &dyn LlmProvider, request: CompletionRequest) -> Outcome {
    let mut outcome = Outcome {
        chunks: Vec::new(),
        error: None,
    };
    match provider.complete(request).await {
        Err(err) => outcome.error = Some(err),
        Ok(mut stream) => {
            while let Some(item) = stream.next().await {
                match item {
                    Ok(chunk) => outcome.chunks.push(chunk),
                    Err(err) => {
                        outcome.error = Some(err);
                        break;
                    }
                }
            }
        }
    }
    outcome
}

/// A one-message request to the harness's model.
pub fn request(h: &impl Harness, text: &str) -> CompletionRequest {
    CompletionRequest {
        model: h.model(),
        system: Some("You are terse.".to_owned()),
        messages: vec![ChatMessage::text(ChatRole::User, text)].into(),
        max_output_tokens: Some(256),
        ..CompletionRequest::default()
    }
}

/// Expands to one `#[tokio::test]` per conformance case, each building its harness with
/// `$harness` (an expression that may `.await`).
#[macro_export]
macro_rules! provider_conformance_tests {
    ($harness:expr) => {
        $crate::provider_conformance_tests!(@cases $harness;
            streams_text_as_deltas_then_done,
            streams_tool_call_with_fragmented_arguments,
            streams_parallel_tool_calls_in_order,
            sends_images_to_the_wire,
            tool_results_answer_tool_calls_on_the_wire,
            reports_usage_with_cached_tokens,
            reports_max_tokens_stop,
            rejected_key_is_auth_error,
            rate_limit_carries_retry_after,
            exhausted_quota_is_quota_exceeded,
            context_overflow_is_context_length_exceeded,
            server_error_is_server,
            overload_is_overloaded,
            cut_stream_is_interrupted,
            malformed_frame_is_malformed,
            in_stream_error_is_reported,
            unknown_fields_and_events_are_ignored,
            slow_first_byte_times_out,
            idle_stream_times_out,
            retrying_honours_retry_after_then_answers_once,
            retrying_retries_server_error_before_first_chunk,
            retrying_never_retries_bad_request,
            retrying_never_retries_after_first_chunk,
        );
    };
    (@cases $harness:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let harness = $harness;
                $crate::testing::$case(&harness).await;
            }
        )*
    };
}
