//! REST routes under `/api/v10`, the CDN and the gateway upgrade: authentication, scripted
//! faults and rate-limit buckets first, then the platform's answer.

use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, Multipart, Path, Request, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, Response, StatusCode, Uri, header};
use axum::routing::{any, get, patch, post};
use serde_json::{Value, json};

use super::chat::{NewMessage, message_json};
use super::limits::{limited_body, limited_headers};
use super::model::user_json;
use super::{RecordedFile, RecordedRequest, RestFault, Shared, gateway};
use crate::journal::{Stop, lock};

type St = State<Arc<Shared>>;
type Headers = Vec<(&'static str, String)>;

/// Longest message content, in characters.
const MAX_CONTENT: usize = 2000;

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
struct Call {
    method: Method,
    path: String,
    headers: HeaderMap,
    body: Value,
    files: Vec<RecordedFile>,
}

impl Call {
    fn new(method: Method, uri: &Uri, headers: HeaderMap) -> Call {
        Call {
            method,
            path: uri.path().to_owned(),
            headers,
            body: Value::Null,
            files: Vec::new(),
        }
    }
}

fn header_string(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Records `call` with its answer and builds the response.
fn respond(
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

fn error(code: u64, message: &str) -> Value {
    json!({"message": message, "code": code})
}

/// Authentication, scripted faults, then the bucket of `route` for `major`.
fn gate(
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

/// Reads a JSON body or a multipart body (`payload_json` + `files[n]`) into `call`.
async fn read_body(call: &mut Call, request: Request) -> Result<(), String> {
    let multipart = header_string(&call.headers, header::CONTENT_TYPE)
        .is_some_and(|ct| ct.starts_with("multipart/form-data"));
    if !multipart {
        let bytes = axum::body::to_bytes(request.into_body(), 16 * 1024 * 1024)
            .await
            .map_err(|e| e.to_string())?;
        if !bytes.is_empty() {
            call.body = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        }
        return Ok(());
    }
    let mut form = Multipart::from_request(request, &())
        .await
        .map_err(|e| e.to_string())?;
    while let Some(field) = form.next_field().await.map_err(|e| e.to_string())? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| e.to_string())?;
        if name == "payload_json" {
            call.body = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        } else if name.starts_with("files[") {
            call.files.push(RecordedFile {
                field: name,
                filename,
                content_type,
                bytes: bytes.to_vec(),
            });
        }
    }
    Ok(())
}

fn too_long(field: &str) -> Value {
    json!({"message": "Invalid Form Body", "code": 50035, "errors": {field: {"_errors": [
        {"code": "BASE_TYPE_MAX_LENGTH", "message": format!("Must be {MAX_CONTENT} or fewer in length.")}]}}})
}

async fn create(
    State(shared): St,
    Path(channel): Path<String>,
    request: Request,
) -> Response<Body> {
    let mut call = Call::new(
        request.method().clone(),
        request.uri(),
        request.headers().clone(),
    );
    if let Err(err) = read_body(&mut call, request).await {
        let body = json!({"message": "400: Bad Request", "code": 0, "detail": err});
        return respond(&shared, call, 400, Some(body), Vec::new());
    }
    let (call, limits) = match gate(&shared, call, "POST /channels/{id}/messages", &channel) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let content = call
        .body
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let mut model = lock(&shared.model);
    let Some(place) = model.channels.get(&channel).cloned() else {
        drop(model);
        return respond(
            &shared,
            call,
            404,
            Some(error(10003, "Unknown Channel")),
            limits,
        );
    };
    if content.chars().count() > MAX_CONTENT {
        drop(model);
        return respond(&shared, call, 400, Some(too_long("content")), limits);
    }
    if content.is_empty() && call.files.is_empty() {
        drop(model);
        return respond(
            &shared,
            call,
            400,
            Some(error(50006, "Cannot send an empty message")),
            limits,
        );
    }
    let reference = call
        .body
        .pointer("/message_reference/message_id")
        .and_then(Value::as_str);
    let fail_if_missing = call
        .body
        .pointer("/message_reference/fail_if_not_exists")
        .and_then(Value::as_bool)
        != Some(false);
    let referenced = reference
        .and_then(|id| model.messages.get(id))
        .map(|m| m.json.clone());
    if reference.is_some() && referenced.is_none() && fail_if_missing {
        drop(model);
        let body = json!({"message": "Invalid Form Body", "code": 50035, "errors": {"message_reference": {"_errors": [
            {"code": "REPLIES_UNKNOWN_MESSAGE", "message": "Unknown message"}]}}});
        return respond(&shared, call, 400, Some(body), limits);
    }
    let mut attachments = Vec::new();
    for file in &call.files {
        let id = model.snowflake();
        let name = file.filename.clone().unwrap_or_else(|| "file".to_owned());
        let ct = file
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let path = format!("/attachments/{channel}/{id}/{name}");
        attachments.push(json!({"id": id, "filename": name, "size": file.bytes.len(),
            "url": format!("http://{}{path}", shared.addr), "proxy_url": format!("http://{}{path}", shared.addr),
            "content_type": ct}));
        model.files.insert(path, (ct, file.bytes.clone()));
    }
    let id = model.snowflake();
    let config = &shared.config;
    let message = message_json(NewMessage {
        id: &id,
        channel_id: &channel,
        author: user_json(&config.bot_id, &config.bot_name, true),
        content: &content,
        mentions: Vec::new(),
        referenced: referenced.clone(),
        attachments,
    });
    model.messages.insert(
        id.clone(),
        super::model::Stored {
            channel_id: channel.clone(),
            author_id: config.bot_id.clone(),
            json: message.clone(),
            edits: 0,
            reply_to: referenced.as_ref().and(reference.map(str::to_owned)),
        },
    );
    model.bot_order.push(id);
    model.dispatch(
        "MESSAGE_CREATE",
        with_guild(&message, place.guild_id.as_deref()),
    );
    drop(model);
    respond(&shared, call, 200, Some(message), limits)
}

/// A message object as the gateway dispatches it: with `guild_id` in guilds.
pub(crate) fn with_guild(message: &Value, guild: Option<&str>) -> Value {
    let mut d = message.clone();
    if let (Some(obj), Some(guild)) = (d.as_object_mut(), guild) {
        obj.insert("guild_id".to_owned(), Value::String(guild.to_owned()));
        let member = json!({"roles": [], "joined_at": super::model::timestamp(), "nick": null,
            "deaf": false, "mute": false, "flags": 0});
        obj.insert("member".to_owned(), member);
    }
    d
}

async fn edit(
    State(shared): St,
    Path((channel, message)): Path<(String, String)>,
    request: Request,
) -> Response<Body> {
    let mut call = Call::new(
        request.method().clone(),
        request.uri(),
        request.headers().clone(),
    );
    if let Err(err) = read_body(&mut call, request).await {
        let body = json!({"message": "400: Bad Request", "code": 0, "detail": err});
        return respond(&shared, call, 400, Some(body), Vec::new());
    }
    let (call, limits) = match gate(
        &shared,
        call,
        "PATCH /channels/{id}/messages/{id}",
        &channel,
    ) {
        Ok(ok) => ok,
        Err(response) => return *response,
    };
    let content = call
        .body
        .get("content")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let mut model = lock(&shared.model);
    let guild = model
        .channels
        .get(&channel)
        .and_then(|c| c.guild_id.clone());
    let known_channel = model.channels.contains_key(&channel);
    let outcome = match model.messages.get_mut(&message) {
        _ if !known_channel => Err((404, error(10003, "Unknown Channel"))),
        None => Err((404, error(10008, "Unknown Message"))),
        Some(m) if m.channel_id != channel => Err((404, error(10008, "Unknown Message"))),
        Some(m) if m.author_id != shared.config.bot_id => Err((
            403,
            error(50005, "Cannot edit a message authored by another user"),
        )),
        Some(_)
            if content
                .as_ref()
                .is_some_and(|c| c.chars().count() > MAX_CONTENT) =>
        {
            Err((400, too_long("content")))
        }
        Some(m) => {
            if let Some(content) = &content {
                m.edits += 1;
                if let Some(obj) = m.json.as_object_mut() {
                    obj.insert("content".to_owned(), Value::String(content.clone()));
                    obj.insert(
                        "edited_timestamp".to_owned(),
                        Value::String(super::model::timestamp()),
                    );
                }
            }
            Ok(m.json.clone())
        }
    };
    if let Ok(updated) = &outcome {
        model.dispatch("MESSAGE_UPDATE", with_guild(updated, guild.as_deref()));
    }
    drop(model);
    match outcome {
        Ok(updated) => respond(&shared, call, 200, Some(updated), limits),
        Err((status, body)) => respond(&shared, call, status, Some(body), limits),
    }
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
