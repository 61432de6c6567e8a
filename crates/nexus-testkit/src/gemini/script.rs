//! Scripted answers: [`Reply`] says what the fake sends for one `generateContent` /
//! `streamGenerateContent` request.

use std::time::Duration;

use serde_json::Value;

use super::errors::{PER_DAY_QUOTA, PER_MINUTE_QUOTA};

/// What a reply carries.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Body {
    /// The default behaviour (echo or `reply_words` words).
    Default,
    /// This text, one chunk per word.
    Text(String),
    /// Function calls `(name, args)`, whole, in one chunk (as Gemini sends them).
    FunctionCalls(Vec<(String, Value)>),
    /// An HTTP error with the real error body.
    Error {
        code: u16,
        status: String,
        message: Option<String>,
    },
    /// A stream whose second chunk is not valid JSON.
    Malformed,
    /// A stream of `words` text chunks, then an error object as plain JSON lines (no `data:`).
    StreamError {
        words: usize,
        code: u16,
        status: String,
    },
    /// A prompt refused by the safety filters: `promptFeedback.blockReason`, no candidates.
    BlockedPrompt(String),
}

/// Token counts a reply reports in `usageMetadata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UsageSpec {
    pub(crate) prompt: u64,
    pub(crate) candidates: u64,
    pub(crate) cached: u64,
    pub(crate) thoughts: u64,
}

/// One scripted answer. Build with a constructor, refine with the modifiers, queue with
/// [`FakeGemini::push`](super::FakeGemini::push).
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub(crate) body: Body,
    pub(crate) first_byte_delay: Option<Duration>,
    pub(crate) token_delay: Option<Duration>,
    pub(crate) usage: Option<UsageSpec>,
    pub(crate) retry_delay: Option<Duration>,
    pub(crate) quota_id: Option<String>,
    pub(crate) reason: Option<String>,
    pub(crate) cut_after: Option<usize>,
    pub(crate) noisy: bool,
    pub(crate) finish_reason: Option<String>,
    pub(crate) thought_signature: bool,
    pub(crate) lf: bool,
}

impl Reply {
    fn new(body: Body) -> Reply {
        Reply {
            body,
            first_byte_delay: None,
            token_delay: None,
            usage: None,
            retry_delay: None,
            quota_id: None,
            reason: None,
            cut_after: None,
            noisy: false,
            finish_reason: None,
            thought_signature: false,
            lf: false,
        }
    }

    /// The fake's default behaviour, to combine with modifiers (e.g. a delay).
    pub fn default_reply() -> Reply {
        Reply::new(Body::Default)
    }

