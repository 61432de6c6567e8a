//! A stdio server (the Python test server as a child process).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nexus_core::ToolError;
use nexus_tools::mcp::{FailureKind, McpStatus};
use nexus_tools::testing::MemoryArtifacts;
use nexus_tools::{ToolLimits, ToolRegistry, ToolSource, execute};
use serde_json::{Value, json};

use crate::support::{
    alive, call, call_with, context, have_python, kill, ready, start, stdio_config, wait_until,
};

#[tokio::test]
async fn stdio_tools_are_listed_namespaced_with_their_schemas() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    let McpStatus::Ready {
        tools, restarts, ..
    } = ready(&server).await
    else {
        unreachable!()
    };
    assert_eq!(restarts, 0);
    let listed = server.tools();
    assert_eq!(listed.len(), tools);
    let names: Vec<&str> = listed.iter().map(|t| t.name()).collect();
    assert!(names.contains(&"py__echo"), "{names:?}");
    // Characters outside [a-zA-Z0-9_-] are replaced.
    assert!(names.contains(&"py__dotted_name"), "{names:?}");
    let echo = listed.iter().find(|t| t.name() == "py__echo").unwrap();
    assert_eq!(echo.description(), "Echoes its text.");
    assert_eq!(echo.schema()["required"], json!(["text"]));
    assert_eq!(echo.schema()["properties"]["text"]["type"], "string");
    server.shutdown().await;
    assert!(matches!(server.status(), McpStatus::Stopped { .. }));
    assert!(server.tools().is_empty());
}

#[tokio::test]
async fn the_registry_offers_the_servers_tools_by_prefix_and_runs_them() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    ready(&server).await;
    let mut registry = ToolRegistry::new(MemoryArtifacts::new());
    registry.register_source(server.clone());
    let allowed = vec!["mcp:py".to_owned()];
    let specs = registry.specs(&allowed);
    assert!(specs.iter().any(|s| s.name == "py__echo"), "{specs:?}");
    let (ctx, _) = context();
    let out = execute(
        &registry,
        &allowed,
        "py__echo",
        json!({"text": "through the registry"}),
        ctx,
        ToolLimits::default(),
    )
    .await;
    assert_eq!(out.content, "through the registry");
    // The server's schema is enforced before the call.
    let (ctx, _) = context();
    let out = execute(
        &registry,
        &allowed,
        "py__echo",
        json!({}),
        ctx,
        ToolLimits::default(),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("text"),
        "{}",
        out.content
    );
    server.shutdown().await;
}

#[tokio::test]
async fn stdio_call_round_trips_and_keeps_is_error_and_structured_content() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    ready(&server).await;
    let out = call(&server, "echo", json!({"text": "hello over stdio"})).await;
    assert!(!out.is_error);
    assert_eq!(out.content, "hello over stdio");
    let out = call(&server, "fail", json!({})).await;
    assert!(out.is_error);
    assert_eq!(out.content, "boom: the tool failed");
    let out = call(&server, "structured", json!({})).await;
    assert_eq!(out.content, r#"{"answer":42}"#);
    let out = call(&server, "dotted_name", json!({})).await;
    assert_eq!(out.content, "dotted");
    server.shutdown().await;
}

#[tokio::test]
async fn stdio_image_content_is_stored_as_an_attachment() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    ready(&server).await;
    let (ctx, artifacts) = context();
    let out = call_with(&server, "image", json!({}), ctx).await;
    assert!(
        out.content.starts_with("a picture\n[image image/png"),
        "{}",
        out.content
    );
    assert_eq!(out.attachments.len(), 1);
    let png = artifacts.bytes(&out.attachments[0].storage_key).unwrap();
    assert!(png.starts_with(b"\x89PNG"));
    server.shutdown().await;
}

