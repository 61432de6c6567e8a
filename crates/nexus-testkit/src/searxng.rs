//! A fake of a SearXNG instance's search API.
//!
//! [`FakeSearxng`] serves PROTOCOLS.md §8 on 127.0.0.1: `GET /search?q=…&format=json` (a POST
//! form works too, and `/` is an alias), answering the JSON shape SearXNG sends (`results` with
//! `url`, `title`, `content`, `engine`, `parsed_url`…, `answers`, `infoboxes`, `suggestions`,
//! `unresponsive_engines`). Answers come from a table keyed by query ([`SearchAnswer`]); an
//! unknown query gets no results (or generated ones, see
//! [`FakeSearxngConfig::generated_results`]). With JSON "disabled" it answers 403 with an HTML
//! page, as SearXNG does when `search.formats` lacks `json`; without `format=json` it answers
//! an HTML page. Faults ([`SearxngFault`]) are queued for the next requests. This module must
//! never contain client code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Form, Query, State};
use axum::http::{HeaderValue, Response, StatusCode, header};
use axum::routing::get;
use serde_json::{Value, json};

use crate::journal::{Journal, Stop, lock};

/// How the fake behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSearxngConfig {
    /// Whether `format=json` is enabled; when not, such requests get 403. Default: true.
    pub json_enabled: bool,
    /// Results generated for a query not in the table (`Result N for <query>`,
    /// `https://example.com/<n>`). Default: 0 (no results, as for a query nothing matches).
    pub generated_results: usize,
    /// How many received requests [`requests`](FakeSearxng::requests) keeps (the newest).
    /// Default: 1000.
    pub max_recorded: usize,
}

impl Default for FakeSearxngConfig {
    fn default() -> Self {
        FakeSearxngConfig {
            json_enabled: true,
            generated_results: 0,
            max_recorded: 1000,
        }
    }
}

/// One result of an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    /// `title`.
    pub title: String,
    /// `url`.
    pub url: String,
    /// `content` (the snippet); empty is sent as `""`.
    pub content: String,
}

impl SearchHit {
    /// A result with a title, a URL and a snippet.
    pub fn new(title: &str, url: &str, content: &str) -> Self {
        SearchHit {
            title: title.to_owned(),
            url: url.to_owned(),
            content: content.to_owned(),
        }
    }
}

/// What the fake answers to one query.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SearchAnswer {
    /// `results`, in order.
    pub results: Vec<SearchHit>,
    /// `answers` (direct answers, sent as strings).
    pub answers: Vec<String>,
    /// `infoboxes`, sent as given.
    pub infoboxes: Vec<Value>,
    /// `suggestions`.
    pub suggestions: Vec<String>,
    /// `corrections`.
    pub corrections: Vec<String>,
    /// `unresponsive_engines` as `(engine, reason)`.
    pub unresponsive_engines: Vec<(String, String)>,
}

/// A fault the next request gets instead of its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SearxngFault {
    /// Answers normally after this pause.
    Delay(Duration),
    /// 429 Too Many Requests (the limiter), with `Retry-After` when given.
    RateLimited {
        /// Seconds, sent as `Retry-After`.
        retry_after: Option<u64>,
    },
    /// A server error page with this status.
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// A 200 `application/json` whose body is cut JSON.
    MalformedJson,
    /// A 200 with a valid empty answer padded to `bytes` bytes.
    Oversized {
        /// Body size.
        bytes: usize,
    },
    /// Response headers, then the connection is aborted.
    DropConnection,
}

/// One request received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// `GET` or `POST`.
    pub method: String,
    /// `/search` or `/`.
    pub path: String,
    /// Query or form parameters, in order.
    pub params: Vec<(String, String)>,
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
}

impl SearchRequest {
    /// The first value of parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct Shared {
    config: Mutex<FakeSearxngConfig>,
    answers: Mutex<HashMap<String, SearchAnswer>>,
    journal: Journal<SearxngFault, SearchRequest>,
}

/// A running fake SearXNG. It stops when dropped.
#[derive(Debug)]
pub struct FakeSearxng {
    addr: SocketAddr,
    shared: Arc<Shared>,
    _stop: Stop,
}

