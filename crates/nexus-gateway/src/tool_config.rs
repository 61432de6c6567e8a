//! `[tools]`: which built-in tools the server offers, their settings, the sandbox backend and
//! the MCP servers. Parsed with the rest of the file; the tools themselves are built when the
//! server starts ([`crate::tools::build`]).

use std::time::Duration;

use nexus_tools::code::CodeConfig;
use nexus_tools::mcp::McpServerConfig;
use nexus_tools::web::{WebFetchConfig, WebSearchConfig};
use nexus_tools::{BrowserConfig, DockerConfig};
use serde::Deserialize;

use crate::config::ConfigError;

/// Built-in tools offered when `tools.enable` is not set (`web_search` joins them when its
/// SearXNG URL is set).
pub const DEFAULT_TOOLS: [&str; 3] = ["web_fetch", "code", "browser"];

/// Every built-in tool.
pub const BUILTIN_TOOLS: [&str; 4] = ["web_search", "web_fetch", "code", "browser"];

/// `[tools]` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToolsSection {
    /// Built-in tools offered. Default `["web_fetch", "code", "browser"]`, plus `web_search`
    /// when `tools.web_search.searxng_url` is set. `NEXUS_TOOLS` (comma separated) overrides it.
    pub enable: Option<Vec<String>>,
    /// Wall time of one tool call, in seconds. Default 60 (`runtime.tool_timeout_secs` of
    /// older configurations is still read).
    pub timeout_secs: Option<u64>,
    /// Bytes of one result given to the model; longer results are cut with a note.
    /// Default 32768.
    pub max_output_bytes: Option<usize>,
    /// Non-public networks `web_fetch` and `browser` may reach (CIDR), added to
    /// `tools.web_fetch.allow`. Default none.
    pub allow: Vec<String>,
    /// Where `code` runs.
    pub sandbox: SandboxSection,
    /// Limits of `code` runs.
    pub code: CodeConfig,
    /// `web_fetch` settings.
    pub web_fetch: WebFetchConfig,
    /// `web_search` settings.
    pub web_search: WebSearchConfig,
    /// `browser` settings.
    pub browser: BrowserConfig,
    /// MCP servers, one `[[tools.mcp]]` each.
    pub mcp: Vec<McpServerConfig>,
}

/// `[tools.sandbox]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxSection {
    /// `docker` (default) or `firecracker`.
    pub backend: Option<String>,
    /// `[tools.sandbox.docker]`.
    pub docker: DockerConfig,
    /// `[tools.sandbox.firecracker]` (a build with the `firecracker` feature).
    #[cfg(feature = "firecracker")]
    pub firecracker: Option<nexus_tools::FirecrackerConfig>,
    /// `[tools.sandbox.firecracker]`: this build lacks the `firecracker` feature.
    #[cfg(not(feature = "firecracker"))]
    pub firecracker: Option<toml::Value>,
}

/// The sandbox backend of `code`.
#[derive(Debug, Clone, PartialEq)]
pub enum SandboxBackend {
    /// Containers on a Docker engine.
    Docker(DockerConfig),
    /// Firecracker microVMs.
    #[cfg(feature = "firecracker")]
    Firecracker(nexus_tools::FirecrackerConfig),
}

/// `[tools]` checked: what the server builds at start.
#[derive(Debug, Clone)]
pub struct ToolSettings {
    /// Built-in tools offered.
    pub enabled: Vec<String>,
    /// Wall time of one call.
    pub timeout: Duration,
    /// Bytes of a result given to the model.
    pub max_output_bytes: usize,
    /// Where `code` runs.
    pub backend: SandboxBackend,
    /// Limits of `code` runs.
    pub code: CodeConfig,
    /// `web_fetch` settings, with `tools.allow` merged into its allowlist.
    pub web_fetch: WebFetchConfig,
    /// `web_search` settings.
    pub web_search: WebSearchConfig,
    /// `browser` settings.
    pub browser: BrowserConfig,
    /// MCP servers.
    pub mcp: Vec<McpServerConfig>,
}

impl ToolSettings {
    /// Whether the built-in tool `name` is offered.
    pub fn enabled(&self, name: &str) -> bool {
        self.enabled.iter().any(|n| n == name)
    }
}

