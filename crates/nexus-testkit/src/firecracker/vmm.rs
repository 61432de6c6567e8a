//! The state machine of Firecracker's API: pre-boot resources, `InstanceStart`, and the
//! answers (status and `fault_message`) the real API server gives.
//!
//! Messages marked *verbatim* are copied from Firecracker's source (`rpc_interface.rs`,
//! `parsed_request.rs`, `vmm_config/*.rs`); the others follow its format but their wording is
//! not checked against a real binary.

use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use super::resources::{
    ActionInfo, ActionType, BootSource, Drive, MachineConfig, NetworkInterface, VsockConfig,
};

/// *Verbatim* (`VmmActionError::OperationNotSupportedPostBoot`).
pub(crate) const NOT_AFTER_BOOT: &str =
    "The requested operation is not supported after starting the microVM.";
/// *Verbatim* (`VmmActionError::OperationNotSupportedPreBoot`).
pub(crate) const NOT_BEFORE_BOOT: &str =
    "The requested operation is not supported before starting the microVM.";

/// Where the microVM is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InstanceState {
    /// Configuring: pre-boot requests are accepted.
    NotStarted,
    /// `InstanceStart` was accepted.
    Running,
}

impl InstanceState {
    /// The `state` field of `GET /`.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::NotStarted => "Not started",
            InstanceState::Running => "Running",
        }
    }
}

/// What the server does after answering.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Nothing more.
    None,
    /// Boot: run the guest.
    Boot,
    /// The guest was asked to shut down (`SendCtrlAltDel`).
    Shutdown,
}

/// One answer: status, JSON body (none for 204) and the effect.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Option<Value>,
    pub(crate) effect: Effect,
}

impl Answer {
    fn no_content() -> Self {
        Answer {
            status: 204,
            body: None,
            effect: Effect::None,
        }
    }

    fn ok(body: Value) -> Self {
        Answer {
            status: 200,
            body: Some(body),
            effect: Effect::None,
        }
    }

    /// The `fault_message` of an error answer.
    pub(crate) fn fault_message(&self) -> Option<&str> {
        self.body.as_ref()?.get("fault_message")?.as_str()
    }

    pub(crate) fn fault(message: impl Into<String>) -> Self {
        Answer {
            status: 400,
            body: Some(json!({ "fault_message": message.into() })),
            effect: Effect::None,
        }
    }
}

/// The configured resources and the state.
#[derive(Debug)]
pub(crate) struct Vmm {
    pub(crate) id: String,
    pub(crate) version: String,
    pub(crate) state: InstanceState,
    pub(crate) boot_source: Option<BootSource>,
    /// The root device first, like Firecracker's block builder.
    pub(crate) drives: Vec<Drive>,
    vcpu_count: u8,
    mem_size_mib: usize,
    smt: bool,
    track_dirty_pages: bool,
    huge_pages: String,
    cpu_template: Option<String>,
    /// Bound at `PUT /vsock`, like Firecracker's unix backend; taken at boot.
    pub(crate) vsock: Option<(PathBuf, UnixListener)>,
    interfaces: Vec<NetworkInterface>,
}

impl Vmm {
    pub(crate) fn new(id: String, version: String) -> Self {
        Vmm {
            id,
            version,
            state: InstanceState::NotStarted,
            boot_source: None,
            drives: Vec::new(),
            vcpu_count: 1,
            mem_size_mib: 128,
            smt: false,
            track_dirty_pages: false,
            huge_pages: "None".to_owned(),
            cpu_template: None,
            vsock: None,
            interfaces: Vec::new(),
        }
    }

    /// Whether a root block device is configured.
    pub(crate) fn has_root(&self) -> bool {
        self.drives.first().is_some_and(|d| d.is_root_device)
    }

