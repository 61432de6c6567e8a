//! Scripted faults: what the next calls of a method answer instead of their real result.

use serde_json::json;

use super::state::ApiError;

/// A fault the next call(s) of a method get (queued with
/// [`FakeTelegram::fail_next`](super::FakeTelegram::fail_next)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 `Too Many Requests: retry after N` with `parameters.retry_after` = N seconds.
    RateLimited {
        /// Seconds.
        retry_after: u64,
    },
    /// A server error with this status (500, 502, 503…).
    ServerError {
        /// HTTP status.
        status: u16,
    },
    /// Response headers, then the connection is aborted before any body byte.
    DropConnection,
    /// 400 `Bad Request: can't parse entities: …` (only consumed by calls with a
    /// `parse_mode`).
    RejectEntities,
    /// 400 `Bad Request: group chat was upgraded to a supergroup chat` with
    /// `parameters.migrate_to_chat_id`.
    MigratedTo {
        /// The new supergroup's id.
        chat_id: i64,
    },
    /// Any other error answer.
    Error {
        /// HTTP status = `error_code`.
        status: u16,
        /// `description`, e.g. `Forbidden: bot was blocked by the user`.
        description: String,
    },
    /// A 200 whose body is cut JSON.
    MalformedBody,
    /// A 200 with a valid, empty result padded to `bytes` bytes.
    OversizedBody {
        /// Body size.
        bytes: usize,
    },
}

/// How a fault answers.
pub(crate) enum Answer {
    Error(ApiError),
    Drop,
    Raw(String),
}

impl Fault {
    pub(crate) fn answer(&self) -> Answer {
        match self {
            Fault::RateLimited { retry_after } => Answer::Error(ApiError {
                code: 429,
                description: format!("Too Many Requests: retry after {retry_after}"),
                parameters: Some(json!({"retry_after": retry_after})),
            }),
            Fault::ServerError { status } => Answer::Error(ApiError::new(
                *status,
                match status {
                    502 => "Bad Gateway",
                    503 => "Service Unavailable",
                    _ => "Internal Server Error",
                },
            )),
            Fault::DropConnection => Answer::Drop,
            Fault::RejectEntities => Answer::Error(ApiError::bad_request(
                "can't parse entities: Can't find end tag corresponding to start tag \"b\"",
            )),
            Fault::MigratedTo { chat_id } => Answer::Error(ApiError {
                code: 400,
                description: "Bad Request: group chat was upgraded to a supergroup chat".into(),
                parameters: Some(json!({"migrate_to_chat_id": chat_id})),
            }),
            Fault::Error {
                status,
                description,
            } => Answer::Error(ApiError::new(*status, description.clone())),
            Fault::MalformedBody => Answer::Raw("{\"ok\":true,\"result\":[{\"update_id\":".into()),
            Fault::OversizedBody { bytes } => {
                let head = "{\"ok\":true,\"result\":[],\"padding\":\"";
                let pad = bytes.saturating_sub(head.len() + 2);
                Answer::Raw(format!("{head}{}\"}}", "x".repeat(pad)))
            }
        }
    }
}
