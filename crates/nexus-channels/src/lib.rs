//! Nexus channels: the messaging platforms people reach agents from.
//!
//! So far this crate holds what every adapter needs to show a model's answer: conversion of
//! the model's Markdown to each platform's markup and splitting into messages within each
//! platform's limit ([`format`]), and the plan of a streamed reply — send, throttled edits,
//! continuation messages, final text ([`stream`]). The Telegram, Discord and Slack adapters
//! behind the `ChannelAdapter` seam build on them.
//!
//! This crate must never know about storage, sessions or configuration files.

pub mod format;
pub mod stream;

pub use format::{Platform, plain_text};
pub use stream::{Action, StreamingReply};
