//! The Web API (`POST /api/{method}`, JSON or form bodies, HTTP 200 with `ok:false` on
//! failure, 429 with `Retry-After` when rate limited) and private file downloads.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Response, StatusCode, header};
use serde_json::{Map, Value, json};

use super::socket;
use super::world::{ChannelType, Fault, Stored};
use super::{ApiCall, Shared, deliver_in_background};
use crate::journal::lock;

/// Longest `text` Slack takes.
const MAX_TEXT_CHARS: usize = 40_000;

/// What a call answers.
enum Answer {
    Ok(Map<String, Value>),
    Error(String),
    RateLimited(u64),
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// `POST /api/{method}`.
pub(crate) async fn call(
    State(shared): State<Arc<Shared>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let content_type = header_string(&headers, header::CONTENT_TYPE);
    let authorization = header_string(&headers, header::AUTHORIZATION);
    let mut warnings = Vec::new();
    let parsed = params(content_type.as_deref(), &body, &mut warnings);
    let (params, answer) = match parsed {
        Ok(params) => {
            let token = authorization
                .as_deref()
                .and_then(|v| v.strip_prefix("Bearer "))
                .map(str::trim)
                .or_else(|| params.get("token").and_then(Value::as_str))
                .map(str::to_owned);
            let answer = answer(&shared, &method, token.as_deref(), &params);
            (params, answer)
        }
        Err(code) => (Map::new(), Answer::Error(code.to_owned())),
    };
    let error = match &answer {
        Answer::Ok(_) => None,
        Answer::Error(code) => Some(code.clone()),
        Answer::RateLimited(_) => Some("ratelimited".to_owned()),
    };
    shared.journal.record(ApiCall {
        method: method.clone(),
        params: Value::Object(params),
        authorization,
        content_type,
        warnings: warnings.clone(),
        error,
    });
    shared.changed.notify_waiters();
    respond(answer, &warnings)
}

fn respond(answer: Answer, warnings: &[String]) -> Response<Body> {
    let (status, retry_after, mut body) = match answer {
        Answer::Ok(mut fields) => {
            let mut body = Map::new();
            body.insert("ok".into(), Value::Bool(true));
            body.append(&mut fields);
            (StatusCode::OK, None, body)
        }
        Answer::Error(code) => (StatusCode::OK, None, error_body(&code)),
        Answer::RateLimited(secs) => (
            StatusCode::TOO_MANY_REQUESTS,
            Some(secs),
            error_body("ratelimited"),
        ),
    };
    if !warnings.is_empty() {
        body.insert("warning".into(), Value::String(warnings.join(",")));
        body.insert("response_metadata".into(), json!({ "warnings": warnings }));
    }
    let mut response = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json; charset=utf-8");
    if let Some(secs) = retry_after {
        response = response.header(header::RETRY_AFTER, secs.to_string());
    }
    response
        .body(Body::from(Value::Object(body).to_string()))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}

fn error_body(code: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("ok".into(), Value::Bool(false));
    body.insert("error".into(), Value::String(code.to_owned()));
    body
}

/// The call's arguments, from a JSON or form body.
fn params(
    content_type: Option<&str>,
    body: &[u8],
    warnings: &mut Vec<String>,
) -> Result<Map<String, Value>, &'static str> {
    let content_type = content_type.unwrap_or("").to_ascii_lowercase();
    if content_type.starts_with("application/json") {
        if !content_type.contains("charset") {
            warnings.push("missing_charset".to_owned());
        }
        return match serde_json::from_slice(body) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err("invalid_json"),
        };
    }
    Ok(form(body))
}

/// Parses `application/x-www-form-urlencoded` (and an empty body).
fn form(body: &[u8]) -> Map<String, Value> {
    let mut map = Map::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (key, value) = match pair.iter().position(|b| *b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &b""[..]),
        };
        map.insert(decode(key), Value::String(decode(value)));
    }
    map
}

