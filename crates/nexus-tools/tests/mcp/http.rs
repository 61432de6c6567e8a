//! A streamable-HTTP server (rmcp's server side, served on 127.0.0.1 by the test).

use nexus_tools::ToolSource;
use nexus_tools::mcp::{FailureKind, McpServerConfig, McpStatus};
use secrecy::SecretString;
use serde_json::json;

use crate::http_server::serve;
use crate::support::{call, ready, start, wait_until};

fn http_config(url: String) -> McpServerConfig {
    McpServerConfig {
        name: "web".to_owned(),
        url: Some(url),
        ..McpServerConfig::default()
    }
}

#[tokio::test]
async fn http_tools_are_listed_and_calls_round_trip_with_headers_and_bearer_token() {
    let http = serve("127.0.0.1:0".parse().unwrap(), Some("good-token")).await;
    let mut config = http_config(http.url());
    config.headers.insert(
        "X-Api-Key".to_owned(),
        SecretString::from("key-123".to_owned()),
    );
    config.bearer_token = Some(SecretString::from("good-token".to_owned()));
    let server = start(config);
    ready(&server).await;

    let tools = server.tools();
    let names: Vec<&str> = tools.iter().map(|t| t.name()).collect();
    assert_eq!(names, ["web__greet", "web__fail"]);
    assert_eq!(tools[0].schema()["required"], json!(["name"]));
    assert_eq!(tools[0].description(), "Greets someone.");
    // A server schema without "type" still describes an object.
    assert_eq!(tools[1].schema()["type"], "object");

    let out = call(&server, "greet", json!({"name": "Ada"})).await;
    assert!(!out.is_error);
    assert_eq!(out.content, "hello Ada");
    let out = call(&server, "fail", json!({})).await;
    assert!(out.is_error);
    assert_eq!(out.content, "no greeting today");
    let out = call(&server, "greet", json!({"name": 1})).await;
    assert_eq!(out.content, "hello nobody");

    let seen = http.seen.lock().unwrap().clone();
    assert!(seen.len() >= 3, "{} requests", seen.len());
    for headers in &seen {
        assert_eq!(headers["x-api-key"], "key-123");
        assert_eq!(headers["authorization"], "Bearer good-token");
    }
    server.shutdown().await;
    http.stop().await;
}

#[tokio::test]
async fn http_a_wrong_token_is_a_clear_failure_status() {
    let http = serve("127.0.0.1:0".parse().unwrap(), Some("good-token")).await;
    let mut config = http_config(http.url());
    config.bearer_token = Some(SecretString::from("stale-token".to_owned()));
    let server = start(config);
    let status = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    let error = status.failure().unwrap();
    assert_eq!(error.kind, FailureKind::Unauthorized);
    assert!(error.message.contains("refused the credentials"), "{error}");
    let out = call(&server, "greet", json!({"name": "x"})).await;
    assert!(out.is_error);
    assert!(
        out.content.contains("refused the credentials"),
        "{}",
        out.content
    );
    server.shutdown().await;
    http.stop().await;
}

#[tokio::test]
async fn http_server_that_goes_away_is_reported_and_reconnected_when_back() {
    let http = serve("127.0.0.1:0".parse().unwrap(), None).await;
    let addr = http.addr;
    let server = start(http_config(http.url()));
    ready(&server).await;
    http.stop().await;

    let out = call(&server, "greet", json!({"name": "x"})).await;
    assert!(out.is_error, "{}", out.content);
    // Whether the call or the supervisor sees the failure first, the model reads why.
    let call_saw_it = out
        .content
        .starts_with("MCP server `web` failed during the call (Transport send error");
    let supervisor_saw_it = out.content.starts_with("MCP server `web` is down");
    assert!(call_saw_it || supervisor_saw_it, "{}", out.content);
    let status = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    assert_eq!(
        status.failure().unwrap().kind,
        FailureKind::Transport,
        "{status:?}"
    );
    assert!(server.tools().is_empty());

    let http = serve(addr, None).await;
    let status = wait_until(&server, "reconnected", |s| {
        s.is_ready() && s.restarts() >= 1
    })
    .await;
    assert!(status.is_ready());
    assert_eq!(
        call(&server, "greet", json!({"name": "again"}))
            .await
            .content,
        "hello again"
    );
    server.shutdown().await;
    http.stop().await;
}

#[tokio::test]
async fn http_server_that_goes_away_while_idle_is_noticed_by_health_pings() {
    let http = serve("127.0.0.1:0".parse().unwrap(), None).await;
    let mut config = http_config(http.url());
    config.health_check_secs = Some(1);
    let server = start(config);
    ready(&server).await;
    http.stop().await;
    let status = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    assert_eq!(
        status.failure().unwrap().kind,
        FailureKind::Transport,
        "{status:?}"
    );
    assert!(server.tools().is_empty());
    server.shutdown().await;
}
