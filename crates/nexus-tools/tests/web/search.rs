//! `web_search` against the fake SearXNG: formatting, parameters, the cache, and every failure
//! the instance can answer with.

use std::time::{Duration, Instant};

use nexus_core::{Tool, ToolError};
use nexus_testkit::{FakeSearxng, SearchAnswer, SearchHit, SearxngFault};
use nexus_tools::{WebSearch, WebSearchConfig};
use serde_json::json;

use super::support::{call, output};

fn search_tool(fake: &FakeSearxng) -> WebSearch {
    search_with(fake, WebSearchConfig::default())
}

fn search_with(fake: &FakeSearxng, config: WebSearchConfig) -> WebSearch {
    WebSearch::new(WebSearchConfig {
        searxng_url: Some(fake.base_url()),
        ..config
    })
    .unwrap()
}

fn hits(n: usize) -> Vec<SearchHit> {
    (1..=n)
        .map(|i| {
            SearchHit::new(
                &format!("Title {i}"),
                &format!("https://e{i}.example/"),
                &format!("Snippet {i}."),
            )
        })
        .collect()
}

#[tokio::test]
async fn search_results_are_numbered_with_title_url_and_snippet() {
    let fake = FakeSearxng::start().await;
    fake.set_answer(
        "rust async",
        SearchAnswer {
            results: hits(8),
            answers: vec!["Rust has async/await.".to_owned()],
            suggestions: vec!["rust tokio".to_owned()],
            ..SearchAnswer::default()
        },
    );
    let tool = search_tool(&fake);
    let out = output(&tool, json!({ "query": "rust  async", "max_results": 2 })).await;
    assert!(!out.is_error);
    assert_eq!(
        out.content,
        "Search results for \"rust async\":\n\nAnswer: Rust has async/await.\n\n\
         1. Title 1\nhttps://e1.example/\nSnippet 1.\n\n2. Title 2\nhttps://e2.example/\nSnippet 2.\n\n\
         Suggestions: rust tokio"
    );
    // The configured default count applies when the call does not say.
    let out = output(&tool, json!({ "query": "rust async" })).await;
    assert!(out.content.contains("\n5. Title 5\n") && !out.content.contains("\n6. "));
}

#[tokio::test]
async fn search_sends_json_format_and_the_options() {
    let fake = FakeSearxng::start().await;
    let tool = search_with(
        &fake,
        WebSearchConfig {
            categories: vec!["general".to_owned(), "it".to_owned()],
            safesearch: 2,
            ..WebSearchConfig::default()
        },
    );
    output(
        &tool,
        json!({ "query": "q", "time_range": "month", "language": "de" }),
    )
    .await;
    let request = &fake.requests()[0];
    assert_eq!(request.path, "/search");
    assert_eq!(request.param("q"), Some("q"));
    assert_eq!(request.param("format"), Some("json"));
    assert_eq!(request.param("categories"), Some("general,it"));
    assert_eq!(request.param("time_range"), Some("month"));
    assert_eq!(request.param("language"), Some("de"));
    assert_eq!(request.param("safesearch"), Some("2"));
    assert!(
        request
            .user_agent
            .as_deref()
            .unwrap()
            .ends_with("(+web_search)")
    );
}

#[tokio::test]
async fn search_no_results_says_so() {
    let fake = FakeSearxng::start().await;
    let out = output(&search_tool(&fake), json!({ "query": "zzqx" })).await;
    assert!(!out.is_error);
    assert_eq!(out.content, "No results for \"zzqx\".");
}

#[tokio::test]
async fn search_repeated_query_is_answered_from_the_cache() {
    let fake = FakeSearxng::start().await;
    fake.set_results("cached", hits(3));
    let tool = search_tool(&fake);
    let first = output(&tool, json!({ "query": "cached" })).await;
    let second = output(&tool, json!({ "query": "cached", "max_results": 1 })).await;
    assert_eq!(fake.request_count(), 1);
    assert!(first.content.contains("3. Title 3"));
    assert!(second.content.contains("1. Title 1") && !second.content.contains("2. Title 2"));
    // Other options are another search.
    output(&tool, json!({ "query": "cached", "time_range": "day" })).await;
    assert_eq!(fake.request_count(), 2);
    // A cache of zero entries keeps nothing.
    let uncached = search_with(
        &fake,
        WebSearchConfig {
            cache_entries: 0,
            ..WebSearchConfig::default()
        },
    );
    output(&uncached, json!({ "query": "cached" })).await;
    output(&uncached, json!({ "query": "cached" })).await;
    assert_eq!(fake.request_count(), 4);
}

