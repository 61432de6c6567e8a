//! Scripted answers: [`Reply`] says what the fake sends for one message request.

use std::time::Duration;

use serde_json::Value;

/// What a reply carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// The default behaviour (echo or `reply_words` words).
    Default,
    /// This text, one `text_delta` per word.
    Text(String),
    /// Tool calls `(name, input)`: one `tool_use` block each, input streamed in fragments.
    ToolUse(Vec<(String, Value)>),
    /// An HTTP error with the real error body.
    Error {
        status: u16,
        kind: String,
        message: Option<String>,
    },
    /// A stream whose second event's data is not valid JSON.
    Malformed,
    /// A stream that starts well, then sends an `error` event of this type and ends.
    InStreamError { kind: String },
}

/// Token counts a reply reports instead of the fake's own accounting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageSpec {
    pub(crate) input: u64,
    pub(crate) output: u64,
    pub(crate) cache_read: u64,
    pub(crate) cache_creation: u64,
}

/// One scripted answer to a message request. Build with a constructor, refine with the
/// modifiers, queue with [`FakeAnthropic::push`](super::FakeAnthropic::push).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub(crate) body: Body,
    pub(crate) first_byte_delay: Option<Duration>,
    pub(crate) token_delay: Option<Duration>,
    pub(crate) usage: Option<UsageSpec>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) retry_after_ms: Option<Duration>,
    pub(crate) should_retry: Option<bool>,
    pub(crate) cut_after: Option<usize>,
    pub(crate) noisy: bool,
    pub(crate) thinking: Option<String>,
    pub(crate) preamble: Option<String>,
    pub(crate) stop_reason: Option<String>,
}

impl Reply {
    fn new(body: Body) -> Reply {
        Reply {
            body,
            first_byte_delay: None,
            token_delay: None,
            usage: None,
            retry_after: None,
            retry_after_ms: None,
            should_retry: None,
            cut_after: None,
            noisy: false,
            thinking: None,
            preamble: None,
            stop_reason: None,
        }
    }

    /// The fake's default behaviour, to combine with modifiers (e.g. a delay).
    pub fn default_reply() -> Reply {
        Reply::new(Body::Default)
    }

    /// Answers `text`, one `text_delta` per word (spaces kept, so deltas concatenate to
    /// `text`), with `stop_reason: end_turn`.
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::new(Body::Text(text.into()))
    }

    /// Answers with tool calls `(name, input)`: one `tool_use` block per call (with a
    /// `toolu_…` id), its input JSON streamed as several `input_json_delta` fragments, and
    /// `stop_reason: tool_use`.
    pub fn tool_use<S: Into<String>>(calls: Vec<(S, Value)>) -> Reply {
        Reply::new(Body::ToolUse(
            calls
                .into_iter()
                .map(|(name, input)| (name.into(), input))
                .collect(),
        ))
    }

    /// Answers HTTP `status` with the real error body for `kind` (e.g. `429`
    /// `rate_limit_error`, `529` `overloaded_error`, `500` `api_error`, `402` `billing_error`,
    /// `413` `request_too_large`, `400` `invalid_request_error`).
    pub fn error(status: u16, kind: impl Into<String>) -> Reply {
        Reply::new(Body::Error {
            status,
            kind: kind.into(),
            message: None,
        })
    }

    /// `529 overloaded_error`.
    pub fn overloaded() -> Reply {
        Reply::error(529, "overloaded_error")
    }

    /// A text stream whose connection drops after `n_events` events (pings do not count),
    /// without `message_stop`.
    pub fn cut_after(n_events: usize) -> Reply {
        Reply::text("The quick brown fox jumps over the lazy dog and keeps running")
            .drop_after(n_events)
    }

    /// A stream whose second event's data is invalid JSON.
    pub fn malformed() -> Reply {
        Reply::new(Body::Malformed)
    }

    /// A stream that sends `message_start` and some text, then an `error` event of type
    /// `kind` (e.g. `overloaded_error`, `api_error`), then ends.
    pub fn in_stream_error(kind: impl Into<String>) -> Reply {
        Reply::new(Body::InStreamError { kind: kind.into() })
    }

    /// Drops the connection after `n_events` events of this reply (pings do not count).
    #[must_use]
    pub fn drop_after(mut self, n_events: usize) -> Reply {
        self.cut_after = Some(n_events);
        self
    }

    /// Replaces the error message of an [`error`](Reply::error) reply.
    #[must_use]
    pub fn message(mut self, text: impl Into<String>) -> Reply {
        if let Body::Error { message, .. } = &mut self.body {
            *message = Some(text.into());
        }
        self
    }

    /// Sets `retry-after` on the response, in whole seconds (rounded up).
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Reply {
        self.retry_after = Some(delay);
        self
    }

    /// Sets `retry-after-ms` on the response.
    #[must_use]
    pub fn retry_after_ms(mut self, delay: Duration) -> Reply {
        self.retry_after_ms = Some(delay);
        self
    }

    /// Sets `x-should-retry: true|false` on the response.
    #[must_use]
    pub fn should_retry(mut self, verdict: bool) -> Reply {
        self.should_retry = Some(verdict);
        self
    }

    /// Waits `delay` before sending the response headers.
    #[must_use]
    pub fn first_byte_delay(mut self, delay: Duration) -> Reply {
        self.first_byte_delay = Some(delay);
        self
    }

    /// Waits `delay` between stream events.
    #[must_use]
    pub fn token_delay(mut self, delay: Duration) -> Reply {
        self.token_delay = Some(delay);
        self
    }

    /// Reports this usage instead of the fake's own accounting (which is then skipped for
    /// this request): `input` uncached input tokens, `output`, `cache_read` and
    /// `cache_creation` input tokens.
    #[must_use]
    pub fn usage(mut self, input: u64, output: u64, cache_read: u64, cache_creation: u64) -> Reply {
        self.usage = Some(UsageSpec {
            input,
            output,
            cache_read,
            cache_creation,
        });
        self
    }

    /// Adds what a tolerant client must skip: SSE comments and `id:` lines, extra pings,
    /// unknown fields, an unknown event type, and a `thinking` block with `thinking_delta` and
    /// `signature_delta` before the answer.
    #[must_use]
    pub fn noisy(mut self) -> Reply {
        self.noisy = true;
        if self.thinking.is_none() {
            self.thinking = Some("Let me think about this.".to_owned());
        }
        self
    }

    /// Starts the answer with a `thinking` block of this text (and a signature).
    #[must_use]
    pub fn thinking(mut self, text: impl Into<String>) -> Reply {
        self.thinking = Some(text.into());
        self
    }

    /// Starts a [`tool_use`](Reply::tool_use) answer with a text block (e.g. "Let me check.").
    #[must_use]
    pub fn preamble(mut self, text: impl Into<String>) -> Reply {
        self.preamble = Some(text.into());
        self
    }

    /// Overrides the `stop_reason` (e.g. `max_tokens`, `refusal`, `stop_sequence`,
    /// `model_context_window_exceeded`).
    #[must_use]
    pub fn stop_reason(mut self, reason: impl Into<String>) -> Reply {
        self.stop_reason = Some(reason.into());
        self
    }
}
