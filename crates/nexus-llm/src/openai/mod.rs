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
mod payload;

#[cfg(test)]
mod tests;

pub use adapter::{OpenAiProvider, PROVIDER_NAME};
pub use config::{
    API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, ORGANIZATION_ENV, OpenAiConfig, PROJECT_ENV,
};
