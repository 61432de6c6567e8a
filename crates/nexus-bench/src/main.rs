//! `nexus-bench`: drives a Nexus server over gRPC against the fake model and prints start time,
//! idle and loaded memory, turn latency percentiles, time to first token and throughput.
//!
//! By default it starts the `nexus` binary itself (fresh data directory, SQLite or PostgreSQL)
//! with the OpenAI fake running in this process, so every figure of one run comes from the same
//! machine state. Never used by tests: figures belong here, not in timed tests.

#![allow(
    clippy::print_stdout,
    reason = "a command-line program prints its results"
)]

mod load;
mod server;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use nexus_testkit::openai::{FakeOpenAi, FakeOpenAiConfig};

use crate::load::{LoadReport, Target};
use crate::server::ServerProcess;

/// The harness shares the machine with the server it measures: a faster allocator leaves more
/// of it to the server (the fake reads every request, the whole conversation, and the client
/// decodes every event).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark a Nexus server.
#[derive(Debug, Parser)]
#[command(name = "nexus-bench", version, about)]
pub(crate) struct Args {
    /// The `nexus` binary to start. Default: `nexus` next to this executable.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Benchmark a running server at this gRPC URL instead of starting one (start time and
    /// memory are then not measured).
    #[arg(long)]
    target: Option<String>,
    /// API key for `--target`.
    #[arg(long, env = "NEXUS_API_KEY")]
    api_key: Option<String>,
    /// Agent to chat with.
    #[arg(long, default_value = "assistant")]
    agent: String,
    /// Database of a started server: `sqlite` or a `postgres://` URL (a fresh database in it
    /// is used as is; point it at an empty one).
    #[arg(long, default_value = "sqlite")]
    database: String,
    /// Turns of the sequential phase (one client, one session).
    #[arg(long, default_value_t = 2000)]
    sequential_turns: usize,
    /// Concurrent sessions of the load phase.
    #[arg(long, default_value_t = 16)]
    sessions: usize,
    /// Duration of the load phase in seconds.
    #[arg(long, default_value_t = 10)]
    duration_secs: u64,
    /// Seconds of rest after the load phase before `after_load_rss_mib` is measured (the
    /// server gives freed memory back after 1.5 s without turns).
    #[arg(long, default_value_t = 3)]
    rest_secs: u64,
    /// Words in each fake model reply.
    #[arg(long, default_value_t = 20)]
    reply_words: usize,
    /// Delay between reply tokens of the fake model, in milliseconds.
    #[arg(long, default_value_t = 0)]
    token_delay_ms: u64,
    /// Delay before the fake model's first byte, in milliseconds.
    #[arg(long, default_value_t = 0)]
    first_byte_delay_ms: u64,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    // The fake and the load generator share two worker threads; the server under test is a
    // separate process with its own runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply_words: args.reply_words,
        token_delay: Duration::from_millis(args.token_delay_ms),
        first_byte_delay: Duration::from_millis(args.first_byte_delay_ms),
        max_recorded: 0,
        ..FakeOpenAiConfig::default()
    })
    .await;

    let mut report = serde_json::Map::new();
    let (target, process) = match &args.target {
        Some(url) => {
            let key = args
                .api_key
                .clone()
                .context("--target needs --api-key or NEXUS_API_KEY")?;
            (Target::new(url.clone(), key, args.agent.clone()), None)
        }
        None => {
            let process = ServerProcess::start(&args, &fake).await?;
            report.insert("database".into(), process.database_label().into());
            report.insert(
                "start_to_ready_first_ms".into(),
                serde_json::json!(process.first_start.as_secs_f64() * 1e3),
            );
            report.insert(
                "start_to_ready_ms".into(),
                serde_json::json!(process.start_to_ready.as_secs_f64() * 1e3),
            );
            let target = Target::new(
                process.grpc_url(),
                process.api_key.clone(),
                args.agent.clone(),
            );
            (target, Some(process))
        }
    };

    // Warm up connections, caches and prepared statements.
    load::sequential(&target, 50).await?;
    if let Some(p) = &process {
        tokio::time::sleep(Duration::from_millis(300)).await;
        report.insert("idle_rss_mib".into(), serde_json::json!(p.rss_mib()?));
    }

    let seq = load::sequential(&target, args.sequential_turns).await?;
    insert_load(&mut report, "sequential", &seq);

    let sampler = process
        .as_ref()
        .map(|p| p.sample_rss(Duration::from_millis(20)));
    let cpu_before = process.as_ref().and_then(|p| p.cpu_time().ok());
    let concurrent = load::concurrent(
        &target,
        args.sessions,
        Duration::from_secs(args.duration_secs),
    )
    .await?;
    insert_load(&mut report, "concurrent", &concurrent);
    if let (Some(p), Some(before)) = (&process, cpu_before)
        && let Ok(after) = p.cpu_time()
        && concurrent.turns() > 0
    {
        let per_turn = (after - before).as_secs_f64() * 1e6 / concurrent.turns() as f64;
        report.insert("server_cpu_us_per_turn".into(), serde_json::json!(per_turn));
    }
    if let (Some(p), Some(sampler)) = (&process, sampler) {
        report.insert(
            "loaded_rss_peak_mib".into(),
            serde_json::json!(sampler.stop().await),
        );
        tokio::time::sleep(Duration::from_secs(args.rest_secs)).await;
        report.insert("after_load_rss_mib".into(), serde_json::json!(p.rss_mib()?));
    }
    report.insert(
        "fake_requests".into(),
        serde_json::json!(fake.request_count()),
    );
    if let Some(p) = process {
        p.stop().await;
    }

    if args.json {
        println!("{}", serde_json::Value::Object(report));
    } else {
        print_report(&report, &args);
    }
    Ok(())
}

fn insert_load(
    report: &mut serde_json::Map<String, serde_json::Value>,
    name: &str,
    r: &LoadReport,
) {
    report.insert(name.into(), r.to_json());
}

fn print_report(report: &serde_json::Map<String, serde_json::Value>, args: &Args) {
    println!(
        "nexus-bench: {} sessions for {} s, fake reply {} words",
        args.sessions, args.duration_secs, args.reply_words
    );
    for (key, value) in report {
        match value {
            serde_json::Value::Object(o) => {
                println!("{key}:");
                for (k, v) in o {
                    println!("  {k:<22} {v}");
                }
            }
            other => println!("{key:<24} {other}"),
        }
    }
}
