//! Prompt-cache accounting, like the real service's (PROTOCOLS.md §4, Anthropic's prompt
//! caching docs).
//!
//! The prompt is a sequence of blocks in rendering order (tools → system → messages); a
//! `cache_control` breakpoint ends a prefix. For each request:
//!
//! - **read**: from each breakpoint, the block boundaries at it and up to
//!   [`cache_lookback_blocks`](super::FakeAnthropicConfig::cache_lookback_blocks) before it are
//!   looked up; the longest prefix found live (written by an earlier request with the same API
//!   key and model, within the TTL) is read, and its TTL is refreshed;
//! - **write**: every breakpoint whose prefix is at least
//!   [`min_cacheable_tokens`](super::FakeAnthropicConfig::min_cacheable_tokens) long is written
//!   (or refreshed);
//! - **usage**: `cache_read_input_tokens` is the prefix read, `cache_creation_input_tokens`
//!   the rest up to the last breakpoint when that prefix is cacheable (else 0), and
//!   `input_tokens` everything after.
//!
//! A block's tokens are ceil(bytes / 4) of its canonical JSON (keys sorted, `cache_control`
//! removed), so the markers moving between requests do not change the cached content. Prefixes
//! are keyed by a chained 64-bit hash of the blocks, seeded with the key and the model.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::config::FakeAnthropicConfig;
use super::validate::PromptBlock;
use crate::journal::lock;

/// What one request's prompt cost, in the wire's terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Accounting {
    pub(crate) input: u64,
    pub(crate) cache_creation: u64,
    pub(crate) cache_read: u64,
}

/// The cached prefixes of all keys.
#[derive(Debug)]
pub(crate) struct PromptCache {
    entries: Mutex<HashMap<u64, Instant>>,
    min_tokens: u64,
    ttl: Duration,
    lookback: usize,
    max_entries: usize,
}

impl PromptCache {
    pub(crate) fn new(config: &FakeAnthropicConfig) -> PromptCache {
        PromptCache {
            entries: Mutex::new(HashMap::new()),
            min_tokens: config.min_cacheable_tokens,
            ttl: config.cache_ttl,
            lookback: config.cache_lookback_blocks,
            max_entries: config.max_cache_entries,
        }
    }

    /// How many entries are live now.
    pub(crate) fn live_entries(&self) -> usize {
        let now = Instant::now();
        lock(&self.entries).values().filter(|e| **e > now).count()
    }

