//! The Firecracker backend of the code sandbox (feature `firecracker`).
//!
//! Each run starts a `firecracker` process with `--api-sock`, configures it over its HTTP API
//! (read-only root drive, vCPUs and memory from the run's limits, vsock, no network interface
//! unless the run may use the network and a tap device is configured), starts the microVM and
//! hands the job to the guest agent (`crates/nexus-tools/firecracker/guest-agent.py`, baked
//! into the rootfs) through Firecracker's host-initiated vsock. The agent runs the code as an
//! unprivileged user under rlimits and a wall-time kill and answers with the output and the
//! files of `/work/out`. The host enforces the wall time (plus a grace), the output and file
//! caps again, cancellation and cleanup: the VM's process group is killed and its sockets are
//! removed on every path out of a run.
//!
//! Modules: `config` (serde configuration and its validated form), `api` (HTTP/1.1 client on
//! the API socket), `vmm` (the process and its cleanup), `boot` (the API sequence and waiting
//! for the guest), `vsock` (handshake and frames), `protocol` (job and result, checked on the
//! host), `sandbox` (the [`Sandbox`](nexus_core::Sandbox) implementation). Nothing here knows
//! the tool that uses it, or the gateway's configuration file.
//!
//! Not implemented: the jailer, warm or snapshot-restored VMs, CPU shares below one vCPU.

mod api;
mod boot;
mod config;
mod protocol;
mod sandbox;
mod vmm;
mod vsock;

pub use config::{FirecrackerConfig, FirecrackerConfigError};
pub use sandbox::FirecrackerSandbox;

/// The guest agent's source, to install into a rootfs (see `docs/tools/firecracker.md`).
pub const GUEST_AGENT: &str = include_str!("../../firecracker/guest-agent.py");
