//! Latency of `print(1)` in the Docker sandbox, cold (a container made and removed per run)
//! against warm (the session's container reused, reset between runs).
//!
//! ```sh
//! eval "$(scripts/services/docker.sh)"
//! cargo run --release -p nexus-tools --features docker --example sandbox_latency -- 30
//! ```
//!
//! Reads `NEXUS_TEST_DOCKER_HOST` and `NEXUS_TEST_SANDBOX_IMAGE` (defaults: the local socket and
//! `nexus-sandbox:latest`); the argument is the number of runs of each kind (default 20).
//!
//! Warm runs are measured twice: back to back, where each run also waits for the reset of the
//! one before, and with a pause between runs (as a model takes seconds between tool calls),
//! where the reset is done before the next run comes.
#![allow(clippy::print_stdout, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use nexus_core::{ExecLimits, ExecRequest, Language, Sandbox, SessionId};
use nexus_tools::{DockerConfig, DockerSandbox};
use tokio_util::sync::CancellationToken;

fn request(session: Option<SessionId>) -> ExecRequest {
    ExecRequest {
        language: Language::Python,
        code: "print(1)".to_owned(),
        files: Vec::new(),
        network: false,
        limits: ExecLimits::default(),
        session,
    }
}

async fn measure(
    sandbox: &DockerSandbox,
    session: Option<SessionId>,
    runs: usize,
    pause: Duration,
) -> Vec<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        tokio::time::sleep(pause).await;
        let started = Instant::now();
        let result = sandbox
            .run(request(session), CancellationToken::new())
            .await
            .unwrap();
        times.push(started.elapsed());
        assert_eq!(result.stdout, "1\n", "{result:?}");
    }
    times.sort();
    times
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

fn report(kind: &str, times: &[Duration]) {
    println!(
        "{kind:>18}: median {:>7.1} ms   p90 {:>7.1} ms   (n = {})",
        percentile(times, 0.5).as_secs_f64() * 1e3,
        percentile(times, 0.9).as_secs_f64() * 1e3,
        times.len()
    );
}

#[tokio::main]
async fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20)
        .max(1);
    let config = DockerConfig {
        socket: std::env::var("NEXUS_TEST_DOCKER_HOST").ok(),
        image: std::env::var("NEXUS_TEST_SANDBOX_IMAGE")
            .unwrap_or_else(|_| nexus_tools::docker::DEFAULT_IMAGE.to_owned()),
        instance: Some(format!("latency-{}", std::process::id())),
        ..DockerConfig::default()
    };
    let sandbox = DockerSandbox::new(config).unwrap();
    sandbox.check().await.unwrap();
    let session = SessionId::new();
    // One warm-up of each kind (image layers, the session's container).
    let pause = Duration::from_millis(300);
    measure(&sandbox, None, 1, Duration::ZERO).await;
    measure(&sandbox, Some(session), 1, Duration::ZERO).await;

    let cold = measure(&sandbox, None, runs, Duration::ZERO).await;
    let warm_back_to_back = measure(&sandbox, Some(session), runs, Duration::ZERO).await;
    let warm_paused = measure(&sandbox, Some(session), runs, pause).await;
    report("cold", &cold);
    report("warm, back to back", &warm_back_to_back);
    report("warm, 300 ms apart", &warm_paused);
    println!(
        "speed-up of the median, cold to warm 300 ms apart: {:.1}x",
        percentile(&cold, 0.5).as_secs_f64() / percentile(&warm_paused, 0.5).as_secs_f64()
    );
    sandbox.shutdown().await;
}
