//! Routes and handlers: authentication, the version header, validation, cache accounting, then
//! the scripted or default answer.

use std::sync::Arc;
use std::time::Duration;

use crate::journal::Stop;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, Response, Uri, header};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};

use super::errors::{ApiError, ErrorHeaders};
use super::frames::{self, Frame};
use super::script::{Body as ReplyBody, Reply};
use super::validate::{self, Plan};
use super::{RecordedRequest, Shared, WireUsage};

type SharedState = State<Arc<Shared>>;

/// Models the fake serves; any other `claude-…` name is accepted too, anything else is 404.
const MODELS: &[&str] = &[
    "claude-opus-4-7",
    "claude-opus-4-6",
    "claude-sonnet-4-6",
    "claude-haiku-4-5",
    "claude-opus-4-5",
    "claude-sonnet-4-5",
    "claude-opus-4-1",
    "claude-opus-4-0",
    "claude-sonnet-4-0",
    "claude-3-haiku-20240307",
];

/// Serves the API on `listener` until the returned handle is dropped.
pub(crate) fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Stop {
    let app = Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    shared.journal.serve(listener, app, "anthropic")
}

fn header_string(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn recorded(
    method: &str,
    path: &str,
    headers: &HeaderMap,
    raw_body: Bytes,
    body: Value,
    usage: Option<WireUsage>,
) -> RecordedRequest {
    RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        body,
        raw_body,
        api_key: header_string(headers, "x-api-key"),
        anthropic_version: header_string(headers, "anthropic-version"),
        anthropic_beta: header_string(headers, "anthropic-beta"),
        content_type: header_string(headers, header::CONTENT_TYPE),
        accept: header_string(headers, header::ACCEPT),
        usage,
    }
}

/// Checks `x-api-key`, then `anthropic-version`. Returns the key.
fn authorize<'h>(shared: &Shared, headers: &'h HeaderMap) -> Result<&'h str, ApiError> {
    let Some(key) = headers.get("x-api-key").and_then(|v| v.to_str().ok()) else {
        return Err(ApiError::authentication(true));
    };
    if key.trim() != shared.config.api_key {
        return Err(ApiError::authentication(false));
    }
    if headers.get("anthropic-version").is_none() {
        return Err(ApiError::invalid("anthropic-version: header is required"));
    }
    Ok(key)
}

fn request_id(shared: &Shared) -> String {
    frames::id("req_", shared.journal.next_id(), 0)
}

/// The body as JSON; `Err` when it is not a JSON object.
fn parse(body: &Bytes) -> Result<Value, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(value @ Value::Object(_)) => Ok(value),
        _ => Err(validate::not_json()),
    }
}

/// Authentication, parsing, validation and the model check of a messages request.
fn check(
    shared: &Shared,
    headers: &HeaderMap,
    body: &Bytes,
    require_max_tokens: bool,
) -> (Value, Result<(String, Plan), ApiError>) {
    let key = match authorize(shared, headers) {
        Ok(key) => key.to_owned(),
        Err(err) => return (parse(body).unwrap_or(Value::Null), Err(err)),
    };
    let value = match parse(body) {
        Ok(value) => value,
        Err(err) => return (Value::Null, Err(err)),
    };
    let plan = validate::messages(&value, require_max_tokens).and_then(|plan| {
        let known = MODELS.contains(&plan.model.as_str()) || plan.model.starts_with("claude-");
        if known {
            Ok(plan)
        } else {
            Err(ApiError::unknown_model(&plan.model))
        }
    });
    (value, plan.map(|plan| (key, plan)))
}

async fn messages(State(shared): SharedState, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let rid = request_id(&shared);
    let (value, checked) = check(&shared, &headers, &body, true);
    let (key, plan) = match checked {
        Ok(ok) => ok,
        Err(err) => {
            shared.journal.record(recorded(
                "POST",
                "/v1/messages",
                &headers,
                body,
                value,
                None,
            ));
            return err.into_response(&rid, ErrorHeaders::default());
        }
    };
    let reply = shared
        .journal
        .next_scripted()
        .unwrap_or_else(Reply::default_reply);
    let config = &shared.config;
    let seq = shared.journal.next_id();
    let answer = frames::answer(&reply, &plan, config.reply_words, seq);
    let is_error = matches!(reply.body, ReplyBody::Error { .. });
    let usage = (!is_error).then(|| match reply.usage {
        Some(spec) => WireUsage {
            input_tokens: spec.input,
            cache_creation_input_tokens: spec.cache_creation,
            cache_read_input_tokens: spec.cache_read,
            output_tokens: spec.output,
        },
        None => {
            let cost = shared.cache.account(&key, &plan.model, &plan.prompt);
            WireUsage {
                input_tokens: cost.input,
                cache_creation_input_tokens: cost.cache_creation,
                cache_read_input_tokens: cost.cache_read,
                output_tokens: frames::output_tokens(&answer),
            }
        }
    });
    shared.journal.record(recorded(
        "POST",
        "/v1/messages",
        &headers,
        body,
        value,
        usage,
    ));
    let first_byte_delay = reply.first_byte_delay.unwrap_or(config.first_byte_delay);
    if !first_byte_delay.is_zero() {
        tokio::time::sleep(first_byte_delay).await;
    }
    let usage = match (&reply.body, usage) {
        (
            ReplyBody::Error {
                status,
                kind,
                message,
            },
            _,
        ) => {
            let extra = ErrorHeaders {
                retry_after: reply.retry_after,
                retry_after_ms: reply.retry_after_ms,
                should_retry: reply.should_retry,
            };
            return ApiError::scripted(*status, kind, message.clone(), &plan.model)
                .into_response(&rid, extra);
        }
        (_, Some(usage)) => usage,
        (_, None) => WireUsage::default(),
    };
    let message_id = frames::id("msg_", seq, 0);
    let token_delay = reply.token_delay.unwrap_or(config.token_delay);
    if plan.stream {
        let frames = frames::stream_frames(&reply, &answer, &message_id, &plan.model, usage);
        let mut response = Response::new(stream_body(frames, token_delay));
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/event-stream; charset=utf-8"),
        );
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        set_common(h, &rid);
        return response;
    }
    match &reply.body {
        ReplyBody::Malformed => {
            json_response(Body::from("{\"id\": \"msg_broken\", \"content\": [{"), &rid)
        }
        ReplyBody::InStreamError { kind } => {
            let status = if kind == "overloaded_error" { 529 } else { 500 };
            ApiError::scripted(status, kind, None, &plan.model)
                .into_response(&rid, ErrorHeaders::default())
        }
        _ => {
            let text = frames::message_object(&reply, &answer, &message_id, &plan.model, usage)
                .to_string();
            if let Some(n) = reply.cut_after {
                let cut = text.len().min(n.max(1) * 16);
                let partial = Bytes::from(text).slice(..cut);
                return json_response(Body::from_stream(cut_stream(partial)), &rid);
            }
            json_response(Body::from(text), &rid)
        }
    }
}

