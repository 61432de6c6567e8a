//! `fake-gemini`: the fake Gemini server as a process, for load benchmarks and manual runs.
//!
//! Prints `FAKE_GEMINI_BASE_URL=http://…/v1beta` on stdout once listening, then serves until
//! killed. It must never grow features the library fake lacks.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::{FakeGemini, FakeGeminiConfig};

/// A protocol-faithful fake of the Google Gemini API on a local address.
#[derive(Debug, Parser)]
#[command(name = "fake-gemini", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Words of each default reply; 0 echoes the last user message.
    #[arg(long, default_value_t = 0)]
    reply_words: usize,
    /// Milliseconds between stream chunks.
    #[arg(long, default_value_t = 0)]
    token_delay_ms: u64,
    /// Milliseconds before the response headers.
    #[arg(long, default_value_t = 0)]
    first_byte_delay_ms: u64,
    /// The API key accepted in `x-goog-api-key`.
    #[arg(long, default_value = nexus_testkit::gemini::DEFAULT_API_KEY)]
    api_key: String,
    /// Attach thought signatures to answers (and require them back), like Gemini 3.
    #[arg(long)]
    thought_signatures: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeGeminiConfig {
        reply_words: args.reply_words,
        token_delay: Duration::from_millis(args.token_delay_ms),
        first_byte_delay: Duration::from_millis(args.first_byte_delay_ms),
        api_key: args.api_key,
        thought_signatures: args.thought_signatures,
        // A long-running process under load: keep only a few requests for inspection.
        max_recorded: 16,
    };
    let fake = FakeGemini::bind(args.addr, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FAKE_GEMINI_BASE_URL={}", fake.base_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    drop(fake);
    Ok(())
}