#[tokio::test]
async fn the_server_gets_a_minimal_environment_plus_its_configured_variables() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[("MCP_TEST_TOKEN", "t0ken")]));
    ready(&server).await;
    let out = call(&server, "env", json!({})).await;
    let names: Vec<String> = serde_json::from_str(&out.content).unwrap();
    assert!(names.contains(&"MCP_TEST_TOKEN".to_owned()), "{names:?}");
    assert!(names.contains(&"PATH".to_owned()), "{names:?}");
    // Cargo sets this for the test process; the server's own environment is not passed on.
    assert!(std::env::var("CARGO_MANIFEST_DIR").is_ok());
    assert!(
        !names.contains(&"CARGO_MANIFEST_DIR".to_owned()),
        "{names:?}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn killed_stdio_server_is_reported_restarted_and_its_tools_come_back() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    ready(&server).await;
    let pid: u32 = call(&server, "pid", json!({}))
        .await
        .content
        .parse()
        .unwrap();
    kill(pid);

    let failed = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    let McpStatus::Failed {
        error, restarts, ..
    } = failed
    else {
        unreachable!()
    };
    assert_eq!(restarts, 0);
    assert_eq!(error.kind, FailureKind::Exited);
    assert!(
        error.exit_status.as_deref().unwrap().contains("signal: 9"),
        "{error:?}"
    );
    assert!(
        error
            .stderr_tail
            .iter()
            .any(|l| l == &format!("test server started, pid {pid}")),
        "{error:?}"
    );
    assert!(
        server.tools().is_empty(),
        "a server that is down offers no tools"
    );

    let status = wait_until(&server, "restarted", |s| s.is_ready() && s.restarts() == 1).await;
    assert!(status.is_ready());
    assert!(server.tools().iter().any(|t| t.name() == "py__echo"));
    let new_pid: u32 = call(&server, "pid", json!({}))
        .await
        .content
        .parse()
        .unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(
        call(&server, "echo", json!({"text": "back"})).await.content,
        "back"
    );
    server.shutdown().await;
}

/// Collects what `tracing` writes.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_call_in_flight_when_the_server_exits_gets_a_readable_error_and_the_exit_is_reported() {
    if !have_python() {
        return;
    }
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    // A current-thread runtime: the supervisor task logs on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = stdio_config("py", &[]);
    // A long first backoff: the outage lasts long enough to call into it.
    config.restart_backoff_min_secs = 3;
    let server = start(config);
    ready(&server).await;

    let out = call(&server, "crash", json!({})).await;
    assert!(out.is_error);
    assert_eq!(
        out.content,
        "MCP server `py` exited (exit status: 3) during the call; it is being restarted"
    );

    let status = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    let error = status.failure().unwrap();
    assert_eq!(error.exit_status.as_deref(), Some("exit status: 3"));
    assert_eq!(
        error.stderr_tail.last().unwrap(),
        "fatal: crashing on purpose"
    );

    // During the outage the tool is still callable by its full name, and says why it is down.
    let down = call(&server, "echo", json!({"text": "x"})).await;
    assert!(down.is_error);
    assert!(
        down.content
            .starts_with("MCP server `py` is down: exited (exit status: 3)"),
        "{}",
        down.content
    );
    // What the server printed on stderr is for operators, not for the model.
    assert!(
        !down.content.contains("fatal: crashing on purpose"),
        "{}",
        down.content
    );

    let logged = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let warning = logged
        .lines()
        .find(|l| l.contains("MCP server failed, restarting it"))
        .unwrap_or_else(|| panic!("no warning in {logged}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("server=py"), "{warning}");
    assert!(warning.contains("exit_status=exit status: 3"), "{warning}");
    assert!(warning.contains("fatal: crashing on purpose"), "{warning}");

    ready(&server).await;
    assert_eq!(
        call(&server, "echo", json!({"text": "x"})).await.content,
        "x"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_server_that_fails_to_start_reports_why() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[("MCP_FAIL_AT_START", "1")]));
    let status = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    let error = status.failure().unwrap();
    assert_eq!(error.kind, FailureKind::Exited);
    assert_eq!(error.exit_status.as_deref(), Some("exit status: 2"));
    assert_eq!(error.stderr_tail, ["fatal: missing FOO_TOKEN"]);
    assert!(error.to_string().contains("during startup"), "{error}");
    assert!(server.tools().is_empty());
    server.shutdown().await;

    let mut config = stdio_config("missing", &[]);
    config.command = Some("/nonexistent/mcp-server".to_owned());
    let server = start(config);
    let status = wait_until(&server, "failed", |s| matches!(s, McpStatus::Failed { .. })).await;
    let error = status.failure().unwrap();
    assert_eq!(error.kind, FailureKind::Spawn);
    assert!(
        error
            .message
            .starts_with("could not start `/nonexistent/mcp-server`"),
        "{error}"
    );
    let out = call(&server, "anything", json!({})).await;
    assert!(
        out.is_error && out.content.contains("could not start"),
        "{}",
        out.content
    );
    server.shutdown().await;
}

