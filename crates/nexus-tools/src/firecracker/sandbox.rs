//! [`FirecrackerSandbox`]: the [`Sandbox`] contract on Firecracker microVMs, one fresh VM per
//! run (nothing is kept warm), torn down on every path out of a run.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::{ExecRequest, ExecResult, Sandbox, SandboxError, SessionId};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::boot::{self, no_tap};
use super::config::{FirecrackerConfig, FirecrackerConfigError, Settings};
use super::protocol::{GuestResult, Job, max_result_frame};
use super::vmm::Vmm;
use super::vsock::{self, ChannelError};

/// Code runs in Firecracker microVMs. Build it with [`FirecrackerSandbox::new`] and hand it
/// to the code tool as an `Arc<dyn Sandbox>`.
#[derive(Debug)]
pub struct FirecrackerSandbox {
    settings: Settings,
    slots: Arc<Semaphore>,
    /// A tap device serves one VM at a time.
    network_slot: Arc<Semaphore>,
    shutdown: CancellationToken,
}

impl FirecrackerSandbox {
    /// A sandbox from a checked configuration. Nothing is touched yet: [`Sandbox::check`]
    /// tells whether the host can run it.
    pub fn new(config: FirecrackerConfig) -> Result<Self, FirecrackerConfigError> {
        let settings = Settings::try_from(config)?;
        Ok(FirecrackerSandbox {
            slots: Arc::new(Semaphore::new(settings.max_vms)),
            network_slot: Arc::new(Semaphore::new(1)),
            settings,
            shutdown: CancellationToken::new(),
        })
    }

    async fn permit(
        semaphore: &Arc<Semaphore>,
        cancel: &CancellationToken,
    ) -> Result<OwnedSemaphorePermit, SandboxError> {
        tokio::select! {
            () = cancel.cancelled() => Err(SandboxError::Cancelled),
            permit = Arc::clone(semaphore).acquire_owned() => permit.map_err(|_| {
                SandboxError::Unavailable { message: "the sandbox is shutting down".to_owned() }
            }),
        }
    }

    async fn run_in_vm(
        &self,
        request: &ExecRequest,
        job: Vec<u8>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        let settings = &self.settings;
        let binary = settings
            .resolve_binary()
            .ok_or_else(|| missing_binary(&settings.binary))?;
        create_run_dir(&settings.run_dir)?;
        let id = uuid::Uuid::new_v4().to_string();
        let mut vmm =
            Vmm::spawn(&binary, &settings.run_dir, &id).map_err(|e| SandboxError::Unavailable {
                message: format!("cannot start {}: {e}", binary.display()),
            })?;
        tracing::debug!(vm = %id, pid = ?vmm.pid(), session = ?request.session, "Firecracker started");
        let outcome = self.drive(&mut vmm, request, job, cancel).await;
        vmm.teardown().await;
        tracing::debug!(vm = %id, ok = outcome.is_ok(), "Firecracker torn down");
        outcome
    }

    async fn drive(
        &self,
        vmm: &mut Vmm,
        request: &ExecRequest,
        job: Vec<u8>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        let settings = &self.settings;
        let limits = &request.limits;
        let calls = boot::api_sequence(settings, limits, request.network, &vmm.vsock)?;
        let mut channel = boot::boot(vmm, calls, settings, cancel).await?;
        let send = tokio::time::timeout(
            settings.boot_timeout,
            vsock::write_frame(&mut channel, &job),
        );
        tokio::select! {
            () = cancel.cancelled() => return Err(SandboxError::Cancelled),
            status = vmm.wait_exit() => return Err(SandboxError::Failed {
                message: format!("while sending the job: {}", vmm.describe_exit(status).await),
            }),
            sent = send => match sent {
                Ok(Ok(())) => {}
                Ok(Err(err)) => return Err(boot::died(vmm, &format!("sending the job: {err}")).await),
                Err(_) => {
                    return Err(boot::died(vmm, "the guest agent did not take the job in time").await);
                }
            },
        }
        let started = Instant::now();
        // The agent kills the code at its wall time; the host kills the VM a grace later.
        let deadline = started + limits.wall_time + settings.kill_grace;
        let read = tokio::time::timeout_at(
            deadline,
            vsock::read_frame(&mut channel, max_result_frame(limits)),
        );
        let frame = tokio::select! {
            () = cancel.cancelled() => return Err(SandboxError::Cancelled),
            status = vmm.wait_exit() => return Err(SandboxError::Failed {
                message: format!("while the job ran: {}", vmm.describe_exit(status).await),
            }),
            frame = read => frame,
        };
        match frame {
            Ok(Ok(frame)) => GuestResult::decode(&frame)?.into_result(limits, started.elapsed()),
            Ok(Err(err @ ChannelError::TooLarge { .. })) => Err(SandboxError::Failed {
                message: err.to_string(),
            }),
            Ok(Err(err)) => Err(boot::died(vmm, &format!("reading the result: {err}")).await),
            Err(_) => {
                tracing::debug!(pid = ?vmm.pid(), "Guest did not answer by the wall time: killing the VM");
                Ok(ExecResult {
                    exit_code: None,
                    timed_out: true,
                    duration: started.elapsed(),
                    ..ExecResult::default()
                })
            }
        }
    }
}

