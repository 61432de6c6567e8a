//! The Chromium process: found on PATH or configured, started headless in its own process
//! group with a fresh profile directory, and killed with its whole group (renderers, zygote,
//! utilities) when stopped or dropped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStderr, Command};

use super::config::BrowserSettings;

/// Executables tried, in order, when none is configured.
pub const DEFAULT_EXECUTABLES: [&str; 4] = [
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// Flags every launch gets (besides the profile, the DevTools port and the window size).
const FLAGS: &[&str] = &[
    "--headless",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--disable-extensions",
    "--disable-breakpad",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
    "--password-store=basic",
    "--use-mock-keychain",
    "--mute-audio",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
];

/// Why Chromium did not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LaunchError {
    /// No executable configured and none found on PATH.
    #[error(
        "no Chromium found (tried {tried} on PATH); install it (Debian: apt-get install chromium) or set [tools.browser] executable"
    )]
    NotFound {
        /// What was looked for.
        tried: String,
    },
    /// The process could not be started or its profile directory created.
    #[error("cannot start {executable}: {message}")]
    Spawn {
        /// The executable.
        executable: PathBuf,
        /// What the system said.
        message: String,
    },
    /// Chromium started but never announced its DevTools socket.
    #[error("{executable} exited or hung before opening its DevTools socket: {output}")]
    NoDevTools {
        /// The executable.
        executable: PathBuf,
        /// The last lines it printed.
        output: String,
    },
}

/// A running Chromium.
#[derive(Debug)]
pub(crate) struct BrowserProcess {
    child: Child,
    pid: u32,
    ws_url: String,
    /// Removed when dropped, after the process group is killed.
    profile: Option<tempfile::TempDir>,
}

impl BrowserProcess {
    /// The process id (and process group id) of the browser.
    pub(crate) fn pid(&self) -> u32 {
        self.pid
    }

    /// The browser's DevTools socket.
    pub(crate) fn ws_url(&self) -> &str {
        &self.ws_url
    }

    /// Waits up to `grace` for the browser to exit on its own (after `Browser.close`), then
    /// kills its process group and removes the profile.
    pub(crate) async fn stop(mut self, grace: Duration) {
        let _ = tokio::time::timeout(grace, self.child.wait()).await;
        self.kill_group();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
        // Children of the group may take a moment to go after SIGKILL; the profile is removed
        // once they did (they write to it).
        for _ in 0..50 {
            if !group_alive(self.pid) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if let Some(profile) = self.profile.take() {
            let _ = tokio::task::spawn_blocking(move || drop(profile)).await;
        }
    }

    fn kill_group(&self) {
        if let Some(pid) = i32::try_from(self.pid)
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
    }
}

impl Drop for BrowserProcess {
    fn drop(&mut self) {
        self.kill_group();
        let _ = self.child.start_kill();
    }
}

/// Whether any process of group `pgid` is left.
pub(crate) fn group_alive(pgid: u32) -> bool {
    i32::try_from(pgid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process_group(pid).is_ok())
}

/// Finds the Chromium executable to run: the configured one, else the first of
/// [`DEFAULT_EXECUTABLES`] on `PATH`.
pub fn find_executable(configured: Option<&Path>) -> Result<PathBuf, LaunchError> {
    let candidates: Vec<&Path> = match configured {
        Some(path) => vec![path],
        None => DEFAULT_EXECUTABLES.iter().map(Path::new).collect(),
    };
    for candidate in &candidates {
        if candidate.components().count() > 1 {
            if is_executable(candidate) {
                return Ok(candidate.to_path_buf());
            }
            continue;
        }
        if let Some(path) = std::env::var_os("PATH") {
            for dir in std::env::split_paths(&path) {
                let full = dir.join(candidate);
                if is_executable(&full) {
                    return Ok(full);
                }
            }
        }
    }
    Err(LaunchError::NotFound {
        tried: candidates
            .iter()
            .map(|c| c.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Starts Chromium and waits (at most `within`) for its DevTools socket.
pub(crate) async fn launch(
    settings: &BrowserSettings,
    extra: &[String],
    within: Duration,
) -> Result<BrowserProcess, LaunchError> {
    let executable = find_executable(settings.executable.as_deref())?;
    let spawn_error = |e: std::io::Error| LaunchError::Spawn {
        executable: executable.clone(),
        message: e.to_string(),
    };
    let profile = tempfile::Builder::new()
        .prefix("nexus-browser-")
        .tempdir()
        .map_err(spawn_error)?;
    let mut command = Command::new(&executable);
    command
        .args(FLAGS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!(
            "--window-size={},{}",
            settings.viewport_width, settings.viewport_height
        ));
    if settings.no_sandbox {
        command.arg("--no-sandbox");
    }
    command.args(extra);
    command
        .arg("about:blank")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command.spawn().map_err(spawn_error)?;
    let pid = child.id().unwrap_or_default();
    let stderr = child.stderr.take();
    let mut process = BrowserProcess {
        child,
        pid,
        ws_url: String::new(),
        profile: Some(profile),
    };
    let Some(stderr) = stderr else {
        return Err(LaunchError::NoDevTools {
            executable,
            output: "no standard error".to_owned(),
        });
    };
    match tokio::time::timeout(within, devtools_url(stderr)).await {
        Ok(Ok(url)) => {
            process.ws_url = url;
            tracing::info!(pid, executable = %executable.display(), "Browser started");
            Ok(process)
        }
        Ok(Err(output)) => Err(LaunchError::NoDevTools { executable, output }),
        Err(_) => Err(LaunchError::NoDevTools {
            executable,
            output: format!("no DevTools socket after {within:?}"),
        }),
    }
}

/// Reads standard error until Chromium prints `DevTools listening on ws://…`; keeps draining
/// it afterwards (a full pipe would block the browser). On failure, the last lines printed.
async fn devtools_url(stderr: ChildStderr) -> Result<String, String> {
    const PREFIX: &str = "DevTools listening on ";
    let mut lines = BufReader::new(stderr).lines();
    let mut last: Vec<String> = Vec::new();
    loop {
        match lines.next_line().await {
            Ok(Some(line)) => {
                if let Some(url) = line.trim().strip_prefix(PREFIX) {
                    let url = url.trim().to_owned();
                    tokio::spawn(async move {
                        while let Ok(Some(line)) = lines.next_line().await {
                            tracing::trace!(line, "Chromium");
                        }
                    });
                    return Ok(url);
                }
                if last.len() == 5 {
                    last.remove(0);
                }
                last.push(line.chars().take(300).collect());
            }
            Ok(None) | Err(_) => return Err(last.join(" | ")),
        }
    }
}