/// Checks `[tools]`; `legacy_timeout` is `runtime.tool_timeout_secs`.
pub(crate) fn resolve(
    section: ToolsSection,
    legacy_timeout: Option<u64>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<ToolSettings, ConfigError> {
    let from_env = env("NEXUS_TOOLS").map(|v| {
        v.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
    });
    let enabled = match from_env.or(section.enable) {
        Some(list) => list,
        None => {
            let mut list: Vec<String> = DEFAULT_TOOLS.iter().map(|s| (*s).to_owned()).collect();
            if section.web_search.searxng_url.is_some() {
                list.insert(0, "web_search".to_owned());
            }
            list
        }
    };
    for name in &enabled {
        if !BUILTIN_TOOLS.contains(&name.as_str()) {
            return Err(ConfigError::new(
                "tools.enable / NEXUS_TOOLS",
                format!("unknown built-in tool `{name}`"),
                format!(
                    "Use some of {}; MCP servers go in [[tools.mcp]].",
                    BUILTIN_TOOLS.join(", ")
                ),
            ));
        }
    }
    if enabled.iter().any(|n| n == "web_search") && section.web_search.searxng_url.is_none() {
        return Err(ConfigError::new(
            "tools.web_search.searxng_url",
            "web_search is enabled but no SearXNG instance is configured",
            "Set tools.web_search.searxng_url to your SearXNG's base URL (with JSON enabled in \
             its settings.yml), or leave web_search out of tools.enable.",
        ));
    }
    let timeout_secs = section.timeout_secs.or(legacy_timeout).unwrap_or(60);
    if timeout_secs == 0 {
        return Err(ConfigError::new(
            "tools.timeout_secs",
            "must be at least 1",
            "Give the seconds one tool call may run, e.g. 60.",
        ));
    }
    let max_output_bytes = section.max_output_bytes.unwrap_or(32 * 1024);
    if max_output_bytes < 256 {
        return Err(ConfigError::new(
            "tools.max_output_bytes",
            format!("{max_output_bytes} is too small"),
            "Give at least 256 bytes; the default is 32768.",
        ));
    }
    let backend = backend(section.sandbox)?;
    let mut web_fetch = section.web_fetch;
    for range in section.allow {
        if !web_fetch.allow.contains(&range) {
            web_fetch.allow.push(range);
        }
    }
    web_fetch.allow_ranges().map_err(|e| {
        ConfigError::new(
            "tools.allow",
            e.to_string(),
            "Write CIDR ranges such as 10.20.0.0/16 or single addresses.",
        )
    })?;
    let mut names = std::collections::HashSet::new();
    for server in &section.mcp {
        if !names.insert(server.name.clone()) {
            return Err(ConfigError::new(
                "tools.mcp.name",
                format!("two MCP servers are named `{}`", server.name),
                "Give every [[tools.mcp]] its own name.",
            ));
        }
    }
    Ok(ToolSettings {
        enabled,
        timeout: Duration::from_secs(timeout_secs),
        max_output_bytes,
        backend,
        code: section.code,
        web_fetch,
        web_search: section.web_search,
        browser: section.browser,
        mcp: section.mcp,
    })
}

fn backend(sandbox: SandboxSection) -> Result<SandboxBackend, ConfigError> {
    match sandbox.backend.as_deref().unwrap_or("docker") {
        "docker" => Ok(SandboxBackend::Docker(sandbox.docker)),
        #[cfg(feature = "firecracker")]
        "firecracker" => match sandbox.firecracker {
            Some(config) => Ok(SandboxBackend::Firecracker(config)),
            None => Err(ConfigError::new(
                "tools.sandbox.firecracker",
                "the firecracker backend needs its settings",
                "Add [tools.sandbox.firecracker] with kernel and rootfs (see docs/tools/firecracker.md).",
            )),
        },
        #[cfg(not(feature = "firecracker"))]
        "firecracker" => Err(ConfigError::new(
            "tools.sandbox.backend",
            "this build of Nexus has no Firecracker support",
            "Build with `cargo build --release -p nexus-cli --features firecracker`, or use \
             backend = \"docker\".",
        )),
        other => Err(ConfigError::new(
            "tools.sandbox.backend",
            format!("unknown backend `{other}`"),
            "Use \"docker\" or \"firecracker\".",
        )),
    }
}
