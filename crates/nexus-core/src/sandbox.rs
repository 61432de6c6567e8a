//! The [`Sandbox`] seam: somewhere untrusted code runs under limits (a Docker container by
//! default, a Firecracker microVM optionally).
//!
//! The contract every backend keeps:
//!
//! - The code runs as an unprivileged user with a writable working directory [`WORK_DIR`]
//!   (small, in memory) and nothing else writable.
//! - The request's files are written into the working directory before the code starts; the
//!   regular files the code leaves in [`OUTPUT_DIR`] come back in [`ExecResult::files`].
//! - The network is unreachable unless [`ExecRequest::network`] is true.
//! - Every limit of [`ExecLimits`] is enforced by the backend; hitting one is a result
//!   ([`ExecResult::timed_out`], [`ExecResult::oom_killed`], [`ExecResult::truncated`]), not an
//!   error. Errors are for a sandbox that could not run the code at all.
//! - Nothing is left behind: a backend removes what it created, also on timeout, cancellation
//!   and errors. State kept warm for a session between runs is reset before the next run and
//!   removed by [`Sandbox::release`] or when idle.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::ids::SessionId;

/// The working directory of the code, writable, emptied between runs.
pub const WORK_DIR: &str = "/work";

/// Regular files the code leaves here are returned to the caller.
pub const OUTPUT_DIR: &str = "/work/out";

/// What the code is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// Python 3 (`python3`).
    Python,
    /// POSIX shell (`sh`).
    Shell,
}

impl Language {
    /// The lowercase name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Shell => "shell",
        }
    }
}

/// Limits of one run. Every backend enforces all of them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExecLimits {
    /// Wall time from start to kill. Default 30 s.
    pub wall_time: Duration,
    /// Memory (RAM, no swap) in bytes. Default 256 MiB.
    pub memory_bytes: u64,
    /// CPU share in cores (0.5 = half a core). Default 1.
    pub cpus: f64,
    /// Most processes and threads at once. Default 64.
    pub pids: u32,
    /// Bytes of stdout and of stderr kept each; the rest is dropped and `truncated` set.
    /// Default 64 KiB.
    pub output_bytes: usize,
    /// Size of the writable working directory in bytes. Default 64 MiB.
    pub disk_bytes: u64,
    /// Most bytes of files returned from [`OUTPUT_DIR`] in total. Default 16 MiB.
    pub files_bytes: u64,
}

impl Default for ExecLimits {
    fn default() -> Self {
        ExecLimits {
            wall_time: Duration::from_secs(30),
            memory_bytes: 256 * 1024 * 1024,
            cpus: 1.0,
            pids: 64,
            output_bytes: 64 * 1024,
            disk_bytes: 64 * 1024 * 1024,
            files_bytes: 16 * 1024 * 1024,
        }
    }
}

/// A file going into or coming out of the sandbox.
#[derive(Clone, PartialEq, Eq)]
pub struct SandboxFile {
    /// Path relative to [`WORK_DIR`] going in, relative to [`OUTPUT_DIR`] coming out; never
    /// absolute, never with `..`.
    pub path: String,
    /// The content.
    pub bytes: Bytes,
}

impl fmt::Debug for SandboxFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxFile")
            .field("path", &self.path)
            .field("len", &self.bytes.len())
            .finish()
    }
}

/// One run of code.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// What the code is written in.
    pub language: Language,
    /// The program text.
    pub code: String,
    /// Files written into [`WORK_DIR`] before the run.
    pub files: Vec<SandboxFile>,
    /// Whether the code may reach the network.
    pub network: bool,
    /// Limits of the run.
    pub limits: ExecLimits,
    /// The session the run belongs to: a backend may keep its sandbox warm for the next run of
    /// the same session (reset in between). `None` runs in a fresh sandbox removed after.
    pub session: Option<SessionId>,
}

/// How a run ended. Limits hit are reported here, not as errors.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecResult {
    /// The exit status; `None` when the process was killed (timeout, out of memory).
    pub exit_code: Option<i64>,
    /// Standard output, at most `output_bytes` (invalid UTF-8 replaced).
    pub stdout: String,
    /// Standard error, at most `output_bytes` (invalid UTF-8 replaced).
    pub stderr: String,
    /// Whether output was cut at `output_bytes`, or files at `files_bytes`.
    pub truncated: bool,
    /// Whether the run was killed at its wall time.
    pub timed_out: bool,
    /// Whether the run was killed for using more memory than allowed.
    pub oom_killed: bool,
    /// Wall time of the run.
    pub duration: Duration,
    /// Regular files left in [`OUTPUT_DIR`].
    pub files: Vec<SandboxFile>,
}

/// A sandbox that could not run the code at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The backend is not reachable or not set up (no Docker engine, image missing, no KVM).
    /// The message names the fix.
    #[error("sandbox unavailable: {message}")]
    Unavailable {
        /// What is missing and how to fix it.
        message: String,
    },
    /// The request is not acceptable (a bad file path, files too large).
    #[error("invalid sandbox request: {message}")]
    Invalid {
        /// What is wrong.
        message: String,
    },
    /// The run was cancelled; everything it created was removed.
    #[error("sandbox run cancelled")]
    Cancelled,
    /// The backend failed while running the code.
    #[error("sandbox failed: {message}")]
    Failed {
        /// What happened.
        message: String,
    },
}

/// Somewhere untrusted code runs under limits. See the module documentation for the contract.
#[async_trait]
pub trait Sandbox: Send + Sync + fmt::Debug {
    /// The backend's name (`docker`, `firecracker`).
    fn name(&self) -> &'static str;

    /// Checks that the backend can run code (engine reachable, image present…); the error
    /// names the fix.
    async fn check(&self) -> Result<(), SandboxError>;

    /// Runs the code and waits for it to end, be killed at a limit, or be cancelled.
    async fn run(
        &self,
        request: ExecRequest,
        cancel: CancellationToken,
    ) -> Result<ExecResult, SandboxError>;

    /// Removes what is kept warm for `session`, if anything.
    async fn release(&self, session: SessionId);

    /// Removes everything the backend created; called on shutdown.
    async fn shutdown(&self);
}
