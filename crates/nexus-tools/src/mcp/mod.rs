//! MCP (Model Context Protocol) servers as sources of tools.
//!
//! Each configured server is an [`McpServer`]: a connection manager that starts the server
//! (a child process speaking MCP on stdio, or a streamable-HTTP endpoint), lists its tools and
//! offers them as Nexus tools named `{server}__{tool}`, refreshes them when the server says they
//! changed, and restarts the server with backoff when it dies, reporting why ([`McpStatus`]).
//! Agents allow all of a server's tools with `mcp:{server}`, or one by its full name.
//!
//! This module owns the client side of MCP only; the configuration file and the wiring into the
//! gateway live in the gateway. It never serves MCP.
//!
//! - [`config`]: what operators write, validated into [`McpServerSettings`].
//! - `names`: server-name rule and tool names (`[a-zA-Z0-9_-]`, ≤ 64, unique, stable).
//! - `client`: the rmcp session (handshake, first `tools/list`, error classification).
//! - `process`: the stdio child (process group, minimal environment, stderr tail, exit status).
//! - `supervisor`: the background task (refresh, death detection, backoff, status).
//! - `tool`: one tool as a [`nexus_core::Tool`]; `content`: results to [`nexus_core::ToolOutput`].

mod backoff;
mod client;
pub mod config;
mod content;
mod names;
mod process;
mod server;
mod state;
mod status;
mod stderr;
mod supervisor;
mod tool;

pub use config::{
    HttpSettings, McpConfigError, McpServerConfig, McpServerSettings, McpTransport, StdioSettings,
};
pub use names::{MAX_SERVER_NAME, MAX_TOOL_NAME};
pub use server::McpServer;
pub use status::{FailureKind, McpFailure, McpStatus};
pub use tool::McpTool;
