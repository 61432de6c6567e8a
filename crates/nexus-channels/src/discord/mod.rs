//! Discord: the bot receives over the Gateway WebSocket (v10, JSON) and acts over the REST API
//! (v10), as in PROTOCOLS.md §2.
//!
//! - `config`: [`DiscordConfig`] (URLs, token, intents) and [`GatewayTiming`].
//! - `client`: REST calls through `ratelimit` (per-bucket `X-RateLimit-*` state, 429s, the
//!   global limit) and the one classification of HTTP failures.
//! - `protocol` and `gateway`: frames, close codes, the send budget; the session loop
//!   (heartbeats, zombie detection, RESUME, op 7/9, reconnects).
//! - `payload`: Discord JSON and its mapping to Nexus messages; `inbound`: downloads and the
//!   hand-over to the router; `adapter`: [`DiscordAdapter`].
//!
//! This module must never know about sessions, storage or other platforms.

mod adapter;
mod client;
mod config;
mod gateway;
mod inbound;
mod payload;
mod protocol;
mod ratelimit;

#[cfg(test)]
mod tests;

pub use adapter::DiscordAdapter;
pub use config::{DEFAULT_API_BASE, DEFAULT_INTENTS, DiscordConfig, GatewayTiming};
