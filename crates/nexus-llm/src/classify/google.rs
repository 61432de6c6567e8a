//! Classification of Google API errors (`google.rpc.Status`) into [`LlmError`], once, where
//! they enter.
//!
//! The body is `{"error":{"code":429,"message":"…","status":"RESOURCE_EXHAUSTED","details":[…]}}`,
//! sometimes wrapped in a one-element array (the JSON-array form of a stream). Decisions rest on
//! the HTTP status (or `error.code` / `error.status` for an error delivered inside a stream) and
//! on the typed `details`:
//!
//! - `google.rpc.ErrorInfo.reason = "API_KEY_INVALID"` (sent with 400) → [`LlmError::Auth`];
//! - `google.rpc.QuotaFailure.violations[].quotaId` containing `PerDay` → a daily quota is
//!   spent, [`LlmError::QuotaExceeded`] (not retried); any other 429 is
//!   [`LlmError::RateLimited`];
//! - `google.rpc.RetryInfo.retryDelay` (a protobuf `Duration` such as `"37s"` or `"0.5s"`)
//!   gives the delay of a 429 or 503, else the `retry-after` header does.
//!
//! Never message text: a context window overflow, which Google reports only in prose (400
//! `INVALID_ARGUMENT`, "The input token count (…) exceeds the maximum number of tokens allowed
//! (…)"), stays [`LlmError::BadRequest`] — equally final, just less specific.
//!
//! A server-side deadline (504 `DEADLINE_EXCEEDED`) is [`LlmError::Timeout`] with stage
//! [`SERVER_DEADLINE`].

use std::time::{Duration, SystemTime};

use nexus_core::llm::LlmError;
use reqwest::header::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

use super::{retry_after, shorten};

/// The [`LlmError::Timeout`] stage of a deadline that expired on the provider's side (504).
pub(crate) const SERVER_DEADLINE: &str = "server";

/// Most `details` entries looked at (a hostile body cannot make us walk forever).
const MAX_DETAILS: usize = 32;

#[derive(Debug, Deserialize)]
struct Envelope {
    #[serde(default)]
    error: Option<Status>,
}

#[derive(Debug, Deserialize)]
struct Status {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    details: Option<Vec<Value>>,
}

/// The structured parts of a Google error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct GoogleError {
    /// `error.code`, the HTTP status the error stands for.
    pub(crate) code: Option<u16>,
    /// `error.status`, e.g. `RESOURCE_EXHAUSTED`.
    pub(crate) status: Option<String>,
    /// `error.message`, shortened; only for people to read.
    pub(crate) message: String,
    /// `ErrorInfo.reason` of every `ErrorInfo` detail.
    pub(crate) reasons: Vec<String>,
    /// `QuotaFailure.violations[].quotaId` of every `QuotaFailure` detail.
    pub(crate) quota_ids: Vec<String>,
    /// `RetryInfo.retryDelay`.
    pub(crate) retry_delay: Option<Duration>,
}

impl GoogleError {
    /// The HTTP status the error stands for: `error.code`, else derived from `error.status`.
    pub(crate) fn http_status(&self) -> Option<u16> {
        self.code
            .or_else(|| self.status.as_deref().and_then(http_status_of))
    }
}

/// Reads an error body. `None` when it is not a Google error (no `error` object).
pub(crate) fn parse(body: &[u8]) -> Option<GoogleError> {
    let value: Value = serde_json::from_slice(body).ok()?;
    parse_value(&value)
}

/// [`parse`] over JSON already read: `{"error":{…}}` or `[{"error":{…}}]`.
pub(crate) fn parse_value(value: &Value) -> Option<GoogleError> {
    let value = match value {
        Value::Array(items) => items.first()?,
        other => other,
    };
    let status = Envelope::deserialize(value).ok()?.error?;
    let mut out = GoogleError {
        code: status
            .code
            .as_ref()
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok()),
        status: status.status,
        message: shorten(status.message.unwrap_or_default()),
        ..GoogleError::default()
    };
    for detail in status.details.unwrap_or_default().iter().take(MAX_DETAILS) {
        let kind = detail.get("@type").and_then(Value::as_str).unwrap_or("");
        match kind.rsplit('/').next().unwrap_or("") {
            "google.rpc.ErrorInfo" => {
                if let Some(reason) = detail.get("reason").and_then(Value::as_str) {
                    out.reasons.push(reason.to_owned());
                }
            }
            "google.rpc.QuotaFailure" => {
                let violations = detail.get("violations").and_then(Value::as_array);
                for violation in violations.into_iter().flatten().take(MAX_DETAILS) {
                    if let Some(id) = violation.get("quotaId").and_then(Value::as_str) {
                        out.quota_ids.push(id.to_owned());
                    }
                }
            }
            "google.rpc.RetryInfo" => {
                out.retry_delay = detail
                    .get("retryDelay")
                    .and_then(Value::as_str)
                    .and_then(parse_duration);
            }
            _ => {}
        }
    }
    Some(out)
}