    /// Answers one request.
    pub(crate) fn handle(&mut self, method: &str, path: &str, body: &[u8]) -> Answer {
        let trimmed = path.trim_end_matches('/');
        let segments: Vec<&str> = trimmed.split('/').filter(|s| !s.is_empty()).collect();
        match (method, segments.as_slice()) {
            ("GET", []) => Answer::ok(json!({
                "id": self.id,
                "state": self.state.as_str(),
                "vmm_version": self.version,
                "app_name": "Firecracker",
            })),
            ("GET", ["version"]) => Answer::ok(json!({ "firecracker_version": self.version })),
            ("GET", ["machine-config"]) => Answer::ok(self.machine_config()),
            ("PUT", ["boot-source"]) => self.pre_boot(body, Self::put_boot_source),
            ("PUT", ["drives", id]) => {
                let id = (*id).to_owned();
                self.pre_boot(body, move |vmm, v| vmm.put_drive(&id, v))
            }
            ("PUT", ["machine-config"]) => self.pre_boot(body, Self::put_machine_config),
            ("PUT", ["vsock"]) => self.pre_boot(body, Self::put_vsock),
            ("PUT", ["network-interfaces", id]) => {
                let id = (*id).to_owned();
                self.pre_boot(body, move |vmm, v| vmm.put_interface(&id, v))
            }
            ("PUT", ["actions"]) => self.action(body),
            // *Verbatim* format of `RequestError::InvalidPathMethod`.
            _ => Answer::fault(format!(
                "Invalid request method and/or path: {method} {path}."
            )),
        }
    }

    fn machine_config(&self) -> Value {
        let mut config = json!({
            "vcpu_count": self.vcpu_count,
            "mem_size_mib": self.mem_size_mib,
            "smt": self.smt,
            "track_dirty_pages": self.track_dirty_pages,
            "huge_pages": self.huge_pages,
        });
        if let (Some(template), Some(map)) = (&self.cpu_template, config.as_object_mut()) {
            map.insert("cpu_template".to_owned(), json!(template));
        }
        config
    }

    /// Parses the body and runs `apply` before boot; the post-boot and parse errors of
    /// Firecracker otherwise.
    fn pre_boot<T: for<'de> Deserialize<'de>>(
        &mut self,
        body: &[u8],
        apply: impl FnOnce(&mut Self, T) -> Answer,
    ) -> Answer {
        if self.state != InstanceState::NotStarted {
            return Answer::fault(NOT_AFTER_BOOT);
        }
        match parse(body) {
            Ok(value) => apply(self, value),
            Err(answer) => answer,
        }
    }

    fn put_boot_source(&mut self, config: BootSource) -> Answer {
        if let Err(err) = std::fs::File::open(&config.kernel_image_path) {
            // *Verbatim*: "Boot source error: " + `InvalidKernelPath`.
            return Answer::fault(format!(
                "Boot source error: The kernel file cannot be opened: {err}"
            ));
        }
        self.boot_source = Some(config);
        Answer::no_content()
    }

    fn put_drive(&mut self, id: &str, drive: Drive) -> Answer {
        if id != drive.drive_id {
            // *Verbatim*.
            return Answer::fault("The id from the path does not match the id from the body!");
        }
        let Some(path) = drive.path_on_host.as_deref() else {
            return Answer::fault(
                "Drive config error: Unable to create the virtio block device: missing path_on_host",
            );
        };
        if let Err(err) = std::fs::File::open(Path::new(path)) {
            return Answer::fault(format!(
                "Drive config error: Unable to create the virtio block device: {err}"
            ));
        }
        let position = self
            .drives
            .iter()
            .position(|d| d.drive_id == drive.drive_id);
        if drive.is_root_device && self.has_root() && position != Some(0) {
            // *Verbatim* (`DriveError::RootBlockDeviceAlreadyAdded`).
            return Answer::fault("Drive config error: A root block device already exists!");
        }
        match position {
            Some(index) => {
                self.drives[index] = drive;
                if index != 0 && self.drives[index].is_root_device {
                    self.drives.swap(0, index);
                }
            }
            None if drive.is_root_device => self.drives.insert(0, drive),
            None => self.drives.push(drive),
        }
        Answer::no_content()
    }

