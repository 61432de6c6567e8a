//! Classification of a failed HTTP answer into [`LlmError`], once, where it enters.
//!
//! Decisions rest on the HTTP status and the structured `error.code` / `error.type` of the
//! body (`{"error":{"message","type","param","code"}}`, shared by OpenAI-compatible APIs),
//! never on message text; the message is only carried along for people to read.
//! `retry-after-ms` and `retry-after` (seconds or an HTTP date) give the delay of a 429/503.
//!
//! This module must never retry, log, or read anything but the status, headers and body.
//!
//! Google's APIs answer errors in another shape (`google.rpc.Status`); they are classified by
//! [`google`], which shares the `retry-after` reading and message shortening of this module.

use std::time::{Duration, SystemTime};

use nexus_core::llm::LlmError;
use reqwest::header::HeaderMap;
use serde::Deserialize;

pub(crate) mod google;

/// The longest message kept from an error body, in bytes.
const MAX_MESSAGE: usize = 1024;

#[derive(Debug, Default, Deserialize)]
struct ErrorEnvelope {
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Debug, Default, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: Option<String>,
    #[serde(default, rename = "type")]
    kind: Option<String>,
    /// A string for OpenAI, a number (the HTTP status) for OpenRouter.
    #[serde(default)]
    code: Option<serde_json::Value>,
}

/// The structured parts of an error body.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    pub(crate) message: String,
    pub(crate) kind: Option<String>,
    pub(crate) code: Option<String>,
}

