//! Bringing a microVM up for one run: the API calls in Firecracker's order (boot source,
//! read-only root drive, machine size from the limits, the optional tap interface, vsock,
//! `InstanceStart`), then the guest agent's vsock port, retried until the boot deadline.

use std::path::Path;
use std::time::Duration;

use nexus_core::{ExecLimits, SandboxError};
use serde_json::{Value, json};
use tokio::io::BufReader;
use tokio::net::UnixStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{ApiClient, ApiError};
use super::config::Settings;
use super::vmm::{StartError, Vmm};
use super::vsock;

/// The guest's context id (the host is 2; 3 is the first a guest may take).
pub(crate) const GUEST_CID: u32 = 3;
/// Pause between two vsock handshake attempts while the guest boots.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
const MIB: u64 = 1024 * 1024;
/// How long a failed exchange waits to see whether the VM died.
const EXIT_WAIT: Duration = Duration::from_millis(500);

/// vCPUs for a CPU share: rounded up, between 1 and 32 (Firecracker's range).
pub(crate) fn vcpu_count(cpus: f64) -> u32 {
    let rounded = cpus.ceil();
    if !rounded.is_finite() || rounded < 1.0 {
        1
    } else if rounded > 32.0 {
        32
    } else {
        rounded as u32
    }
}

/// Guest memory: the run's memory limit in MiB (rounded up) plus the guest's overhead.
pub(crate) fn mem_size_mib(limits: &ExecLimits, overhead_mib: u64) -> u64 {
    limits.memory_bytes.div_ceil(MIB).max(1) + overhead_mib
}

/// The API requests that configure and start the VM, in order: `(path, body)`.
pub(crate) fn api_sequence(
    settings: &Settings,
    limits: &ExecLimits,
    network: bool,
    vsock_path: &Path,
) -> Result<Vec<(String, Value)>, SandboxError> {
    let kernel = utf8(&settings.kernel, "kernel")?;
    let rootfs = utf8(&settings.rootfs, "rootfs")?;
    let uds_path = utf8(vsock_path, "run_dir")?;
    let mut boot_args = settings.boot_args.clone();
    if network && !settings.network_boot_args.is_empty() {
        boot_args.push(' ');
        boot_args.push_str(&settings.network_boot_args);
    }
    let mut calls = vec![
        (
            "/boot-source".to_owned(),
            json!({ "kernel_image_path": kernel, "boot_args": boot_args }),
        ),
        (
            "/drives/rootfs".to_owned(),
            json!({
                "drive_id": "rootfs",
                "path_on_host": rootfs,
                "is_root_device": true,
                "is_read_only": true,
            }),
        ),
        (
            "/machine-config".to_owned(),
            json!({
                "vcpu_count": vcpu_count(limits.cpus),
                "mem_size_mib": mem_size_mib(limits, settings.guest_overhead_mib),
            }),
        ),
    ];
    if network {
        let tap = settings.tap_device.as_deref().ok_or_else(no_tap)?;
        calls.push((
            "/network-interfaces/eth0".to_owned(),
            json!({ "iface_id": "eth0", "host_dev_name": tap, "guest_mac": settings.guest_mac }),
        ));
    }
    calls.push((
        "/vsock".to_owned(),
        json!({ "guest_cid": GUEST_CID, "uds_path": uds_path }),
    ));
    calls.push((
        "/actions".to_owned(),
        json!({ "action_type": "InstanceStart" }),
    ));
    Ok(calls)
}

/// The error of a networked run without a tap device.
pub(crate) fn no_tap() -> SandboxError {
    SandboxError::Unavailable {
        message: "this run needs the network but the Firecracker backend has no tap device: \
                  set `tap_device` (see docs/tools/firecracker.md) or run without network"
            .to_owned(),
    }
}

fn utf8<'a>(path: &'a Path, field: &str) -> Result<&'a str, SandboxError> {
    path.to_str().ok_or_else(|| SandboxError::Unavailable {
        message: format!("firecracker `{field}` path {} is not UTF-8", path.display()),
    })
}

/// Starts the VM and returns the channel to its guest agent.
pub(crate) async fn boot(
    vmm: &mut Vmm,
    calls: Vec<(String, Value)>,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Result<BufReader<UnixStream>, SandboxError> {
    let deadline = Instant::now() + settings.boot_timeout;
    let mut api = tokio::select! {
        () = cancel.cancelled() => return Err(SandboxError::Cancelled),
        api = vmm.connect_api(deadline) => api.map_err(|e| start_error(e, settings))?,
    };
    for (path, body) in calls {
        let put = tokio::time::timeout_at(deadline, api.put(&path, &body));
        let answer = tokio::select! {
            () = cancel.cancelled() => return Err(SandboxError::Cancelled),
            answer = put => answer,
        };
        match answer {
            Ok(Ok(())) => {}
            Ok(Err(err @ ApiError::Fault { .. })) => {
                return Err(SandboxError::Failed {
                    message: err.to_string(),
                });
            }
            Ok(Err(err @ ApiError::Transport { .. })) => {
                return Err(died(vmm, &err.to_string()).await);
            }
            Err(_) => return Err(died(vmm, &format!("PUT {path} got no answer in time")).await),
        }
    }
    drop::<ApiClient>(api);
    let uds = vmm.vsock.clone();
    let port = settings.vsock_port;
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Err(SandboxError::Cancelled),
            status = vmm.wait_exit() => {
                return Err(SandboxError::Failed { message: vmm.describe_exit(status).await });
            }
            () = tokio::time::sleep_until(deadline) => {
                return Err(SandboxError::Failed {
                    message: format!(
                        "the guest agent did not answer on vsock port {port} within {:?} of \
                         starting Firecracker (is the agent in the rootfs and started at boot?); \
                         console: {}",
                        settings.boot_timeout,
                        vmm.tail()
                    ),
                });
            }
            stream = vsock::connect(&uds, port) => {
                if let Some(stream) = stream {
                    return Ok(stream);
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

fn start_error(err: StartError, settings: &Settings) -> SandboxError {
    match err {
        StartError::Exited(message) => SandboxError::Failed { message },
        StartError::Timeout => SandboxError::Failed {
            message: format!(
                "firecracker did not serve its API socket within {:?}",
                settings.boot_timeout
            ),
        },
    }
}

/// A failure while talking to a VM: with its exit and output when it died (a dying VM closes
/// its sockets a moment before it is seen to exit), `what` alone otherwise.
pub(crate) async fn died(vmm: &mut Vmm, what: &str) -> SandboxError {
    let exit = tokio::time::timeout(EXIT_WAIT, vmm.wait_exit()).await;
    let message = match exit {
        Ok(status) => format!("{what}: {}", vmm.describe_exit(status).await),
        Err(_) => what.to_owned(),
    };
    SandboxError::Failed { message }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_size_follows_the_limits() {
        assert_eq!(vcpu_count(0.5), 1);
        assert_eq!(vcpu_count(1.0), 1);
        assert_eq!(vcpu_count(1.2), 2);
        assert_eq!(vcpu_count(f64::NAN), 1);
        assert_eq!(vcpu_count(100.0), 32);
        let limits = ExecLimits {
            memory_bytes: 256 * MIB + 1,
            ..ExecLimits::default()
        };
        assert_eq!(mem_size_mib(&limits, 64), 257 + 64);
    }
}