    /// Answers `text`, one chunk per word (spaces kept, so deltas concatenate to `text`).
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::new(Body::Text(text.into()))
    }

    /// Answers with function calls `(name, args)`, all whole in one chunk that also carries
    /// `finishReason: "STOP"` (Gemini has no separate finish reason for tool calls).
    pub fn function_calls<S: Into<String>>(calls: Vec<(S, Value)>) -> Reply {
        Reply::new(Body::FunctionCalls(
            calls
                .into_iter()
                .map(|(name, args)| (name.into(), args))
                .collect(),
        ))
    }

    /// Answers HTTP `code` with the `google.rpc.Status` body of `status` (e.g. `400`
    /// `INVALID_ARGUMENT`, `403` `PERMISSION_DENIED`, `404` `NOT_FOUND`, `500` `INTERNAL`,
    /// `503` `UNAVAILABLE`, `504` `DEADLINE_EXCEEDED`).
    pub fn error(code: u16, status: impl Into<String>) -> Reply {
        Reply::new(Body::Error {
            code,
            status: status.into(),
            message: None,
        })
    }

    /// A per-minute rate limit: 429 `RESOURCE_EXHAUSTED` with a `QuotaFailure` and a
    /// `RetryInfo.retryDelay` of `delay`.
    pub fn rate_limited(delay: Duration) -> Reply {
        Reply::error(429, "RESOURCE_EXHAUSTED")
            .quota_id(PER_MINUTE_QUOTA)
            .retry_delay(delay)
    }

    /// A spent daily quota: 429 `RESOURCE_EXHAUSTED` whose `QuotaFailure` names a `…PerDay…`
    /// quota (a `RetryInfo` comes along, as the real service sends it).
    pub fn daily_quota_exhausted() -> Reply {
        Reply::error(429, "RESOURCE_EXHAUSTED")
            .quota_id(PER_DAY_QUOTA)
            .retry_delay(Duration::from_secs(41))
    }

    /// A conversation longer than the context window: Gemini says so only in the message of
    /// a 400 `INVALID_ARGUMENT`.
    pub fn context_too_long() -> Reply {
        Reply::error(400, "INVALID_ARGUMENT").message(
            "The input token count (1210431) exceeds the maximum number of tokens allowed \
             (1048576).",
        )
    }

    /// A text stream whose connection drops after `n_chunks` chunks, before the finish.
    pub fn cut_after(n_chunks: usize) -> Reply {
        Reply::text("The quick brown fox jumps over the lazy dog and keeps running")
            .drop_after(n_chunks)
    }

    /// A stream whose second chunk is invalid JSON.
    pub fn malformed() -> Reply {
        Reply::new(Body::Malformed)
    }

    /// A stream that sends some text, then a 500 `INTERNAL` error object as plain JSON lines
    /// without `data:`, then ends.
    pub fn in_stream_error() -> Reply {
        Reply::stream_error(2, 500, "INTERNAL")
    }

    /// A stream of `words` text chunks (0 for none), then the error object of `code` /
    /// `status` as plain JSON lines.
    pub fn stream_error(words: usize, code: u16, status: impl Into<String>) -> Reply {
        Reply::new(Body::StreamError {
            words,
            code,
            status: status.into(),
        })
    }

    /// A blocked prompt: one chunk with `promptFeedback.blockReason = reason` (e.g. `SAFETY`)
    /// and usage, no candidates.
    pub fn blocked_prompt(reason: impl Into<String>) -> Reply {
        Reply::new(Body::BlockedPrompt(reason.into()))
    }

    /// Drops the connection after `n_chunks` chunks of this reply.
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

    /// Adds a `RetryInfo` detail with this `retryDelay` to an error reply.
    #[must_use]
    pub fn retry_delay(mut self, delay: Duration) -> Reply {
        self.retry_delay = Some(delay);
        self
    }

    /// Adds a `QuotaFailure` detail naming `quota_id` to an error reply.
    #[must_use]
    pub fn quota_id(mut self, quota_id: impl Into<String>) -> Reply {
        self.quota_id = Some(quota_id.into());
        self
    }

    /// Adds an `ErrorInfo` detail with `reason` (e.g. `API_KEY_INVALID`) to an error reply.
    #[must_use]
    pub fn reason(mut self, reason: impl Into<String>) -> Reply {
        self.reason = Some(reason.into());
        self
    }

    /// Waits `delay` before sending the response headers.
    #[must_use]
    pub fn first_byte_delay(mut self, delay: Duration) -> Reply {
        self.first_byte_delay = Some(delay);
        self
    }

    /// Waits `delay` between stream chunks.
    #[must_use]
    pub fn token_delay(mut self, delay: Duration) -> Reply {
        self.token_delay = Some(delay);
        self
    }

    /// Reports this usage: `promptTokenCount` (cached tokens included, as Gemini counts),
    /// `candidatesTokenCount` and `cachedContentTokenCount`.
    #[must_use]
    pub fn usage(mut self, prompt: u64, candidates: u64, cached: u64) -> Reply {
        let thoughts = self.usage.map_or(0, |u| u.thoughts);
        self.usage = Some(UsageSpec {
            prompt,
            candidates,
            cached,
            thoughts,
        });
        self
    }

    /// Reports `thoughtsTokenCount` (tokens the model spent thinking).
    #[must_use]
    pub fn thoughts_tokens(mut self, thoughts: u64) -> Reply {
        let mut usage = self.usage.unwrap_or(UsageSpec {
            prompt: 0,
            candidates: 0,
            cached: 0,
            thoughts: 0,
        });
        usage.thoughts = thoughts;
        self.usage = Some(usage);
        self
    }

    /// Adds what a tolerant client must skip: SSE comments, unknown fields, safety ratings,
    /// citation metadata, a chunk without candidates.
    #[must_use]
    pub fn noisy(mut self) -> Reply {
        self.noisy = true;
        self
    }

    /// Overrides the final `finishReason` (e.g. `MAX_TOKENS`, `SAFETY`, `RECITATION`).
    #[must_use]
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Reply {
        self.finish_reason = Some(reason.into());
        self
    }

    /// Attaches a thought signature, like Gemini 3: to the first function call, or to the
    /// last part of a text answer. The fake then refuses a later request whose history drops
    /// or moves a function call's signature.
    #[must_use]
    pub fn thought_signature(mut self) -> Reply {
        self.thought_signature = true;
        self
    }

    /// Separates SSE events with `\n\n` instead of the `\r\n\r\n` the service uses.
    #[must_use]
    pub fn lf_separators(mut self) -> Reply {
        self.lf = true;
        self
    }
}
