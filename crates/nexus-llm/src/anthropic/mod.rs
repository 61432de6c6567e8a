//! The Anthropic provider: the Messages API with streaming and prompt caching
//! (PROTOCOLS.md §4).
//!
//! - `config`: key, base URL, timeouts, default output limit, reading `ANTHROPIC_*` variables;
//! - `client`: the wire protocol (HTTP, headers, deadlines, error answers);
//! - `adapter`: the [`LlmProvider`](nexus_core::llm::LlmProvider) implementation;
//! - `payload`: the neutral request mapped to the vendor body, cache breakpoints included;
//! - `decode`: the vendor event stream mapped to neutral chunks;
//! - `tests`: the provider conformance suite against the fake, plus wire details.
//!
//! Retry, failover, error classification and the body pump are shared mechanisms, not in this
//! folder.

mod adapter;
mod client;
mod config;
mod decode;
mod payload;

#[cfg(test)]
mod tests;

pub use adapter::{AnthropicProvider, PROVIDER_NAME};
pub use config::{
    API_KEY_ENV, API_VERSION, AnthropicConfig, BASE_URL_ENV, DEFAULT_BASE_URL, DEFAULT_MAX_TOKENS,
};
