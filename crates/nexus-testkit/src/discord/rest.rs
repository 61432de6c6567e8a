//! REST routes under `/api/v10`, the CDN and the gateway upgrade: authentication, scripted
//! faults and rate-limit buckets first, then the platform's answer.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use axum::routing::{any, get, patch, post};
use serde_json::{Value, json};

use super::limits::{limited_body, limited_headers};
use super::messages::{create, edit};
use super::model::user_json;
use super::{RecordedRequest, RestFault, Shared, gateway};
use crate::journal::{Stop, lock};

pub(crate) type St = State<Arc<Shared>>;
pub(crate) type Headers = Vec<(&'static str, String)>;

/// Serves the fake on `listener` until the returned handle is dropped.
pub(crate) fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Stop {
    let app = Router::new()
        .route("/api/v10/users/@me", get(me))
        .route("/api/v10/users/@me/channels", post(open_dm))
        .route("/api/v10/gateway", get(gateway_url))
        .route("/api/v10/gateway/bot", get(gateway_bot))
        .route("/api/v10/channels/{channel}/messages", post(create))
        .route(
            "/api/v10/channels/{channel}/messages/{message}",
            patch(edit),
        )
        .route("/api/v10/channels/{channel}/typing", post(typing))
        .route("/attachments/{channel}/{file}/{name}", get(cdn))
        .route("/gateway", any(upgrade))
        .route("/gateway/", any(upgrade))
        .route("/resume", any(upgrade))
        .route("/resume/", any(upgrade))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    shared.journal.serve(listener, app, "discord")
}

/// A request on its way through the fake.
pub(crate) struct Call {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) files: Vec<super::RecordedFile>,
}

impl Call {
    pub(crate) fn new(method: Method, uri: &Uri, headers: HeaderMap) -> Call {
        Call {
            method,
            path: uri.path().to_owned(),
            headers,
            body: Value::Null,
            files: Vec::new(),
        }
    }
}

pub(crate) fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records `call` with its answer and builds the response.
pub(crate) fn respond(
    shared: &Shared,
    call: Call,
    status: u16,
    body: Option<Value>,
    extra: Headers,
) -> Response<Body> {
    shared.journal.record(RecordedRequest {
        method: call.method.to_string(),
        path: call.path,
        authorization: header_string(&call.headers, header::AUTHORIZATION),
        user_agent: header_string(&call.headers, header::USER_AGENT),
        content_type: header_string(&call.headers, header::CONTENT_TYPE),
        body: call.body,
        files: call.files,
        status,
    });
    shared.changed.notify_waiters();
    let mut response = Response::new(match &body {
        Some(v) => Body::from(v.to_string()),
        None => Body::empty(),
    });
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = response.headers_mut();
    if body.is_some() {
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(name, v);
        }
    }
    response
}

pub(crate) fn error(code: u64, message: &str) -> Value {
    json!({"message": message, "code": code})
}

/// Authentication, scripted faults, then the bucket of `route` for `major`.
pub(crate) fn gate(
    shared: &Shared,
    call: Call,
    route: &'static str,
    major: &str,
) -> Result<(Call, Headers), Box<Response<Body>>> {
    let expected = format!("Bot {}", shared.config.token);
    if header_string(&call.headers, header::AUTHORIZATION).as_deref() != Some(expected.as_str()) {
        return Err(Box::new(respond(
            shared,
            call,
            401,
            Some(error(0, "401: Unauthorized")),
            Vec::new(),
        )));
    }
    match shared.journal.next_scripted() {
        Some(RestFault::RateLimited {
            retry_after,
            global,
        }) => {
            let body = limited_body(retry_after, global);
            return Err(Box::new(respond(
                shared,
                call,
                429,
                Some(body),
                limited_headers(retry_after, global),
            )));
        }
        Some(RestFault::ServerError(status)) => {
            let body = error(0, &format!("{status}: Server Error"));
            return Err(Box::new(respond(
                shared,
                call,
                status,
                Some(body),
                Vec::new(),
            )));
        }
        None => {}
    }
    let config = &shared.config;
    let (limit, window) = if route == "POST /channels/{id}/messages" {
        (config.message_limit, config.message_window)
    } else {
        (config.other_limit, config.message_window)
    };
    let verdict = lock(&shared.limits).check(route, major, limit, window);
    if let Some(wait) = verdict.limited {
        return Err(Box::new(respond(
            shared,
            call,
            429,
            Some(limited_body(wait, false)),
            verdict.headers,
        )));
    }
    Ok((call, verdict.headers))
}

