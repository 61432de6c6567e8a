//! The wire side: opening an MCP session over stdio or streamable HTTP with rmcp (handshake
//! and first `tools/list` within the startup timeout), and classifying what fails there.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, Tool as McpToolSpec};
use rmcp::service::{
    ClientInitializeError, NotificationContext, RoleClient, RunningService, ServiceError,
};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientHandler, ServiceExt};
use tokio::sync::Notify;

use super::config::{HttpSettings, McpServerSettings, McpTransport};
use super::process::Process;
use super::status::{FailureKind, McpFailure};

/// Bytes of an error message from a server kept in a status or a tool result.
const MAX_ERROR_TEXT: usize = 500;

/// How long connecting a TCP socket to an HTTP server may take.
const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What the client does with messages the server sends on its own: `tools/list_changed`
/// wakes the supervisor, which lists the tools again.
#[derive(Debug, Clone, Default)]
pub(crate) struct Handler {
    pub(crate) list_changed: Arc<Notify>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("nexus", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// An open MCP session.
pub(crate) struct Session {
    pub(crate) service: RunningService<RoleClient, Handler>,
    /// The child process, for stdio servers.
    pub(crate) process: Option<Process>,
    /// The tools the server listed.
    pub(crate) tools: Vec<McpToolSpec>,
}

/// Starts the server (stdio) or connects to it (HTTP), completes the handshake and lists its
/// tools, all within the startup timeout.
pub(crate) async fn open(
    settings: &McpServerSettings,
    handler: Handler,
) -> Result<Session, McpFailure> {
    let timeout = settings.startup_timeout;
    let timed_out = || {
        McpFailure::new(
            FailureKind::StartupTimeout,
            format!(
                "did not complete the MCP handshake and tools/list within {} s",
                timeout.as_secs()
            ),
        )
    };
    match &settings.transport {
        McpTransport::Stdio(stdio) => {
            let (mut process, stdout, stdin) = Process::spawn(&settings.name, stdio)?;
            let started = tokio::time::timeout(timeout, async {
                let service = handler.serve((stdout, stdin)).await.map_err(init_failure)?;
                let tools = service
                    .peer()
                    .list_all_tools()
                    .await
                    .map_err(call_failure)?;
                Ok::<_, McpFailure>((service, tools))
            })
            .await;
            match started {
                Ok(Ok((service, tools))) => Ok(Session {
                    service,
                    process: Some(process),
                    tools,
                }),
                Ok(Err(failure)) => Err(process.explain(failure, "during startup").await),
                Err(_) => Err(process.kill_because(timed_out()).await),
            }
        }
        McpTransport::Http(http) => {
            let transport = http_transport(http)?;
            let started = tokio::time::timeout(timeout, async {
                let service = handler.serve(transport).await.map_err(init_failure)?;
                let tools = service
                    .peer()
                    .list_all_tools()
                    .await
                    .map_err(call_failure)?;
                Ok::<_, McpFailure>((service, tools))
            })
            .await;
            let (service, tools) = started.map_err(|_| timed_out())??;
            Ok(Session {
                service,
                process: None,
                tools,
            })
        }
    }
}

/// The streamable-HTTP transport over the workspace's reqwest, with the configured headers.
fn http_transport(
    http: &HttpSettings,
) -> Result<StreamableHttpClientTransport<reqwest::Client>, McpFailure> {
    let client = reqwest::Client::builder()
        .connect_timeout(HTTP_CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| {
            McpFailure::new(
                FailureKind::Transport,
                format!("could not build the HTTP client: {e}"),
            )
        })?;
    let headers: HashMap<_, _> = http.headers.iter().cloned().collect();
    let config = StreamableHttpClientTransportConfig::with_uri(http.url.as_str())
        .custom_headers(headers)
        .reinit_on_expired_session(true);
    Ok(StreamableHttpClientTransport::with_client(client, config))
}

/// Classifies a failed handshake.
fn init_failure(err: ClientInitializeError) -> McpFailure {
    if err.is_authorization_required() || err.auth_challenge().is_some() {
        return McpFailure::new(
            FailureKind::Unauthorized,
            "the server refused the credentials (HTTP 401/403): check `bearer_token` and `headers`",
        );
    }
    let kind = match &err {
        ClientInitializeError::TransportError { .. }
        | ClientInitializeError::ConnectionClosed(_) => FailureKind::Transport,
        ClientInitializeError::Cancelled => FailureKind::Transport,
        _ => FailureKind::Protocol,
    };
    McpFailure::new(
        kind,
        format!("MCP handshake failed: {}", bounded(&err.to_string())),
    )
}

/// Classifies a failed request of an established session.
pub(crate) fn call_failure(err: ServiceError) -> McpFailure {
    if err.is_authorization_required() || err.auth_challenge().is_some() {
        return McpFailure::new(
            FailureKind::Unauthorized,
            "the server refused the credentials (HTTP 401/403): check `bearer_token` and `headers`",
        );
    }
    let kind = match &err {
        ServiceError::TransportClosed | ServiceError::TransportSend(_) => FailureKind::Transport,
        _ => FailureKind::Protocol,
    };
    McpFailure::new(kind, bounded(&err.to_string()))
}

/// `text` cut to [`MAX_ERROR_TEXT`] bytes.
pub(crate) fn bounded(text: &str) -> String {
    if text.len() <= MAX_ERROR_TEXT {
        return text.to_owned();
    }
    let mut cut = MAX_ERROR_TEXT;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}…", &text[..cut])
}
