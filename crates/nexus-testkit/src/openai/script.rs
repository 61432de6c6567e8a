//! Scripted answers: [`Reply`] says what the fake sends for one chat request.

use std::time::Duration;

use serde_json::Value;

/// What a reply carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// The default behaviour (echo or `reply_words` words).
    Default,
    /// This text, one delta per word.
    Text(String),
    /// Tool calls `(name, arguments)`, streamed in parallel with indexes 0, 1, …
    ToolCalls(Vec<(String, Value)>),
    /// An HTTP error with the real error body.
    Error {
        status: u16,
        code: String,
        message: Option<String>,
    },
    /// A stream whose second data frame is not valid JSON.
    Malformed,
    /// A stream that starts well, then carries an `error` object.
    InStreamError,
}

/// Token counts a reply reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageSpec {
    pub(crate) prompt: u64,
    pub(crate) completion: u64,
    pub(crate) cached: u64,
}

/// One scripted answer to a chat request. Build with a constructor, refine with the
/// modifiers, queue with [`FakeOpenAi::push`](super::FakeOpenAi::push).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub(crate) body: Body,
    pub(crate) first_byte_delay: Option<Duration>,
    pub(crate) token_delay: Option<Duration>,
    pub(crate) usage: Option<UsageSpec>,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) cut_after: Option<usize>,
    pub(crate) noisy: bool,
    pub(crate) finish_reason: Option<String>,
    /// Answer as OpenRouter does (see [`Reply::openrouter`]).
    pub(crate) openrouter: bool,
    /// `usage.cost` in dollars (OpenRouter).
    pub(crate) cost: Option<f64>,
}

impl Reply {
    fn new(body: Body) -> Reply {
        Reply {
            body,
            first_byte_delay: None,
            token_delay: None,
            usage: None,
            retry_after: None,
            cut_after: None,
            noisy: false,
            finish_reason: None,
            openrouter: false,
            cost: None,
        }
    }

    /// The fake's default behaviour, to combine with modifiers (e.g. a delay).
    pub fn default_reply() -> Reply {
        Reply::new(Body::Default)
    }

    /// Answers `text`, one delta per word (spaces kept, so deltas concatenate to `text`).
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::new(Body::Text(text.into()))
    }

    /// Answers with tool calls `(name, arguments)`: each call's first fragment carries its
    /// `index`, `id` and `name`; its `arguments` JSON string follows in several fragments; the
    /// last chunk has `finish_reason: "tool_calls"`.
    pub fn tool_calls<S: Into<String>>(calls: Vec<(S, Value)>) -> Reply {
        Reply::new(Body::ToolCalls(
            calls
                .into_iter()
                .map(|(name, args)| (name.into(), args))
                .collect(),
        ))
    }

    /// Answers HTTP `status` with the real error body for `code` (e.g. `429`
    /// `rate_limit_exceeded`, `429` `insufficient_quota`, `400` `context_length_exceeded`,
    /// `404` `model_not_found`, `500` `server_error`, `503` `server_error`).
    pub fn error(status: u16, code: impl Into<String>) -> Reply {
        Reply::new(Body::Error {
            status,
            code: code.into(),
            message: None,
        })
    }

    /// A text stream whose connection drops after `n_chunks` data frames (the role frame
    /// counts), without `[DONE]`.
    pub fn cut_after(n_chunks: usize) -> Reply {
        Reply::text("The quick brown fox jumps over the lazy dog and keeps running")
            .drop_after(n_chunks)
    }

    /// A stream whose second data frame is invalid JSON.
    pub fn malformed() -> Reply {
        Reply::new(Body::Malformed)
    }

    /// A stream that sends a role frame and some text, then a `data` object with an `error`
    /// key, then ends (no `[DONE]`).
    pub fn in_stream_error() -> Reply {
        Reply::new(Body::InStreamError)
    }

    /// Drops the connection after `n_chunks` data frames of this reply.
    #[must_use]
    pub fn drop_after(mut self, n_chunks: usize) -> Reply {
        self.cut_after = Some(n_chunks);
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

    /// Sets `retry-after` (whole seconds, rounded up) and `retry-after-ms` on the response.
    #[must_use]
    pub fn retry_after(mut self, delay: Duration) -> Reply {
        self.retry_after = Some(delay);
        self
    }

    /// Waits `delay` before sending the response headers.
    #[must_use]
    pub fn first_byte_delay(mut self, delay: Duration) -> Reply {
        self.first_byte_delay = Some(delay);
        self
    }

    /// Waits `delay` between stream frames.
    #[must_use]
    pub fn token_delay(mut self, delay: Duration) -> Reply {
        self.token_delay = Some(delay);
        self
    }

    /// Reports this usage (the usage chunk when `stream_options.include_usage`, or `usage`
    /// of a non-stream answer). `cached` goes to `prompt_tokens_details.cached_tokens`.
    #[must_use]
    pub fn usage(mut self, prompt: u64, completion: u64, cached: u64) -> Reply {
        self.usage = Some(UsageSpec {
            prompt,
            completion,
            cached,
        });
        self
    }

    /// Adds what a tolerant client must skip: SSE comment lines, `id:` lines, unknown fields
    /// in chunks and deltas, and a chunk of an unknown shape.
    #[must_use]
    pub fn noisy(mut self) -> Reply {
        self.noisy = true;
        self
    }

    /// Answers the way OpenRouter differs from OpenAI (PROTOCOLS.md §7): `: OPENROUTER
    /// PROCESSING` comment lines before and between chunks, `usage.cost` (see
    /// [`Reply::cost`]), error bodies with a numeric `code` (the HTTP status), and an in-stream
    /// error as a chunk with a top-level `error` and a choice with `finish_reason: "error"`.
    #[must_use]
    pub fn openrouter(mut self) -> Reply {
        self.openrouter = true;
        self
    }

    /// Reports this cost in dollars as `usage.cost`, as OpenRouter does.
    #[must_use]
    pub fn cost(mut self, dollars: f64) -> Reply {
        self.cost = Some(dollars);
        self
    }

    /// Overrides the final `finish_reason` (e.g. `length`, `content_filter`).
    #[must_use]
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Reply {
        self.finish_reason = Some(reason.into());
        self
    }
}
