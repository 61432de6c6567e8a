//! What the supervisor and the tools share: the status, the live connection and the tools it
//! offers. The supervisor writes; tools and the registry read.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use chrono::Utc;
use rmcp::model::Tool as McpToolSpec;
use rmcp::service::{Peer, RoleClient};
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;

use super::config::McpServerSettings;
use super::names::namespaced;
use super::status::{FailureKind, McpFailure, McpStatus};
use super::tool::McpTool;

/// Most tools offered by one server.
const MAX_TOOLS: usize = 512;

/// One server's shared state.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) settings: McpServerSettings,
    pub(crate) status: watch::Sender<McpStatus>,
    live: Mutex<Live>,
}

#[derive(Debug, Default)]
struct Live {
    conn: Option<Arc<Connection>>,
    tools: Vec<Arc<McpTool>>,
}

impl Shared {
    pub(crate) fn new(settings: McpServerSettings) -> Arc<Self> {
        let (status, _) = watch::channel(McpStatus::Connecting {
            since: Utc::now(),
            restarts: 0,
            last_error: None,
        });
        Arc::new(Shared {
            settings,
            status,
            live: Mutex::new(Live::default()),
        })
    }

    fn live(&self) -> std::sync::MutexGuard<'_, Live> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection, while the server is ready.
    pub(crate) fn connection(&self) -> Option<Arc<Connection>> {
        self.live().conn.clone()
    }

    /// The tools offered now.
    pub(crate) fn tools(&self) -> Vec<Arc<McpTool>> {
        self.live().tools.clone()
    }

    /// Offers `specs` over `conn` (a new connection, or a refreshed list of the current one).
    pub(crate) fn install(
        self: &Arc<Self>,
        conn: &Arc<Connection>,
        mut specs: Vec<McpToolSpec>,
    ) -> usize {
        if specs.len() > MAX_TOOLS {
            tracing::warn!(
                server = %self.settings.name,
                listed = specs.len(),
                kept = MAX_TOOLS,
                "MCP server lists too many tools; keeping the first ones"
            );
            specs.truncate(MAX_TOOLS);
        }
        let remote: Vec<&str> = specs.iter().map(|t| t.name.as_ref()).collect();
        let names = namespaced(&self.settings.name, &remote);
        let tools: Vec<Arc<McpTool>> = specs
            .into_iter()
            .zip(names)
            .map(|(spec, name)| Arc::new(McpTool::new(name, spec, Arc::downgrade(self))))
            .collect();
        let count = tools.len();
        let mut live = self.live();
        live.conn = Some(Arc::clone(conn));
        live.tools = tools;
        count
    }

    /// Withdraws the connection and its tools.
    pub(crate) fn uninstall(&self) {
        let mut live = self.live();
        live.conn = None;
        live.tools.clear();
    }

    /// Publishes a new status.
    pub(crate) fn set_status(&self, status: McpStatus) {
        self.status.send_replace(status);
    }

    /// Why the server offers no connection now, for a model that called one of its tools.
    /// Never its stderr: what a server prints there is for operators (status, logs) only.
    pub(crate) fn down_message(&self) -> String {
        let name = &self.settings.name;
        match &*self.status.borrow() {
            McpStatus::Connecting {
                last_error: None, ..
            } => {
                format!("MCP server `{name}` is starting; try again shortly")
            }
            McpStatus::Connecting {
                last_error: Some(error),
                ..
            } => format!(
                "MCP server `{name}` is down ({}); it is being restarted",
                error.message
            ),
            McpStatus::Failed {
                error, retry_at, ..
            } => {
                let secs = (*retry_at - Utc::now()).num_seconds().max(0);
                format!(
                    "MCP server `{name}` is down: {}; next restart attempt in {secs} s",
                    error.message
                )
            }
            McpStatus::Ready { .. } => {
                format!("MCP server `{name}` is reconnecting; try again shortly")
            }
            McpStatus::Stopped { .. } => format!("MCP server `{name}` was shut down"),
        }
    }
}

/// One session with the server. Tools hold it for the length of a call; the supervisor marks
/// it dead when the server goes away, which ends the calls in flight.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) peer: Peer<RoleClient>,
    died: CancellationToken,
    death: OnceLock<McpFailure>,
    /// Rung by a call that saw the transport fail (HTTP servers have no process to watch).
    broken: Notify,
    /// What that call saw first.
    broken_by: OnceLock<McpFailure>,
}

impl Connection {
    pub(crate) fn new(peer: Peer<RoleClient>) -> Arc<Self> {
        Arc::new(Connection {
            peer,
            died: CancellationToken::new(),
            death: OnceLock::new(),
            broken: Notify::new(),
            broken_by: OnceLock::new(),
        })
    }

    /// Reports that a request failed on the transport with `failure`.
    pub(crate) fn report_broken(&self, failure: McpFailure) {
        let _ = self.broken_by.set(failure);
        self.broken.notify_one();
    }

    /// Resolves with the first transport failure a request reported.
    pub(crate) async fn broken(&self) -> McpFailure {
        self.broken.notified().await;
        self.broken_by.get().cloned().unwrap_or_else(|| {
            McpFailure::new(FailureKind::Transport, "a request failed on the connection")
        })
    }

    /// Marks the session dead because of `failure`.
    pub(crate) fn die(&self, failure: McpFailure) {
        let _ = self.death.set(failure);
        self.died.cancel();
    }

    /// Resolves once the session is dead.
    pub(crate) async fn died(&self) {
        self.died.cancelled().await;
    }

    /// Why the session died, waiting at most `within` for the supervisor to find out.
    pub(crate) async fn death(&self, within: Duration) -> Option<McpFailure> {
        let _ = tokio::time::timeout(within, self.died.cancelled()).await;
        self.death.get().cloned()
    }
}
