//! The network guard inside the browser: what the model asks for and what pages ask for.

use std::time::Duration;

use nexus_tools::NetworkGuard;
use serde_json::json;

use crate::support::{allowing, chromium, config, failure, ok, serve_site, session, tool};

#[tokio::test]
async fn default_guard_refuses_loopback_and_non_web_urls() {
    let Some(chromium) = chromium() else { return };
    let (addr, seen) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), NetworkGuard::public_only());
    let (ctx, _) = session();

    let err = failure(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/secret")}),
    )
    .await;
    assert!(
        err.starts_with("refused:") && err.contains("loopback"),
        "{err}"
    );
    let err = failure(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://localhost:{}/secret", addr.port())}),
    )
    .await;
    assert!(
        err.starts_with("refused:") && err.contains("loopback"),
        "{err}"
    );
    for url in [
        "file:///etc/passwd",
        "chrome://version",
        "data:text/html,<p>hi</p>",
        "javascript:alert(1)",
    ] {
        let err = failure(&tool, &ctx, json!({"action": "navigate", "url": url})).await;
        assert!(
            err.starts_with("refused: only http and https"),
            "{url}: {err}"
        );
    }
    assert_eq!(seen.secrets(), 0);
    assert_eq!(
        tool.browser_pid().await,
        None,
        "refused before the browser is asked"
    );
    tool.shutdown().await;
}

/// The "public" site is served on 127.0.0.2, the only range the guard allows; 127.0.0.1
/// stands for an internal service.
#[tokio::test]
async fn redirect_to_loopback_or_metadata_is_refused() {
    let Some(chromium) = chromium() else { return };
    let (public, _) = serve_site("127.0.0.2").await;
    let (internal, seen) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.2/32"]));
    let (ctx, _) = session();

    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{public}/")}),
    )
    .await;
    assert!(text.contains("Hello from the test page"), "{text}");

    let to = format!("http://{internal}/secret");
    let err = failure(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{public}/redirect?to={to}")}),
    )
    .await;
    assert!(
        err.starts_with("refused:") && err.contains("loopback"),
        "{err}"
    );
    let to = "http://169.254.169.254/latest/meta-data/";
    let err = failure(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{public}/redirect?to={to}")}),
    )
    .await;
    assert!(
        err.starts_with("refused:") && err.contains("metadata"),
        "{err}"
    );
    assert_eq!(seen.secrets(), 0, "the internal service was reached");
    tool.shutdown().await;
}

#[tokio::test]
async fn subresources_frames_and_fetch_to_refused_addresses_are_blocked() {
    let Some(chromium) = chromium() else { return };
    let (public, public_seen) = serve_site("127.0.0.2").await;
    let (internal, seen) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.2/32"]));
    let (ctx, _) = session();

    let to = format!("http://{internal}/secret");
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{public}/reach?to={to}")}),
    )
    .await;
    assert!(text.contains("blocked"), "{text}");
    let result = poll_result(&tool, &ctx).await;
    assert!(result.starts_with("blocked:"), "{result}");
    assert_eq!(seen.secrets(), 0, "the internal service was reached");

    // The same page reaching an allowed address works: the guard is what blocked.
    let to = format!("http://{public}/secret");
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{public}/reach?to={to}")}),
    )
    .await;
    let result = poll_result(&tool, &ctx).await;
    assert_eq!(result, "leaked: the secret");
    assert!(
        public_seen.secrets() >= 2,
        "fetch, image and frame reached the allowed site"
    );
    tool.shutdown().await;
}

async fn poll_result(tool: &nexus_tools::BrowserTool, ctx: &nexus_core::ToolContext) -> String {
    for _ in 0..50 {
        let text = ok(
            tool,
            ctx,
            json!({"action": "extract", "selector": "#result"}),
        )
        .await;
        if text != "pending" {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page's fetch never finished");
}

/// WebSocket handshakes are requests too: one to a refused address never connects.
#[tokio::test]
async fn websocket_to_a_refused_address_is_blocked() {
    let Some(chromium) = chromium() else { return };
    let (public, _) = serve_site("127.0.0.2").await;
    let internal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal_addr = internal.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&connections);
    tokio::spawn(async move {
        while let Ok((_socket, _)) = internal.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    let tool = tool(config(chromium), allowing(&["127.0.0.2/32"]));
    let (ctx, _) = session();

    let to = format!("ws://{internal_addr}/socket");
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{public}/socket?to={to}")}),
    )
    .await;
    let result = poll_result(&tool, &ctx).await;
    assert!(result.starts_with("blocked"), "{result}");
    assert_eq!(
        connections.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the internal service was reached"
    );
    tool.shutdown().await;
}
