//! Helpers: the stdio server's configuration, waiting for a status, calling a tool.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::{ToolContext, ToolOutput};
use nexus_tools::mcp::{McpServer, McpServerConfig, McpServerSettings, McpStatus};
use nexus_tools::testing::{self, MemoryArtifacts};
use secrecy::SecretString;
use serde_json::Value;

/// How long any state may take to be reached.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Whether `python3` runs here. Missing: a failure under CI, a skip note otherwise.
pub fn have_python() -> bool {
    let ok = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 is needed by the MCP stdio tests (Debian package python3-minimal)"
        );
        eprintln!("skipped: python3 is not installed");
    }
    ok
}

/// The stdio test server as `name`, with extra environment variables.
pub fn stdio_config(name: &str, env: &[(&str, &str)]) -> McpServerConfig {
    McpServerConfig {
        name: name.to_owned(),
        command: Some("python3".to_owned()),
        args: vec![concat!(env!("CARGO_MANIFEST_DIR"), "/tests/mcp/stdio_server.py").to_owned()],
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), SecretString::from((*v).to_owned())))
            .collect(),
        ..McpServerConfig::default()
    }
}

/// Starts the server of `config`.
pub fn start(config: McpServerConfig) -> Arc<McpServer> {
    McpServer::start(McpServerSettings::try_from(config).unwrap())
}

/// Waits until the status satisfies `pred`, and returns it.
pub async fn wait_until(
    server: &McpServer,
    what: &str,
    pred: impl Fn(&McpStatus) -> bool,
) -> McpStatus {
    let mut rx = server.watch_status();
    match tokio::time::timeout(PATIENCE, rx.wait_for(|s| pred(s))).await {
        Ok(Ok(status)) => status.clone(),
        _ => panic!(
            "timed out waiting for {what}; status: {:?}",
            server.status()
        ),
    }
}

/// Waits until the server is ready.
pub async fn ready(server: &McpServer) -> McpStatus {
    wait_until(server, "ready", McpStatus::is_ready).await
}

/// A fresh context with its artifacts.
pub fn context() -> (ToolContext, Arc<MemoryArtifacts>) {
    let artifacts = MemoryArtifacts::new();
    (testing::context(artifacts.clone()), artifacts)
}

/// Calls `{server}__{tool}` directly.
pub async fn call(server: &McpServer, tool: &str, args: Value) -> ToolOutput {
    let (ctx, _) = context();
    call_with(server, tool, args, ctx).await
}

/// Calls `{server}__{tool}` with `ctx`.
pub async fn call_with(
    server: &McpServer,
    tool: &str,
    args: Value,
    ctx: ToolContext,
) -> ToolOutput {
    let name = format!("{}__{tool}", server.name());
    let tool = server
        .tool(&name)
        .unwrap_or_else(|| panic!("no tool {name}"));
    tool.execute(ctx, args).await.unwrap()
}

/// Whether a process runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Kills a process with SIGKILL.
pub fn kill(pid: u32) {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
    rustix::process::kill_process(pid, rustix::process::Signal::KILL).unwrap();
}
