//! Slack: the bot in a workspace, over Socket Mode or the Events API (PROTOCOLS.md §3).
//!
//! [`SlackAdapter`] receives `message` and `app_mention` events, drops its own posts and every
//! non-message event, maps the rest (a top-level channel message opens a thread that scopes
//! its session; `{channel}:{ts}` is the dedupe key), downloads shared files into media, and
//! acknowledges Slack only after the router did. It replies with `chat.postMessage` in mrkdwn
//! (threaded) and edits with `chat.update`. Slack has no bot typing indicator.
//!
//! Outbound files are not uploaded: a reply carrying attachments is sent as its text followed
//! by one line naming each attachment.
//!
//! Modules: `config`, `client` (Web API on the wire, error classification), `payload` (Slack's
//! JSON and the event mapping), `dispatch` (one event to the router), `socket` (Socket Mode),
//! `events` (Events API webhook), `threads` (threads the bot posted in), `adapter` (the
//! `ChannelAdapter`). This module must never know about sessions or storage.

mod adapter;
mod client;
mod config;
mod dispatch;
mod events;
mod payload;
mod socket;
mod threads;

#[cfg(test)]
mod tests;

pub use adapter::SlackAdapter;
pub use config::{DEFAULT_API_BASE, SlackConfig, SlackMode, default_api_base};
