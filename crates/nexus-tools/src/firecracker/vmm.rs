//! One Firecracker process: spawned in a process group of its own with `--api-sock`, its
//! console drained into a short tail for error messages, and always torn down — the group
//! killed, the process reaped, both sockets removed — by [`Vmm::teardown`] or, if the run is
//! dropped half-way, by `Drop`.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustix::process::{Pid, Signal, kill_process_group};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, Command};
use tokio::time::Instant;

use super::api::ApiClient;

/// Bytes of console output kept for error messages.
const TAIL_BYTES: usize = 2048;
/// How often the API socket is polled while Firecracker starts.
const SOCKET_POLL: Duration = Duration::from_millis(5);
/// How long an exit message waits for the last output.
const DRAIN_WAIT: Duration = Duration::from_millis(300);
/// How long teardown waits for the killed process to be reaped.
const REAP_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the VM could not be brought up.
#[derive(Debug)]
pub(crate) enum StartError {
    /// The process exited before its API answered.
    Exited(String),
    /// The API socket did not appear in time.
    Timeout,
}

/// The last bytes a process wrote to stdout and stderr.
#[derive(Debug, Default)]
struct Tail(VecDeque<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend(bytes);
        let excess = self.0.len().saturating_sub(TAIL_BYTES);
        self.0.drain(..excess);
    }
}

/// A running Firecracker process and the sockets it owns.
#[derive(Debug)]
pub(crate) struct Vmm {
    child: Child,
    pgid: Option<Pid>,
    pub(crate) api_sock: PathBuf,
    pub(crate) vsock: PathBuf,
    tail: Arc<Mutex<Tail>>,
    drains: Vec<tokio::task::JoinHandle<()>>,
    exit: Option<ExitStatus>,
}

impl Vmm {
    /// Starts `binary --api-sock <run_dir>/<id>.sock --id <id>` in a new process group, with
    /// an empty environment but `PATH`.
    pub(crate) fn spawn(binary: &Path, run_dir: &Path, id: &str) -> std::io::Result<Vmm> {
        let api_sock = run_dir.join(format!("{id}.sock"));
        let vsock = run_dir.join(format!("{id}.vsock"));
        let mut command = Command::new(binary);
        command
            .arg("--api-sock")
            .arg(&api_sock)
            .arg("--id")
            .arg(id)
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(path) = std::env::var_os("PATH") {
            command.env("PATH", path);
        }
        let mut child = command.spawn()?;
        let pgid = child
            .id()
            .and_then(|pid| i32::try_from(pid).ok())
            .and_then(Pid::from_raw);
        let tail = Arc::new(Mutex::new(Tail::default()));
        let mut drains = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            drains.push(tokio::spawn(drain(stdout, Arc::clone(&tail))));
        }
        if let Some(stderr) = child.stderr.take() {
            drains.push(tokio::spawn(drain(stderr, Arc::clone(&tail))));
        }
        Ok(Vmm {
            child,
            pgid,
            api_sock,
            vsock,
            tail,
            drains,
            exit: None,
        })
    }

    /// The process id (for logs and tests).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.pgid.and_then(|p| u32::try_from(p.as_raw_pid()).ok())
    }

    /// Connects to the API once the socket is served, watching for an early exit.
    pub(crate) async fn connect_api(&mut self, deadline: Instant) -> Result<ApiClient, StartError> {
        loop {
            if let Some(status) = self.try_exit() {
                return Err(StartError::Exited(self.describe_exit(status).await));
            }
            if self.api_sock.exists()
                && let Ok(client) = ApiClient::connect(&self.api_sock).await
            {
                return Ok(client);
            }
            if Instant::now() >= deadline {
                return Err(StartError::Timeout);
            }
            tokio::time::sleep(SOCKET_POLL).await;
        }
    }

    /// The exit status if the process already ended.
    pub(crate) fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit
    }

    /// Waits for the process to end (for `select!` against the work that needs it alive).
    pub(crate) async fn wait_exit(&mut self) -> ExitStatus {
        if let Some(status) = self.exit {
            return status;
        }
        match self.child.wait().await {
            Ok(status) => {
                self.exit = Some(status);
                status
            }
            // The status cannot be read: treat the process as alive until teardown.
            Err(_) => std::future::pending().await,
        }
    }

    /// `firecracker exited (exit status: 1); last output: …` for error messages, once the
    /// last output is read (or after a short wait: the guest may still hold the pipes).
    pub(crate) async fn describe_exit(&mut self, status: ExitStatus) -> String {
        let drains = std::mem::take(&mut self.drains);
        let _ = tokio::time::timeout(DRAIN_WAIT, futures_join(drains)).await;
        let tail = self.tail();
        if tail.is_empty() {
            format!("firecracker exited ({status})")
        } else {
            format!("firecracker exited ({status}); last output: {tail}")
        }
    }

    /// The last console and log output, trimmed.
    pub(crate) fn tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(PoisonError::into_inner);
        let bytes: Vec<u8> = tail.0.iter().copied().collect();
        String::from_utf8_lossy(&bytes).trim().to_owned()
    }

    /// Kills the process group, reaps the process and removes the sockets.
    pub(crate) async fn teardown(mut self) {
        self.kill();
        if self.exit.is_none()
            && let Ok(Ok(status)) = tokio::time::timeout(REAP_TIMEOUT, self.child.wait()).await
        {
            self.exit = Some(status);
        }
        self.remove_sockets();
    }

    fn kill(&mut self) {
        if let Some(pgid) = self.pgid {
            // The group outlives its leader while any member lives: kill it even after an exit.
            let _ = kill_process_group(pgid, Signal::KILL);
        }
        let _ = self.child.start_kill();
    }

    fn remove_sockets(&self) {
        for path in [&self.api_sock, &self.vsock] {
            let _ = std::fs::remove_file(path);
        }
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        // With the process alive only when a run is dropped half-way; tokio reaps a killed
        // `kill_on_drop` child in the background. Members of its group may outlive it.
        self.kill();
        self.remove_sockets();
    }
}

async fn futures_join(handles: Vec<tokio::task::JoinHandle<()>>) {
    for handle in handles {
        let _ = handle.await;
    }
}

async fn drain(mut output: impl AsyncRead + Unpin, tail: Arc<Mutex<Tail>>) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = output.read(&mut buf).await {
        if n == 0 {
            break;
        }
        tail.lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::{TAIL_BYTES, Tail};

    #[test]
    fn tail_keeps_the_last_bytes() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; TAIL_BYTES]);
        tail.push(b"end");
        assert_eq!(tail.0.len(), TAIL_BYTES);
        assert!(tail.0.iter().rev().take(3).eq(b"dne".iter()));
    }
}
