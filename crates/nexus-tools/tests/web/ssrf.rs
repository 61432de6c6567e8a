//! The SSRF guard of `web_fetch`: non-public addresses in every spelling, names that resolve to
//! them, and redirects from an allowlisted server to them are refused before any connection;
//! an allowlisted server is reached.

use std::net::Ipv4Addr;

use nexus_tools::{FetchError, GuardedClient, GuardedClientOptions, NetworkGuard};
use serde_json::json;

use super::support::{Pages, fetch_allowing, output};

const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);
const OTHER_LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

async fn refusal(url: &str) -> String {
    let tool = fetch_allowing(&[]);
    let out = output(&tool, json!({ "url": url })).await;
    assert!(out.is_error, "{url} was fetched: {}", out.content);
    assert!(
        out.content.starts_with("refused: "),
        "{url}: {}",
        out.content
    );
    out.content
}

#[tokio::test]
async fn ssrf_loopback_and_metadata_literals_are_refused_with_the_reason() {
    assert_eq!(
        refusal("http://169.254.169.254/latest/meta-data/").await,
        "refused: 169.254.169.254 is a cloud metadata address (link-local); the operator can \
         allowlist it with tools.web_fetch.allow"
    );
    let text = refusal("http://127.0.0.1/").await;
    assert!(text.contains("127.0.0.1 is a loopback address"), "{text}");
    assert!(text.contains("tools.web_fetch.allow"), "{text}");
    let text = refusal("http://[::1]/").await;
    assert!(text.contains("::1 is a loopback address"), "{text}");
    let text = refusal("https://[::ffff:169.254.169.254]/").await;
    assert!(text.contains("cloud metadata"), "{text}");
    let text = refusal("http://10.0.0.1/").await;
    assert!(text.contains("private network"), "{text}");
}

#[tokio::test]
async fn ssrf_hex_decimal_octal_and_short_forms_of_loopback_are_refused() {
    for url in [
        "http://0x7f000001/",
        "http://2130706433/",
        "http://017700000001/",
        "http://127.1/",
        "http://0x7f.0.0.1/",
        "http://0/",
    ] {
        let text = refusal(url).await;
        assert!(
            text.contains("127.0.0.1 is a loopback address") || text.contains("0.0.0.0 is"),
            "{url}: {text}"
        );
    }
}

#[tokio::test]
async fn ssrf_a_name_resolving_to_loopback_is_refused_without_connecting() {
    let pages = Pages::start(LOOPBACK).await;
    let port = pages.addr.port();
    // A non-default port: the name is resolved up front for the port rule.
    let text = refusal(&format!("http://localhost:{port}/text")).await;
    assert!(text.contains("localhost resolves to"), "{text}");
    assert!(text.contains("loopback"), "{text}");
    // The default port: the guarded resolver refuses it at connection time.
    let text = refusal("http://localhost/").await;
    assert!(text.contains("localhost resolves to"), "{text}");
    assert!(text.contains("loopback"), "{text}");
    assert_eq!(pages.hits(), 0);
}

#[tokio::test]
async fn ssrf_redirects_from_an_allowlisted_server_to_loopback_or_metadata_are_refused() {
    let allowed = Pages::start(OTHER_LOOPBACK).await;
    let target = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.2/32"]);
    let cases = [
        (target.url("/text"), "127.0.0.1 is a loopback address"),
        (
            "http://169.254.169.254/latest/meta-data/".to_owned(),
            "cloud metadata address",
        ),
        (
            format!("http://localhost:{}/text", target.addr.port()),
            "localhost resolves to",
        ),
        ("http://localhost/".to_owned(), "localhost resolves to"),
        ("http://[::1]/".to_owned(), "::1 is a loopback address"),
    ];
    for (to, expected) in cases {
        let url = format!("{}?to={to}", allowed.url("/redirect"));
        let out = output(&tool, json!({ "url": url })).await;
        assert!(out.is_error, "{to} was fetched: {}", out.content);
        assert!(
            out.content.starts_with("refused: "),
            "{to}: {}",
            out.content
        );
        assert!(out.content.contains(expected), "{to}: {}", out.content);
        assert!(
            out.content.contains("(redirected from http://127.0.0.2:"),
            "{}",
            out.content
        );
    }
    assert_eq!(target.hits(), 0, "the refused target was contacted");
    assert_eq!(allowed.hits(), 5);
}

#[tokio::test]
async fn ssrf_allowlisted_loopback_page_is_fetched() {
    let pages = Pages::start(OTHER_LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.2/32"]);
    let out = output(&tool, json!({ "url": pages.url("/text") })).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.ends_with("line one\n  line two\n"));
    // The allowlist is exact: the rest of loopback stays refused.
    let other = Pages::start(LOOPBACK).await;
    let out = output(&tool, json!({ "url": other.url("/text") })).await;
    assert!(
        out.is_error && out.content.contains("loopback"),
        "{}",
        out.content
    );
    assert_eq!(other.hits(), 0);
}

#[tokio::test]
async fn ssrf_a_redirect_loop_stops_at_the_limit() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let out = output(&tool, json!({ "url": pages.url("/loop") })).await;
    assert!(out.is_error);
    assert!(
        out.content.starts_with("stopped after 5 redirects"),
        "{}",
        out.content
    );
    assert_eq!(pages.hits(), 6, "the first request and 5 redirects");
}

#[tokio::test]
async fn ssrf_schemes_other_than_http_are_refused_also_on_redirect() {
    for url in [
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gopher://127.0.0.1:6379/_INFO",
    ] {
        let text = refusal(url).await;
        assert!(text.contains("only http and https"), "{url}: {text}");
    }
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.1/32"]);
    let url = format!("{}?to=file:///etc/passwd", pages.url("/redirect"));
    let out = output(&tool, json!({ "url": url })).await;
    assert!(
        out.is_error && out.content.contains("file: scheme"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn ssrf_public_addresses_are_reached_on_listed_ports_only() {
    let client =
        GuardedClient::new(NetworkGuard::public_only(), GuardedClientOptions::default()).unwrap();
    // Refused before any connection is tried (this address is never contacted).
    let err = client.get("http://93.184.216.34:6379/").await.unwrap_err();
    assert!(matches!(err, FetchError::Port { port: 6379, .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "refused: port 6379 of 93.184.216.34 is not allowed (public addresses are reached on \
         ports 80, 443 only); the operator can add it to tools.web_fetch.ports"
    );
}

#[tokio::test]
async fn ssrf_an_allowlisted_name_is_reached_through_the_guarded_resolver() {
    let pages = Pages::start(LOOPBACK).await;
    let tool = fetch_allowing(&["127.0.0.0/8", "::1"]);
    let url = format!("http://localhost:{}/text", pages.addr.port());
    let out = output(&tool, json!({ "url": url })).await;
    assert!(!out.is_error, "{}", out.content);
    assert!(
        out.content.starts_with(&format!("URL: {url}\n")),
        "{}",
        out.content
    );
    assert_eq!(pages.hits(), 1);
}
