//! What an MCP server is doing now ([`McpStatus`]), and why it last failed ([`McpFailure`]),
//! for `nexus doctor`, the API and the messages tool calls return while it is down.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The state of one MCP server.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
#[non_exhaustive]
pub enum McpStatus {
    /// Starting, or restarting after a failure; it offers no tools yet.
    Connecting {
        /// When this attempt began.
        since: DateTime<Utc>,
        /// Restarts so far.
        restarts: u32,
        /// Why the previous attempt ended, on a restart.
        last_error: Option<McpFailure>,
    },
    /// Connected; its tools are offered.
    Ready {
        /// When it became ready.
        since: DateTime<Utc>,
        /// How many tools it offers.
        tools: usize,
        /// Restarts so far.
        restarts: u32,
    },
    /// Down: waiting before the next restart.
    Failed {
        /// Why.
        error: McpFailure,
        /// When it failed.
        since: DateTime<Utc>,
        /// Restarts so far.
        restarts: u32,
        /// When the next attempt starts.
        retry_at: DateTime<Utc>,
    },
    /// Shut down; it will not restart.
    Stopped {
        /// When it stopped.
        since: DateTime<Utc>,
        /// Restarts it had.
        restarts: u32,
    },
}

impl McpStatus {
    /// Whether its tools are offered.
    pub fn is_ready(&self) -> bool {
        matches!(self, McpStatus::Ready { .. })
    }

    /// Restarts so far.
    pub fn restarts(&self) -> u32 {
        match self {
            McpStatus::Connecting { restarts, .. }
            | McpStatus::Ready { restarts, .. }
            | McpStatus::Failed { restarts, .. }
            | McpStatus::Stopped { restarts, .. } => *restarts,
        }
    }

    /// The failure it is recovering from, if any.
    pub fn failure(&self) -> Option<&McpFailure> {
        match self {
            McpStatus::Connecting { last_error, .. } => last_error.as_ref(),
            McpStatus::Failed { error, .. } => Some(error),
            McpStatus::Ready { .. } | McpStatus::Stopped { .. } => None,
        }
    }
}

/// What went wrong with a server, classified where it was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The program could not be started (not found, not executable, bad `cwd`).
    Spawn,
    /// The process exited (or was killed).
    Exited,
    /// The handshake or the first `tools/list` did not complete in `startup_timeout_secs`.
    StartupTimeout,
    /// The server refused the credentials (HTTP 401/403).
    Unauthorized,
    /// The server answered the handshake with an error, or spoke something else than MCP.
    Protocol,
    /// The connection failed or closed (HTTP errors, a closed stdout).
    Transport,
}

/// Why a server is down: a sentence for people and models, plus what the process left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct McpFailure {
    /// The kind of failure.
    pub kind: FailureKind,
    /// What happened, e.g. "exited with exit status: 3".
    pub message: String,
    /// Stdio: how the process ended (`exit status: 3`, `signal: 9 (SIGKILL)`), when it did.
    pub exit_status: Option<String>,
    /// Stdio: the last lines it wrote to stderr (at most 20, each at most 512 bytes).
    pub stderr_tail: Vec<String>,
}

impl McpFailure {
    pub(crate) fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        McpFailure {
            kind,
            message: message.into(),
            exit_status: None,
            stderr_tail: Vec::new(),
        }
    }
}

impl fmt::Display for McpFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        // The last three lines: usually the error the program printed last.
        let tail = &self.stderr_tail[self.stderr_tail.len().saturating_sub(3)..];
        if !tail.is_empty() {
            write!(f, "; its stderr ended with: {}", tail.join(" | "))?;
        }
        Ok(())
    }
}
