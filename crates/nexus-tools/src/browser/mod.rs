//! The `browser` tool: a headless Chromium the model drives (navigate, click, type, extract,
//! screenshot), one isolated browser context per session.
//!
//! - [`config`]: `[tools.browser]` and its validation.
//! - `launch`: the Chromium process (its own process group, a temporary profile).
//! - `cdp`: a minimal DevTools protocol client over the workspace's WebSocket crate.
//! - `guard`: the SSRF guard inside the browser (CDP Fetch interception of every request).
//! - `proxy`: the SOCKS5 proxy every browser connection goes through, checked by the guard.
//! - `engine`: the shared browser, the contexts of sessions, their limits and idle reaping.
//! - `page`, `actions`: one session's page and what the model asks of it.
//! - [`tool`]: the [`Tool`](nexus_core::Tool) implementation.
//!
//! Nothing here reads configuration files or talks to anything but the local Chromium.

mod actions;
mod cdp;
pub mod config;
mod engine;
mod guard;
mod launch;
mod page;
mod proxy;
pub mod tool;

pub use config::{BrowserConfig, BrowserConfigError};
pub use launch::{DEFAULT_EXECUTABLES, LaunchError, find_executable};
pub use tool::BrowserTool;
