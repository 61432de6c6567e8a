//! Configuration of the fake's default behaviour (when no scripted [`Reply`](super::Reply) is
//! queued).

use std::time::Duration;

/// The key [`FakeGeminiConfig::default`] accepts.
pub const DEFAULT_API_KEY: &str = "AIzaSyFakeNexusKey0123456789abcdefghij";

/// How the fake answers by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeGeminiConfig {
    /// Words in the default reply. `0` (the default) echoes `You said: <last user text>`;
    /// more gives a deterministic reply of that many words. Each word is one stream chunk.
    pub reply_words: usize,
    /// Pause between stream chunks. Default: none (the whole body is written at once).
    pub token_delay: Duration,
    /// Pause before the response headers. Default: none.
    pub first_byte_delay: Duration,
    /// The key accepted in `x-goog-api-key` (or `?key=`). Default: [`DEFAULT_API_KEY`].
    pub api_key: String,
    /// Whether every answer carries thought signatures, as Gemini 3 models send them (on the
    /// first function call of a step, else on the last part). Default: false; a
    /// [`Reply::thought_signature`](super::Reply::thought_signature) turns them on for one
    /// answer.
    pub thought_signatures: bool,
    /// How many received requests [`requests`](super::FakeGemini::requests) keeps (the newest).
    /// Default: 1000; `0` records none (only the count).
    pub max_recorded: usize,
}

impl Default for FakeGeminiConfig {
    fn default() -> Self {
        FakeGeminiConfig {
            reply_words: 0,
            token_delay: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            api_key: DEFAULT_API_KEY.to_owned(),
            thought_signatures: false,
            max_recorded: 1000,
        }
    }
}
