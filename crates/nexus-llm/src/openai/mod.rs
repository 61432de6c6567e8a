//! The OpenAI provider: Chat Completions with streaming (PROTOCOLS.md §5).
//!
//! - `config`: key, base URL, timeouts, reading `OPENAI_*` variables;
//! - `client`: the wire protocol (HTTP, deadlines, error answers, the body pump);
//! - `adapter`: the [`LlmProvider`](nexus_core::llm::LlmProvider) implementation;
//! - `payload`: the neutral request mapped to the vendor body;
//! - `decode`: the vendor stream mapped to neutral chunks;
//! - `tests`: the provider conformance suite against the fake, plus wire details.
//!
//! Retry, failover and error classification are shared mechanisms, not in this folder.

mod adapter;
mod client;
mod config;
mod decode;
mod embed;
mod payload;

#[cfg(test)]
mod flavor_tests;
#[cfg(test)]
mod tests;

pub use adapter::{OpenAiProvider, PROVIDER_NAME};
pub use config::{
    API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, Flavor, OPENROUTER_API_KEY_ENV,
    OPENROUTER_APP_NAME_ENV, OPENROUTER_APP_URL_ENV, OPENROUTER_BASE_URL, OPENROUTER_BASE_URL_ENV,
    ORGANIZATION_ENV, OpenAiConfig, PROJECT_ENV,
};
