//! A fake of Firecracker: its HTTP API on a unix socket, its host side of vsock, and a
//! "guest" program run on the host in place of a microVM.
//!
//! [`FakeFirecracker`] follows `src/firecracker/swagger/firecracker.yaml`: pre-boot resources
//! (`/boot-source`, `/drives/{id}`, `/machine-config`, `/vsock`, `/network-interfaces/{id}`)
//! are accepted only before `InstanceStart` and refused with 400 after it; bodies are parsed
//! with unknown fields refused and the errors answered as `{"fault_message": …}`; `GET /`,
//! `GET /version` and `GET /machine-config` answer like the real API. `PUT /vsock` binds
//! `uds_path`; once started, `CONNECT <port>\n` on it is answered `OK <n>\n` and bridged to the
//! guest program (see `vsock`) — so a real guest agent can be exercised, minus the VM
//! isolation.
//!
//! What it does not do: run a kernel (any existing file is a "kernel"), isolate anything,
//! enforce vCPU or memory sizes, create tap devices, snapshots, balloon, MMDS, metrics, logger.
//!
//! Modules: `config` (guest and faults, also from `FAKE_FIRECRACKER_*`), `vmm` (the API state
//! machine and its answers), `resources` (request bodies), `server` (the HTTP server and effects), `guest` (boot),
//! `vsock` (the host side of vsock), `cli` (Firecracker's command line, for the
//! `fake-firecracker` process). This module must never contain client code.

mod cli;
mod config;
mod guest;
mod resources;
mod server;
mod vmm;
mod vsock;

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use cli::run as run_cli;
pub use config::{FakeFirecrackerConfig, Faults, GuestCommand, Refusal, env};
pub use vmm::InstanceState;

use crate::journal::lock;
use server::Shared;

/// One API request the fake received and how it answered.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedCall {
    /// HTTP method, e.g. `PUT`.
    pub method: String,
    /// Path, e.g. `/machine-config`.
    pub path: String,
    /// The JSON body (`Null` when there was none or it was not JSON).
    pub body: serde_json::Value,
    /// The status answered (204, 200 or 400).
    pub status: u16,
    /// The `fault_message` of an error answer.
    pub fault_message: Option<String>,
}

/// A fake Firecracker process, in-process: serves its API on a unix socket until dropped or
/// until the VM exits.
#[derive(Debug)]
pub struct FakeFirecracker {
    shared: Arc<Shared>,
}

impl FakeFirecracker {
    /// Serves the API on `api_sock` (which must not exist, like Firecracker's `--api-sock`).
    pub async fn start(
        api_sock: impl Into<PathBuf>,
        config: FakeFirecrackerConfig,
    ) -> std::io::Result<Self> {
        Self::start_with_id(api_sock, "anonymous-instance", config).await
    }

    /// Like [`start`](Self::start) with an instance id (`--id`).
    pub async fn start_with_id(
        api_sock: impl Into<PathBuf>,
        id: &str,
        config: FakeFirecrackerConfig,
    ) -> std::io::Result<Self> {
        let api_sock = api_sock.into();
        let listener = tokio::net::UnixListener::bind(&api_sock)?;
        let shared = Shared::new(config, api_sock, id.to_owned())?;
        shared.event(serde_json::json!({ "kind": "process", "pid": std::process::id() }));
        server::serve(Arc::clone(&shared), listener);
        Ok(FakeFirecracker { shared })
    }

    /// The API socket.
    pub fn api_sock(&self) -> &Path {
        &self.shared.api_sock
    }

    /// The requests received, oldest first.
    pub fn requests(&self) -> Vec<RecordedCall> {
        lock(&self.shared.recorded).clone()
    }

    /// The instance state.
    pub fn state(&self) -> InstanceState {
        lock(&self.shared.vmm).state
    }

    /// The process id of the guest program, once booted.
    pub fn guest_pid(&self) -> Option<u32> {
        lock(&self.shared.guest).as_ref().and_then(|g| g.child.id())
    }

    /// Waits until the VM exits (crash fault, guest panic, `SendCtrlAltDel`); its exit code.
    pub async fn exited(&self) -> i32 {
        let mut exit = self.shared.exit.subscribe();
        match exit.wait_for(Option::is_some).await {
            Ok(code) => code.unwrap_or(0),
            Err(_) => 0,
        }
    }

    /// Sends one request through the API state machine without HTTP (recorded like one);
    /// the fault message of a refusal.
    pub fn apply(&self, method: &str, path: &str, body: &serde_json::Value) -> Result<(), String> {
        let answer = server::dispatch(&self.shared, method, path, body.to_string().as_bytes());
        match answer.fault_message() {
            Some(message) if answer.status >= 400 => Err(message.to_owned()),
            _ => Ok(()),
        }
    }

    /// The exit code if the VM already exited.
    pub fn exit_code(&self) -> Option<i32> {
        *self.shared.exit.borrow()
    }
}

impl Drop for FakeFirecracker {
    fn drop(&mut self) {
        self.shared.exit(0);
        let _ = std::fs::remove_file(&self.shared.api_sock);
        if let Some((path, _)) = lock(&self.shared.vmm).vsock.take() {
            let _ = std::fs::remove_file(path);
        }
    }
}
