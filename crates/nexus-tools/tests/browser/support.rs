//! What the browser tests share: the Chromium to use, pages served on loopback, calls.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect};
use axum::routing::{get, post};
use nexus_core::{Tool, ToolContext, ToolError, ToolOutput};
use nexus_tools::testing::{self, MemoryArtifacts};
use nexus_tools::{BrowserConfig, BrowserTool, Cidr, NetworkGuard};
use serde_json::Value;

/// The variable naming the Chromium executable the tests run.
pub const CHROMIUM_ENV: &str = "NEXUS_TEST_CHROMIUM";

/// The Chromium to test with; `None` (after a note) to skip. Under `CI=true` a missing one
/// fails the test.
pub fn chromium() -> Option<PathBuf> {
    match std::env::var_os(CHROMIUM_ENV) {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => panic!(
            "{CHROMIUM_ENV} is not set: run `eval \"$(scripts/services/chromium.sh)\"` first"
        ),
        _ => {
            eprintln!(
                "skipped: {CHROMIUM_ENV} is not set (eval \"$(scripts/services/chromium.sh)\")"
            );
            None
        }
    }
}

/// A configuration for tests: the Chromium under test, a small viewport.
pub fn config(chromium: PathBuf) -> BrowserConfig {
    BrowserConfig {
        executable: Some(chromium),
        viewport_width: 800,
        viewport_height: 600,
        ..BrowserConfig::default()
    }
}

/// A guard that lets pages reach `ranges` (e.g. `127.0.0.0/8`).
pub fn allowing(ranges: &[&str]) -> NetworkGuard {
    NetworkGuard::allowing(ranges.iter().map(|r| r.parse::<Cidr>().unwrap()).collect())
}

/// A tool over the Chromium under test, with `guard`.
pub fn tool(config: BrowserConfig, guard: NetworkGuard) -> BrowserTool {
    BrowserTool::new(config, guard).unwrap()
}

/// A context of a fresh session, with its artifacts.
pub fn session() -> (ToolContext, Arc<MemoryArtifacts>) {
    let artifacts = MemoryArtifacts::new();
    (testing::context(artifacts.clone()), artifacts)
}

/// Calls the tool with `args`.
pub async fn call(
    tool: &BrowserTool,
    ctx: &ToolContext,
    args: Value,
) -> Result<ToolOutput, ToolError> {
    tool.execute(ctx.clone(), args).await
}

/// Calls the tool and expects a successful result.
pub async fn ok(tool: &BrowserTool, ctx: &ToolContext, args: Value) -> String {
    let out = call(tool, ctx, args.clone()).await.unwrap();
    assert!(!out.is_error, "{args} failed: {}", out.content);
    out.content
}

/// Calls the tool and expects a failure result the model can read.
pub async fn failure(tool: &BrowserTool, ctx: &ToolContext, args: Value) -> String {
    let out = call(tool, ctx, args.clone()).await.unwrap();
    assert!(out.is_error, "{args} should have failed: {}", out.content);
    out.content
}

/// What the test site saw.
#[derive(Debug, Default)]
pub struct Seen {
    /// Bodies of form submissions.
    pub forms: Mutex<Vec<String>>,
    /// Requests to `/secret`.
    pub secrets: AtomicUsize,
}

impl Seen {
    pub fn secrets(&self) -> usize {
        self.secrets.load(Ordering::SeqCst)
    }
}

const HOME: &str = r#"<!doctype html><html><head><title>Test page</title></head><body>
<h1>Hello from the test page</h1>
<p id="out">before</p>
<button id="change" onclick="document.getElementById('out').textContent = 'after the click'">Change</button>
<form method="post" action="/submit"><input id="q" name="q" value="old"><button id="send" type="submit">Send</button></form>
<p id="hidden-target" style="display:none">hidden</p>
</body></html>"#;

const RED: &str = r#"<!doctype html><html><head><title>Red</title>
<style>html, body { margin: 0; background: #ff0000; height: 100%; }</style></head><body></body></html>"#;

#[derive(serde::Deserialize)]
struct To {
    to: String,
}

async fn submit(State(seen): State<Arc<Seen>>, body: String) -> Html<String> {
    seen.forms.lock().unwrap().push(body.clone());
    Html(format!(
        "<!doctype html><title>Thanks</title><p>Thanks, got {}</p>",
        body.replace('<', "&lt;")
    ))
}

async fn secret(State(seen): State<Arc<Seen>>) -> impl IntoResponse {
    seen.secrets.fetch_add(1, Ordering::SeqCst);
    ([(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*")], "the secret")
}

async fn show_cookie(headers: HeaderMap) -> Html<String> {
    let cookie = headers
        .get(header::COOKIE)
        .and_then(|c| c.to_str().ok())
        .unwrap_or("none");
    Html(format!(
        "<!doctype html><title>Cookies</title><p>cookies: {cookie}</p>"
    ))
}

/// A page that asks for `to` three ways (fetch, an image, an iframe) and says what fetch got.
async fn reach(Query(To { to }): Query<To>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><title>Reach</title><p id="result">pending</p>
<img src="{to}?img"><iframe src="{to}?frame"></iframe>
<script>
fetch("{to}?fetch").then(r => r.text()).then(t => {{ document.getElementById('result').textContent = 'leaked: ' + t; }},
  e => {{ document.getElementById('result').textContent = 'blocked: ' + e; }});
</script>"#
    ))
}

/// A page that opens a WebSocket to `to` and says whether it opened.
async fn socket(Query(To { to }): Query<To>) -> Html<String> {
    Html(format!(
        r#"<!doctype html><title>Socket</title><p id="result">pending</p>
<script>
const ws = new WebSocket("{to}");
ws.onopen = () => {{ document.getElementById('result').textContent = 'leaked: open'; }};
ws.onerror = () => {{ document.getElementById('result').textContent = 'blocked: error'; }};
</script>"#
    ))
}

/// The test site.
pub fn site(seen: Arc<Seen>) -> Router {
    Router::new()
        .route("/", get(|| async { Html(HOME) }))
        .route("/red", get(|| async { Html(RED) }))
        .route(
            "/tall",
            get(|| async { Html(RED.replace("height: 100%", "height: 2000px")) }),
        )
        .route(
            "/long",
            get(|| async {
                Html(format!(
                    "<!doctype html><title>Long</title><p>{}</p>",
                    "Grüße aus dem Test. ".repeat(500)
                ))
            }),
        )
        .route("/submit", post(submit))
        .route("/secret", get(secret))
        .route(
            "/set-cookie",
            get(|| async {
                (
                    [(header::SET_COOKIE, "flavour=oatmeal; Path=/")],
                    Html("<!doctype html><title>Set</title><p>cookie set</p>"),
                )
            }),
        )
        .route("/show-cookie", get(show_cookie))
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                "too late"
            }),
        )
        .route(
            "/redirect",
            get(|Query(To { to }): Query<To>| async move { Redirect::to(&to).into_response() }),
        )
        .route("/reach", get(reach))
        .route("/socket", get(socket))
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page").into_response() })
        .with_state(seen)
}

/// Serves `router` on `ip` (a loopback address) and a free port.
pub async fn serve(ip: &str, router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// Serves the test site on `ip`.
pub async fn serve_site(ip: &str) -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    (serve(ip, site(Arc::clone(&seen))).await, seen)
}

/// Processes (not zombies) left in process group `pgid`.
pub fn processes_in_group(pgid: u32) -> Vec<String> {
    let mut left = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.len() > 2 && fields[0] != "Z" && fields[2] == pgid.to_string() {
            left.push(head.to_owned());
        }
    }
    left
}
