//! Routes and handlers: the `{model}:{verb}` segment, authentication, validation, then the
//! scripted or default answer.

use std::sync::Arc;
use std::time::Duration;

use crate::journal::Stop;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, Response, Uri, header};
use axum::routing::{get, post};
use futures::StreamExt;
use serde_json::{Value, json};

use super::errors::{self, ApiError};
use super::frames::{self, Frame, Meta};
use super::script::{Body as ReplyBody, Reply};
use super::validate::{self, GeneratePlan};
use super::{RecordedRequest, Shared, embeddings};

type SharedState = State<Arc<Shared>>;

/// The header carrying the API key.
const API_KEY_HEADER: &str = "x-goog-api-key";

/// Serves the API on `listener` until the returned handle is dropped.
pub(crate) fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Stop {
    let app = Router::new()
        .route("/v1beta/models", get(list_models))
        .route("/v1beta/models/{target}", post(model_action).get(get_model))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    shared.journal.serve(listener, app, "gemini")
}

fn header_string(headers: &HeaderMap, name: impl header::AsHeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// The value of `name` in a query string (no percent-decoding: keys and `alt` need none).
fn query_param<'a>(uri: &'a Uri, name: &str) -> Option<&'a str> {
    uri.query()?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn record(shared: &Shared, method: &str, uri: &Uri, headers: &HeaderMap, body: Value) {
    shared.journal.record(RecordedRequest {
        method: method.to_owned(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        body,
        api_key: header_string(headers, API_KEY_HEADER),
        content_type: header_string(headers, header::CONTENT_TYPE),
        accept: header_string(headers, header::ACCEPT),
    });
}

/// Checks `x-goog-api-key` (or the `key` query parameter, which the service also accepts).
fn authorize(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<(), ApiError> {
    let given = headers
        .get(API_KEY_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| query_param(uri, "key"));
    match given {
        None | Some("") => Err(ApiError::missing_key()),
        Some(key) if key == shared.config.api_key => Ok(()),
        Some(_) => Err(ApiError::bad_key()),
    }
}

fn parse(body: &Bytes) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(body).map_err(|err| {
        ApiError::invalid_payload(
            "",
            format!(
                "Invalid JSON payload received. Unexpected token at line {} column {}.",
                err.line(),
                err.column()
            ),
        )
    })
}

fn is_embedding_model(model: &str) -> bool {
    model.contains("embedding")
}

fn is_generative_model(model: &str) -> bool {
    ["gemini-", "gemma-", "learnlm-"]
        .iter()
        .any(|p| model.starts_with(p))
        && !is_embedding_model(model)
}

async fn model_action(
    State(shared): SharedState,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let parsed = parse(&body);
    record(
        &shared,
        "POST",
        &uri,
        &headers,
        parsed.clone().unwrap_or(Value::Null),
    );
    let Some((model, verb)) = target.rsplit_once(':') else {
        return errors::html_not_found(uri.path());
    };
    let generate = matches!(verb, "streamGenerateContent" | "generateContent");
    if generate {
        shared.count_model_call();
    }
    if !generate && !matches!(verb, "embedContent" | "batchEmbedContents") {
        return errors::html_not_found(uri.path());
    }
    if let Err(err) = authorize(&shared, &uri, &headers) {
        return err.into_response();
    }
    let body = match parsed {
        Ok(body) => body,
        Err(err) => return err.into_response(),
    };
    let known = if generate {
        is_generative_model(model)
    } else {
        is_embedding_model(model)
    };
    if !known {
        return ApiError::model_not_found(model, verb).into_response();
    }
    match verb {
        "embedContent" => match embeddings::check_request(&body, "") {
            Ok((text, dimension)) => {
                json_response(embeddings::single(model, &text, dimension).to_string())
            }
            Err(err) => err.into_response(),
        },
        "batchEmbedContents" => match embeddings::check_batch(&body, model) {
            Ok(requests) => json_response(embeddings::batch(model, &requests).to_string()),
            Err(err) => err.into_response(),
        },
        _ => match validate::generate(&body, &shared) {
            Ok(plan) => {
                let stream = verb == "streamGenerateContent";
                let sse = query_param(&uri, "alt") == Some("sse");
                generate_answer(&shared, model, &plan, stream, sse).await
            }
            Err(err) => err.into_response(),
        },
    }
}

/// Answers a valid model call with the next scripted reply (or the default one).
async fn generate_answer(
    shared: &Shared,
    model: &str,
    plan: &GeneratePlan,
    stream: bool,
    sse: bool,
) -> Response<Body> {
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
        code,
        status,
        message,
    } = &reply.body
    {
        return scripted_error(&reply, *code, status, message.clone(), model).into_response();
    }
    let seq = shared.journal.next_id();
    let meta = Meta {
        response_id: format!("fakeResp{seq:012x}"),
        model,
        seq,
    };
    let answer = frames::answer(&reply, plan, config.reply_words);
    let frames = frames::stream_frames(&reply, plan, &answer, &meta, shared);
    let token_delay = reply.token_delay.unwrap_or(config.token_delay);
    if stream {
        let separator = if reply.lf { "\n\n" } else { "\r\n\r\n" };
        let (body, content_type) = if sse {
            (sse_pieces(&frames, separator), "text/event-stream")
        } else {
            (array_pieces(&frames), "application/json; charset=UTF-8")
        };
        let mut response = Response::new(paced_body(body, token_delay));
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        return response;
    }
    match &reply.body {
        ReplyBody::Malformed => json_response(
            "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"oops\"".to_owned(),
        ),
        ReplyBody::StreamError { code, status, .. } => {
            let message = ApiError::default_message(*code, status, model);
            ApiError::new(*code, status, message).into_response()
        }
        _ => {
            let text = serde_json::to_string_pretty(&frames::merged(&frames)).unwrap_or_default();
            if let Some(n) = reply.cut_after {
                let cut = text.len().min(n.max(1) * 16);
                let partial = text.get(..cut).unwrap_or_default().to_owned();
                let mut response = Response::new(paced_body(
                    vec![Piece::Bytes(partial), Piece::Cut],
                    Duration::ZERO,
                ));
                response.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json; charset=UTF-8"),
                );
                return response;
            }
            json_response(text)
        }
    }
}

