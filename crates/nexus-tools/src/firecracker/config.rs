//! The `[tools.code.firecracker]`-style configuration of the backend (serde, documented
//! defaults) and its validated form.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Longest unix socket path (`sun_path` is 108 bytes with the terminating NUL).
const MAX_SOCKET_PATH: usize = 107;
/// What a run adds to `run_dir` for its sockets: `/<uuid>.vsock`.
const SOCKET_NAME_LEN: usize = 1 + 36 + 6;

/// How the Firecracker backend runs code. Every field has a default; `kernel` and `rootfs`
/// must be set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FirecrackerConfig {
    /// The `firecracker` binary: a path, or a bare name looked up on `PATH`.
    /// Default `firecracker`.
    pub binary: PathBuf,
    /// The guest kernel (an uncompressed `vmlinux`). Required.
    pub kernel: PathBuf,
    /// The root file system image (ext4) holding Python 3 and the guest agent, attached
    /// read-only. Required.
    pub rootfs: PathBuf,
    /// The kernel command line. Default `console=ttyS0 reboot=k panic=1 pci=off`.
    pub boot_args: String,
    /// Directory of the per-run API and vsock sockets (created if missing; its path plus 43
    /// bytes must fit a unix socket path). Default `/tmp/nexus-firecracker`.
    pub run_dir: PathBuf,
    /// The jailer binary. Not supported yet: must stay unset (runs are not chrooted,
    /// namespaced or cgroup-limited by a jailer). Default none.
    pub jailer: Option<PathBuf>,
    /// The vsock port the guest agent listens on. Default 52.
    pub vsock_port: u32,
    /// Seconds from starting Firecracker to the guest agent taking the job; past it the run
    /// fails. Default 10.
    pub boot_timeout_secs: u64,
    /// Seconds the host waits past a run's wall time for the guest's answer before it kills
    /// the VM and reports a timeout. Default 2.
    pub kill_grace_secs: u64,
    /// MiB of guest memory added to the run's memory limit for the guest kernel and agent
    /// (the code itself stays under the limit). Default 64.
    pub guest_overhead_mib: u64,
    /// Whether `check` requires `/dev/kvm` to be readable and writable. Turn off only to run
    /// against a fake Firecracker. Default true.
    pub require_kvm: bool,
    /// Most microVMs running at once; further runs wait. Default 4.
    pub max_vms: usize,
    /// Tap device given to runs allowed the network (one such run at a time, since a tap
    /// device serves one VM). Default none: runs asking for the network are refused.
    pub tap_device: Option<String>,
    /// MAC address of the guest's network interface. Default `06:00:AC:10:00:02`.
    pub guest_mac: String,
    /// Appended to `boot_args` for networked runs, e.g.
    /// `ip=172.16.0.2::172.16.0.1:255.255.255.0::eth0:off`. Default empty.
    pub network_boot_args: String,
}

impl Default for FirecrackerConfig {
    fn default() -> Self {
        FirecrackerConfig {
            binary: PathBuf::from("firecracker"),
            kernel: PathBuf::new(),
            rootfs: PathBuf::new(),
            boot_args: "console=ttyS0 reboot=k panic=1 pci=off".to_owned(),
            run_dir: PathBuf::from("/tmp/nexus-firecracker"),
            jailer: None,
            vsock_port: 52,
            boot_timeout_secs: 10,
            kill_grace_secs: 2,
            guest_overhead_mib: 64,
            require_kvm: true,
            max_vms: 4,
            tap_device: None,
            guest_mac: "06:00:AC:10:00:02".to_owned(),
            network_boot_args: String::new(),
        }
    }
}

/// A configuration that cannot be used; names the field and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("firecracker `{field}`: {message}")]
pub struct FirecrackerConfigError {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> FirecrackerConfigError {
    FirecrackerConfigError {
        field,
        message: message.into(),
    }
}

/// A checked [`FirecrackerConfig`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) binary: PathBuf,
    pub(crate) kernel: PathBuf,
    pub(crate) rootfs: PathBuf,
    pub(crate) boot_args: String,
    pub(crate) run_dir: PathBuf,
    pub(crate) vsock_port: u32,
    pub(crate) boot_timeout: Duration,
    pub(crate) kill_grace: Duration,
    pub(crate) guest_overhead_mib: u64,
    pub(crate) require_kvm: bool,
    pub(crate) max_vms: usize,
    pub(crate) tap_device: Option<String>,
    pub(crate) guest_mac: String,
    pub(crate) network_boot_args: String,
}

impl TryFrom<FirecrackerConfig> for Settings {
    type Error = FirecrackerConfigError;

