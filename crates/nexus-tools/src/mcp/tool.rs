//! One tool of an MCP server as a Nexus [`Tool`]: `execute` is a `tools/call` that honours the
//! turn's cancellation (sending `notifications/cancelled`), the deadline and the call timeout,
//! and that ends with a readable error when the server dies during the call.

use std::sync::Weak;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::{Tool, ToolContext, ToolError, ToolOutput};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CancelledNotificationParam, ClientRequest, RequestId,
    ServerResult, Tool as McpToolSpec,
};
use rmcp::service::{PeerRequestOptions, ServiceError};
use serde_json::{Map, Value};

use super::client::{bounded, call_failure};
use super::content::to_output;
use super::state::{Connection, Shared};
use super::status::{FailureKind, McpFailure};

/// Longest description given to the model; a longer one is cut.
const MAX_DESCRIPTION_BYTES: usize = 8 * 1024;

/// How long a call whose connection closed waits for the supervisor to learn why.
const DEATH_REPORT_WAIT: Duration = Duration::from_secs(5);

/// A tool of an MCP server, named `{server}__{tool}`.
#[derive(Debug)]
pub struct McpTool {
    name: String,
    /// The server's own name of the tool; `None` for the stand-in of a tool of a server that is
    /// down, which looks the tool up again when called.
    remote: Option<String>,
    description: String,
    schema: Value,
    server: Weak<Shared>,
}

impl McpTool {
    pub(crate) fn new(name: String, spec: McpToolSpec, server: Weak<Shared>) -> Self {
        let mut description = spec
            .description
            .as_deref()
            .or(spec.title.as_deref())
            .map_or_else(
                || format!("The `{}` tool of an MCP server.", spec.name),
                str::to_owned,
            );
        if description.len() > MAX_DESCRIPTION_BYTES {
            let mut cut = MAX_DESCRIPTION_BYTES;
            while !description.is_char_boundary(cut) {
                cut -= 1;
            }
            description.truncate(cut);
        }
        let mut schema = Map::clone(&spec.input_schema);
        schema
            .entry("type")
            .or_insert_with(|| Value::String("object".to_owned()));
        McpTool {
            name,
            remote: Some(spec.name.into_owned()),
            description,
            schema: Value::Object(schema),
            server,
        }
    }

    /// A stand-in for `name` while its server is down: calling it says so.
    pub(crate) fn stand_in(name: String, server: Weak<Shared>) -> Self {
        McpTool {
            name,
            remote: None,
            description: "A tool of an MCP server that is down.".to_owned(),
            schema: serde_json::json!({"type": "object"}),
            server,
        }
    }

    /// The server's own name of the tool.
    pub fn remote_name(&self) -> Option<&str> {
        self.remote.as_deref()
    }
}

fn error_output(message: String) -> ToolOutput {
    ToolOutput {
        content: message,
        is_error: true,
        attachments: Vec::new(),
    }
}

#[async_trait]
impl Tool for McpTool {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn schema(&self) -> &Value {
        &self.schema
    }

    async fn execute(&self, ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let Some(server) = self.server.upgrade() else {
            return Ok(error_output(format!(
                "the MCP server of `{}` was shut down",
                self.name
            )));
        };
        let Some(conn) = server.connection() else {
            return Ok(error_output(server.down_message()));
        };
        let remote = match &self.remote {
            Some(remote) => remote.clone(),
            // The stand-in of a server that came back: the tool as it is now, if it still is.
            None => match server.tools().into_iter().find(|t| t.name == self.name) {
                Some(tool) => return tool.execute(ctx, params).await,
                None => {
                    return Ok(error_output(format!(
                        "MCP server `{}` has no tool `{}`",
                        server.settings.name, self.name
                    )));
                }
            },
        };
        let Value::Object(arguments) = params else {
            return Err(ToolError::InvalidArguments {
                message: "arguments must be a JSON object".to_owned(),
            });
        };
        let timeout = server.settings.call_timeout.min(ctx.remaining());
        call(&server, &conn, remote, arguments, &ctx, timeout).await
    }
}

/// One `tools/call` over `conn`.
async fn call(
    server: &Shared,
    conn: &Connection,
    remote: String,
    arguments: Map<String, Value>,
    ctx: &ToolContext,
    timeout: Duration,
) -> Result<ToolOutput, ToolError> {
    let name = &server.settings.name;
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(
        CallToolRequestParams::new(remote).with_arguments(arguments),
    ));
    let handle = match conn
        .peer
        .send_cancellable_request(request, PeerRequestOptions::no_options())
        .await
    {
        Ok(handle) => handle,
        Err(err) => return Ok(lost(name, conn, err).await),
    };
    let id = handle.id.clone();
    tokio::select! {
        response = handle.await_response() => match response {
            Ok(ServerResult::CallToolResult(result)) => {
                to_output(result, ctx.artifacts.as_ref()).await
            }
            Ok(_) => Ok(error_output(format!(
                "MCP server `{name}` answered the call with something else than a tool result"
            ))),
            Err(ServiceError::McpError(err)) => Ok(error_output(format!(
                "MCP server `{name}` refused the call: {}",
                bounded(&err.message)
            ))),
            Err(err) => Ok(lost(name, conn, err).await),
        },
        () = conn.died() => Ok(died_during_call(name, conn).await),
        () = ctx.cancel.cancelled() => {
            cancel(conn, id, "the user cancelled the turn").await;
            Err(ToolError::Cancelled)
        }
        () = tokio::time::sleep(timeout) => {
            cancel(conn, id, "the call timed out").await;
            Err(ToolError::Timeout { after: timeout })
        }
    }
}

/// Tells the server to stop working on request `id`.
async fn cancel(conn: &Connection, id: RequestId, reason: &str) {
    let notice = CancelledNotificationParam::new(Some(id), Some(reason.to_owned()));
    // Bounded: a server that does not read its input must not hold the turn.
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.peer.notify_cancelled(notice)).await;
}

/// The result of a call whose connection failed with `err`.
async fn lost(name: &str, conn: &Connection, err: ServiceError) -> ToolOutput {
    let failure = call_failure(err);
    if failure.kind == FailureKind::Transport {
        // HTTP servers have no process to watch: the supervisor learns of it from the call.
        conn.report_broken(failure);
        return died_during_call(name, conn).await;
    }
    error_output(format!("MCP server `{name}`: {}", failure.message))
}

/// The result of a call whose server died before it answered.
async fn died_during_call(name: &str, conn: &Connection) -> ToolOutput {
    let failure = conn.death(DEATH_REPORT_WAIT).await;
    error_output(match failure {
        Some(McpFailure {
            exit_status: Some(status),
            ..
        }) => {
            format!("MCP server `{name}` exited ({status}) during the call; it is being restarted")
        }
        Some(failure) => {
            format!("MCP server `{name}` failed during the call ({failure}); it is being restarted")
        }
        None => format!(
            "the connection to MCP server `{name}` failed during the call; it is being restarted"
        ),
    })
}