    /// Accounts `prompt` for `api_key` and `model`, reading and writing the cache.
    pub(crate) fn account(&self, api_key: &str, model: &str, prompt: &[PromptBlock]) -> Accounting {
        let total: u64 = prompt.iter().map(|b| b.tokens).sum();
        let mut hashes = Vec::with_capacity(prompt.len());
        let mut prefix_tokens = Vec::with_capacity(prompt.len());
        let mut hash = {
            let mut h = DefaultHasher::new();
            (api_key, model).hash(&mut h);
            h.finish()
        };
        let mut tokens = 0u64;
        for block in prompt {
            let mut h = DefaultHasher::new();
            hash.hash(&mut h);
            block.key.hash(&mut h);
            hash = h.finish();
            tokens += block.tokens;
            hashes.push(hash);
            prefix_tokens.push(tokens);
        }
        let breakpoints: Vec<usize> = prompt
            .iter()
            .enumerate()
            .filter(|(_, b)| b.breakpoint)
            .map(|(i, _)| i)
            .collect();
        let Some(&last) = breakpoints.last() else {
            return Accounting {
                input: total,
                ..Accounting::default()
            };
        };
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        // Read: the longest live prefix within the lookback of any breakpoint.
        let mut hit: Option<usize> = None;
        for &at in &breakpoints {
            let from = at.saturating_sub(self.lookback);
            if let Some(found) = (from..=at)
                .rev()
                .find(|&p| entries.get(&hashes[p]).is_some_and(|e| *e > now))
            {
                hit = hit.max(Some(found));
            }
        }
        let cache_read = hit.map_or(0, |p| prefix_tokens[p]);
        // Write (or refresh) every cacheable breakpoint, and refresh the prefix read.
        let expires = now + self.ttl;
        if let Some(p) = hit {
            entries.insert(hashes[p], expires);
        }
        if entries.len() >= self.max_entries {
            entries.retain(|_, e| *e > now);
        }
        for &at in &breakpoints {
            if prefix_tokens[at] < self.min_tokens {
                continue;
            }
            if entries.len() >= self.max_entries && !entries.contains_key(&hashes[at]) {
                continue;
            }
            entries.insert(hashes[at], expires);
        }
        let cache_creation = if prefix_tokens[last] >= self.min_tokens {
            prefix_tokens[last].saturating_sub(cache_read)
        } else {
            0
        };
        Accounting {
            input: total.saturating_sub(cache_read + cache_creation),
            cache_creation,
            cache_read,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block(key: &str, tokens: u64, breakpoint: bool) -> PromptBlock {
        PromptBlock {
            key: key.to_owned(),
            tokens,
            breakpoint,
        }
    }

    fn cache(min: u64, lookback: usize) -> PromptCache {
        PromptCache::new(&FakeAnthropicConfig {
            min_cacheable_tokens: min,
            cache_lookback_blocks: lookback,
            ..FakeAnthropicConfig::default()
        })
    }

    #[test]
    fn first_request_writes_then_the_grown_conversation_reads_it() {
        let c = cache(100, 20);
        let first = vec![block("sys", 1000, true), block("u1", 50, true)];
        assert_eq!(
            c.account("k", "m", &first),
            Accounting {
                input: 0,
                cache_creation: 1050,
                cache_read: 0
            }
        );
        let second = vec![
            block("sys", 1000, true),
            block("u1", 50, false),
            block("a1", 30, false),
            block("u2", 40, true),
        ];
        assert_eq!(
            c.account("k", "m", &second),
            Accounting {
                input: 0,
                cache_creation: 70,
                cache_read: 1050
            }
        );
    }

    #[test]
    fn content_after_the_last_breakpoint_is_plain_input() {
        let c = cache(100, 20);
        let prompt = vec![block("sys", 500, true), block("u1", 50, false)];
        assert_eq!(
            c.account("k", "m", &prompt),
            Accounting {
                input: 50,
                cache_creation: 500,
                cache_read: 0
            }
        );
        assert_eq!(c.account("k", "m", &prompt).cache_read, 500);
    }

    #[test]
    fn prefixes_shorter_than_the_minimum_are_not_cached() {
        let c = cache(1024, 20);
        let prompt = vec![block("sys", 500, true)];
        let want = Accounting {
            input: 500,
            cache_creation: 0,
            cache_read: 0,
        };
        assert_eq!(c.account("k", "m", &prompt), want);
        assert_eq!(c.account("k", "m", &prompt), want);
    }

    #[test]
    fn keys_and_models_do_not_share_entries() {
        let c = cache(10, 20);
        let prompt = vec![block("sys", 100, true)];
        c.account("k1", "m", &prompt);
        assert_eq!(c.account("k2", "m", &prompt).cache_read, 0);
        assert_eq!(c.account("k1", "other", &prompt).cache_read, 0);
        assert_eq!(c.account("k1", "m", &prompt).cache_read, 100);
    }

    #[test]
    fn a_changed_block_invalidates_everything_after_it() {
        let c = cache(10, 20);
        c.account(
            "k",
            "m",
            &[block("tools", 100, true), block("sys", 100, true)],
        );
        let changed = [block("tools", 100, true), block("sys-v2", 100, true)];
        assert_eq!(
            c.account("k", "m", &changed),
            Accounting {
                input: 0,
                cache_creation: 100,
                cache_read: 100
            }
        );
    }

    #[test]
    fn a_prefix_beyond_the_lookback_is_not_found() {
        let c = cache(10, 2);
        c.account("k", "m", &[block("a", 100, true)]);
        let mut long = vec![block("a", 100, false)];
        long.extend((0..3).map(|i| block(&format!("x{i}"), 1, false)));
        long.push(block("tail", 1, true));
        assert_eq!(c.account("k", "m", &long).cache_read, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn entries_expire_after_the_ttl_unless_read() {
        let c = PromptCache::new(&FakeAnthropicConfig {
            min_cacheable_tokens: 10,
            cache_ttl: Duration::from_secs(300),
            ..FakeAnthropicConfig::default()
        });
        let prompt = [block("sys", 100, true)];
        c.account("k", "m", &prompt);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(c.account("k", "m", &prompt).cache_read, 100);
        // The read refreshed it: 299 s later it is still there.
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(c.account("k", "m", &prompt).cache_read, 100);
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(c.account("k", "m", &prompt).cache_read, 0);
        assert_eq!(c.live_entries(), 1);
    }
}