    fn try_from(config: FirecrackerConfig) -> Result<Self, Self::Error> {
        if config.jailer.is_some() {
            return Err(invalid(
                "jailer",
                "the jailer is not supported yet; leave it unset (see docs/tools/firecracker.md)",
            ));
        }
        if config.binary.as_os_str().is_empty() {
            return Err(invalid("binary", "set the path of the firecracker binary"));
        }
        for (field, path) in [("kernel", &config.kernel), ("rootfs", &config.rootfs)] {
            if path.as_os_str().is_empty() {
                return Err(invalid(field, "required: set the path of the guest image"));
            }
        }
        if !config.run_dir.is_absolute() {
            return Err(invalid("run_dir", "must be an absolute path"));
        }
        let room = config.run_dir.as_os_str().len() + SOCKET_NAME_LEN;
        if room > MAX_SOCKET_PATH {
            return Err(invalid(
                "run_dir",
                format!(
                    "too long for unix sockets: at most {} bytes",
                    MAX_SOCKET_PATH - SOCKET_NAME_LEN
                ),
            ));
        }
        if config.vsock_port == 0 {
            return Err(invalid("vsock_port", "must be a port number above 0"));
        }
        if config.boot_timeout_secs == 0 {
            return Err(invalid("boot_timeout_secs", "must be at least 1"));
        }
        if config.max_vms == 0 {
            return Err(invalid("max_vms", "must be at least 1"));
        }
        if let Some(tap) = &config.tap_device
            && (tap.is_empty() || tap.len() > 15 || tap.contains('/'))
        {
            return Err(invalid(
                "tap_device",
                "must be a network interface name (1 to 15 bytes)",
            ));
        }
        if !valid_mac(&config.guest_mac) {
            return Err(invalid("guest_mac", "must look like 06:00:AC:10:00:02"));
        }
        Ok(Settings {
            binary: config.binary,
            kernel: config.kernel,
            rootfs: config.rootfs,
            boot_args: config.boot_args,
            run_dir: config.run_dir,
            vsock_port: config.vsock_port,
            boot_timeout: Duration::from_secs(config.boot_timeout_secs),
            kill_grace: Duration::from_secs(config.kill_grace_secs),
            guest_overhead_mib: config.guest_overhead_mib,
            require_kvm: config.require_kvm,
            max_vms: config.max_vms,
            tap_device: config.tap_device,
            guest_mac: config.guest_mac,
            network_boot_args: config.network_boot_args,
        })
    }
}

fn valid_mac(mac: &str) -> bool {
    let parts: Vec<&str> = mac.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

impl Settings {
    /// The binary to spawn: `binary` itself when it has a directory part, else the first match
    /// on `PATH`.
    pub(crate) fn resolve_binary(&self) -> Option<PathBuf> {
        resolve(&self.binary, std::env::var_os("PATH").as_deref())
    }
}

fn resolve(binary: &Path, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    if binary.components().count() > 1 {
        return binary.is_file().then(|| binary.to_path_buf());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(binary))
        .find(|candidate| candidate.is_file())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn minimal() -> FirecrackerConfig {
        FirecrackerConfig {
            kernel: "/srv/vmlinux".into(),
            rootfs: "/srv/rootfs.ext4".into(),
            ..FirecrackerConfig::default()
        }
    }

    #[test]
    fn defaults_follow_the_documentation() {
        let config: FirecrackerConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config.binary, PathBuf::from("firecracker"));
        assert_eq!(config.boot_args, "console=ttyS0 reboot=k panic=1 pci=off");
        assert_eq!(config.vsock_port, 52);
        assert!(config.require_kvm);
        assert_eq!(config.tap_device, None);
        let settings = Settings::try_from(minimal()).unwrap();
        assert_eq!(settings.boot_timeout, Duration::from_secs(10));
    }

    #[test]
    fn unusable_settings_name_the_field() {
        let missing = Settings::try_from(FirecrackerConfig::default()).unwrap_err();
        assert_eq!(missing.field, "kernel");
        let jailer = FirecrackerConfig {
            jailer: Some("/usr/bin/jailer".into()),
            ..minimal()
        };
        assert_eq!(Settings::try_from(jailer).unwrap_err().field, "jailer");
        let long = FirecrackerConfig {
            run_dir: PathBuf::from(format!("/{}", "d".repeat(80))),
            ..minimal()
        };
        assert_eq!(Settings::try_from(long).unwrap_err().field, "run_dir");
        let mac = FirecrackerConfig {
            guest_mac: "nope".into(),
            ..minimal()
        };
        assert_eq!(Settings::try_from(mac).unwrap_err().field, "guest_mac");
        assert!(serde_json::from_str::<FirecrackerConfig>(r#"{"kernal": "x"}"#).is_err());
    }

    #[test]
    fn a_bare_binary_name_is_looked_up_on_path() {
        let dir = std::env::temp_dir();
        assert_eq!(
            resolve(Path::new("sh"), Some("/bin".as_ref())),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(
            resolve(Path::new("no-such-firecracker"), Some(dir.as_os_str())),
            None
        );
        assert_eq!(resolve(Path::new("/no/such/firecracker"), None), None);
    }
}
