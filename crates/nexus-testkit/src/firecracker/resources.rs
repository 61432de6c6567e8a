//! The bodies of Firecracker's pre-boot requests, as its API server parses them: unknown
//! fields refused, required fields required (field names from the swagger definitions).

use serde::Deserialize;
use serde_json::Value;

/// `PUT /boot-source` (`BootSourceConfig`, unknown fields refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct BootSource {
    pub(crate) kernel_image_path: String,
    #[allow(dead_code)]
    pub(crate) initrd_path: Option<String>,
    #[allow(dead_code)]
    pub(crate) boot_args: Option<String>,
}

/// `PUT /drives/{id}` (virtio-block fields).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Drive {
    pub(crate) drive_id: String,
    pub(crate) path_on_host: Option<String>,
    pub(crate) is_root_device: bool,
    #[allow(dead_code)]
    pub(crate) partuuid: Option<String>,
    #[allow(dead_code)]
    pub(crate) is_read_only: Option<bool>,
    #[allow(dead_code)]
    pub(crate) cache_type: Option<String>,
    #[allow(dead_code)]
    pub(crate) io_engine: Option<String>,
    #[allow(dead_code)]
    pub(crate) rate_limiter: Option<Value>,
    #[allow(dead_code)]
    pub(crate) socket: Option<String>,
}

/// `PUT /machine-config` (`MachineConfig`, unknown fields refused).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MachineConfig {
    pub(crate) vcpu_count: u8,
    pub(crate) mem_size_mib: usize,
    #[serde(default)]
    pub(crate) smt: bool,
    #[serde(default)]
    pub(crate) cpu_template: Option<String>,
    #[serde(default)]
    pub(crate) track_dirty_pages: bool,
    #[serde(default)]
    pub(crate) huge_pages: Option<String>,
}

/// `PUT /vsock` (`VsockDeviceConfig`; `vsock_id` is deprecated and optional).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct VsockConfig {
    #[allow(dead_code)]
    pub(crate) vsock_id: Option<String>,
    pub(crate) guest_cid: u32,
    pub(crate) uds_path: String,
}

/// `PUT /network-interfaces/{id}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NetworkInterface {
    pub(crate) iface_id: String,
    pub(crate) host_dev_name: String,
    #[allow(dead_code)]
    pub(crate) guest_mac: Option<String>,
    #[allow(dead_code)]
    pub(crate) mtu: Option<u32>,
    #[allow(dead_code)]
    pub(crate) rx_rate_limiter: Option<Value>,
    #[allow(dead_code)]
    pub(crate) tx_rate_limiter: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ActionInfo {
    pub(crate) action_type: ActionType,
}

#[derive(Debug, Deserialize)]
pub(crate) enum ActionType {
    FlushMetrics,
    InstanceStart,
    SendCtrlAltDel,
}
