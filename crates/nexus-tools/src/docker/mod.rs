//! The Docker backend of the [`Sandbox`](nexus_core::Sandbox): each run in a container with no
//! network (unless allowed), a read-only root, a small in-memory `/work` and `/tmp`, no
//! capabilities, no new privileges, a non-root user, and memory, CPU and process limits.
//!
//! A container's main process only idles; the code runs through `exec`, the request's files
//! go in as a tar on its stdin and `/work/out` comes back as a tar on the stdout of a second
//! exec, which also kills what the run left, reads the OOM-kill counter and resets `/work`
//! for a warm container. Every container is removed by this backend: after the run, on error,
//! timeout and cancellation, by a drop guard when a run is dropped, and by a sweep of the
//! containers carrying this instance's label that it does not hold (at start-up and
//! periodically) and of all of them at shutdown.
//!
//! This module must never know about tools, the model, or configuration files.
//!
//! - `config`: [`DockerConfig`], validated.
//! - `spec`: the container's confinement, labels and the scripts run in it.
//! - `client`: connecting, error classification, containers that always get removed.
//! - `exec`: one exec with capped output, deadline and cancellation.
//! - `archive`: tar in and out.
//! - `run`: one run in a container, collecting files and the OOM signal.
//! - `warm`: the pool of warm containers per session.
//! - `sandbox`: [`DockerSandbox`], the trait implementation.

mod archive;
mod client;
mod config;
mod exec;
mod run;
mod sandbox;
mod spec;
#[cfg(test)]
mod tests;
mod warm;

pub use config::{DEFAULT_IMAGE, DEFAULT_SOCKET, DockerConfig, DockerConfigError};
pub use sandbox::DockerSandbox;
pub use spec::{LABEL_INSTANCE, LABEL_SANDBOX, LABEL_SESSION};
