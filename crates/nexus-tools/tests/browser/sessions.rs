//! Sessions: one isolated context each, closed when idle or beyond the limit.

use std::time::Duration;

use serde_json::json;

use crate::support::{allowing, chromium, config, ok, serve_site, session, tool};

#[tokio::test]
async fn sessions_do_not_share_cookies() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (alice, _) = session();
    let (bob, _) = session();

    ok(
        &tool,
        &alice,
        json!({"action": "navigate", "url": format!("http://{addr}/set-cookie")}),
    )
    .await;
    let text = ok(
        &tool,
        &alice,
        json!({"action": "navigate", "url": format!("http://{addr}/show-cookie")}),
    )
    .await;
    assert!(text.contains("cookies: flavour=oatmeal"), "{text}");
    let text = ok(
        &tool,
        &bob,
        json!({"action": "navigate", "url": format!("http://{addr}/show-cookie")}),
    )
    .await;
    assert!(text.contains("cookies: none"), "{text}");
    assert_eq!(tool.open_contexts(), 2);
    tool.shutdown().await;
}

#[tokio::test]
async fn idle_context_is_closed_and_its_cookies_forgotten() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let mut config = config(chromium);
    config.idle_timeout_secs = 1;
    let tool = tool(config, allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();

    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/set-cookie")}),
    )
    .await;
    assert_eq!(tool.open_contexts(), 1);
    let pid = tool.browser_pid().await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while tool.open_contexts() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "idle context still open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // With no context left, the browser itself stops; the next call starts it again.
    while tool.browser_pid().await.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "unused browser still running"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(crate::support::processes_in_group(pid).is_empty());
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/show-cookie")}),
    )
    .await;
    assert!(text.contains("cookies: none"), "a fresh context: {text}");
    tool.shutdown().await;
}

#[tokio::test]
async fn least_recently_used_context_is_closed_beyond_max_contexts() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let mut config = config(chromium);
    config.max_contexts = 2;
    let tool = tool(config, allowing(&["127.0.0.0/8"]));
    let (first, _) = session();
    let (second, _) = session();
    let (third, _) = session();
    let set = json!({"action": "navigate", "url": format!("http://{addr}/set-cookie")});
    let show = json!({"action": "navigate", "url": format!("http://{addr}/show-cookie")});

    ok(&tool, &first, set.clone()).await;
    ok(&tool, &second, set.clone()).await;
    ok(&tool, &first, show.clone()).await;
    ok(&tool, &third, show.clone()).await;
    assert_eq!(tool.open_contexts(), 2);
    // `second` was the least recently used: its context (and cookie) is gone, `first` kept its.
    let text = ok(&tool, &first, show.clone()).await;
    assert!(text.contains("cookies: flavour=oatmeal"), "{text}");
    let text = ok(&tool, &second, show).await;
    assert!(text.contains("cookies: none"), "{text}");
    tool.shutdown().await;
}

#[tokio::test]
async fn calls_of_one_session_run_one_at_a_time() {
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
    let clicks = (0..4).map(|_| {
        ok(
            &tool,
            &ctx,
            json!({"action": "click", "selector": "#change"}),
        )
    });
    let reads = (0..4).map(|_| ok(&tool, &ctx, json!({"action": "extract", "selector": "h1"})));
    let (clicks, reads) = tokio::join!(
        futures::future::join_all(clicks),
        futures::future::join_all(reads)
    );
    assert_eq!(clicks.len(), 4);
    assert!(
        reads.iter().all(|t| t == "Hello from the test page"),
        "{reads:?}"
    );
    assert_eq!(tool.open_contexts(), 1);
    tool.shutdown().await;
}
