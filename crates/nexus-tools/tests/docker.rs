//! The Docker sandbox backend against a real Docker engine.
//!
//! Needs `NEXUS_TEST_DOCKER_HOST` (e.g. `unix:///var/run/docker.sock`) and
//! `NEXUS_TEST_SANDBOX_IMAGE` (e.g. `nexus-sandbox:latest`), both printed by
//! `scripts/services/docker.sh`. Without them the tests are skipped, or fail when `CI=true`.
//!
//! Every test uses its own instance label, so tests run concurrently (nextest) and count only
//! their own containers; each ends by checking that none is left.
#![cfg(feature = "docker")]
#![allow(clippy::unwrap_used, unreachable_pub)]

#[path = "docker/support.rs"]
mod support;

#[path = "docker/confinement.rs"]
mod confinement;
#[path = "docker/files.rs"]
mod files;
#[path = "docker/lifecycle.rs"]
mod lifecycle;
#[path = "docker/limits.rs"]
mod limits;
#[path = "docker/tool.rs"]
mod tool;
#[path = "docker/warm.rs"]
mod warm;
