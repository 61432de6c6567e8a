//! Nexus tools: what agents act through.
//!
//! So far this crate holds the network guard every tool that reaches out uses ([`net`]):
//! loopback, private, link-local, cloud-metadata and other non-public addresses are refused
//! after DNS resolution (and must be checked again on every redirect), unless the operator
//! allowlists them. The tool registry and the built-in tools build on it.

pub mod net;

pub use net::{Cidr, GuardError, NetworkGuard, Refused, classify};
