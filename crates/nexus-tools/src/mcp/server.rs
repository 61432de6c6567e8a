//! [`McpServer`]: one configured MCP server as a [`ToolSource`], with its status and its
//! lifecycle (start at once, connect in the background, shut down).

use std::sync::{Arc, Mutex, PoisonError};

use nexus_core::Tool;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config::McpServerSettings;
use super::state::Shared;
use super::status::McpStatus;
use super::supervisor::supervise;
use super::tool::McpTool;
use crate::executor::{SOURCE_SEPARATOR, ToolSource};

/// A connection manager for one MCP server, whose current tools are offered as
/// `{server}__{tool}`. Register it with [`crate::ToolRegistry::register_source`].
#[derive(Debug)]
pub struct McpServer {
    shared: Arc<Shared>,
    stop: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl McpServer {
    /// Starts managing the server: returns at once and connects in a background task
    /// (`initialize`, `tools/list`), restarting the server whenever it fails. Must be called
    /// within a Tokio runtime.
    pub fn start(settings: McpServerSettings) -> Arc<McpServer> {
        let shared = Shared::new(settings);
        let stop = CancellationToken::new();
        let task = tokio::spawn(supervise(Arc::clone(&shared), stop.clone()));
        Arc::new(McpServer {
            shared,
            stop,
            task: Mutex::new(Some(task)),
        })
    }

    /// The server's name.
    pub fn name(&self) -> &str {
        &self.shared.settings.name
    }

    /// What the server is doing now.
    pub fn status(&self) -> McpStatus {
        self.shared.status.borrow().clone()
    }

    /// Every change of status, starting with the current one (for waiting on a state).
    pub fn watch_status(&self) -> watch::Receiver<McpStatus> {
        self.shared.status.subscribe()
    }

    /// The tool called `name` (a full `{server}__{tool}` name): the live tool while the server
    /// offers it; while the server is down, a stand-in whose calls say that it is down and why.
    /// `None` for names of other sources, and for tools a ready server does not offer.
    pub fn tool(&self, name: &str) -> Option<Arc<dyn Tool>> {
        let rest = name
            .strip_prefix(self.name())?
            .strip_prefix(SOURCE_SEPARATOR)?;
        if rest.is_empty() {
            return None;
        }
        if self.shared.connection().is_some() {
            return self
                .shared
                .tools()
                .into_iter()
                .find(|t| t.name() == name)
                .map(|t| t as Arc<dyn Tool>);
        }
        Some(Arc::new(McpTool::stand_in(
            name.to_owned(),
            Arc::downgrade(&self.shared),
        )))
    }

    /// Stops the background task and the server (a stdio server's process group is
    /// terminated, then killed). Calls in flight end with an error. Idempotent.
    pub async fn shutdown(&self) {
        self.stop.cancel();
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for McpServer {
    fn drop(&mut self) {
        // The task stops the server; a child left behind dies with its handle (kill on drop).
        self.stop.cancel();
    }
}

impl ToolSource for McpServer {
    fn name(&self) -> &str {
        &self.shared.settings.name
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        self.shared
            .tools()
            .into_iter()
            .map(|t| t as Arc<dyn Tool>)
            .collect()
    }

    fn tool(&self, name: &str) -> Option<Arc<dyn Tool>> {
        McpServer::tool(self, name)
    }

    fn status(&self) -> String {
        match McpServer::status(self) {
            McpStatus::Connecting { restarts, .. } => {
                format!("connecting (restarts: {restarts})")
            }
            McpStatus::Ready {
                tools, restarts, ..
            } => format!("ready, {tools} tools (restarts: {restarts})"),
            McpStatus::Failed {
                error, retry_at, ..
            } => format!(
                "failed: {} (retry at {})",
                error.message,
                retry_at.format("%H:%M:%S UTC")
            ),
            McpStatus::Stopped { .. } => "stopped".to_owned(),
        }
    }
}