fn decode(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match raw[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < raw.len() => {
                match u8::from_str_radix(&String::from_utf8_lossy(&raw[i + 1..i + 3]), 16) {
                    Ok(byte) => {
                        out.push(byte);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn string(params: &Map<String, Value>, key: &str) -> Option<String> {
    match params.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Authentication, scripted faults, then the method.
fn answer(
    shared: &Arc<Shared>,
    method: &str,
    token: Option<&str>,
    params: &Map<String, Value>,
) -> Answer {
    let config = &shared.config;
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return Answer::Error("not_authed".into());
    };
    let wants_app_token = method == "apps.connections.open";
    if token == config.app_token {
        if !wants_app_token {
            return Answer::Error("not_allowed_token_type".into());
        }
    } else if token == config.bot_token {
        if wants_app_token {
            return Answer::Error("not_allowed_token_type".into());
        }
    } else {
        return Answer::Error("invalid_auth".into());
    }
    match lock(&shared.world).take_fault(method) {
        Some(Fault::RateLimited { retry_after_secs }) => {
            return Answer::RateLimited(retry_after_secs);
        }
        Some(Fault::Error(code)) => return Answer::Error(code),
        None => {}
    }
    match method {
        "auth.test" => Answer::Ok(auth_test(shared)),
        "chat.postMessage" => post_message(shared, params),
        "chat.update" => update(shared, params),
        "apps.connections.open" => {
            let url = socket::issue_ticket(shared);
            let mut fields = Map::new();
            fields.insert("url".into(), Value::String(url));
            Answer::Ok(fields)
        }
        _ => Answer::Error("unknown_method".into()),
    }
}

fn auth_test(shared: &Shared) -> Map<String, Value> {
    let c = &shared.config;
    let value = json!({
        "url": "https://fake-workspace.slack.com/",
        "team": c.team,
        "user": c.bot_name,
        "team_id": c.team_id,
        "user_id": c.bot_user_id,
        "bot_id": c.bot_id,
        "is_enterprise_install": false,
    });
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// The message object Slack returns and sends in events for one of the bot's posts.
fn bot_message_json(shared: &Shared, stored: &Stored) -> Value {
    let c = &shared.config;
    let mut message = json!({
        "type": "message",
        "user": c.bot_user_id,
        "bot_id": c.bot_id,
        "app_id": c.app_id,
        "text": stored.text,
        "ts": stored.ts,
        "team": c.team_id,
    });
    if let Some(thread) = &stored.thread_ts {
        message["thread_ts"] = Value::String(thread.clone());
    }
    if stored.edits > 0 {
        message["edited"] = json!({ "user": c.bot_user_id, "ts": stored.ts });
    }
    message
}

fn checked_text(params: &Map<String, Value>) -> Result<String, Answer> {
    let Some(text) = string(params, "text") else {
        return Err(Answer::Error("no_text".into()));
    };
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(Answer::Error("msg_too_long".into()));
    }
    Ok(text)
}

fn post_message(shared: &Arc<Shared>, params: &Map<String, Value>) -> Answer {
    let mut world = lock(&shared.world);
    let Some(channel) = string(params, "channel").filter(|c| world.has_channel(c)) else {
        return Answer::Error("channel_not_found".into());
    };
    let text = match checked_text(params) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    let thread_ts = string(params, "thread_ts");
    let stored = Stored {
        channel: channel.clone(),
        ts: world.next_ts(),
        thread_ts: thread_ts.clone(),
        text,
        user: shared.config.bot_user_id.clone(),
        by_bot: true,
        edits: 0,
    };
    let parent_user = thread_ts.as_deref().and_then(|t| world.author(&channel, t));
    world.messages.push(stored.clone());
    drop(world);
    let message = bot_message_json(shared, &stored);
    if shared.config.echo_bot_messages {
        let mut event = message.clone();
        event["channel"] = Value::String(channel.clone());
        event["event_ts"] = Value::String(stored.ts.clone());
        event["channel_type"] = Value::String(ChannelType::of(&channel).as_str().to_owned());
        if let Some(parent) = parent_user {
            event["parent_user_id"] = Value::String(parent);
        }
        deliver_in_background(shared, event);
    }
    let mut fields = Map::new();
    fields.insert("channel".into(), Value::String(channel));
    fields.insert("ts".into(), Value::String(stored.ts));
    fields.insert("message".into(), message);
    Answer::Ok(fields)
}

fn update(shared: &Arc<Shared>, params: &Map<String, Value>) -> Answer {
    let mut world = lock(&shared.world);
    let Some(channel) = string(params, "channel").filter(|c| world.has_channel(c)) else {
        return Answer::Error("channel_not_found".into());
    };
    let Some(ts) = string(params, "ts") else {
        return Answer::Error("message_not_found".into());
    };
    let text = match checked_text(params) {
        Ok(text) => text,
        Err(answer) => return answer,
    };
    let event_ts = world.next_ts();
    let Some(stored) = world.message_mut(&channel, &ts) else {
        return Answer::Error("message_not_found".into());
    };
    if !stored.by_bot {
        return Answer::Error("cant_update_message".into());
    }
    let previous = stored.clone();
    stored.text = text.clone();
    stored.edits += 1;
    let stored = stored.clone();
    drop(world);
    let message = bot_message_json(shared, &stored);
    if shared.config.echo_bot_messages {
        let event = json!({
            "type": "message",
            "subtype": "message_changed",
            "hidden": true,
            "channel": channel,
            "ts": event_ts,
            "event_ts": event_ts,
            "channel_type": ChannelType::of(&channel).as_str(),
            "message": message,
            "previous_message": bot_message_json(shared, &previous),
        });
        deliver_in_background(shared, event);
    }
    let mut fields = Map::new();
    fields.insert("channel".into(), Value::String(channel));
    fields.insert("ts".into(), Value::String(stored.ts));
    fields.insert("text".into(), Value::String(text));
    fields.insert("message".into(), message);
    Answer::Ok(fields)
}

/// `GET /files-pri/{team-file}/download/{name}` (and `/files-pri/{team-file}/{name}`): the
/// file with the bot token; without it, Slack's sign-in page (HTTP 200, HTML), as Slack does.
pub(crate) async fn file(
    State(shared): State<Arc<Shared>>,
    Path(path): Path<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response<Body> {
    let team_file = path
        .iter()
        .find(|(k, _)| k == "team_file")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let file_id = team_file.rsplit('-').next().unwrap_or("");
    let authorized = header_string(&headers, header::AUTHORIZATION)
        .is_some_and(|v| v == format!("Bearer {}", shared.config.bot_token));
    let file = lock(&shared.world).files.get(file_id).cloned();
    let response = Response::builder();
    let built = match (file, authorized) {
        (None, _) => response
            .status(StatusCode::NOT_FOUND)
            .body(Body::from("file not found")),
        (Some(_), false) => response
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
            .body(Body::from(
                "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Fake Workspace</body></html>",
            )),
        (Some(file), true) => response
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, file.content_type)
            .body(Body::from(file.bytes)),
    };
    built.unwrap_or_else(|_| Response::new(Body::empty()))
}
