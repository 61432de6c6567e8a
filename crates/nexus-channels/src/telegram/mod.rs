//! The Telegram channel: a bot on the Bot API (PROTOCOLS.md §1).
//!
//! Updates arrive by `getUpdates` long polling or by webhook ([`TelegramMode`]); each is
//! mapped to an `InboundMessage` (its files downloaded into the media store) and acknowledged
//! to Telegram only once the router committed it. Replies go out as `parse_mode: HTML`, and
//! as plain text when Telegram refuses the entities.
//!
//! Modules: `config` ([`TelegramConfig`]), `client` (the wire protocol and the one error
//! classification), `payload` (Telegram's JSON), `inbound` (update → message), `files`
//! (downloads and uploads), `render` (the plain-text fallback), `polling`, `webhook`,
//! `adapter` ([`TelegramAdapter`]). This module must never contain formatting of model
//! output (that is `format`) or routing policy (that is the router's).

mod adapter;
mod client;
mod config;
mod files;
mod inbound;
mod payload;
mod polling;
mod render;
mod webhook;

#[cfg(test)]
mod tests;

pub use adapter::TelegramAdapter;
pub use config::{
    DEFAULT_API_BASE, DEFAULT_POLL_TIMEOUT, TelegramConfig, TelegramMode, default_api_base,
};
