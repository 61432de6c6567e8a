//! The "guest": what runs once `InstanceStart` is accepted. After the boot delay the guest
//! program starts on the host in a directory of its own (its console, like a guest's serial
//! console, is the fake's stdout); without a root device the "kernel" panics and the VM exits.

use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use tokio::process::{Child, Command};

use super::server::Shared;

/// A running guest program and the directory it listens and works in.
#[derive(Debug)]
pub(crate) struct RunningGuest {
    pub(crate) child: Child,
    pub(crate) dir: tempfile::TempDir,
}

/// Boots: waits the boot delay, arms the crash fault, starts the guest program.
pub(crate) async fn boot(shared: Arc<Shared>) {
    if let Some(after) = shared.config.faults.crash_after_start {
        let crash = Arc::clone(&shared);
        shared.spawn(async move {
            tokio::time::sleep(after).await;
            eprintln!("[fake-firecracker] injected fault: crashing after start");
            crash.exit(1);
        });
    }
    tokio::time::sleep(shared.config.boot_delay).await;
    let has_root = crate::journal::lock(&shared.vmm).has_root();
    if !has_root {
        // What a Linux guest does without a root file system; with `panic=1 reboot=k` it
        // reboots, and Firecracker exits when its guest reboots.
        let _ = writeln!(
            std::io::stdout(),
            "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)"
        );
        shared.exit(0);
        return;
    }
    let Some(command) = shared.config.guest.clone() else {
        return;
    };
    match start(&command.program, &command.args).await {
        Ok(guest) => {
            let dir = guest.dir.path().to_path_buf();
            if let Some(pid) = guest.child.id() {
                shared.event(serde_json::json!({ "kind": "guest", "pid": pid }));
            }
            *crate::journal::lock(&shared.guest) = Some(guest);
            *crate::journal::lock(&shared.ports.dir) = Some(dir);
        }
        Err(err) => {
            eprintln!(
                "[fake-firecracker] cannot start the guest {}: {err}",
                command.program.display()
            );
            shared.exit(1);
        }
    }
}

async fn start(program: &PathBuf, args: &[String]) -> std::io::Result<RunningGuest> {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::Builder::new()
        .prefix("fake-firecracker-guest-")
        .tempdir()?;
    // The guest program may drop to an unprivileged user that must reach its work dir.
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))?;
    let child = Command::new(program)
        .args(args)
        .arg("--unix-dir")
        .arg(dir.path())
        .arg("--work-dir")
        .arg(dir.path().join("work"))
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .arg("--die-with-parent")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()?;
    Ok(RunningGuest { child, dir })
}
