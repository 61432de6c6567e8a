//! Configuration of the fake's default behaviour (when no scripted [`Reply`](super::Reply) is
//! queued).

use std::time::Duration;

/// The key [`FakeOpenAiConfig::default`] accepts.
pub const DEFAULT_API_KEY: &str = "sk-fake-nexus-0123456789abcdef";

/// How the fake answers by default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeOpenAiConfig {
    /// Words in the default reply. `0` (the default) echoes `You said: <last user text>`;
    /// more gives a deterministic reply of that many words. Each word is one stream delta.
    pub reply_words: usize,
    /// Pause between stream frames. Default: none (the whole body is written at once).
    pub token_delay: Duration,
    /// Pause before the response headers. Default: none.
    pub first_byte_delay: Duration,
    /// The bearer token accepted. Default: [`DEFAULT_API_KEY`].
    pub api_key: String,
    /// How many received requests [`requests`](super::FakeOpenAi::requests) keeps (the newest).
    /// Default: 1000; `0` records none (only the count).
    pub max_recorded: usize,
}

impl Default for FakeOpenAiConfig {
    fn default() -> Self {
        FakeOpenAiConfig {
            reply_words: 0,
            token_delay: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            api_key: DEFAULT_API_KEY.to_owned(),
            max_recorded: 1000,
        }
    }
}
