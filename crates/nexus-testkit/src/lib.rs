//! Nexus test kit: protocol-faithful fakes of the remote services Nexus talks to.
//!
//! Each fake listens on `127.0.0.1:0` and behaves like the real service on the wire (paths,
//! headers, JSON shapes, SSE framing, error bodies), with fault injection by script. Fakes are
//! cheap enough to sit under a load benchmark.
//!
//! This crate must never depend on the Nexus crates that talk to these services (e.g.
//! `nexus-llm`): a fake that shares code with its client would agree with its bugs.

pub mod anthropic;
pub mod chat;
pub mod discord;
pub mod firecracker;
pub mod gemini;
mod journal;
pub mod openai;
pub mod searxng;
pub mod slack;
pub mod telegram;

pub use anthropic::{FakeAnthropic, FakeAnthropicConfig};
pub use discord::{FakeDiscord, FakeDiscordConfig};
pub use firecracker::{FakeFirecracker, FakeFirecrackerConfig};
pub use gemini::{FakeGemini, FakeGeminiConfig};
pub use openai::{FakeOpenAi, FakeOpenAiConfig, RecordedRequest, Reply};
pub use searxng::{FakeSearxng, FakeSearxngConfig, SearchAnswer, SearchHit, SearxngFault};
pub use slack::{FakeSlack, FakeSlackConfig};
pub use telegram::{FakeTelegram, FakeTelegramConfig};
