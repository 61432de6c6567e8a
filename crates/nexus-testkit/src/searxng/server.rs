//! Routes (`/search` and `/`, GET query or POST form), scripted faults, and the bodies SearXNG
//! sends: its JSON answer, its HTML pages (403, 429, errors, the start page).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::routing::get;
use serde_json::{Value, json};

use super::{SearchAnswer, SearchHit, SearchRequest, SearxngFault, Shared};
use crate::journal::{Stop, lock};

/// Serves the search API on `listener` until the returned handle is dropped.
pub(super) fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Stop {
    let app = Router::new()
        .route("/", get(by_query).post(by_form))
        .route("/search", get(by_query).post(by_form))
        .with_state(Arc::clone(&shared));
    shared.journal.serve(listener, app, "searxng")
}

type Params = Vec<(String, String)>;

async fn by_query(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    Query(params): Query<Params>,
) -> Response<Body> {
    answer(&shared, "GET", uri.path(), &headers, params).await
}

async fn by_form(
    State(shared): State<Arc<Shared>>,
    uri: axum::http::Uri,
    headers: axum::http::HeaderMap,
    Form(params): Form<Params>,
) -> Response<Body> {
    answer(&shared, "POST", uri.path(), &headers, params).await
}

async fn answer(
    shared: &Shared,
    method: &str,
    path: &str,
    headers: &axum::http::HeaderMap,
    params: Params,
) -> Response<Body> {
    let request = SearchRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        params,
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    shared.journal.record(request.clone());
    match shared.journal.next_scripted() {
        Some(SearxngFault::Delay(pause)) => tokio::time::sleep(pause).await,
        Some(SearxngFault::RateLimited { retry_after }) => {
            let mut response = html(StatusCode::TOO_MANY_REQUESTS, "Too Many Requests");
            if let Some(secs) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            return response;
        }
        Some(SearxngFault::ServerError { status }) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return html(status, "Internal Server Error");
        }
        Some(SearxngFault::MalformedJson) => {
            return json_body(r#"{"query": "x", "results": [{"url": "https://exa"#.to_owned());
        }
        Some(SearxngFault::Oversized { bytes }) => {
            let head = r#"{"query":"","results":[],"padding":""#;
            let pad = bytes.saturating_sub(head.len() + 2);
            return json_body(format!("{head}{}\"}}", "x".repeat(pad)));
        }
        Some(SearxngFault::DropConnection) => return dropped(),
        None => {}
    }
    let Some(q) = request.param("q").filter(|q| !q.trim().is_empty()) else {
        // SearXNG shows its start page for an empty query.
        return html(StatusCode::OK, "SearXNG");
    };
    let json = request.param("format") == Some("json");
    let config = lock(&shared.config).clone();
    if json && !config.json_enabled {
        return html(StatusCode::FORBIDDEN, "403 Forbidden");
    }
    let page = request
        .param("pageno")
        .and_then(|p| p.parse::<u32>().ok())
        .unwrap_or(1);
    let answer = lock(&shared.answers)
        .get(q)
        .cloned()
        .unwrap_or_else(|| generated(q, config.generated_results));
    let answer = if page > 1 {
        SearchAnswer::default()
    } else {
        answer
    };
    if !json {
        return html(
            StatusCode::OK,
            &format!("{} results for {q}", answer.results.len()),
        );
    }
    json_body(body(q, &answer).to_string())
}

fn generated(q: &str, n: usize) -> SearchAnswer {
    SearchAnswer {
        results: (1..=n)
            .map(|i| {
                SearchHit::new(
                    &format!("Result {i} for {q}"),
                    &format!("https://example.com/{i}"),
                    &format!("Snippet {i} about {q}."),
                )
            })
            .collect(),
        ..SearchAnswer::default()
    }
}

/// The JSON SearXNG sends.
fn body(q: &str, answer: &SearchAnswer) -> Value {
    let results: Vec<Value> = answer
        .results
        .iter()
        .enumerate()
        .map(|(i, hit)| {
            let (scheme, rest) = hit.url.split_once("://").unwrap_or(("https", &hit.url));
            let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
            json!({
                "url": hit.url, "title": hit.title, "content": hit.content,
                "engine": "duckduckgo", "engines": ["duckduckgo", "brave"],
                "parsed_url": [scheme, host, format!("/{path}"), "", "", ""],
                "template": "default.html", "positions": [i + 1], "score": 1.0 / (i as f64 + 1.0),
                "category": "general", "publishedDate": null,
            })
        })
        .collect();
    json!({
        "query": q,
        "number_of_results": 0,
        "results": results,
        "answers": answer.answers,
        "corrections": answer.corrections,
        "infoboxes": answer.infoboxes,
        "suggestions": answer.suggestions,
        "unresponsive_engines": answer.unresponsive_engines
            .iter().map(|(e, r)| json!([e, r])).collect::<Vec<_>>(),
    })
}

fn json_body(body: String) -> Response<Body> {
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn html(status: StatusCode, title: &str) -> Response<Body> {
    let page = format!(
        "<!DOCTYPE html><html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>"
    );
    let mut response = Response::new(Body::from(page));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    response
}

/// Headers, then an aborted body: the client sees the connection drop.
fn dropped() -> Response<Body> {
    let stream = futures::stream::once(async {
        tokio::time::sleep(Duration::from_millis(5)).await;
        Err::<Bytes, _>(std::io::Error::other("scripted connection drop"))
    });
    let mut response = Response::new(Body::from_stream(stream));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