/// Classifies an HTTP error answer. `model` names the model asked for (for `ModelNotFound`).
pub(crate) fn classify(status: u16, headers: &HeaderMap, body: &[u8], model: &str) -> LlmError {
    classify_at(status, headers, body, model, SystemTime::now())
}

/// [`classify`] with the clock given, for HTTP-date `retry-after` values.
pub(crate) fn classify_at(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: SystemTime,
) -> LlmError {
    let error = parse(body).unwrap_or_else(|| GoogleError {
        message: shorten(String::from_utf8_lossy(body).trim().to_owned()),
        ..GoogleError::default()
    });
    classify_error(status, &error, retry_after(headers, now), model)
}

/// Classifies `error` as an answer with HTTP `status`; `header_delay` is the delay the
/// response headers asked for, used when the body has no `RetryInfo`.
pub(crate) fn classify_error(
    status: u16,
    error: &GoogleError,
    header_delay: Option<Duration>,
    model: &str,
) -> LlmError {
    let message = if error.message.is_empty() {
        match &error.status {
            Some(name) => format!("HTTP {status} {name}"),
            None => format!("HTTP {status}"),
        }
    } else {
        error.message.clone()
    };
    let delay = error.retry_delay.or(header_delay);
    let has_reason = |want: &str| error.reasons.iter().any(|r| r == want);
    match status {
        // A wrong key is 400 INVALID_ARGUMENT; only its reason tells it from a bad request.
        _ if has_reason("API_KEY_INVALID") => LlmError::Auth { message },
        401 | 403 => LlmError::Auth { message },
        404 => LlmError::ModelNotFound {
            model: model.to_owned(),
        },
        429 if error.quota_ids.iter().any(|id| id.contains("PerDay")) => {
            LlmError::QuotaExceeded { message }
        }
        429 => LlmError::RateLimited { retry_after: delay },
        // ABORTED and request timeouts: the same request may succeed when sent again.
        408 | 409 => LlmError::Server { status },
        400..=499 => LlmError::BadRequest { message },
        503 => LlmError::Overloaded { retry_after: delay },
        504 => LlmError::Timeout {
            stage: SERVER_DEADLINE,
        },
        500..=599 => LlmError::Server { status },
        _ => LlmError::Malformed {
            detail: format!("unexpected HTTP status {status}"),
        },
    }
}

/// The HTTP status of a `google.rpc.Code` name (the mapping of `google/rpc/code.proto`).
pub(crate) fn http_status_of(name: &str) -> Option<u16> {
    Some(match name {
        "INVALID_ARGUMENT" | "FAILED_PRECONDITION" | "OUT_OF_RANGE" => 400,
        "UNAUTHENTICATED" => 401,
        "PERMISSION_DENIED" => 403,
        "NOT_FOUND" => 404,
        "ABORTED" | "ALREADY_EXISTS" => 409,
        "RESOURCE_EXHAUSTED" => 429,
        "CANCELLED" => 499,
        "UNKNOWN" | "INTERNAL" | "DATA_LOSS" => 500,
        "UNIMPLEMENTED" => 501,
        "UNAVAILABLE" => 503,
        "DEADLINE_EXCEEDED" => 504,
        _ => return None,
    })
}

