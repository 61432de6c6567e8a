//! The Google Gemini provider: the Generative Language API `v1beta`, streaming
//! (`models/{model}:streamGenerateContent?alt=sse`, PROTOCOLS.md §6).
//!
//! - `config`: key (`GEMINI_API_KEY`, else `GOOGLE_API_KEY`), base URL, timeouts;
//! - `client`: the wire protocol (HTTP, the `x-goog-api-key` header, deadlines, error answers,
//!   the body pump);
//! - `adapter`: the [`LlmProvider`](nexus_core::llm::LlmProvider) implementation;
//! - `payload`: the neutral request mapped to a `GenerateContentRequest`;
//! - `schema`: tool parameter schemas cleaned to the subset Gemini accepts;
//! - `callid`: tool call ids that carry thought signatures from one request to the next;
//! - `decode`: the vendor stream mapped to neutral chunks;
//! - `tests`: the provider conformance suite against the fake, plus wire details.
//!
//! Retry, failover and error classification are shared mechanisms, not in this folder (the
//! Google error shape is classified by `classify::google`).

mod adapter;
mod callid;
mod client;
mod config;
mod decode;
mod embed;
mod payload;
mod schema;

#[cfg(test)]
mod tests;

pub use adapter::{GeminiProvider, PROVIDER_NAME};
pub use config::{API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, FALLBACK_API_KEY_ENV, GeminiConfig};
