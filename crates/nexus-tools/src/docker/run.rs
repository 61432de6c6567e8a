//! One run in a started container: the code's exec (a nonce and the files on its stdin, a
//! status line on its stderr), then, only when the run left files or its status is missing,
//! the collect exec that reads `/work/out` back. Decides whether the container may serve
//! another run; the warm reset itself is [`reset`].
//!
//! Out of memory: an exec'd process killed by the kernel inside a living container leaves
//! Docker's `State.OOMKilled` false, so the signal is the container's memory cgroup counter
//! `oom_kill` (`memory.events` on cgroup v2, `memory.oom_control` on v1), read when the program
//! ends and compared with its value after the previous run. When the container itself died,
//! its `State.OOMKilled` is used.

use std::time::Duration;

use bytes::{BufMut as _, Bytes, BytesMut};
use nexus_core::{ExecRequest, ExecResult, SandboxError, SandboxFile};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::archive;
use super::client::{Container, classify};
use super::exec::{Caps, Captured, End, exec};
use super::spec;

/// Output read before a flooding program is given up, at the least (16 × the kept bytes
/// otherwise): a program may print a lot and still mean to write its files.
const FLOOD_FLOOR: usize = 8 * 1024 * 1024;
/// Room for tar headers beyond the files' bytes when reading `/work/out`.
const TAR_OVERHEAD: u64 = 1024 * 1024;
/// Longest the collect and reset execs may take.
const HOUSEKEEPING_TIME: Duration = Duration::from_secs(20);
/// Longest the collect exec may take after a run killed at a limit (its partial files are a
/// bonus; the caller is already late).
const SALVAGE_TIME: Duration = Duration::from_secs(5);

/// A run's result and whether its container may serve the next run of the session (after
/// [`reset`]).
#[derive(Debug)]
pub(crate) struct Outcome {
    pub(crate) result: ExecResult,
    pub(crate) reusable: bool,
}

/// What the run script reported once the program ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Status {
    /// The cgroup's OOM-kill counter, when readable.
    pub(crate) oom_kills: Option<u64>,
    /// Whether /work/out holds anything.
    pub(crate) has_output: bool,
}

/// Finds the status line in the stderr of the run and takes it out of the kept stderr.
/// Returns the status and the bytes the program itself wrote to stderr.
pub(crate) fn take_status(captured: &mut Captured, nonce: &str) -> (Option<Status>, usize) {
    let tail = &captured.stderr_tail;
    let Some(at) = find(tail, nonce.as_bytes()) else {
        return (None, captured.stderr_seen);
    };
    let rest = &tail[at + nonce.len()..];
    let line_len = rest
        .iter()
        .position(|&b| b == b'\n')
        .map_or(rest.len(), |i| i + 1);
    let line = String::from_utf8_lossy(&rest[..line_len]);
    let mut status = Status {
        oom_kills: None,
        has_output: false,
    };
    for field in line.split_whitespace() {
        if let Some(n) = field.strip_prefix("oom=") {
            status.oom_kills = n.parse().ok();
        } else if let Some(flag) = field.strip_prefix("out=") {
            status.has_output = flag == "1";
        }
    }
    // Where the status line starts in the whole stream, and its length.
    let start = captured.stderr_seen - (tail.len() - at);
    let status_len = nonce.len() + line_len;
    if start < captured.stderr.len() {
        captured.stderr.truncate(start);
    }
    (
        Some(status),
        captured.stderr_seen.saturating_sub(status_len),
    )
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .rposition(|window| window == needle)
}

/// Runs `request` in `container`; `files` is the tar of its files.
pub(crate) async fn run_in(
    container: &mut Container,
    request: &ExecRequest,
    files: Option<Bytes>,
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
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mut stdin = BytesMut::with_capacity(nonce.len() + 1 + files.as_ref().map_or(0, Bytes::len));
    stdin.put_slice(nonce.as_bytes());
    stdin.put_u8(b'\n');
    if let Some(files) = &files {
        stdin.put_slice(files);
    }
    let cmd = spec::run_command(request.language, &request.code, files.is_some());
    let started = Instant::now();
    let (end, mut captured) = exec(
        container.docker(),
        &container.name,
        cmd,
        Some(stdin.freeze()),
        caps,
        started + limits.wall_time,
        cancel,
    )
    .await
    .map_err(|e| classify(host, "running the code", &e))?;
    let duration = started.elapsed();
    let (status, program_stderr) = take_status(&mut captured, &nonce);

    let mut result = ExecResult {
        stdout: text(&captured.stdout, keep),
        stderr: text(&captured.stderr, keep),
        truncated: captured.stdout_seen > keep || program_stderr > keep,
        duration,
        ..ExecResult::default()
    };
    let mut reusable = match end {
        End::Exited(code) => {
            result.exit_code = code;
            code.is_some() && status.is_some()
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

    let mut oom_kills = status.as_ref().and_then(|s| s.oom_kills);
    // The collect exec also kills what a timed-out or flooding run left running, so partial
    // files come back whenever the container still answers.
    if status.as_ref().is_none_or(|s| s.has_output) {
        let within = if matches!(end, End::Exited(_)) {
            HOUSEKEEPING_TIME
        } else {
            SALVAGE_TIME
        };
        match collect(container, limits.files_bytes, within, cancel).await {
            Ok(collected) => {
                result.files = collected.files;
                result.truncated |= collected.truncated;
                oom_kills = collected.oom_kills.or(oom_kills);
            }
            Err(SandboxError::Cancelled) => return Err(SandboxError::Cancelled),
            Err(err) => {
                tracing::debug!(container = %container.name, error = %err, "Sandbox collect failed");
                reusable = false;
                result.oom_killed = container_oom_killed(container).await;
            }
        }
    }
    if let Some(kills) = oom_kills {
        result.oom_killed |= kills > container.oom_kills;
        container.oom_kills = kills;
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
    files: Vec<SandboxFile>,
    truncated: bool,
    /// The cgroup's OOM-kill counter, when readable.
    oom_kills: Option<u64>,
}

async fn collect(
    container: &Container,
    files_bytes: u64,
    within: Duration,
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
        spec::collect_command(files_bytes),
        None,
        caps,
        Instant::now() + within,
        cancel,
    )
    .await
    .map_err(|e| SandboxError::Failed {
        message: format!("reading the output files: {e}"),
    })?;
    if end == End::Cancelled {
        return Err(SandboxError::Cancelled);
    }
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
            || captured.truncated()
            || matches!(end, End::TimedOut | End::Flooded),
        oom_kills,
    })
}

/// Makes a warm container ready for the next run (leftover processes killed, /work, /tmp and
/// /dev/shm emptied); false when it is not fit for one.
pub(crate) async fn reset(container: &Container) -> bool {
    let caps = Caps {
        stdout: 1024,
        stderr: 1024,
        hard: 64 * 1024,
    };
    let ended = exec(
        container.docker(),
        &container.name,
        spec::reset_command(),
        None,
        caps,
        Instant::now() + HOUSEKEEPING_TIME,
        &CancellationToken::new(),
    )
    .await;
    matches!(ended, Ok((End::Exited(Some(0)), _)))
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
