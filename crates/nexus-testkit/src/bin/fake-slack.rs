//! `fake-slack`: the fake Slack server as a process, for manual runs and load benchmarks.
//!
//! Prints `FAKE_SLACK_API_BASE=http://…/api/` on stdout once listening (Socket Mode; the bot
//! and app tokens are the defaults of `FakeSlackConfig` unless given), then serves until
//! killed. It must never grow features the library fake lacks.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::{FakeSlack, FakeSlackConfig};

/// A protocol-faithful fake of the Slack Web API and Socket Mode on a local address.
#[derive(Debug, Parser)]
#[command(name = "fake-slack", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// The bot token accepted (`xoxb-…`).
    #[arg(long, default_value = nexus_testkit::slack::DEFAULT_BOT_TOKEN)]
    bot_token: String,
    /// The app-level token accepted (`xapp-…`).
    #[arg(long, default_value = nexus_testkit::slack::DEFAULT_APP_TOKEN)]
    app_token: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeSlackConfig {
        bot_token: args.bot_token,
        app_token: args.app_token,
        // A long-running process: keep only a few calls for inspection.
        max_recorded: 16,
        ..FakeSlackConfig::default()
    };
    let fake = FakeSlack::bind(args.addr, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FAKE_SLACK_API_BASE={}", fake.base_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    drop(fake);
    Ok(())
}