async fn me(State(shared): St, method: Method, uri: Uri, headers: HeaderMap) -> Response<Body> {
    let call = Call::new(method, &uri, headers);
    let (call, limits) = match gate(&shared, call, "GET /users/@me", "") {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let mut user = user_json(&shared.config.bot_id, &shared.config.bot_name, true);
    if let Some(u) = user.as_object_mut() {
        u.insert("verified".to_owned(), Value::Bool(true));
        u.insert("flags".to_owned(), json!(0));
    }
    respond(&shared, call, 200, Some(user), limits)
}

async fn gateway_url(
    State(shared): St,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let call = Call::new(method, &uri, headers);
    respond(
        &shared,
        call,
        200,
        Some(json!({"url": shared.gateway_url()})),
        Vec::new(),
    )
}

async fn gateway_bot(
    State(shared): St,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let call = Call::new(method, &uri, headers);
    let (call, limits) = match gate(&shared, call, "GET /gateway/bot", "") {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let body = json!({
        "url": shared.gateway_url(),
        "shards": 1,
        "session_start_limit": {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1},
    });
    respond(&shared, call, 200, Some(body), limits)
}

async fn open_dm(
    State(shared): St,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let mut call = Call::new(method, &uri, headers);
    call.body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (call, limits) = match gate(&shared, call, "POST /users/@me/channels", "") {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let Some(user) = call
        .body
        .get("recipient_id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        let body = json!({"message": "Invalid Form Body", "code": 50035,
            "errors": {"recipient_id": {"_errors": [{"code": "BASE_TYPE_REQUIRED", "message": "This field is required"}]}}});
        return respond(&shared, call, 400, Some(body), limits);
    };
    let id = lock(&shared.model).dm_channel(&user);
    let body = json!({"id": id, "type": 1, "last_message_id": null, "flags": 0,
        "recipients": [user_json(&user, &format!("user {user}"), false)]});
    respond(&shared, call, 200, Some(body), limits)
}

async fn typing(
    State(shared): St,
    Path(channel): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let call = Call::new(method, &uri, headers);
    let (call, limits) = match gate(&shared, call, "POST /channels/{id}/typing", &channel) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let mut model = lock(&shared.model);
    if !model.channels.contains_key(&channel) {
        drop(model);
        return respond(
            &shared,
            call,
            404,
            Some(error(10003, "Unknown Channel")),
            limits,
        );
    }
    *model.typing.entry(channel).or_insert(0) += 1;
    drop(model);
    respond(&shared, call, 204, None, limits)
}

async fn cdn(State(shared): St, uri: Uri) -> Response<Body> {
    let file = lock(&shared.model).files.get(uri.path()).cloned();
    match file {
        Some((content_type, bytes)) => {
            let mut response = Response::new(Body::from(bytes));
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                response.headers_mut().insert(header::CONTENT_TYPE, v);
            }
            response
        }
        None => {
            let mut response = Response::new(Body::from("Not Found"));
            *response.status_mut() = StatusCode::NOT_FOUND;
            response
        }
    }
}

async fn upgrade(State(shared): St, uri: Uri, ws: WebSocketUpgrade) -> Response<Body> {
    let path = uri
        .path_and_query()
        .map(ToString::to_string)
        .unwrap_or_default();
    ws.on_upgrade(move |socket| gateway::serve(socket, shared, path))
}

async fn not_found(
    State(shared): St,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    let call = Call::new(method, &uri, headers);
    respond(
        &shared,
        call,
        404,
        Some(error(0, "404: Not Found")),
        Vec::new(),
    )
}