fn scripted_error(
    reply: &Reply,
    code: u16,
    status: &str,
    message: Option<String>,
    model: &str,
) -> ApiError {
    let mut error = match &reply.quota_id {
        Some(quota) => ApiError::quota(model, quota, reply.retry_delay),
        None => {
            let mut error =
                ApiError::new(code, status, ApiError::default_message(code, status, model));
            if let Some(delay) = reply.retry_delay {
                error.details.push(json!({
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": errors::duration(delay)
                }));
            }
            error
        }
    };
    error.code = code;
    error.status = status.to_owned();
    if let Some(message) = message {
        error.message = message;
    }
    if let Some(reason) = &reply.reason {
        error = error.with_reason(reason);
    }
    error
}

fn json_response(text: String) -> Response<Body> {
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=UTF-8"),
    );
    response
}

/// Bytes to write, or the point where the connection drops.
enum Piece {
    Bytes(String),
    Cut,
}

/// SSE framing: `data: <json>` events; raw frames as they are.
fn sse_pieces(frames: &[Frame], separator: &str) -> Vec<Piece> {
    frames
        .iter()
        .map(|frame| match frame {
            Frame::Chunk(chunk) => Piece::Bytes(format!("data: {chunk}{separator}")),
            Frame::Raw(text) if text.ends_with('\n') => Piece::Bytes(text.clone()),
            Frame::Raw(text) => Piece::Bytes(format!("{text}{separator}")),
            Frame::Cut => Piece::Cut,
        })
        .collect()
}

/// JSON-array framing (no `alt=sse`): `[` element `,\r\n` element … `]`.
fn array_pieces(frames: &[Frame]) -> Vec<Piece> {
    let mut pieces = Vec::with_capacity(frames.len() + 1);
    let mut first = true;
    let mut cut = false;
    for frame in frames {
        let element = match frame {
            Frame::Chunk(chunk) => serde_json::to_string_pretty(chunk).unwrap_or_default(),
            Frame::Raw(text) if text.trim_start().starts_with('{') => text.trim_end().to_owned(),
            Frame::Raw(text) if text.starts_with("data: ") => {
                text.trim_start_matches("data: ").to_owned()
            }
            Frame::Raw(_) => continue,
            Frame::Cut => {
                pieces.push(Piece::Cut);
                cut = true;
                break;
            }
        };
        let lead = if first { "[" } else { ",\r\n" };
        first = false;
        pieces.push(Piece::Bytes(format!("{lead}{element}")));
    }
    if !cut {
        pieces.push(Piece::Bytes(if first {
            "[]".to_owned()
        } else {
            "]".to_owned()
        }));
    }
    pieces
}

/// The body: everything at once when there is no delay, else piece by piece. A
/// [`Piece::Cut`] ends the body with an error, which aborts the connection mid-body.
fn paced_body(pieces: Vec<Piece>, delay: Duration) -> Body {
    let stream =
        futures::stream::iter(pieces.into_iter().enumerate()).then(move |(i, piece)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            match piece {
                Piece::Bytes(b) => Ok(Bytes::from(b)),
                Piece::Cut => {
                    // Let the bytes before the cut reach the client first.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    Err(std::io::Error::other("scripted connection drop"))
                }
            }
        });
    Body::from_stream(stream)
}

fn model_json(name: &str) -> Value {
    let embedding = is_embedding_model(name);
    json!({
        "name": format!("models/{name}"),
        "version": "001",
        "displayName": name,
        "inputTokenLimit": if embedding { 2048 } else { 1_048_576 },
        "outputTokenLimit": if embedding { 1 } else { 65_536 },
        "supportedGenerationMethods": if embedding {
            json!(["embedContent", "batchEmbedContents"])
        } else {
            json!(["generateContent", "countTokens", "streamGenerateContent"])
        },
    })
}

const MODELS: &[&str] = &[
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
    "gemini-2.0-flash",
    "gemini-embedding-001",
    "text-embedding-004",
];

async fn list_models(State(shared): SharedState, uri: Uri, headers: HeaderMap) -> Response<Body> {
    record(&shared, "GET", &uri, &headers, Value::Null);
    if let Err(err) = authorize(&shared, &uri, &headers) {
        return err.into_response();
    }
    let models: Vec<Value> = MODELS.iter().map(|m| model_json(m)).collect();
    json_response(json!({ "models": models }).to_string())
}

async fn get_model(
    State(shared): SharedState,
    Path(target): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    record(&shared, "GET", &uri, &headers, Value::Null);
    if let Err(err) = authorize(&shared, &uri, &headers) {
        return err.into_response();
    }
    if is_generative_model(&target) || is_embedding_model(&target) {
        json_response(model_json(&target).to_string())
    } else {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!("models/{target} is not found for API version v1beta"),
        )
        .into_response()
    }
}

async fn not_found(
    State(shared): SharedState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    record(&shared, method.as_str(), &uri, &headers, Value::Null);
    errors::html_not_found(uri.path())
}
