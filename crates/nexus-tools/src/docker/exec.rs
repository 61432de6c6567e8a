//! One `docker exec` in a sandbox container: optional bytes on stdin, stdout and stderr kept
//! up to a cap each, a hard bound past which the flood ends the exec, a deadline and
//! cancellation. The exec's own process cannot be killed through the API: ending early
//! means the caller removes the container.

use std::time::Duration;

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::ExecConfig;
use bytes::Bytes;
use futures::StreamExt as _;
use nexus_core::sandbox::WORK_DIR;
use tokio::io::AsyncWriteExt as _;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How much output an exec may keep and produce.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Caps {
    /// Bytes of stdout kept.
    pub(crate) stdout: usize,
    /// Bytes of stderr kept.
    pub(crate) stderr: usize,
    /// Bytes of both streams read in total before the exec is given up as a flood.
    pub(crate) hard: usize,
}

/// Bytes of the end of stderr kept whatever the cap (where the run's status line is).
const TAIL_BYTES: usize = 512;

/// What an exec wrote, capped.
#[derive(Debug, Default)]
pub(crate) struct Captured {
    /// The first `Caps::stdout` bytes of stdout.
    pub(crate) stdout: Vec<u8>,
    /// The first `Caps::stderr` bytes of stderr.
    pub(crate) stderr: Vec<u8>,
    /// Bytes written to stdout in all.
    pub(crate) stdout_seen: usize,
    /// Bytes written to stderr in all.
    pub(crate) stderr_seen: usize,
    /// The last bytes of stderr (at most 512).
    pub(crate) stderr_tail: Vec<u8>,
}

impl Captured {
    pub(crate) fn push(&mut self, caps: &Caps, stderr: bool, bytes: &[u8]) {
        let (buf, cap, seen) = if stderr {
            (&mut self.stderr, caps.stderr, &mut self.stderr_seen)
        } else {
            (&mut self.stdout, caps.stdout, &mut self.stdout_seen)
        };
        *seen = seen.saturating_add(bytes.len());
        let room = cap.saturating_sub(buf.len());
        buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
        if stderr {
            let tail = &mut self.stderr_tail;
            let from = bytes.len().saturating_sub(TAIL_BYTES);
            tail.extend_from_slice(&bytes[from..]);
            if tail.len() > TAIL_BYTES {
                tail.drain(..tail.len() - TAIL_BYTES);
            }
        }
    }

    /// Whether more was written than kept.
    pub(crate) fn truncated(&self) -> bool {
        self.stdout_seen > self.stdout.len() || self.stderr_seen > self.stderr.len()
    }

    pub(crate) fn flooded(&self, caps: &Caps) -> bool {
        self.stdout_seen.saturating_add(self.stderr_seen) > caps.hard
    }
}

/// How an exec ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// The process ended; its exit code when the engine reported one.
    Exited(Option<i64>),
    /// The deadline passed first; the process may still run.
    TimedOut,
    /// The output passed the hard bound; the process may still run.
    Flooded,
    /// Cancelled; the process may still run.
    Cancelled,
}

enum Waited {
    Read(Result<bool, DockerError>),
    Deadline,
    Cancelled,
}

/// How long the engine may take to report an exit code once the streams closed.
const EXIT_CODE_WAIT: Duration = Duration::from_secs(2);

/// Runs `cmd` in `container` (as the container's user, in the working directory).
pub(crate) async fn exec(
    docker: &Docker,
    container: &str,
    cmd: Vec<String>,
    stdin: Option<Bytes>,
    caps: Caps,
    deadline: Instant,
    cancel: &CancellationToken,
) -> Result<(End, Captured), DockerError> {
    let config = ExecConfig {
        attach_stdin: Some(stdin.is_some()),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        tty: Some(false),
        cmd: Some(cmd),
        working_dir: Some(WORK_DIR.to_owned()),
        ..ExecConfig::default()
    };
    let options = StartExecOptions {
        detach: false,
        tty: false,
        output_capacity: Some(64 * 1024),
    };
    let start = async {
        let id = docker.create_exec(container, config).await?.id;
        let started = docker.start_exec(&id, Some(options)).await?;
        Ok::<_, DockerError>((id, started))
    };
    let (id, started) = tokio::select! {
        started = start => started?,
        () = tokio::time::sleep_until(deadline) => return Ok((End::TimedOut, Captured::default())),
        () = cancel.cancelled() => return Ok((End::Cancelled, Captured::default())),
    };
    let StartExecResults::Attached {
        mut output,
        mut input,
    } = started
    else {
        return Err(DockerError::DockerStreamError {
            error: "the exec started detached".to_owned(),
        });
    };

    let mut captured = Captured::default();
    // Stdin is written while the output is read (a program may fill its output pipe before
    // reading all of its input); closing our side is the program's end of input.
    let feed = async {
        if let Some(bytes) = stdin {
            // A program that exits without reading all of its input closes the pipe: the
            // error is the program's business, its exit code tells.
            let _ = input.write_all(&bytes).await;
            let _ = input.shutdown().await;
        }
    };
    let read = async {
        while let Some(item) = output.next().await {
            match item? {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    captured.push(&caps, false, &message);
                }
                LogOutput::StdErr { message } => captured.push(&caps, true, &message),
                LogOutput::StdIn { .. } => {}
            }
            if captured.flooded(&caps) {
                return Ok::<_, DockerError>(false);
            }
        }
        Ok(true)
    };
    let ended = {
        let mut feed = std::pin::pin!(feed);
        let mut read = std::pin::pin!(read);
        let mut fed = false;
        loop {
            tokio::select! {
                () = &mut feed, if !fed => fed = true,
                r = &mut read => break Waited::Read(r),
                () = tokio::time::sleep_until(deadline) => break Waited::Deadline,
                () = cancel.cancelled() => break Waited::Cancelled,
            }
        }
    };
    let end = match ended {
        Waited::Deadline => End::TimedOut,
        Waited::Cancelled => End::Cancelled,
        Waited::Read(Ok(false)) => End::Flooded,
        Waited::Read(Ok(true)) => End::Exited(exit_code(docker, &id).await?),
        Waited::Read(Err(err)) => return Err(err),
    };
    Ok((end, captured))
}

/// The exit code of a finished exec, waiting briefly for the engine to record it.
async fn exit_code(docker: &Docker, id: &str) -> Result<Option<i64>, DockerError> {
    let give_up = Instant::now() + EXIT_CODE_WAIT;
    loop {
        let inspect = docker.inspect_exec(id).await?;
        if inspect.running != Some(true) || Instant::now() >= give_up {
            return Ok(inspect.exit_code);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
