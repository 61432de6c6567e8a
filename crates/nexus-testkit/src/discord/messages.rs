//! Message routes: create (JSON or multipart with `payload_json` + `files[n]`) and edit, with
//! Discord's validation errors; every created or edited message is dispatched on the gateway.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{Response, header};
use serde_json::{Value, json};

use super::RecordedFile;
use super::chat::{NewMessage, message_json};
use super::model::{Stored, timestamp, user_json};
use super::rest::{Call, St, error, gate, header_string, respond};
use crate::journal::lock;

/// Longest message content, in characters.
const MAX_CONTENT: usize = 2000;

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

pub(crate) async fn create(
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
        Stored {
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
        let member = json!({"roles": [], "joined_at": timestamp(), "nick": null,
            "deaf": false, "mute": false, "flags": 0});
        obj.insert("member".to_owned(), member);
    }
    d
}

pub(crate) async fn edit(
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
                    obj.insert("edited_timestamp".to_owned(), Value::String(timestamp()));
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