/// A protobuf `Duration` in JSON: decimal seconds with an `s` suffix (`"37s"`, `"0.5s"`).
pub(crate) fn parse_duration(text: &str) -> Option<Duration> {
    let secs: f64 = text.trim().strip_suffix('s')?.parse().ok()?;
    (0.0..1e9)
        .contains(&secs)
        .then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;
    use serde_json::json;

    use super::*;

    fn body(code: u16, status: &str, details: Value) -> Vec<u8> {
        serde_json::to_vec_pretty(&json!({"error": {
            "code": code, "message": "m", "status": status, "details": details
        }}))
        .unwrap()
    }

    fn classify_plain(status: u16, body: &[u8]) -> LlmError {
        classify(status, &HeaderMap::new(), body, "gemini-x")
    }

    #[test]
    fn invalid_key_reason_is_auth_although_the_status_is_400() {
        let b = body(
            400,
            "INVALID_ARGUMENT",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]),
        );
        assert!(matches!(classify_plain(400, &b), LlmError::Auth { .. }));
        let plain = body(400, "INVALID_ARGUMENT", json!([]));
        assert!(matches!(
            classify_plain(400, &plain),
            LlmError::BadRequest { .. }
        ));
    }

    #[test]
    fn retry_info_delay_wins_over_the_header_and_per_day_quota_is_final() {
        let mut headers = HeaderMap::new();
        headers.insert("retry-after", HeaderValue::from_static("5"));
        let minute = body(
            429,
            "RESOURCE_EXHAUSTED",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [{"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}
            ]),
        );
        assert_eq!(
            classify(429, &headers, &minute, "m"),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(37))
            }
        );
        let no_info = body(429, "RESOURCE_EXHAUSTED", json!([]));
        assert_eq!(
            classify(429, &headers, &no_info, "m"),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(5))
            }
        );
        let day = body(
            429,
            "RESOURCE_EXHAUSTED",
            json!([
                {"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                 "violations": [
                    {"quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"},
                    {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}]},
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "47s"}
            ]),
        );
        assert!(matches!(
            classify(429, &headers, &day, "m"),
            LlmError::QuotaExceeded { .. }
        ));
    }

    #[test]
    fn statuses_map_to_kinds() {
        let b = |code, status| body(code, status, json!([]));
        assert!(matches!(
            classify_plain(403, &b(403, "PERMISSION_DENIED")),
            LlmError::Auth { .. }
        ));
        assert_eq!(
            classify_plain(404, &b(404, "NOT_FOUND")),
            LlmError::ModelNotFound {
                model: "gemini-x".into()
            }
        );
        assert!(matches!(
            classify_plain(400, &b(400, "FAILED_PRECONDITION")),
            LlmError::BadRequest { .. }
        ));
        assert_eq!(
            classify_plain(500, &b(500, "INTERNAL")),
            LlmError::Server { status: 500 }
        );
        assert_eq!(
            classify_plain(503, &b(503, "UNAVAILABLE")),
            LlmError::Overloaded { retry_after: None }
        );
        assert_eq!(
            classify_plain(504, &b(504, "DEADLINE_EXCEEDED")),
            LlmError::Timeout {
                stage: SERVER_DEADLINE
            }
        );
        assert_eq!(
            classify_plain(502, b"<html>bad gateway</html>"),
            LlmError::Server { status: 502 }
        );
    }

    #[test]
    fn decisions_ignore_message_text() {
        let b = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT",
            "message":"API_KEY_INVALID PerDay The input token count (2000000) exceeds the maximum"}}"#;
        assert!(matches!(
            classify_plain(400, b),
            LlmError::BadRequest { .. }
        ));
        let b = br#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"PerDay quota"}}"#;
        assert_eq!(
            classify_plain(429, b),
            LlmError::RateLimited { retry_after: None }
        );
    }

    #[test]
    fn array_wrapped_errors_and_status_names_are_understood() {
        let v = json!([{"error": {"message": "overloaded", "status": "UNAVAILABLE"}}]);
        let e = parse_value(&v).unwrap();
        assert_eq!(e.http_status(), Some(503));
        assert_eq!(e.message, "overloaded");
        assert_eq!(parse_value(&json!({"candidates": []})), None);
    }

    #[test]
    fn protobuf_durations_parse() {
        assert_eq!(parse_duration("37s"), Some(Duration::from_secs(37)));
        assert_eq!(parse_duration("0.250s"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("37"), None);
        assert_eq!(parse_duration("-1s"), None);
        assert_eq!(parse_duration("soon"), None);
    }
}
