//! Nexus tools: what agents act through.
//!
//! - [`executor`]: the registry of tools and the execution of one call (lookup, argument
//!   checks against the schema, deadline, cancellation, output cap). Every failure becomes a
//!   result the model can read.
//! - `mcp` (feature `mcp`): MCP servers (stdio or streamable HTTP) as sources of tools, each
//!   a connection manager that restarts its server and reports its status.
//! - [`net`]: the network guard every tool that reaches out uses: loopback, private,
//!   link-local, cloud-metadata and other non-public addresses are refused after DNS
//!   resolution and on every redirect, unless the operator allowlists them.
//! - [`code`]: the `code` tool, running the model's Python or shell code in a sandbox.
//! - `docker` (feature `docker`): the Docker backend of the sandbox.
//! - `firecracker` (feature `firecracker`): the code sandbox in Firecracker microVMs.
//! - [`testing`]: in-memory stand-ins for tests.
//! - `browser` (feature `browser`): the headless Chromium tool.
//! - `web` (feature `web`): `web_search` through SearXNG, `web_fetch`, and the guarded HTTP
//!   client they share.

#[cfg(feature = "browser")]
pub mod browser;
pub mod code;
#[cfg(feature = "docker")]
pub mod docker;
pub mod executor;
#[cfg(feature = "firecracker")]
pub mod firecracker;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod net;
pub mod testing;
#[cfg(feature = "web")]
pub mod web;

#[cfg(feature = "browser")]
pub use browser::{BrowserConfig, BrowserConfigError, BrowserTool};
pub use code::{CodeConfig, CodeConfigError, CodeTool};
#[cfg(feature = "docker")]
pub use docker::{DockerConfig, DockerConfigError, DockerSandbox};
pub use executor::{
    SOURCE_PREFIX, SOURCE_SEPARATOR, ToolLimits, ToolRegistry, ToolSource, cap_output,
    check_arguments, execute, narrow,
};
#[cfg(feature = "firecracker")]
pub use firecracker::{FirecrackerConfig, FirecrackerConfigError, FirecrackerSandbox};
pub use net::{Cidr, GuardError, NetworkGuard, Refused, classify};
#[cfg(feature = "web")]
pub use web::{
    FetchError, GuardedClient, GuardedClientOptions, WebConfigError, WebFetch, WebFetchConfig,
    WebSearch, WebSearchConfig,
};
