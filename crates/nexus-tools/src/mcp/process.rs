//! A stdio server's child process: started in its own process group with a minimal
//! environment, its stderr's last lines kept, its exit status read, and the whole group
//! stopped when it is done.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use secrecy::ExposeSecret;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use super::config::StdioSettings;
use super::status::{FailureKind, McpFailure};
use super::stderr::StderrTail;

/// Variables the child takes from the server's environment; nothing else is inherited, so
/// provider keys and other secrets of the server never reach it.
const INHERITED_ENV: &[&str] = &[
    "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER", "LANG", "LC_ALL", "TMPDIR", "TZ",
];

/// How long a process that closed its pipes gets to exit before it is called hung.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// A running stdio server.
#[derive(Debug)]
pub(crate) struct Process {
    child: Child,
    /// The child's id, which is also its process group's id.
    group: Option<u32>,
    stderr: Arc<StderrTail>,
    stderr_task: Option<JoinHandle<()>>,
}

impl Process {
    /// Starts `settings.command` for the server `server`; returns it with its stdout and stdin.
    pub(crate) fn spawn(
        server: &str,
        settings: &StdioSettings,
    ) -> Result<(Process, ChildStdout, ChildStdin), McpFailure> {
        let mut cmd = Command::new(&settings.command);
        cmd.args(&settings.args)
            .env_clear()
            .envs(
                INHERITED_ENV
                    .iter()
                    .filter_map(|k| std::env::var_os(k).map(|v| (k, v))),
            )
            .envs(settings.env.iter().map(|(k, v)| (k, v.expose_secret())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        if let Some(cwd) = &settings.cwd {
            cmd.current_dir(cwd);
        }
        let mut child = cmd.spawn().map_err(|e| {
            McpFailure::new(
                FailureKind::Spawn,
                format!("could not start `{}`: {e}", settings.command),
            )
        })?;
        let (Some(stdout), Some(stdin), Some(stderr_pipe)) =
            (child.stdout.take(), child.stdin.take(), child.stderr.take())
        else {
            return Err(McpFailure::new(
                FailureKind::Spawn,
                "the child process has no stdio pipes",
            ));
        };
        let stderr = Arc::new(StderrTail::default());
        let stderr_task = tokio::spawn(Arc::clone(&stderr).collect(server.to_owned(), stderr_pipe));
        let process = Process {
            group: child.id(),
            child,
            stderr,
            stderr_task: Some(stderr_task),
        };
        Ok((process, stdout, stdin))
    }

    /// Waits for the process to exit (cancel-safe).
    pub(crate) async fn wait(&mut self) -> std::io::Result<ExitStatus> {
        self.child.wait().await
    }

    /// The failure of a process that exited with `status`.
    pub(crate) async fn exited(&mut self, status: ExitStatus, during: &str) -> McpFailure {
        let message = if during.is_empty() {
            format!("exited ({status})")
        } else {
            format!("exited ({status}) {during}")
        };
        let mut failure = McpFailure::new(FailureKind::Exited, message);
        failure.exit_status = Some(status.to_string());
        failure.stderr_tail = self.stderr_tail().await;
        failure
    }

    /// Explains `failure` by the process: when it exits within a short grace, the failure is
    /// its exit; otherwise it is killed and `failure` stands. Either way with its stderr.
    pub(crate) async fn explain(&mut self, failure: McpFailure, during: &str) -> McpFailure {
        match tokio::time::timeout(EXIT_GRACE, self.child.wait()).await {
            Ok(Ok(status)) => self.exited(status, during).await,
            Ok(Err(_)) | Err(_) => self.kill_because(failure).await,
        }
    }

    /// Kills the process for `failure`, which gets its stderr.
    pub(crate) async fn kill_because(&mut self, mut failure: McpFailure) -> McpFailure {
        self.kill().await;
        failure.stderr_tail = self.stderr_tail().await;
        failure
    }

    /// The last lines of stderr, once the pipe is drained (or a short while has passed).
    async fn stderr_tail(&mut self) -> Vec<String> {
        if let Some(task) = self.stderr_task.take() {
            // Grandchildren may hold the pipe open: do not wait for them.
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
        self.stderr.lines()
    }

    /// Stops the process group: `SIGTERM`, a short grace, then `SIGKILL`.
    pub(crate) async fn stop(&mut self) {
        signal_group(self.group, Signal::Term);
        if tokio::time::timeout(EXIT_GRACE, self.child.wait())
            .await
            .is_err()
        {
            self.kill().await;
        }
        // Whatever the leader left behind in its group goes too.
        signal_group(self.group, Signal::Kill);
    }

    /// Kills the process group at once and reaps the process.
    pub(crate) async fn kill(&mut self) {
        signal_group(self.group, Signal::Kill);
        let _ = self.child.kill().await;
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // A process dropped while running (a startup cut short by a shutdown): its group goes
        // with it. Only while the leader is unreaped, so the group id cannot have been reused.
        if matches!(self.child.try_wait(), Ok(None)) {
            signal_group(self.group, Signal::Kill);
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Sends `signal` to the process group `group`.
#[cfg(unix)]
fn signal_group(group: Option<u32>, signal: Signal) {
    use rustix::process::{Pid, Signal as Sig, kill_process_group};
    let Some(pid) = group
        .and_then(|id| i32::try_from(id).ok())
        .and_then(Pid::from_raw)
    else {
        return;
    };
    let sig = match signal {
        Signal::Term => Sig::TERM,
        Signal::Kill => Sig::KILL,
    };
    // ESRCH (the group is gone) is the expected outcome once the process exited.
    let _ = kill_process_group(pid, sig);
}

#[cfg(not(unix))]
fn signal_group(_group: Option<u32>, _signal: Signal) {}
