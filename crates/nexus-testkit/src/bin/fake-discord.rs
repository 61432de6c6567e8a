//! `fake-discord`: the fake Discord (REST API v10, Gateway, CDN) as a process, for load
//! benchmarks and manual runs.
//!
//! Prints `FAKE_DISCORD_API_BASE=http://…/api/v10` and `FAKE_DISCORD_GATEWAY_URL=ws://…/gateway`
//! on stdout once listening, then serves until killed. It must never grow features the library
//! fake lacks.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::{FakeDiscord, FakeDiscordConfig};

/// A protocol-faithful fake of Discord's REST API and Gateway on a local address.
#[derive(Debug, Parser)]
#[command(name = "fake-discord", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// The bot token accepted.
    #[arg(long, default_value = nexus_testkit::discord::DEFAULT_TOKEN)]
    token: String,
    /// The gateway heartbeat interval sent in HELLO, in milliseconds.
    #[arg(long, default_value_t = 41_250)]
    heartbeat_interval_ms: u64,
    /// Messages per channel per window before a 429.
    #[arg(long, default_value_t = 5)]
    message_limit: u32,
    /// The rate-limit window, in milliseconds.
    #[arg(long, default_value_t = 5_000)]
    window_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeDiscordConfig {
        token: args.token,
        heartbeat_interval: Duration::from_millis(args.heartbeat_interval_ms),
        message_limit: args.message_limit,
        message_window: Duration::from_millis(args.window_ms),
        // A long-running process under load: keep only a few requests for inspection.
        max_recorded: 16,
        ..FakeDiscordConfig::default()
    };
    let fake = FakeDiscord::bind(args.addr, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FAKE_DISCORD_API_BASE={}", fake.api_base())?;
    writeln!(out, "FAKE_DISCORD_GATEWAY_URL={}", fake.gateway_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    drop(fake);
    Ok(())
}
