//! Configuration of the fake's default behaviour (when no scripted [`Reply`](super::Reply) is
//! queued) and of its prompt cache.

use std::time::Duration;

/// The key [`FakeAnthropicConfig::default`] accepts.
pub const DEFAULT_API_KEY: &str = "sk-ant-fake-nexus-0123456789abcdef";

/// How the fake answers by default and accounts prompt caching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeAnthropicConfig {
    /// Words in the default reply. `0` (the default) echoes `You said: <last user text>`;
    /// more gives a deterministic reply of that many words. Each word is one `text_delta`.
    pub reply_words: usize,
    /// Pause between stream events. Default: none (the whole body is written at once).
    pub token_delay: Duration,
    /// Pause before the response headers. Default: none.
    pub first_byte_delay: Duration,
    /// The `x-api-key` accepted. Default: [`DEFAULT_API_KEY`].
    pub api_key: String,
    /// How many received requests [`requests`](super::FakeAnthropic::requests) keeps (the
    /// newest). Default: 1000; `0` records none (only the count).
    pub max_recorded: usize,
    /// The shortest prefix, in tokens, that a `cache_control` breakpoint writes to the cache
    /// (shorter ones are silently not cached, like the real service). Default: 1024.
    pub min_cacheable_tokens: u64,
    /// How long a cache entry lives after its last write or read. Default: 5 minutes.
    pub cache_ttl: Duration,
    /// How many block boundaries before a breakpoint are checked for a cached prefix (the
    /// real service's lookback). Default: 20.
    pub cache_lookback_blocks: usize,
    /// Most cache entries kept, all keys together; when full, expired entries are dropped and,
    /// if still full, new prefixes are not cached. Default: 100 000.
    pub max_cache_entries: usize,
}

impl Default for FakeAnthropicConfig {
    fn default() -> Self {
        FakeAnthropicConfig {
            reply_words: 0,
            token_delay: Duration::ZERO,
            first_byte_delay: Duration::ZERO,
            api_key: DEFAULT_API_KEY.to_owned(),
            max_recorded: 1000,
            min_cacheable_tokens: 1024,
            cache_ttl: Duration::from_secs(300),
            cache_lookback_blocks: 20,
            max_cache_entries: 100_000,
        }
    }
}
