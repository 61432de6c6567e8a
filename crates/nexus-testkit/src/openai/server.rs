//! Routes and handlers: authentication, validation, then the scripted or default answer.

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

use super::errors::ApiError;
use super::frames::{self, Frame, Meta};
use super::script::{Body as ReplyBody, Reply};
use super::{RecordedRequest, Shared, embeddings, fast, validate};

type SharedState = State<Arc<Shared>>;

/// Serves the API on `listener` until the returned handle is dropped.
pub(crate) fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Stop {
    let app = Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/embeddings", post(embeddings_handler))
        .route("/v1/models", get(models))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    shared.journal.serve(listener, app, "openai")
}

fn header_string(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

fn record(shared: &Shared, method: &str, path: &str, headers: &HeaderMap, body: Value) {
    shared.journal.record(RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        body,
        authorization: header_string(headers, header::AUTHORIZATION),
        organization: header_string(headers, "openai-organization"),
        project: header_string(headers, "openai-project"),
        content_type: header_string(headers, header::CONTENT_TYPE),
        accept: header_string(headers, header::ACCEPT),
        headers: headers
            .iter()
            .filter(|(name, _)| *name != header::AUTHORIZATION)
            .filter_map(|(name, value)| {
                Some((name.as_str().to_owned(), value.to_str().ok()?.to_owned()))
            })
            .collect(),
    });
}

/// Checks `Authorization: Bearer <key>`.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(ApiError::missing_key());
    };
    let Some(token) = value.strip_prefix("Bearer ").map(str::trim) else {
        return Err(ApiError::missing_key());
    };
    if token == shared.config.api_key {
        Ok(())
    } else {
        Err(ApiError::wrong_key(token))
    }
}

fn request_id(shared: &Shared) -> String {
    format!("req_fake{:016x}", shared.journal.next_id())
}

fn parse(body: &Bytes) -> Value {
    if body.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(body).unwrap_or(Value::Null)
}

async fn chat(State(shared): SharedState, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let rid = request_id(&shared);
    // A fake that keeps no requests has no use for the JSON tree of a plain one.
    let plain = if shared.journal.keeps_requests() {
        None
    } else {
        fast::plain_chat(&body)
    };
    let (checked, value) = match plain {
        Some(plan) => (authorize(&shared, &headers).map(|()| plan), Value::Null),
        None => {
            let value = parse(&body);
            let checked = authorize(&shared, &headers).and_then(|()| validate::chat(&value));
            (checked, value)
        }
    };
    record(&shared, "POST", "/v1/chat/completions", &headers, value);
    let plan = match checked {
        Ok(plan) => plan,
        Err(err) => return err.into_response(&rid, None),
    };
    let reply = shared
        .journal
        .next_scripted()
        .unwrap_or_else(Reply::default_reply);
    let config = &shared.config;
    let first_byte_delay = reply.first_byte_delay.unwrap_or(config.first_byte_delay);
    if !first_byte_delay.is_zero() {
        tokio::time::sleep(first_byte_delay).await;
    }
    if let ReplyBody::Error {
        status,
        code,
        message,
    } = &reply.body
    {
        let error = ApiError::scripted(*status, code, message.clone(), &plan.model);
        if reply.openrouter {
            return error.into_openrouter_response(&rid, reply.retry_after);
        }
        return error.into_response(&rid, reply.retry_after);
    }
    let seq = shared.journal.next_id();
    let answer = frames::answer(&reply, &plan, config.reply_words, seq);
    let meta = Meta::new(seq, &plan.model);
    let token_delay = reply.token_delay.unwrap_or(config.token_delay);
    if plan.stream {
        let frames = frames::stream_frames(&reply, &plan, &answer, &meta);
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
        ReplyBody::Malformed => json_response(
            Body::from("{\"id\": \"chatcmpl-broken\", \"choices\": [{"),
            &rid,
        ),
        ReplyBody::InStreamError => {
            ApiError::scripted(500, "server_error", None, &plan.model).into_response(&rid, None)
        }
        _ => {
            let text = frames::completion_object(&reply, &plan, &answer, &meta).to_string();
            if let Some(n) = reply.cut_after {
                let cut = text.len().min(n.max(1) * 16);
                let partial = Bytes::from(text).slice(..cut);
                return json_response(Body::from_stream(cut_stream(partial)), &rid);
            }
            json_response(Body::from(text), &rid)
        }
    }
}

fn set_common(headers: &mut HeaderMap, rid: &str) {
    if let Ok(v) = HeaderValue::from_str(rid) {
        headers.insert("x-request-id", v);
    }
    headers.insert("openai-processing-ms", HeaderValue::from_static("1"));
    headers.insert("openai-version", HeaderValue::from_static("2020-10-01"));
    headers.insert(
        "x-ratelimit-limit-requests",
        HeaderValue::from_static("10000"),
    );
    headers.insert(
        "x-ratelimit-remaining-requests",
        HeaderValue::from_static("9999"),
    );
    headers.insert(
        "x-ratelimit-reset-requests",
        HeaderValue::from_static("6ms"),
    );
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

/// The body of a stream: everything at once when there is no delay, else frame by frame.
/// A [`Frame::Cut`] ends the body with an error, which aborts the connection mid-body.
fn stream_body(frames: Vec<Frame>, token_delay: Duration) -> Body {
    if token_delay.is_zero() {
        let mut whole = String::new();
        let mut cut = false;
        for frame in frames {
            match frame {
                Frame::Bytes(b) => whole.push_str(&b),
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
                Frame::Bytes(b) => Ok(Bytes::from(b)),
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

async fn embeddings_handler(
    State(shared): SharedState,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let rid = request_id(&shared);
    let value = parse(&body);
    let checked = authorize(&shared, &headers).and_then(|()| validate::embeddings(&value));
    record(&shared, "POST", "/v1/embeddings", &headers, value);
    match checked {
        Ok((model, inputs, dimensions, base64)) => json_response(
            Body::from(embeddings::response(&model, &inputs, dimensions, base64).to_string()),
            &rid,
        ),
        Err(err) => err.into_response(&rid, None),
    }
}

async fn models(State(shared): SharedState, headers: HeaderMap) -> Response<Body> {
    let rid = request_id(&shared);
    let checked = authorize(&shared, &headers);
    record(&shared, "GET", "/v1/models", &headers, Value::Null);
    if let Err(err) = checked {
        return err.into_response(&rid, None);
    }
    let data: Vec<Value> = [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ]
    .iter()
    .map(|id| json!({"id": id, "object": "model", "created": 1_715_367_049, "owned_by": "system"}))
    .collect();
    json_response(
        Body::from(json!({"object": "list", "data": data}).to_string()),
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
    record(&shared, method.as_str(), uri.path(), &headers, Value::Null);
    ApiError {
        status: 404,
        message: format!("Invalid URL ({method} {})", uri.path()),
        kind: "invalid_request_error",
        param: None,
        code: None,
    }
    .into_response(&rid, None)
}
