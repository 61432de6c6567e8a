//! Both tools registered and called through the executor, as the runtime calls them: their
//! schemas compile and check arguments.

use std::sync::Arc;

use nexus_testkit::{FakeSearxng, SearchHit};
use nexus_tools::testing::MemoryArtifacts;
use nexus_tools::{ToolLimits, ToolRegistry, WebSearch, WebSearchConfig, execute};
use serde_json::json;

use super::support::{Pages, ctx, fetch_allowing};

#[tokio::test]
async fn web_tools_run_through_the_executor_with_their_schemas() {
    let fake = FakeSearxng::start().await;
    fake.set_results(
        "nexus",
        vec![SearchHit::new(
            "Nexus",
            "https://nexus.example/",
            "An agent platform.",
        )],
    );
    let pages = Pages::start(std::net::Ipv4Addr::LOCALHOST).await;
    let mut registry = ToolRegistry::new(MemoryArtifacts::new());
    registry.register(Arc::new(fetch_allowing(&["127.0.0.1/32"])));
    registry.register(Arc::new(
        WebSearch::new(WebSearchConfig {
            searxng_url: Some(fake.base_url()),
            ..WebSearchConfig::default()
        })
        .unwrap(),
    ));
    let allowed = vec!["web_fetch".to_owned(), "web_search".to_owned()];
    let run = |name: &'static str, args: serde_json::Value| {
        let registry = registry.clone();
        let allowed = allowed.clone();
        async move {
            execute(
                &registry,
                &allowed,
                name,
                args,
                ctx(),
                ToolLimits::default(),
            )
            .await
        }
    };
    let out = run(
        "web_search",
        json!({ "query": "nexus", "max_results": 3, "time_range": "year" }),
    )
    .await;
    assert!(
        !out.is_error && out.content.contains("1. Nexus\nhttps://nexus.example/"),
        "{}",
        out.content
    );
    let out = run(
        "web_fetch",
        json!({ "url": pages.url("/text"), "max_bytes": 100 }),
    )
    .await;
    assert!(
        !out.is_error && out.content.ends_with("line one\n  line two\n"),
        "{}",
        out.content
    );
    // The schemas refuse what the tools cannot do before they run.
    let out = run("web_search", json!({ "query": "nexus", "max_results": 50 })).await;
    assert!(
        out.is_error && out.content.starts_with("invalid arguments"),
        "{}",
        out.content
    );
    let out = run(
        "web_search",
        json!({ "query": "nexus", "time_range": "week" }),
    )
    .await;
    assert!(
        out.is_error && out.content.starts_with("invalid arguments"),
        "{}",
        out.content
    );
    let out = run(
        "web_fetch",
        json!({ "url": pages.url("/text"), "extra": true }),
    )
    .await;
    assert!(
        out.is_error && out.content.starts_with("invalid arguments"),
        "{}",
        out.content
    );
    assert_eq!(fake.request_count(), 1);
}