#[tokio::test]
async fn list_changed_refreshes_the_tools() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    let McpStatus::Ready { tools: before, .. } = ready(&server).await else {
        unreachable!()
    };
    assert!(
        server.tool("py__extra").is_none(),
        "a ready server offers only its tools"
    );
    call(&server, "add_tool", json!({})).await;
    wait_until(
        &server,
        "the new tool",
        |s| matches!(s, McpStatus::Ready { tools, .. } if *tools == before + 1),
    )
    .await;
    assert!(server.tools().iter().any(|t| t.name() == "py__extra"));
    server.shutdown().await;
}

#[tokio::test]
async fn cancelling_a_slow_call_stops_it_and_tells_the_server() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    ready(&server).await;
    let tool = server.tool("py__slow").unwrap();
    let (ctx, _) = context();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let err = tool.execute(ctx, json!({"secs": 30})).await.unwrap_err();
    assert_eq!(err, ToolError::Cancelled);
    assert!(started.elapsed() < Duration::from_secs(5));

    let out = call(&server, "cancellations", json!({})).await;
    let received: Vec<Value> = serde_json::from_str(&out.content).unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0]["reason"], "the user cancelled the turn");
    assert!(received[0]["requestId"].is_number());
    server.shutdown().await;
}

#[tokio::test]
async fn a_call_past_its_deadline_times_out_and_is_cancelled_on_the_server() {
    if !have_python() {
        return;
    }
    let server = start(stdio_config("py", &[]));
    ready(&server).await;
    let (mut ctx, _) = context();
    ctx.deadline = tokio::time::Instant::now() + Duration::from_millis(400);
    let err = server
        .tool("py__slow")
        .unwrap()
        .execute(ctx, json!({"secs": 30}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Timeout { .. }), "{err:?}");
    let out = call(&server, "cancellations", json!({})).await;
    assert!(
        out.content.contains("the call timed out"),
        "{}",
        out.content
    );
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_servers_whole_process_group() {
    if !have_python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("grandchild.pid");
    let server = start(stdio_config(
        "py",
        &[("MCP_GRANDCHILD_PIDFILE", pidfile.to_str().unwrap())],
    ));
    ready(&server).await;
    let pid: u32 = call(&server, "pid", json!({}))
        .await
        .content
        .parse()
        .unwrap();
    let grandchild: u32 = std::fs::read_to_string(&pidfile).unwrap().parse().unwrap();
    assert!(alive(pid) && alive(grandchild));
    server.shutdown().await;
    let deadline = Instant::now() + Duration::from_secs(5);
    while (alive(pid) || alive(grandchild)) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!alive(pid), "the server still runs");
    assert!(!alive(grandchild), "its child still runs");
    let out = call(&server, "echo", json!({"text": "x"})).await;
    assert_eq!(out.content, "MCP server `py` was shut down");
}
