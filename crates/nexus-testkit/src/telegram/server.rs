//! Routes: `/bot{token}/{method}` (any HTTP method, any of the four encodings) and
//! `/file/bot{token}/{file_path}`; the token check (401 for a wrong token, 404 for one that
//! cannot be a token), scripted faults, recording, and the `{"ok":…}` envelope.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, Response, header};
use axum::routing::{any, get};
use serde_json::{Value, json};

use super::params::Params;
use super::script::Answer;
use super::state::ApiError;
use super::{ApiCall, Shared, methods, updates, webhook};
use crate::journal::Stop;

type SharedState = State<Arc<Shared>>;

/// Serves the Bot API on `listener` until the returned handle is dropped.
pub(crate) fn spawn(listener: tokio::net::TcpListener, shared: Arc<Shared>) -> Stop {
    let app = Router::new()
        .route("/file/{bot}/{*path}", get(file))
        .route("/{bot}/{method}", any(api))
        .fallback(not_found)
        .with_state(Arc::clone(&shared));
    shared.journal.serve(listener, app, "telegram")
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() =
        axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn ok(result: Value) -> Response<Body> {
    json_response(200, &json!({"ok": true, "result": result}))
}

fn error(err: &ApiError) -> Response<Body> {
    json_response(err.code, &err.body())
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

/// Whether `token` has the shape of a bot token (`digits:rest`): a wrong one gets 401, a
/// malformed one 404, as on Telegram.
fn token_shaped(token: &str) -> bool {
    match token.split_once(':') {
        Some((id, secret)) => {
            !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !secret.is_empty()
        }
        None => false,
    }
}

fn check_token(shared: &Shared, bot: &str) -> Result<(), ApiError> {
    let token = bot.strip_prefix("bot").unwrap_or_default();
    if token == shared.config.token {
        Ok(())
    } else if token_shaped(token) {
        Err(ApiError::new(401, "Unauthorized"))
    } else {
        Err(ApiError::new(404, "Not Found"))
    }
}

async fn api(
    State(shared): SharedState,
    Path((bot, method)): Path<(String, String)>,
    request: Request,
) -> Response<Body> {
    if let Err(err) = check_token(&shared, &bot) {
        return error(&err);
    }
    let params = match Params::read(request).await {
        Ok(p) => p,
        Err(err) => return error(&err),
    };
    let Some(name) = methods::canonical(&method) else {
        shared.journal.record(ApiCall {
            method,
            params: params.recorded(),
        });
        return error(&ApiError::new(404, "Not Found"));
    };
    shared.journal.record(ApiCall {
        method: name.to_owned(),
        params: params.recorded(),
    });
    let fault = shared.state().take_fault(name, params.has("parse_mode"));
    if let Some(fault) = fault {
        return match fault.answer() {
            Answer::Error(err) => error(&err),
            Answer::Drop => dropped(),
            Answer::Raw(body) => {
                let mut response = json_response(200, &Value::Null);
                *response.body_mut() = Body::from(body);
                response
            }
        };
    }
    let result = match name {
        "getMe" => Ok(methods::get_me(&shared)),
        "getUpdates" => updates::get_updates(&shared, &params).await,
        "setWebhook" => webhook::set_webhook(&shared, &params),
        "deleteWebhook" => Ok(webhook::delete_webhook(&shared, &params)),
        "getWebhookInfo" => Ok(webhook::get_webhook_info(&shared)),
        "sendMessage" => methods::send_message(&shared, &params),
        "editMessageText" => methods::edit_message_text(&shared, &params),
        "sendChatAction" => methods::send_chat_action(&shared, &params),
        "sendPhoto" => methods::send_file(&shared, &params, true),
        "sendDocument" => methods::send_file(&shared, &params, false),
        "getFile" => methods::get_file(&shared, &params),
        _ => Err(ApiError::new(404, "Not Found")),
    };
    match result {
        Ok(value) => ok(value),
        Err(err) => error(&err),
    }
}

async fn file(
    State(shared): SharedState,
    Path((bot, path)): Path<(String, String)>,
) -> Response<Body> {
    if let Err(err) = check_token(&shared, &bot) {
        return error(&err);
    }
    shared.journal.record(ApiCall {
        method: "file".to_owned(),
        params: json!({"file_path": path}),
    });
    match methods::download(&shared, &path) {
        Some(bytes) => {
            let mut response = Response::new(Body::from(bytes));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            response
        }
        None => error(&ApiError::new(404, "Not Found")),
    }
}

async fn not_found() -> Response<Body> {
    error(&ApiError::new(404, "Not Found"))
}
