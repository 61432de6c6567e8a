//! `fake-telegram`: the fake Telegram Bot API as a process, for load benchmarks and manual
//! runs.
//!
//! Prints `FAKE_TELEGRAM_BASE_URL=http://…` on stdout once listening, then serves until
//! killed. It must never grow features the library fake lacks.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::{FakeTelegram, FakeTelegramConfig};

/// A protocol-faithful fake of the Telegram Bot API on a local address.
#[derive(Debug, Parser)]
#[command(name = "fake-telegram", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// The bot token accepted (its leading digits are the bot's user id).
    #[arg(long, default_value = nexus_testkit::telegram::DEFAULT_TOKEN)]
    token: String,
    /// The bot's username, without `@`.
    #[arg(long, default_value = "nexus_fake_bot")]
    bot_username: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeTelegramConfig {
        token: args.token,
        bot_username: args.bot_username,
        // A long-running process under load: keep only a few requests for inspection.
        max_recorded: 16,
        ..FakeTelegramConfig::default()
    };
    let fake = FakeTelegram::bind(args.addr, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FAKE_TELEGRAM_BASE_URL={}", fake.base_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    drop(fake);
    Ok(())
}
