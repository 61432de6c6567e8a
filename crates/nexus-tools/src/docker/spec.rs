//! What a sandbox container is made of: its confinement (the Docker create body), its labels
//! and name, and the shell scripts run in it.
//!
//! A container's main process only idles (and reaps orphans); the code, the files going in
//! and the files coming out all pass through `exec`, because `/work` is a tmpfs that the
//! archive API cannot write and that vanishes when the main process ends.

use std::collections::HashMap;

use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, ResourcesUlimits};
use nexus_core::sandbox::WORK_DIR;
use nexus_core::{ExecLimits, Language, SessionId};

use super::config::Settings;

/// Label on every container this backend creates.
pub const LABEL_SANDBOX: &str = "nexus.sandbox";
/// Label naming the server that created the container (`DockerConfig::instance`).
pub const LABEL_INSTANCE: &str = "nexus.sandbox.instance";
/// Label naming the session a warm container belongs to.
pub const LABEL_SESSION: &str = "nexus.sandbox.session";
/// Prefix of container names.
pub(crate) const NAME_PREFIX: &str = "nexus-sbx-";

/// The main process: sleeps, and `wait` reaps every orphan handed to it (as PID 1 it is the
/// parent of processes whose parent died), so killed processes do not stay as zombies that
/// count against the process limit.
const IDLE: &str = "while :; do sleep 3600 & wait; done";

/// One run: `$1` interpreter, `$2` `1` when a tar of the input files follows on stdin, `$3` the
/// program. Stdin starts with a line holding a nonce, then the tar; the program gets no stdin.
/// Once the program ends the script writes one status line to stderr, `<nonce> oom=<count>
/// out=<0|1>` (the cgroup's OOM-kill counter, cgroup v2 or v1, and whether /work/out holds
/// anything), and exits with the program's code. The nonce never reaches the program, so its
/// output cannot pass for the status by accident.
pub(crate) const RUN: &str = r#"IFS= read -r nonce || exit 125
cd /work || exit 125
if [ "$2" = 1 ]; then tar -x -f - -m --no-same-owner --no-same-permissions || exit 125; fi
exec 0</dev/null
mkdir -p /work/out || exit 125
"$1" -c "$3"
rc=$?
oom=none
for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
  if [ -r "$f" ]; then
    while read -r k v; do if [ "$k" = oom_kill ]; then oom=$v; fi; done < "$f"
    break
  fi