async fn count_tokens(
    State(shared): SharedState,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let rid = request_id(&shared);
    let (value, checked) = check(&shared, &headers, &body, false);
    let path = "/v1/messages/count_tokens";
    shared
        .journal
        .record(recorded("POST", path, &headers, body, value, None));
    match checked {
        Ok((_, plan)) => json_response(
            Body::from(json!({"input_tokens": plan.input_tokens()}).to_string()),
            &rid,
        ),
        Err(err) => err.into_response(&rid, ErrorHeaders::default()),
    }
}

async fn models(State(shared): SharedState, headers: HeaderMap) -> Response<Body> {
    let rid = request_id(&shared);
    let checked = authorize(&shared, &headers).map(|_| ());
    shared.journal.record(recorded(
        "GET",
        "/v1/models",
        &headers,
        Bytes::new(),
        Value::Null,
        None,
    ));
    if let Err(err) = checked {
        return err.into_response(&rid, ErrorHeaders::default());
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| {
            json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-09-29T00:00:00Z"})
        })
        .collect();
    json_response(
        Body::from(
            json!({
                "data": data,
                "has_more": false,
                "first_id": MODELS.first(),
                "last_id": MODELS.last(),
            })
            .to_string(),
        ),
        &rid,
    )
}

async fn not_found(
    State(shared): SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let rid = request_id(&shared);
    shared.journal.record(recorded(
        method.as_str(),
        uri.path(),
        &headers,
        Bytes::new(),
        Value::Null,
        None,
    ));
    ApiError {
        status: 404,
        kind: "not_found_error".to_owned(),
        message: "Not Found".to_owned(),
    }
    .into_response(&rid, ErrorHeaders::default())
}

fn set_common(headers: &mut HeaderMap, rid: &str) {
    if let Ok(v) = HeaderValue::from_str(rid) {
        headers.insert("request-id", v);
    }
    for (name, value) in [
        ("anthropic-ratelimit-requests-limit", "4000"),
        ("anthropic-ratelimit-requests-remaining", "3999"),
        ("anthropic-ratelimit-requests-reset", "2030-01-01T00:00:00Z"),
        ("anthropic-ratelimit-input-tokens-limit", "2000000"),
        ("anthropic-ratelimit-input-tokens-remaining", "2000000"),
        (
            "anthropic-ratelimit-input-tokens-reset",
            "2030-01-01T00:00:00Z",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

fn json_response(body: Body, rid: &str) -> Response<Body> {
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_common(h, rid);
    response
}

/// The body of a stream: everything at once when there is no delay, else event by event.
/// A [`Frame::Cut`] ends the body with an error, which aborts the connection mid-body.
fn stream_body(frames: Vec<Frame>, token_delay: Duration) -> Body {
    if token_delay.is_zero() {
        let mut whole = String::new();
        let mut cut = false;
        for frame in frames {
            match frame {
                Frame::Event(b) | Frame::Filler(b) => whole.push_str(&b),
                Frame::Cut => cut = true,
            }
        }
        if !cut {
            return Body::from(whole);
        }
        return Body::from_stream(cut_stream(Bytes::from(whole)));
    }
    let stream =
        futures::stream::iter(frames.into_iter().enumerate()).then(move |(i, frame)| async move {
            if i > 0 {
                tokio::time::sleep(token_delay).await;
            }
            match frame {
                Frame::Event(b) | Frame::Filler(b) => Ok(Bytes::from(b)),
                Frame::Cut => Err(std::io::Error::other("scripted connection drop")),
            }
        });
    Body::from_stream(stream)
}

/// `bytes`, then (once they had time to be flushed) an error that aborts the connection.
fn cut_stream(
    bytes: Bytes,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::iter([Some(bytes), None]).then(|part| async move {
        match part {
            Some(bytes) => Ok(bytes),
            None => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Err(std::io::Error::other("scripted connection drop"))
            }
        }
    })
}