impl FakeSearxng {
    /// Starts a fake on `127.0.0.1:0` with the default configuration.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start() -> FakeSearxng {
        Self::start_with(FakeSearxngConfig::default()).await
    }

    /// Starts a fake on `127.0.0.1:0` with `config`.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start_with(config: FakeSearxngConfig) -> FakeSearxng {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        match Self::bind(addr, config).await {
            Ok(fake) => fake,
            Err(err) => panic!("cannot bind the fake SearXNG on 127.0.0.1: {err}"),
        }
    }

    /// Starts a fake listening on `addr` (port 0 picks a free one).
    pub async fn bind(addr: SocketAddr, config: FakeSearxngConfig) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            journal: Journal::new(config.max_recorded),
            config: Mutex::new(config),
            answers: Mutex::new(HashMap::new()),
        });
        let app = Router::new()
            .route("/", get(by_query).post(by_form))
            .route("/search", get(by_query).post(by_form))
            .with_state(Arc::clone(&shared));
        let stop = shared.journal.serve(listener, app, "searxng");
        Ok(FakeSearxng {
            addr,
            shared,
            _stop: stop,
        })
    }

    /// The address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The instance's base URL, `http://127.0.0.1:PORT` (searches go to `{base}/search`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What `query` (exact text of `q`) answers from now on.
    pub fn set_answer(&self, query: &str, answer: SearchAnswer) {
        lock(&self.shared.answers).insert(query.to_owned(), answer);
    }

    /// Shorthand: `query` answers these results.
    pub fn set_results(&self, query: &str, results: Vec<SearchHit>) {
        self.set_answer(
            query,
            SearchAnswer {
                results,
                ..SearchAnswer::default()
            },
        );
    }

    /// Enables or disables the JSON format (disabled: 403).
    pub fn set_json_enabled(&self, enabled: bool) {
        lock(&self.shared.config).json_enabled = enabled;
    }

    /// The next `times` requests get `fault` (queued after earlier faults).
    pub fn fail_next(&self, times: u32, fault: SearxngFault) {
        for _ in 0..times {
            self.shared.journal.push(fault.clone());
        }
    }

    /// The requests received, oldest first (the newest
    /// [`max_recorded`](FakeSearxngConfig::max_recorded)).
    pub fn requests(&self) -> Vec<SearchRequest> {
        self.shared.journal.requests()
    }

    /// Requests received, kept or not.
    pub fn request_count(&self) -> u64 {
        self.shared.journal.request_count()
    }

    /// TCP connections accepted.
    pub fn connection_count(&self) -> u64 {
        self.shared.journal.connection_count()
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn get(url: &str) -> (u16, String) {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.text().await.unwrap())
    }

    #[tokio::test]
    async fn searxng_answers_the_table_in_its_json_shape_and_403_without_json() {
        let fake = FakeSearxng::start().await;
        fake.set_results(
            "rust",
            vec![SearchHit::new(
                "Rust",
                "https://rust-lang.org/",
                "A language",
            )],
        );
        let (status, body) = get(&format!("{}/search?q=rust&format=json", fake.base_url())).await;
        assert_eq!(status, 200);
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["results"][0]["title"], "Rust");
        assert_eq!(value["results"][0]["parsed_url"][1], "rust-lang.org");
        assert_eq!(value["number_of_results"], 0);
        let (_, body) = get(&format!("{}/?q=nothing&format=json", fake.base_url())).await;
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["results"],
            json!([])
        );
        fake.set_json_enabled(false);
        let (status, body) = get(&format!("{}/search?q=rust&format=json", fake.base_url())).await;
        assert_eq!(status, 403);
        assert!(body.contains("<html>"));
        assert_eq!(fake.request_count(), 3);
        assert_eq!(fake.requests()[1].path, "/");
    }

    #[tokio::test]
    async fn searxng_faults_apply_to_the_next_requests_in_order() {
        let fake = FakeSearxng::start().await;
        fake.fail_next(
            1,
            SearxngFault::RateLimited {
                retry_after: Some(7),
            },
        );
        fake.fail_next(1, SearxngFault::MalformedJson);
        let url = format!("{}/search?q=a&format=json", fake.base_url());
        assert_eq!(get(&url).await.0, 429);
        let (status, body) = get(&url).await;
        assert_eq!(status, 200);
        assert!(serde_json::from_str::<Value>(&body).is_err());
        assert_eq!(get(&url).await.0, 200);
    }
}