    fn put_machine_config(&mut self, config: MachineConfig) -> Answer {
        // *Verbatim* (`MachineConfigError`, vmm_config/machine_config.rs).
        if config.vcpu_count == 0
            || config.vcpu_count > 32
            || (config.smt && config.vcpu_count > 1 && config.vcpu_count % 2 == 1)
        {
            return Answer::fault(
                "Machine config error: The number of vCPUs must be greater than 0, less than 32 \
                 and must be 1 or an even number if SMT is enabled.",
            );
        }
        let huge_pages = config.huge_pages.unwrap_or_else(|| "None".to_owned());
        let divisor = if huge_pages == "2M" { 2 } else { 1 };
        if config.mem_size_mib == 0 || !config.mem_size_mib.is_multiple_of(divisor) {
            return Answer::fault(
                "Machine config error: The memory size (MiB) is either 0, or not a multiple of \
                 the configured page size.",
            );
        }
        self.vcpu_count = config.vcpu_count;
        self.mem_size_mib = config.mem_size_mib;
        self.smt = config.smt;
        self.track_dirty_pages = config.track_dirty_pages;
        self.huge_pages = huge_pages;
        self.cpu_template = config.cpu_template;
        Answer::no_content()
    }

    fn put_vsock(&mut self, config: VsockConfig) -> Answer {
        if config.guest_cid < 3 {
            return Answer::fault(format!(
                "Vsock config error: Cannot create vsock device: guest CID {} is reserved",
                config.guest_cid
            ));
        }
        if let Some((old, listener)) = self.vsock.take() {
            drop(listener);
            let _ = std::fs::remove_file(old);
        }
        match UnixListener::bind(&config.uds_path) {
            Ok(listener) => {
                self.vsock = Some((PathBuf::from(config.uds_path), listener));
                Answer::no_content()
            }
            Err(err) => Answer::fault(format!(
                "Vsock config error: Cannot create backend for vsock device: UnixBind({err:?})"
            )),
        }
    }

    fn put_interface(&mut self, id: &str, iface: NetworkInterface) -> Answer {
        if id != iface.iface_id {
            return Answer::fault("The id from the path does not match the id from the body!");
        }
        let sys = Path::new("/sys/class/net").join(&iface.host_dev_name);
        if iface.host_dev_name.is_empty() || !sys.exists() {
            return Answer::fault(format!(
                "Network config error: Could not create the network device: Open tap device \
                 failed: Error while creating ifreq structure: No such device (os error 19). \
                 Invalid TUN/TAP Backend provided by {}. Check our documentation on setting up \
                 the network devices.",
                iface.host_dev_name
            ));
        }
        self.interfaces.retain(|i| i.iface_id != iface.iface_id);
        self.interfaces.push(iface);
        Answer::no_content()
    }

    fn action(&mut self, body: &[u8]) -> Answer {
        let info: ActionInfo = match parse(body) {
            Ok(info) => info,
            Err(answer) => return answer,
        };
        match (info.action_type, self.state) {
            (ActionType::InstanceStart, InstanceState::NotStarted) => {
                if self.boot_source.is_none() {
                    // *Verbatim* (`StartMicrovmError::MissingKernelConfig`).
                    return Answer::fault(
                        "Start microvm error: Cannot start microvm without kernel configuration.",
                    );
                }
                self.state = InstanceState::Running;
                Answer {
                    status: 204,
                    body: None,
                    effect: Effect::Boot,
                }
            }
            (ActionType::InstanceStart, InstanceState::Running) => Answer::fault(NOT_AFTER_BOOT),
            (ActionType::FlushMetrics | ActionType::SendCtrlAltDel, InstanceState::NotStarted) => {
                Answer::fault(NOT_BEFORE_BOOT)
            }
            (ActionType::FlushMetrics, InstanceState::Running) => Answer::no_content(),
            (ActionType::SendCtrlAltDel, InstanceState::Running) => Answer {
                status: 204,
                body: None,
                effect: Effect::Shutdown,
            },
        }
    }
}

/// Parses a JSON body like Firecracker's API server: an empty body and serde errors are 400s.
fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Answer> {
    if body.is_empty() {
        return Err(Answer::fault("Empty PUT request."));
    }
    serde_json::from_slice(body).map_err(|err| {
        // *Verbatim* format of `RequestError::SerdeJson`.
        Answer::fault(format!(
            "An error occurred when deserializing the json body of a request: {err}."
        ))
    })
}
