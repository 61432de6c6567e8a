//! An MCP server over streamable HTTP on 127.0.0.1, written with rmcp's server side. It records
//! the headers of every request and, when given a token, answers others with 401.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ListToolsResult,
    PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::transport::streamable_http_server::{
    StreamableHttpServerConfig, StreamableHttpService, session::local::LocalSessionManager,
};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Tools `greet` (text) and `fail` (isError).
#[derive(Debug, Clone)]
struct Greeter;

impl ServerHandler for Greeter {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let schema = json!({
            "type": "object",
            "properties": {"name": {"type": "string"}},
            "required": ["name"]
        });
        let serde_json::Value::Object(schema) = schema else {
            unreachable!()
        };
        let empty = serde_json::Map::new();
        Ok(ListToolsResult::with_all_items(vec![
            Tool::new("greet", "Greets someone.", Arc::new(schema)),
            Tool::new("fail", "Always fails.", Arc::new(empty)),
        ]))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let result = match request.name.as_ref() {
            "greet" => {
                let name = request
                    .arguments
                    .as_ref()
                    .and_then(|a| a.get("name"))
                    .and_then(|n| n.as_str())
                    .unwrap_or("nobody");
                CallToolResult::success(vec![ContentBlock::text(format!("hello {name}"))])
            }
            "fail" => CallToolResult::error(vec![ContentBlock::text("no greeting today")]),
            other => return Err(ErrorData::invalid_params(format!("no tool {other}"), None)),
        };
        Ok(result.into())
    }
}

/// A running HTTP MCP server.
#[derive(Debug)]
pub struct HttpServer {
    pub addr: SocketAddr,
    /// Headers of every request received, in order.
    pub seen: Arc<Mutex<Vec<HeaderMap>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl HttpServer {
    /// The endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/mcp", self.addr)
    }

    /// Stops serving: sessions end and the port closes.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.task).await;
    }
}

#[derive(Clone)]
struct Gate {
    token: Option<String>,
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

async fn gate(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    gate.seen.lock().unwrap().push(request.headers().clone());
    if let Some(token) = &gate.token {
        let expected = format!("Bearer {token}");
        let given = request.headers().get(header::AUTHORIZATION);
        if given.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer realm=\"test\"")],
                "unauthorized",
            )
                .into_response();
        }
    }
    next.run(request).await
}

/// Serves on `addr` (port 0: any), requiring `token` when given.
pub async fn serve(addr: SocketAddr, token: Option<&str>) -> HttpServer {
    let stop = CancellationToken::new();
    let service = StreamableHttpService::new(
        || Ok(Greeter),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default().with_cancellation_token(stop.child_token()),
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let state = Gate {
        token: token.map(str::to_owned),
        seen: Arc::clone(&seen),
    };
    let router = axum::Router::new()
        .nest_service("/mcp", service)
        .layer(middleware::from_fn_with_state(state, gate));
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let addr = listener.local_addr().unwrap();
    // Without it, small responses wait for the client's delayed ACK (40 ms a request).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let shutdown = stop.clone();
    let task = tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await
            .unwrap();
    });
    HttpServer {
        addr,
        seen,
        stop,
        task,
    }
}
