//! `web_fetch` against a page server on 127.0.0.1 (allowlisted for these tests): content types,
//! charsets, limits, HTTP errors, timeouts and cancellation.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use nexus_core::{Tool, ToolError};
use nexus_tools::WebFetchConfig;
use serde_json::json;

use super::support::{Pages, call, ctx, fetch_allowing, fetch_tool, output};

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

#[tokio::test]
async fn fetch_html_becomes_text_with_links_resolved_against_the_final_url() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    // Through a redirect: links resolve against where the page really is.
    let url = pages.url("/redirect?to=/docs/page");
    let out = output(&tool, json!({ "url": url })).await;
    assert!(!out.is_error, "{}", out.content);
    let base = pages.url("");
    let expected_head = format!(
        "URL: {base}/docs/page\nStatus: 200 OK\nContent-Type: text/html; charset=utf-8\n\
         Redirects: 1\nTitle: Test page\n\n"
    );
    assert!(out.content.starts_with(&expected_head), "{}", out.content);
    let body = &out.content[expected_head.len()..];
    assert_eq!(
        body,
        format!(
            "# Welcome\n\nRead the [guide]({base}/docs/guide.html) or [about us]({base}/about).\n\n\
             ## Features\n\n- fast\n- small"
        )
    );
    assert!(!out.content.contains("injected") && !out.content.contains("color"));
    assert!(!out.content.contains("footer text") && !out.content.contains("Home"));
}

#[tokio::test]
async fn fetch_json_is_pretty_printed_and_plain_text_kept() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let out = output(&tool, json!({ "url": pages.url("/json") })).await;
    assert!(!out.is_error);
    assert!(
        out.content.ends_with(
            "\n\n{\n  \"name\": \"nexus\",\n  \"tags\": [\n    \"a\",\n    \"b\"\n  ]\n}"
        ),
        "{}",
        out.content
    );
    let out = output(&tool, json!({ "url": pages.url("/text") })).await;
    assert!(
        out.content.contains("Content-Type: text/plain\n"),
        "{}",
        out.content
    );
    assert!(
        out.content.ends_with("\n\nline one\n  line two\n"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn fetch_binary_content_is_refused_naming_its_type() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let out = output(&tool, json!({ "url": pages.url("/png") })).await;
    assert!(out.is_error);
    assert!(out.content.starts_with("URL: "), "{}", out.content);
    assert!(
        out.content.ends_with(
            "not fetched as text: the URL serves image/png (binary content); web_fetch \
             returns HTML, plain text, JSON and XML only"
        ),
        "{}",
        out.content
    );
    assert!(!out.content.contains("IHDR"), "{}", out.content);
}

#[tokio::test]
async fn fetch_reads_at_most_max_bytes_and_caps_the_text() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_tool(WebFetchConfig {
        allow: vec!["127.0.0.1/32".to_owned()],
        max_text_bytes: 4096,
        ..WebFetchConfig::default()
    });
    let out = output(
        &tool,
        json!({ "url": pages.url("/big"), "max_bytes": 1000 }),
    )
    .await;
    assert!(!out.is_error);
    assert!(
        out.content
            .contains("Note: only the first 1000 bytes of the body were read")
    );
    assert!(
        out.content.ends_with(&"a".repeat(1000)),
        "{}",
        out.content.len()
    );
    // Asking for more than the configured maximum gets the maximum: the text cap applies.
    let out = output(
        &tool,
        json!({ "url": pages.url("/big"), "max_bytes": 10_000_000 }),
    )
    .await;
    assert!(
        out.content.contains("[output truncated: "),
        "{}",
        &out.content[..200]
    );
    assert!(out.content.len() < 4096 + 400);
}

#[tokio::test]
async fn fetch_decodes_latin1_from_the_header_and_from_a_meta_tag() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let out = output(&tool, json!({ "url": pages.url("/latin1") })).await;
    assert!(out.content.ends_with("\n\nCafé crème"), "{}", out.content);
    let out = output(&tool, json!({ "url": pages.url("/latin1-meta") })).await;
    assert!(out.content.ends_with("\n\nnaïve"), "{}", out.content);
}

#[tokio::test]
async fn fetch_http_errors_are_error_results_with_the_status_and_an_excerpt() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let out = output(&tool, json!({ "url": pages.url("/missing") })).await;
    assert!(out.is_error);
    assert_eq!(
        out.content,
        format!(
            "URL: {}\nStatus: 404 Not Found\nContent-Type: text/html; charset=utf-8\n\n\
             HTTP error 404 Not Found; the page says:\n# Not Found\n\nNo such page.",
            pages.url("/missing")
        )
    );
}

#[tokio::test]
async fn fetch_of_a_slow_server_times_out_at_the_configured_limit() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_tool(WebFetchConfig {
        allow: vec!["127.0.0.1/32".to_owned()],
        timeout_secs: 1,
        ..WebFetchConfig::default()
    });
    let started = Instant::now();
    let out = output(&tool, json!({ "url": pages.url("/slow") })).await;
    assert!(out.is_error);
    assert!(
        out.content.starts_with("timed out after 1.0 s fetching"),
        "{}",
        out.content
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn fetch_never_runs_past_the_time_left_for_the_call() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let mut ctx = ctx();
    ctx.deadline = tokio::time::Instant::now() + Duration::from_millis(300);
    let started = Instant::now();
    let out = tool
        .execute(ctx, json!({ "url": pages.url("/slow") }))
        .await
        .unwrap();
    assert!(
        out.is_error && out.content.contains("timed out"),
        "{}",
        out.content
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn fetch_stops_when_the_turn_is_cancelled() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let ctx = ctx();
    let cancel = ctx.cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        cancel.cancel();
    });
    let started = Instant::now();
    let result = tool
        .execute(ctx, json!({ "url": pages.url("/slow") }))
        .await;
    assert_eq!(result, Err(ToolError::Cancelled));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn fetch_sends_the_nexus_user_agent() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    output(&tool, json!({ "url": pages.url("/text") })).await;
    let agents = pages.user_agents();
    assert_eq!(agents.len(), 1);
    assert!(
        agents[0].starts_with("Nexus/") && agents[0].ends_with(" (+web_fetch)"),
        "{agents:?}"
    );
}

#[tokio::test]
async fn fetch_arguments_are_checked() {
    let tool = fetch_allowing(&[]);
    assert!(matches!(
        call(&tool, json!({ "url": "  " })).await,
        Err(ToolError::InvalidArguments { .. })
    ));
    assert!(matches!(
        call(&tool, json!({ "url": "http://x/", "max_bytes": 0 })).await,
        Err(ToolError::InvalidArguments { .. })
    ));
    let out = output(&tool, json!({ "url": "not a url" })).await;
    assert!(
        out.is_error && out.content.starts_with("invalid URL"),
        "{}",
        out.content
    );
    assert_eq!(tool.name(), "web_fetch");
    assert_eq!(tool.schema()["required"], json!(["url"]));
}
