//! How the Firecracker tests run the fake: the backend spawns its configured `binary`, here a
//! small shell script that re-executes *this test binary* with only the
//! `fake_firecracker_process` test selected and the command line in an environment variable;
//! that test hands it to `nexus_testkit::firecracker::run_cli`, the same code as the
//! `fake-firecracker` bin. So every run spawns a real, separate process that takes
//! Firecracker's command line — killable, with a process group — without depending on the
//! testkit bin having been built first (`CARGO_BIN_EXE_*` only exists in testkit's own tests).
//! The fake's knobs (`FAKE_FIRECRACKER_*`) are written into the script, since the backend
//! clears the environment of the process it spawns.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nexus_core::{ExecLimits, ExecRequest, Language};
use nexus_tools::{FirecrackerConfig, FirecrackerSandbox};
use serde_json::Value;

/// Carries the fake's command line from the script to the re-executed test binary.
pub const ARGV_VAR: &str = "NEXUS_TEST_FAKE_FIRECRACKER_ARGV";
/// The test that becomes the fake process (see `fake_firecracker_process`).
pub const ENTRY_TEST: &str = "fake_firecracker_process";

/// The guest agent, as it is installed in a rootfs.
pub fn guest_agent() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("firecracker/guest-agent.py")
}

/// The interpreter of the guest agent: Python 3 is part of the test environment, like it is
/// part of the rootfs.
fn python() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let candidates = std::iter::once(PathBuf::from("/usr/bin/python3"))
        .chain(std::env::split_paths(&path).map(|dir| dir.join("python3")));
    for candidate in candidates {
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("the Firecracker tests need python3 (it runs the guest agent): install python3");
}

/// One test's world: a directory with a kernel and rootfs stand-in, the run directory, the
/// fake's journal, and the wrapper script as the Firecracker binary.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub config: FirecrackerConfig,
}

impl Harness {
    /// A harness whose fake runs the real guest agent, with extra `FAKE_FIRECRACKER_*`
    /// variables (`("HANG_GUEST", "1")`).
    pub fn new(fake_env: &[(&str, &str)]) -> Harness {
        let mut vars: Vec<(String, String)> = vec![(
            "GUEST".to_owned(),
            format!("{} {}", python().display(), guest_agent().display()),
        )];
        vars.extend(
            fake_env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        Self::with_vars(vars, true)
    }

    /// A harness whose fake boots no guest program at all.
    pub fn without_guest() -> Harness {
        Self::with_vars(Vec::new(), true)
    }

    /// A harness whose `binary` is a wrapper script that starts the fake as its child instead
    /// of replacing itself with it: killing the spawned process alone would leave the fake.
    pub fn behind_a_wrapper() -> Harness {
        let guest = format!("{} {}", python().display(), guest_agent().display());
        Self::with_vars(vec![("GUEST".to_owned(), guest)], false)
    }

    fn with_vars(vars: Vec<(String, String)>, exec: bool) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::write(root.join("vmlinux"), b"stand-in kernel").unwrap();
        std::fs::write(root.join("rootfs.ext4"), b"stand-in rootfs").unwrap();
        std::fs::create_dir(root.join("guest-tmp")).unwrap();
        let mut script = String::from("#!/bin/sh\n");
        script.push_str(&format!(
            "export {ARGV_VAR}=\"$(printf '%s\\037' \"$@\")\"\n"
        ));
        for (name, value) in &vars {
            script.push_str(&format!("export FAKE_FIRECRACKER_{name}='{value}'\n"));
        }
        let journal = root.join("journal.jsonl");
        script.push_str(&format!(
            "export FAKE_FIRECRACKER_JOURNAL='{}'\n",
            journal.display()
        ));
        script.push_str(&format!(
            "export TMPDIR='{}'\n",
            root.join("guest-tmp").display()
        ));
        let exe = std::env::current_exe().unwrap();
        script.push_str(&format!(
            "{}'{}' --exact {ENTRY_TEST} --nocapture --test-threads=1 -q\n",
            if exec { "exec " } else { "" },
            exe.display()
        ));
        let binary = root.join("firecracker");
        std::fs::write(&binary, script).unwrap();
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = FirecrackerConfig {
            binary,
            kernel: root.join("vmlinux"),
            rootfs: root.join("rootfs.ext4"),
            run_dir: root.join("run"),
            require_kvm: false,
            ..FirecrackerConfig::default()
        };
        Harness { dir, config }
    }

    /// The sandbox over this harness' configuration.
    pub fn sandbox(&self) -> FirecrackerSandbox {
        FirecrackerSandbox::new(self.config.clone()).unwrap()
    }

    /// The fake's journal lines of `kind` (`request`, `process`, `guest`, `exit`).
    pub fn journal(&self, kind: &str) -> Vec<Value> {
        let text =
            std::fs::read_to_string(self.dir.path().join("journal.jsonl")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == kind)
            .collect()
    }

    /// `(method, path, body)` of each API request, in order.
    pub fn requests(&self) -> Vec<(String, String, Value)> {
        self.journal("request")
            .into_iter()
            .map(|r| {
                let text = |k: &str| r[k].as_str().unwrap_or_default().to_owned();
                (text("method"), text("path"), r["body"].clone())
            })
            .collect()
    }

    /// Asserts that no process of this harness runs any more — the fake, its guest agent, the
    /// code and whatever the code started (found by their environment, which names this
    /// harness' directory) — and that the run directory is empty.
    pub async fn assert_nothing_left(&self) {
        assert!(
            !self.journal("process").is_empty(),
            "the fake never started"
        );
        let marker = self.dir.path().to_str().unwrap().to_owned();
        let mut left = processes_mentioning(&marker);
        for _ in 0..100 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            left = processes_mentioning(&marker);
        }
        assert!(left.is_empty(), "processes still running: {left:?}");
        let files: Vec<_> = std::fs::read_dir(&self.config.run_dir)
            .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(files.is_empty(), "left in run_dir: {files:?}");
    }
}

/// Live (not zombie) processes whose environment contains `marker`, with their command line.
pub fn processes_mentioning(marker: &str) -> Vec<(u32, String)> {
    let mut found = Vec::new();
    let Ok(proc) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in proc.filter_map(Result::ok) {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if running(pid) && String::from_utf8_lossy(&environ).contains(marker) {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            found.push((pid, String::from_utf8_lossy(&cmdline).replace('\0', " ")));
        }
    }
    found
}

/// Whether `pid` exists and is not a zombie (a zombie is dead, waiting for its reaper).
pub fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z')),
        Err(_) => false,
    }
}

/// A Python run with default limits but the given wall time.
pub fn python_request(code: &str, wall_time: Duration) -> ExecRequest {
    ExecRequest {
        language: Language::Python,
        code: code.to_owned(),
        files: Vec::new(),
        network: false,
        limits: ExecLimits {
            wall_time,
            ..ExecLimits::default()
        },
        session: None,
    }
}