#[tokio::test]
async fn search_403_explains_how_to_enable_json() {
    let fake = FakeSearxng::start().await;
    fake.set_json_enabled(false);
    let out = output(&search_tool(&fake), json!({ "query": "x" })).await;
    assert!(out.is_error);
    assert!(
        out.content.contains("refuses the JSON format (HTTP 403"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("`search: formats: [html, json]`"),
        "{}",
        out.content
    );
    assert!(out.content.contains("settings.yml"), "{}", out.content);
}

#[tokio::test]
async fn search_of_a_down_instance_says_it_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let tool = WebSearch::new(WebSearchConfig {
        searxng_url: Some(url.clone()),
        ..WebSearchConfig::default()
    })
    .unwrap();
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(out.is_error);
    assert!(
        out.content
            .starts_with(&format!("SearXNG at {url}/search is unreachable")),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn search_of_a_slow_instance_times_out_as_unreachable() {
    let fake = FakeSearxng::start().await;
    fake.fail_next(1, SearxngFault::Delay(Duration::from_secs(10)));
    let tool = search_with(
        &fake,
        WebSearchConfig {
            timeout_secs: 1,
            ..WebSearchConfig::default()
        },
    );
    let started = Instant::now();
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains("is unreachable: no answer within 1.0 s"),
        "{}",
        out.content
    );
    assert!(started.elapsed() < Duration::from_secs(4));
}

#[tokio::test]
async fn search_rate_limit_and_server_errors_are_reported_and_not_cached() {
    let fake = FakeSearxng::start().await;
    fake.set_results("x", hits(1));
    fake.fail_next(
        1,
        SearxngFault::RateLimited {
            retry_after: Some(30),
        },
    );
    fake.fail_next(1, SearxngFault::ServerError { status: 502 });
    let tool = search_tool(&fake);
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(out.is_error);
    assert!(
        out.content
            .contains("rate limiting searches (HTTP 429 Too Many Requests), retry after 30 s"),
        "{}",
        out.content
    );
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(
        out.is_error && out.content.contains("failed with HTTP 502 Bad Gateway"),
        "{}",
        out.content
    );
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(
        !out.is_error && out.content.contains("1. Title 1"),
        "{}",
        out.content
    );
    assert_eq!(fake.request_count(), 3);
}

#[tokio::test]
async fn search_malformed_oversized_and_cut_answers_are_clear_errors() {
    let fake = FakeSearxng::start().await;
    let tool = search_with(
        &fake,
        WebSearchConfig {
            max_response_bytes: 64 * 1024,
            ..WebSearchConfig::default()
        },
    );
    fake.fail_next(1, SearxngFault::MalformedJson);
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(
        out.is_error && out.content.contains("not a search result: malformed JSON"),
        "{}",
        out.content
    );
    fake.fail_next(1, SearxngFault::Oversized { bytes: 1024 * 1024 });
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(
        out.is_error && out.content.contains("larger than 65536 bytes"),
        "{}",
        out.content
    );
    fake.fail_next(1, SearxngFault::DropConnection);
    let out = output(&tool, json!({ "query": "x" })).await;
    assert!(
        out.is_error && out.content.contains("the answer broke off"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn search_arguments_and_configuration_are_checked() {
    let fake = FakeSearxng::start().await;
    let tool = search_tool(&fake);
    for args in [
        json!({ "query": " " }),
        json!({ "query": "x", "max_results": 0 }),
        json!({ "query": "x", "max_results": 21 }),
        json!({ "query": "x", "time_range": "week" }),
        json!({ "query": "x", "language": "en; DROP" }),
    ] {
        assert!(
            matches!(
                call(&tool, args.clone()).await,
                Err(ToolError::InvalidArguments { .. })
            ),
            "{args}"
        );
    }
    assert_eq!(fake.request_count(), 0);
    assert_eq!(tool.name(), "web_search");
    assert_eq!(
        tool.schema()["properties"]["time_range"]["enum"],
        json!(["day", "month", "year"])
    );
    let err = WebSearch::new(WebSearchConfig::default()).unwrap_err();
    assert!(
        err.to_string()
            .contains("tools.web_search.searxng_url is required"),
        "{err}"
    );
}
