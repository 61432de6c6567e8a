//! End-to-end channel tests of what is particular to each platform, each on its fake: Telegram
//! webhooks, duplicates, refused HTML and rate limits; the Slack Events API and Socket Mode
//! refreshes; Discord gateway reconnects, fatal close codes and REST rate limits; and managing
//! channels over gRPC (verification, pause, remove, allowlists, typing).
//!
//! The behaviours every platform shares are in `channels_e2e.rs`; both use the `World`
//! harness of `channels/mod.rs`.

#![allow(clippy::unwrap_used, reason = "tests fail on any error")]

mod channels;
mod common;

#[path = "channels_platforms/discord.rs"]
mod discord;
#[path = "channels_platforms/manage.rs"]
mod manage;
#[path = "channels_platforms/slack.rs"]
mod slack;
#[path = "channels_platforms/telegram.rs"]
mod telegram;
