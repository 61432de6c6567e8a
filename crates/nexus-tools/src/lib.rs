//! Nexus tools: what agents act through.
//!
//! - [`executor`]: the registry of tools and the execution of one call (lookup, argument
//!   checks against the schema, deadline, cancellation, output cap). Every failure becomes a
//!   result the model can read.
//! - [`net`]: the network guard every tool that reaches out uses: loopback, private,
//!   link-local, cloud-metadata and other non-public addresses are refused after DNS
//!   resolution and on every redirect, unless the operator allowlists them.
//! - [`code`]: the `code` tool, running the model's Python or shell code in a sandbox.
//! - `docker` (feature `docker`): the Docker backend of the sandbox.
//! - [`testing`]: in-memory stand-ins for tests.

pub mod code;
#[cfg(feature = "docker")]
pub mod docker;
pub mod executor;
pub mod net;
pub mod testing;

pub use code::{CodeConfig, CodeConfigError, CodeTool};
#[cfg(feature = "docker")]
pub use docker::{DockerConfig, DockerConfigError, DockerSandbox};
pub use executor::{
    SOURCE_PREFIX, SOURCE_SEPARATOR, ToolLimits, ToolRegistry, ToolSource, cap_output,
    check_arguments, execute,
};
pub use net::{Cidr, GuardError, NetworkGuard, Refused, classify};
