//! The Nexus server: the gRPC service `nexus.v1.Gateway`, the HTTP endpoints (health,
//! readiness, metrics, download links), configuration, first-start bootstrap and the wiring of
//! store, security, providers and runtime.
//!
//! This crate and `nexus-cli` are the only ones that know about configuration files. It must
//! never contain agent logic, wire formats of providers or SQL: it composes the crates that do.

pub mod config;

/// Generated gRPC types and stubs of `proto/nexus/v1/gateway.proto`.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    missing_debug_implementations
)]
pub mod pb {
    tonic::include_proto!("nexus.v1");

    /// The encoded file descriptor set, for gRPC reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("nexus_descriptor");
}

pub mod auth;
pub mod bootstrap;
pub mod channel_config;
pub mod channels;
pub mod error;
pub mod grpc;
pub mod http;
pub mod models;
pub mod server;
pub mod tool_config;
pub mod tools;
mod validate;
