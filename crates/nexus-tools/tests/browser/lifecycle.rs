//! Deadlines, cancellation, crashes and shutdown.

use std::time::Duration;

use nexus_core::ToolError;
use serde_json::json;

use crate::support::{
    allowing, call, chromium, config, ok, processes_in_group, serve_site, session, tool,
};

#[tokio::test]
async fn action_past_its_timeout_returns_a_timeout() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let mut config = config(chromium);
    config.action_timeout_secs = 3;
    let tool = tool(config, allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    // Start the browser first, so the timeout is the slow page's. On a loaded machine the
    // start alone may take longer than 3 s: it goes on after a call gives up, and a later call
    // finds the browser running.
    let home = json!({"action": "navigate", "url": format!("http://{addr}/")});
    let mut started = false;
    for _ in 0..10 {
        if call(&tool, &ctx, home.clone())
            .await
            .is_ok_and(|out| !out.is_error)
        {
            started = true;
            break;
        }
    }
    assert!(started, "the browser never started");

    let started = tokio::time::Instant::now();
    let err = call(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/slow")}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ToolError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );

    // A call's own deadline wins when it is shorter.
    let mut short = ctx.clone();
    short.deadline = tokio::time::Instant::now() + Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let err = call(
        &tool,
        &short,
        json!({"action": "navigate", "url": format!("http://{addr}/slow")}),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ToolError::Timeout { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );

    // The session goes on.
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;
    assert!(text.contains("Hello from the test page"), "{text}");
    tool.shutdown().await;
}

#[tokio::test]
async fn cancelled_call_stops_promptly() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;

    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = tokio::time::Instant::now();
    let err = call(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/slow")}),
    )
    .await
    .unwrap_err();
    assert_eq!(err, ToolError::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    tool.shutdown().await;
}

#[tokio::test]
async fn shutdown_leaves_no_chromium_process() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;
    let pid = tool.browser_pid().await.unwrap();
    assert!(
        processes_in_group(pid).len() > 1,
        "a browser with its helper processes"
    );

    tool.shutdown().await;
    let left = processes_in_group(pid);
    assert!(left.is_empty(), "left behind: {left:?}");
    let err = call(&tool, &ctx, json!({"action": "extract"}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("shut down"), "{err}");
}

#[tokio::test]
async fn browser_that_died_is_started_again() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;
    let pid = tool.browser_pid().await.unwrap();
    assert!(pid > 1);
    // The browser process alone: its helpers go with it.
    std::process::Command::new("kill")
        .args(["-s", "KILL", &pid.to_string()])
        .status()
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;
    assert!(text.contains("Hello from the test page"), "{text}");
    let again = tool.browser_pid().await.unwrap();
    assert_ne!(again, pid);
    tool.shutdown().await;
    assert!(processes_in_group(again).is_empty());
}
