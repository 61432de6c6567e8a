//! A small web server on a chosen loopback address serving the pages the fetch tests need, and
//! helpers to call the tools directly.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use nexus_core::{Tool, ToolContext, ToolError, ToolOutput};
use nexus_tools::testing::{MemoryArtifacts, context};
use nexus_tools::{WebFetch, WebFetchConfig};
use serde_json::Value;

/// What the page server saw.
#[derive(Debug, Default)]
pub struct Seen {
    pub paths: Vec<String>,
    pub user_agents: Vec<String>,
}

/// A page server on `ip:0`. It stops when dropped.
pub struct Pages {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Pages {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub const HTML: &str = "<!DOCTYPE html><html><head><title>Test page</title>\
    <style>body { color: red }</style><script>document.write('<p>injected</p>')</script></head>\
    <body><nav><a href=\"/\">Home</a></nav><h1>Welcome</h1>\
    <p>Read the <a href=\"guide.html\">guide</a> or <a href=\"/about\">about us</a>.</p>\
    <h2>Features</h2><ul><li>fast</li><li>small</li></ul><footer>footer text</footer></body></html>";

impl Pages {
    pub async fn start(ip: Ipv4Addr) -> Pages {
        let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let app = Router::new()
            .route("/docs/page", get(|| async { html(HTML) }))
            .route(
                "/json",
                get(|| async {
                    typed(
                        "application/json",
                        br#"{"name":"nexus","tags":["a","b"]}"#.to_vec(),
                    )
                }),
            )
            .route(
                "/text",
                get(|| async { typed("text/plain", b"line one\n  line two\n".to_vec()) }),
            )
            .route(
                "/png",
                get(|| async { typed("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec()) }),
            )
            .route(
                "/big",
                get(|| async { typed("text/plain", vec![b'a'; 1024 * 1024]) }),
            )
            .route(
                "/latin1",
                get(|| async {
                    typed(
                        "text/html; charset=ISO-8859-1",
                        b"<p>Caf\xe9 cr\xe8me</p>".to_vec(),
                    )
                }),
            )
            .route(
                "/latin1-meta",
                get(|| async {
                    typed(
                        "text/html",
                        b"<html><head><meta charset=\"iso-8859-1\"></head><p>na\xefve</p>".to_vec(),
                    )
                }),
            )
            .route(
                "/slow",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    html("late")
                }),
            )
            .route(
                "/missing",
                get(|| async {
                    (
                        StatusCode::NOT_FOUND,
                        html("<h1>Not Found</h1><p>No such page.</p>"),
                    )
                }),
            )
            .route("/redirect", get(redirect))
            .route("/loop", get(|| async { found("/loop") }))
            .fallback(|| async { html("<p>fallback</p>") })
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&seen),
                record,
            ));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Pages { addr, seen, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn hits(&self) -> usize {
        self.seen.lock().unwrap().paths.len()
    }

    pub fn user_agents(&self) -> Vec<String> {
        self.seen.lock().unwrap().user_agents.clone()
    }
}

async fn record(
    State(seen): State<Arc<Mutex<Seen>>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    {
        let mut seen = seen.lock().unwrap();
        seen.paths.push(request.uri().path().to_owned());
        let ua = request
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        seen.user_agents.push(ua.unwrap_or_default().to_owned());
    }
    next.run(request).await
}

fn typed(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    (headers, body).into_response()
}

fn html(body: &'static str) -> Response {
    typed("text/html; charset=utf-8", body.as_bytes().to_vec())
}

fn found(location: &str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::LOCATION, HeaderValue::from_str(location).unwrap());
    (StatusCode::FOUND, headers).into_response()
}

async fn redirect(Query(q): Query<Vec<(String, String)>>) -> Response {
    let to = q
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    found(&to)
}

/// A test context with the default 60 s deadline.
pub fn ctx() -> ToolContext {
    context(MemoryArtifacts::new())
}

/// `web_fetch` with `config`, its guard built from `config.allow`.
pub fn fetch_tool(config: WebFetchConfig) -> WebFetch {
    let guard = config.network_guard().unwrap();
    WebFetch::new(config, guard).unwrap()
}

/// `web_fetch` allowing `ranges`, otherwise default.
pub fn fetch_allowing(ranges: &[&str]) -> WebFetch {
    fetch_tool(WebFetchConfig {
        allow: ranges.iter().map(|r| (*r).to_owned()).collect(),
        ..WebFetchConfig::default()
    })
}

/// Calls `tool` with `args` in a fresh context.
pub async fn call(tool: &dyn Tool, args: Value) -> Result<ToolOutput, ToolError> {
    tool.execute(ctx(), args).await
}

/// Calls `tool` and expects an output (not a `ToolError`).
pub async fn output(tool: &dyn Tool, args: Value) -> ToolOutput {
    call(tool, args).await.unwrap()
}