done
out=0
for e in /work/out/* /work/out/.[!.]* /work/out/..?*; do
  if [ -e "$e" ] || [ -L "$e" ]; then out=1; break; fi
done
printf '%s oom=%s out=%s\n' "$nonce" "$oom" "$out" >&2
exit $rc"#;

/// Reading a run's files: `$1` most bytes of one returned file. Kills what the run left
/// running (`kill -1` spares PID 1 and the caller) so the files hold still, reports the OOM-kill
/// counter on stderr (`oom_kill N`), reports files too large to return, and writes a tar of the
/// regular files of /work/out (symlinks are not followed) to stdout.
pub(crate) const COLLECT: &str = r#"kill -9 -1 2>/dev/null
kill -9 -1 2>/dev/null
for f in /sys/fs/cgroup/memory.events /sys/fs/cgroup/memory/memory.oom_control; do
  if [ -r "$f" ]; then grep '^oom_kill ' "$f" >&2; break; fi
done
if cd /work/out 2>/dev/null; then
  if [ -n "$(find . -type f -size +"$1"c -print 2>/dev/null | head -n 1)" ]; then echo nexus-files-skipped >&2; fi
  find . -type f -size -"$(($1 + 1))"c -print0 2>/dev/null | tar --null --no-recursion --hard-dereference -T - -c -f -
fi
exit 0"#;

/// Making a warm container ready for the session's next run: kills what the run left running,
/// empties /work, /tmp and /dev/shm. Exit 3 when something is left.
pub(crate) const RESET: &str = r#"kill -9 -1 2>/dev/null
kill -9 -1 2>/dev/null
cd /
chmod -R u+rwX /work /tmp /dev/shm 2>/dev/null
find /work /tmp /dev/shm -mindepth 1 -delete 2>/dev/null
if [ -n "$(find /work /tmp /dev/shm -mindepth 1 -print 2>/dev/null | head -n 1)" ]; then exit 3; fi
exit 0"#;

/// What a container was made with; a warm container serves a run only of the same shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Shape {
    pub(crate) network: bool,
    pub(crate) memory_bytes: u64,
    pub(crate) nano_cpus: i64,
    pub(crate) pids: u32,
    pub(crate) disk_bytes: u64,
}

impl Shape {
    pub(crate) fn new(network: bool, limits: &ExecLimits) -> Self {
        Shape {
            network,
            memory_bytes: limits.memory_bytes,
            nano_cpus: (limits.cpus * 1e9).round() as i64,
            pids: limits.pids,
            disk_bytes: limits.disk_bytes,
        }
    }
}

/// A new container name: `nexus-sbx-<uuid>`.
pub(crate) fn container_name() -> String {
    format!("{NAME_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

fn clamp_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The create body of a sandbox container.
pub(crate) fn create_body(
    settings: &Settings,
    shape: &Shape,
    session: Option<SessionId>,
) -> ContainerCreateBody {
    let mut labels = HashMap::from([
        (LABEL_SANDBOX.to_owned(), "1".to_owned()),
        (LABEL_INSTANCE.to_owned(), settings.instance.clone()),
    ]);
    if let Some(session) = session {
        labels.insert(LABEL_SESSION.to_owned(), session.to_string());
    }
    let tmp = format!(
        "rw,noexec,nosuid,nodev,size={},mode=1777",
        settings.tmp_bytes
    );
    let tmpfs = HashMap::from([
        (
            WORK_DIR.to_owned(),
            format!("rw,exec,nosuid,nodev,size={},mode=1777", shape.disk_bytes),
        ),
        ("/tmp".to_owned(), tmp),
    ]);
    let memory = clamp_i64(shape.memory_bytes);
    let host_config = HostConfig {
        network_mode: Some(if shape.network {
            settings.network.clone()
        } else {
            "none".to_owned()
        }),
        readonly_rootfs: Some(true),
        tmpfs: Some(tmpfs),
        shm_size: Some(clamp_i64(settings.tmp_bytes)),
        ipc_mode: Some("private".to_owned()),
        cap_drop: Some(vec!["ALL".to_owned()]),
        security_opt: Some(vec!["no-new-privileges".to_owned()]),
        memory: Some(memory),
        memory_swap: Some(memory),
        nano_cpus: Some(shape.nano_cpus),
        pids_limit: Some(i64::from(shape.pids)),
        ulimits: Some(vec![ResourcesUlimits {
            name: Some("nofile".to_owned()),
            soft: Some(1024),
            hard: Some(1024),
        }]),
        auto_remove: Some(false),
        privileged: Some(false),
        init: Some(false),
        runtime: settings.runtime.clone(),
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_owned()),
            config: None,
        }),
        ..HostConfig::default()
    };
    ContainerCreateBody {
        image: Some(settings.image.clone()),
        cmd: Some(vec!["sh".to_owned(), "-c".to_owned(), IDLE.to_owned()]),
        entrypoint: Some(Vec::new()),
        user: Some(settings.user.clone()),
        // No working directory here: the engine would create it in the root file system and
        // the tmpfs mounted over it loses its mode (root 0755, unwritable). Execs set it.
        hostname: Some("sandbox".to_owned()),
        env: Some(
            [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "HOME=/tmp",
                "TMPDIR=/tmp",
                "LANG=C.UTF-8",
                "PYTHONUNBUFFERED=1",
                "PYTHONDONTWRITEBYTECODE=1",
            ]
            .map(str::to_owned)
            .to_vec(),
        ),
        labels: Some(labels),
        network_disabled: Some(!shape.network),
        attach_stdin: Some(false),
        attach_stdout: Some(false),
        attach_stderr: Some(false),
        open_stdin: Some(false),
        tty: Some(false),
        host_config: Some(host_config),
        ..ContainerCreateBody::default()
    }
}

/// The command of one run.
pub(crate) fn run_command(language: Language, code: &str, with_files: bool) -> Vec<String> {
    let interpreter = match language {
        Language::Python => "python3",
        Language::Shell => "sh",
    };
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        RUN.to_owned(),
        "nexus-run".to_owned(),
        interpreter.to_owned(),
        if with_files { "1" } else { "0" }.to_owned(),
        code.to_owned(),
    ]
}

/// The command reading a run's files.
pub(crate) fn collect_command(max_file_bytes: u64) -> Vec<String> {
    vec![
        "sh".to_owned(),
        "-c".to_owned(),
        COLLECT.to_owned(),
        "nexus-collect".to_owned(),
        max_file_bytes.to_string(),
    ]
}

/// The command resetting a warm container.
pub(crate) fn reset_command() -> Vec<String> {
    vec!["sh".to_owned(), "-c".to_owned(), RESET.to_owned()]
}
