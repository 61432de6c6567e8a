//! MCP servers as tool sources, against real servers on this machine: a Python MCP server run
//! as a stdio child process (faults on demand), and an rmcp server over streamable HTTP on
//! 127.0.0.1.
#![allow(clippy::unwrap_used, unreachable_pub)]

mod http;
mod http_server;
mod stdio;
mod support;
