//! `fake-searxng`: the fake SearXNG as a process, for load benchmarks and manual runs.
//!
//! Prints `FAKE_SEARXNG_URL=http://…` on stdout once listening, then serves until killed. It
//! must never grow features the library fake lacks.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::{FakeSearxng, FakeSearxngConfig};

/// A protocol-faithful fake of a SearXNG instance's search API on a local address.
#[derive(Debug, Parser)]
#[command(name = "fake-searxng", version)]
struct Args {
    /// Address to listen on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Results generated for every query (`Result N for <query>`).
    #[arg(long, default_value_t = 5)]
    results: usize,
    /// Answer `format=json` with 403, like an instance whose settings.yml lacks `json`.
    #[arg(long)]
    json_disabled: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let config = FakeSearxngConfig {
        json_enabled: !args.json_disabled,
        generated_results: args.results,
        // A long-running process under load: keep only a few requests for inspection.
        max_recorded: 16,
    };
    let fake = FakeSearxng::bind(args.addr, config)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "FAKE_SEARXNG_URL={}", fake.base_url())?;
    out.flush()?;
    drop(out);
    tokio::signal::ctrl_c()
        .await
        .context("cannot wait for Ctrl-C")?;
    drop(fake);
    Ok(())
}