fn missing_binary(binary: &Path) -> SandboxError {
    SandboxError::Unavailable {
        message: format!(
            "the firecracker binary `{}` was not found: install Firecracker \
             (https://github.com/firecracker-microvm/firecracker/releases) or set `binary`",
            binary.display()
        ),
    }
}

/// Creates the run directory private to this user: whoever can reach an API socket controls
/// the VM behind it.
fn create_run_dir(run_dir: &Path) -> Result<(), SandboxError> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(run_dir)
        .map_err(|e| SandboxError::Unavailable {
            message: format!("cannot create run_dir {}: {e}", run_dir.display()),
        })
}

fn check_kvm() -> Result<(), SandboxError> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(SandboxError::Unavailable {
            message: "/dev/kvm does not exist: this host has no KVM (enable virtualization in \
                      the firmware, or nested virtualization for a VM, and load kvm_intel or \
                      kvm_amd)"
                .to_owned(),
        }),
        Err(err) => Err(SandboxError::Unavailable {
            message: format!(
                "/dev/kvm is not readable and writable by this user ({err}): add the user to \
                 the kvm group (`sudo usermod -aG kvm $USER`) or grant it \
                 (`sudo setfacl -m u:$USER:rw /dev/kvm`)"
            ),
        }),
    }
}

#[async_trait]
impl Sandbox for FirecrackerSandbox {
    fn name(&self) -> &'static str {
        "firecracker"
    }

    async fn check(&self) -> Result<(), SandboxError> {
        let settings = &self.settings;
        settings
            .resolve_binary()
            .ok_or_else(|| missing_binary(&settings.binary))?;
        for (field, path) in [("kernel", &settings.kernel), ("rootfs", &settings.rootfs)] {
            if !path.is_file() {
                return Err(SandboxError::Unavailable {
                    message: format!(
                        "the guest {field} {} does not exist: build it (docs/tools/firecracker.md) \
                         or fix `{field}`",
                        path.display()
                    ),
                });
            }
        }
        if settings.require_kvm {
            check_kvm()?;
        }
        create_run_dir(&settings.run_dir)?;
        if let Some(tap) = &settings.tap_device
            && !Path::new("/sys/class/net").join(tap).exists()
        {
            return Err(SandboxError::Unavailable {
                message: format!(
                    "the tap device {tap} does not exist: create it \
                     (`ip tuntap add {tap} mode tap`) or unset `tap_device`"
                ),
            });
        }
        Ok(())
    }

    async fn run(
        &self,
        request: ExecRequest,
        cancel: CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        let job = Job::from_request(&request)?;
        if request.network && self.settings.tap_device.is_none() {
            return Err(no_tap());
        }
        let job = serde_json::to_vec(&job).map_err(|e| SandboxError::Failed {
            message: format!("cannot encode the job: {e}"),
        })?;
        // One token for the caller's cancellation and the sandbox's shutdown.
        let stop = self.shutdown.child_token();
        let _watch = {
            let (cancel, stop) = (cancel.clone(), stop.clone());
            tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async move {
                cancel.cancelled().await;
                stop.cancel();
            }))
        };
        let _slot = Self::permit(&self.slots, &stop).await?;
        let _network = match request.network {
            true => Some(Self::permit(&self.network_slot, &stop).await?),
            false => None,
        };
        self.run_in_vm(&request, job, &stop).await
    }

    /// Nothing is kept warm between runs: every run boots a fresh VM and removes it.
    async fn release(&self, _session: SessionId) {}

    /// Cancels the runs in progress (each kills its VM and removes its sockets) and refuses
    /// new ones.
    async fn shutdown(&self) {
        self.shutdown.cancel();
        self.slots.close();
        self.network_slot.close();
    }
}
