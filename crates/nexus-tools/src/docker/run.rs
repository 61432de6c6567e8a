//! One run in a started container: the code's exec (files on its stdin), then the collect exec
//! (leftover processes killed, OOM-kill counter read, `/work/out` read back, reset when the
//! container is kept warm). Decides whether the container may serve another run.
//!
//! Out of memory: an exec'd process killed by the kernel inside a living container leaves
//! Docker's `State.OOMKilled` false, so the signal is the container's memory cgroup counter
//! `oom_kill` (`memory.events` on cgroup v2, `memory.oom_control` on v1), read after every run
//! and compared with its value after the previous one. When the container itself died, its
//! `State.OOMKilled` is used.

use std::time::Duration;

use bytes::Bytes;
use nexus_core::{ExecRequest, ExecResult, SandboxError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::archive;
use super::client::{Container, classify};
use super::exec::{Caps, End, exec};
use super::spec;

/// Output read before a flooding program is given up, at the least (16 × the kept bytes
/// otherwise): a program may print a lot and still mean to write its files.
const FLOOD_FLOOR: usize = 8 * 1024 * 1024;
/// Room for tar headers beyond the files' bytes when reading `/work/out`.
const TAR_OVERHEAD: u64 = 1024 * 1024;
/// Longest the collect exec may take.
const COLLECT_TIME: Duration = Duration::from_secs(20);

/// A run's result and whether its container may serve the next run of the session.
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) result: ExecResult,
    pub(crate) reusable: bool,
}

/// Runs `request` in `container`; `files` is the tar of its files, `reset` asks for the
/// container to be made ready for another run.
pub(crate) async fn run_in(
    container: &mut Container,
    request: &ExecRequest,
    files: Option<Bytes>,
    reset: bool,
    host: &str,
    cancel: &CancellationToken,
) -> Result<Outcome, SandboxError> {
    let limits = request.limits;
    let keep = limits.output_bytes;
    let caps = Caps {
        stdout: keep,
        stderr: keep,
        hard: keep.saturating_mul(16).max(FLOOD_FLOOR),
    };
    let cmd = spec::run_command(request.language, &request.code, files.is_some());
    let started = Instant::now();
    let deadline = started + limits.wall_time;
    let (end, captured) = exec(
        container.docker(),
        &container.name,
        cmd,
        files,
        caps,
        deadline,
        cancel,
    )
    .await
    .map_err(|e| classify(host, "running the code", &e))?;
    let duration = started.elapsed();

    let mut result = ExecResult {
        stdout: text(&captured.stdout, keep),
        stderr: text(&captured.stderr, keep),
        truncated: captured.truncated,
        duration,
        ..ExecResult::default()
    };
    let mut reusable = match end {
        End::Exited(code) => {
            result.exit_code = code;
            code.is_some()
        }
        End::TimedOut => {
            result.timed_out = true;
            false
        }
        End::Flooded => {
            result.truncated = true;
            false
        }
        End::Cancelled => return Err(SandboxError::Cancelled),
    };

    // The collect exec also kills what a timed-out or flooding run left running, so partial
    // files come back in every case the container still answers.
    match collect(container, limits.files_bytes, reset && reusable, cancel).await {
        Ok(collected) => {
            result.files = collected.files;
            result.truncated |= collected.truncated;
            if let Some(kills) = collected.oom_kills {
                result.oom_killed = kills > container.oom_kills;
                container.oom_kills = kills;
            }
            reusable &= collected.clean;
        }
        Err(SandboxError::Cancelled) => return Err(SandboxError::Cancelled),
        Err(err) => {
            tracing::debug!(container = %container.name, error = %err, "Sandbox collect failed");
            reusable = false;
            result.oom_killed = container_oom_killed(container).await;
        }
    }
    if result.oom_killed {
        reusable = false;
        if result.exit_code == Some(137) {
            result.exit_code = None;
        }
    }
    Ok(Outcome { result, reusable })
}

/// What the collect exec found.
#[derive(Debug)]
struct Collected {
    files: Vec<nexus_core::SandboxFile>,
    truncated: bool,
    /// The cgroup's OOM-kill counter, when readable.
    oom_kills: Option<u64>,
    /// The container is fit for another run (reset done when asked, nothing cut).
    clean: bool,
}

async fn collect(
    container: &Container,
    files_bytes: u64,
    reset: bool,
    cancel: &CancellationToken,
) -> Result<Collected, SandboxError> {
    let stdout_cap =
        usize::try_from(files_bytes.saturating_add(TAR_OVERHEAD)).unwrap_or(usize::MAX);
    let caps = Caps {
        stdout: stdout_cap,
        stderr: 4096,
        hard: stdout_cap.saturating_add(64 * 1024),
    };
    let (end, captured) = exec(
        container.docker(),
        &container.name,
        spec::collect_command(files_bytes, reset),
        None,
        caps,
        Instant::now() + COLLECT_TIME,
        cancel,
    )
    .await
    .map_err(|e| SandboxError::Failed {
        message: format!("reading the output files: {e}"),
    })?;
    let clean = match end {
        End::Exited(code) => code == Some(0),
        End::TimedOut | End::Flooded => false,
        End::Cancelled => return Err(SandboxError::Cancelled),
    };
    let unpacked = archive::unpack(&captured.stdout, files_bytes);
    let stderr = String::from_utf8_lossy(&captured.stderr);
    let oom_kills = stderr
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    let skipped = stderr.lines().any(|l| l == "nexus-files-skipped");
    Ok(Collected {
        files: unpacked.files,
        truncated: unpacked.truncated
            || skipped
            || captured.truncated
            || matches!(end, End::TimedOut | End::Flooded),
        oom_kills,
        clean: clean && !captured.truncated,
    })
}

/// Whether the container itself was killed for memory (its main process died).
async fn container_oom_killed(container: &Container) -> bool {
    container
        .docker()
        .inspect_container(&container.name, None)
        .await
        .ok()
        .and_then(|c| c.state)
        .and_then(|s| s.oom_killed)
        .unwrap_or(false)
}

/// Output as text: invalid UTF-8 replaced, at most `max` bytes on a char boundary.
fn text(bytes: &[u8], max: usize) -> String {
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if s.len() > max {
        let mut cut = max;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
