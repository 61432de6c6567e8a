//! `fake-anthropic`: the fake Anthropic server as a process, for load benchmarks and manual
//! runs.
//!
//! Prints `FAKE_ANTHROPIC_BASE_URL=http://…` on stdout once listening (what
//! `ANTHROPIC_BASE_URL` takes), then serves until killed. It must never grow features the
//! library fake lacks.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::{FakeAnthropic, FakeAnthropicConfig};

/// A protocol-faithful fake of the Anthropic Messages API on a local address.
#[derive(Debug, Parser)]
#[command(name = "fake-anthropic", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Words of each default reply; 0 echoes the last user message.
    #[arg(long, default_value_t = 0)]
    reply_words: usize,
    /// Milliseconds between stream events.
    #[arg(long, default_value_t = 0)]
    token_delay_ms: u64,
    /// Milliseconds before the response headers.
    #[arg(long, default_value_t = 0)]
    first_byte_delay_ms: u64,
    /// The `x-api-key` accepted.
    #[arg(long, default_value = nexus_testkit::anthropic::DEFAULT_API_KEY)]
    api_key: String,
    /// Shortest prefix, in tokens, a cache breakpoint writes to the prompt cache.
    #[arg(long, default_value_t = 1024)]
    min_cacheable_tokens: u64,
    /// Seconds a prompt-cache entry lives after its last use.
    #[arg(long, default_value_t = 300)]
    cache_ttl_secs: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeAnthropicConfig {
        reply_words: args.reply_words,
        token_delay: Duration::from_millis(args.token_delay_ms),
        first_byte_delay: Duration::from_millis(args.first_byte_delay_ms),
        api_key: args.api_key,
        // A long-running process under load: keep only a few requests for inspection.
        max_recorded: 16,
        min_cacheable_tokens: args.min_cacheable_tokens,
        cache_ttl: Duration::from_secs(args.cache_ttl_secs),
        ..FakeAnthropicConfig::default()
    };
    let fake = FakeAnthropic::bind(args.addr, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FAKE_ANTHROPIC_BASE_URL={}", fake.base_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    drop(fake);
    Ok(())
}