/// Reads `{"error":{…}}`; a body of another shape keeps its (shortened) text as the message.
pub(crate) fn error_info(body: &[u8]) -> ErrorInfo {
    let parsed: Option<ErrorBody> = serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .and_then(|e| e.error);
    match parsed {
        Some(err) => ErrorInfo {
            message: shorten(err.message.unwrap_or_default()),
            kind: err.kind,
            code: err.code.and_then(|c| match c {
                serde_json::Value::String(s) => Some(s),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        },
        None => ErrorInfo {
            message: shorten(String::from_utf8_lossy(body).trim().to_owned()),
            kind: None,
            code: None,
        },
    }
}

pub(crate) fn shorten(mut text: String) -> String {
    if text.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
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
    let info = error_info(body);
    let is = |want: &str| info.code.as_deref() == Some(want) || info.kind.as_deref() == Some(want);
    let message = if info.message.is_empty() {
        format!("HTTP {status}")
    } else {
        info.message.clone()
    };
    match status {
        401 | 403 => LlmError::Auth { message },
        402 => LlmError::QuotaExceeded { message },
        429 if is("insufficient_quota") => LlmError::QuotaExceeded { message },
        429 => LlmError::RateLimited {
            retry_after: retry_after(headers, now),
        },
        400 | 413 | 422 if is("context_length_exceeded") => {
            LlmError::ContextLengthExceeded { message }
        }
        404 if is("model_not_found") => LlmError::ModelNotFound {
            model: model.to_owned(),
        },
        // The request may succeed when sent again (the official SDKs retry these).
        408 | 409 => LlmError::Server { status },
        400..=499 => LlmError::BadRequest { message },
        503 | 529 => LlmError::Overloaded {
            retry_after: retry_after(headers, now),
        },
        500..=599 => LlmError::Server { status },
        _ => LlmError::Malformed {
            detail: format!("unexpected HTTP status {status}"),
        },
    }
}

/// The delay asked for by `retry-after-ms` (milliseconds) or `retry-after` (seconds or an
/// HTTP date).
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = header("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let value = header("retry-after")?;
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date);
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn body(code: &str, kind: &str) -> Vec<u8> {
        format!(r#"{{"error":{{"message":"m","type":"{kind}","param":null,"code":"{code}"}}}}"#)
            .into_bytes()
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn auth_statuses_are_auth() {
        for status in [401, 403] {
            let e = classify(
                status,
                &HeaderMap::new(),
                &body("invalid_api_key", "x"),
                "m",
            );
            assert!(matches!(e, LlmError::Auth { .. }), "{status}: {e:?}");
        }
    }

    #[test]
    fn rate_limit_429_carries_retry_after_ms_before_seconds() {
        let h = headers(&[("retry-after-ms", "1500"), ("retry-after", "9")]);
        let e = classify(429, &h, &body("rate_limit_exceeded", "requests"), "m");
        assert_eq!(
            e,
            LlmError::RateLimited {
                retry_after: Some(Duration::from_millis(1500))
            }
        );
    }

    #[test]
    fn retry_after_seconds_and_http_date_are_understood() {
        let h = headers(&[("retry-after", "3")]);
        assert_eq!(
            retry_after(&h, SystemTime::now()),
            Some(Duration::from_secs(3))
        );
        let h = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:10 GMT")]);
        let now = SystemTime::from(
            chrono::DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT").unwrap(),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(10)));
        let h = headers(&[("retry-after", "soon")]);
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn insufficient_quota_429_is_quota_not_rate_limit() {
        let e = classify(
            429,
            &HeaderMap::new(),
            &body("insufficient_quota", "insufficient_quota"),
            "m",
        );
        assert!(matches!(e, LlmError::QuotaExceeded { .. }), "{e:?}");
    }

    #[test]
    fn context_length_code_wins_over_generic_bad_request() {
        let e = classify(
            400,
            &HeaderMap::new(),
            &body("context_length_exceeded", "invalid_request_error"),
            "m",
        );
        assert!(matches!(e, LlmError::ContextLengthExceeded { .. }), "{e:?}");
        let e = classify(
            400,
            &HeaderMap::new(),
            &body("invalid_value", "invalid_request_error"),
            "m",
        );
        assert!(matches!(e, LlmError::BadRequest { .. }), "{e:?}");
        let e = classify(422, &HeaderMap::new(), b"unprocessable", "m");
        assert_eq!(
            e,
            LlmError::BadRequest {
                message: "unprocessable".into()
            }
        );
    }

    #[test]
    fn decisions_ignore_message_text() {
        let b = br#"{"error":{"message":"context_length_exceeded insufficient_quota","type":"x","code":null}}"#;
        assert!(matches!(
            classify(400, &HeaderMap::new(), b, "m"),
            LlmError::BadRequest { .. }
        ));
        assert!(matches!(
            classify(429, &HeaderMap::new(), b, "m"),
            LlmError::RateLimited { .. }
        ));
    }

    #[test]
    fn model_not_found_names_the_model() {
        let e = classify(
            404,
            &HeaderMap::new(),
            &body("model_not_found", "invalid_request_error"),
            "gpt-9",
        );
        assert_eq!(
            e,
            LlmError::ModelNotFound {
                model: "gpt-9".into()
            }
        );
    }

    #[test]
    fn server_statuses_split_overloaded_from_server_error() {
        let h = headers(&[("retry-after", "2")]);
        assert_eq!(
            classify(503, &h, b"", "m"),
            LlmError::Overloaded {
                retry_after: Some(Duration::from_secs(2))
            }
        );
        assert_eq!(
            classify(500, &HeaderMap::new(), b"", "m"),
            LlmError::Server { status: 500 }
        );
        assert_eq!(
            classify(502, &HeaderMap::new(), b"<html>", "m"),
            LlmError::Server { status: 502 }
        );
    }

    #[test]
    fn numeric_codes_of_openai_compatible_servers_are_read() {
        let b = br#"{"error":{"code":402,"message":"Insufficient credits"}}"#;
        assert_eq!(error_info(b).code.as_deref(), Some("402"));
        assert!(matches!(
            classify(402, &HeaderMap::new(), b, "m"),
            LlmError::QuotaExceeded { .. }
        ));
    }

    #[test]
    fn long_error_bodies_are_shortened() {
        let long = "é".repeat(2000);
        let info = error_info(long.as_bytes());
        assert!(info.message.len() <= MAX_MESSAGE + '…'.len_utf8());
    }
}
