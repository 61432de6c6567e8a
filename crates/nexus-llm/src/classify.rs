//! Classification of a failed HTTP answer into [`LlmError`], once, where it enters.
//!
//! Decisions rest on the HTTP status and the structured `error.code` / `error.type` of the
//! body (`{"error":{"message","type","param","code"}}`, shared by OpenAI-compatible APIs),
//! never on message text; the message is only carried along for people to read.
//! `retry-after-ms` and `retry-after` (seconds or an HTTP date) give the delay of a 429/503.
//!
//! Anthropic's answers (`{"type":"error","error":{"type","message"},"request_id"}`) have their
//! own table, [`classify_anthropic`], which also honours the `x-should-retry` header
//! ([`apply_should_retry`]) and classifies the `error` events of a started stream
//! ([`classify_anthropic_event`]).
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

/// Classifies an HTTP error answer of the Anthropic Messages API (PROTOCOLS.md §4), by status
/// and then `error.type`:
///
/// | status | `error.type`            | kind                                        |
/// |--------|-------------------------|---------------------------------------------|
/// | 400    | `invalid_request_error` | `BadRequest`                                |
/// | 401    | `authentication_error`  | `Auth`                                      |
/// | 402    | `billing_error`         | `QuotaExceeded`                             |
/// | 403    | `permission_error`      | `Auth`                                      |
/// | 404    | `not_found_error`       | `ModelNotFound` (the model is the only resource of `/v1/messages`) |
/// | 408, 409 | —                     | `Server` (retried, like the official SDKs)  |
/// | 413    | `request_too_large`     | `ContextLengthExceeded`                     |
/// | 429    | `rate_limit_error`      | `RateLimited { retry_after }`               |
/// | 500    | `api_error`             | `Server { 500 }`                            |
/// | 504    | `timeout_error`         | `Server { 504 }`                            |
/// | 529    | `overloaded_error`      | `Overloaded { retry_after }`                |
///
/// Then `x-should-retry` may overrule the retry decision ([`apply_should_retry`]).
///
/// **Context-length overflow.** Anthropic has no error type or code for a prompt longer than
/// the model's context window: it answers `400 invalid_request_error` whose only distinguishing
/// feature is the message text (`prompt is too long: 201234 tokens > 200000 maximum`, or
/// `input length and max_tokens exceed context limit: …`). Since no decision here reads message
/// text, that answer is `BadRequest` (not retried, not failed over). The one structured
/// "request too big" signal, `413 request_too_large` (over 32 MB, answered by Cloudflare before
/// the API), is mapped to `ContextLengthExceeded`: the remedy is the same (shrink the
/// conversation: compact it, drop attachments). A window filled *during* generation is not an
/// error at all: it ends the stream with `stop_reason: model_context_window_exceeded`, which the
/// decoder reports as `Done(MaxTokens)`.
pub(crate) fn classify_anthropic(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
) -> LlmError {
    classify_anthropic_at(status, headers, body, model, SystemTime::now())
}

/// [`classify_anthropic`] with the clock given, for HTTP-date `retry-after` values.
pub(crate) fn classify_anthropic_at(
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    model: &str,
    now: SystemTime,
) -> LlmError {
    let info = error_info(body);
    let message = if info.message.is_empty() {
        format!("HTTP {status}")
    } else {
        info.message.clone()
    };
    let kind = info.kind.as_deref();
    let error = match status {
        413 => LlmError::ContextLengthExceeded {
            message: message.clone(),
        },
        404 if kind == Some("not_found_error") => LlmError::ModelNotFound {
            model: model.to_owned(),
        },
        500..=599 if kind == Some("overloaded_error") => LlmError::Overloaded {
            retry_after: retry_after(headers, now),
        },
        _ => classify_at(status, headers, body, model, now),
    };
    apply_should_retry(error, status, headers, &message)
}

/// Honours `x-should-retry: true|false`, the server's own verdict, which the official SDKs
/// obey before their status rules. `true` on an error that would not be retried makes it
/// `Server { status }` (retried); `false` on one that would be makes a 429 `QuotaExceeded` and
/// anything else `BadRequest` (neither retried), the message saying why. Without the header,
/// or when it agrees, `error` is returned unchanged.
pub(crate) fn apply_should_retry(
    error: LlmError,
    status: u16,
    headers: &HeaderMap,
    message: &str,
) -> LlmError {
    let verdict = headers
        .get("x-should-retry")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_ascii_lowercase());
    match verdict.as_deref() {
        Some("true") if !error.is_retryable() => LlmError::Server { status },
        Some("false") if error.is_retryable() => {
            let message = format!("{message} (HTTP {status}; the provider asked not to retry)");
            if status == 429 {
                LlmError::QuotaExceeded { message }
            } else {
                LlmError::BadRequest { message }
            }
        }
        _ => error,
    }
}

/// Classifies the `error` event of an Anthropic stream that had started well (HTTP 200):
/// `{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}`.
///
/// `overloaded_error` is `Overloaded` and `rate_limit_error` is `RateLimited` (no delay is
/// known), so a failure before any chunk reached the caller is retried like its HTTP twin;
/// every other type is [`LlmError::InStream`]. `data` that is not such an object keeps its
/// (shortened) text as the message.
pub(crate) fn classify_anthropic_event(data: &str) -> LlmError {
    let info = error_info(data.as_bytes());
    match info.kind.as_deref() {
        Some("overloaded_error") => LlmError::Overloaded { retry_after: None },
        Some("rate_limit_error") => LlmError::RateLimited { retry_after: None },
        _ => LlmError::InStream {
            message: if info.message.is_empty() {
                "error event without a message".to_owned()
            } else {
                info.message
            },
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

    // ---- Anthropic ----

    fn anthropic_body(kind: &str, message: &str) -> Vec<u8> {
        format!(
            r#"{{"type":"error","error":{{"type":"{kind}","message":"{message}"}},"request_id":"req_1"}}"#
        )
        .into_bytes()
    }

    #[test]
    fn anthropic_error_types_map_to_their_kinds() {
        let none = HeaderMap::new();
        let cases: Vec<(u16, &str, LlmError)> = vec![
            (
                400,
                "invalid_request_error",
                LlmError::BadRequest {
                    message: "m".into(),
                },
            ),
            (
                401,
                "authentication_error",
                LlmError::Auth {
                    message: "m".into(),
                },
            ),
            (
                402,
                "billing_error",
                LlmError::QuotaExceeded {
                    message: "m".into(),
                },
            ),
            (
                403,
                "permission_error",
                LlmError::Auth {
                    message: "m".into(),
                },
            ),
            (
                404,
                "not_found_error",
                LlmError::ModelNotFound {
                    model: "claude-x".into(),
                },
            ),
            (
                413,
                "request_too_large",
                LlmError::ContextLengthExceeded {
                    message: "m".into(),
                },
            ),
            (
                429,
                "rate_limit_error",
                LlmError::RateLimited { retry_after: None },
            ),
            (500, "api_error", LlmError::Server { status: 500 }),
            (504, "timeout_error", LlmError::Server { status: 504 }),
            (
                529,
                "overloaded_error",
                LlmError::Overloaded { retry_after: None },
            ),
        ];
        for (status, kind, want) in cases {
            let got = classify_anthropic(status, &none, &anthropic_body(kind, "m"), "claude-x");
            assert_eq!(got, want, "{status} {kind}");
        }
    }

    #[test]
    fn anthropic_prompt_too_long_is_a_bad_request_because_only_its_text_says_so() {
        let body = anthropic_body(
            "invalid_request_error",
            "prompt is too long: 201234 tokens > 200000 maximum",
        );
        assert!(matches!(
            classify_anthropic(400, &HeaderMap::new(), &body, "m"),
            LlmError::BadRequest { .. }
        ));
    }

    #[test]
    fn anthropic_retry_after_is_read_on_429_and_529() {
        let h = headers(&[("retry-after", "7")]);
        assert_eq!(
            classify_anthropic(429, &h, &anthropic_body("rate_limit_error", "m"), "m"),
            LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let h = headers(&[("retry-after-ms", "250"), ("retry-after", "7")]);
        assert_eq!(
            classify_anthropic(529, &h, &anthropic_body("overloaded_error", "m"), "m"),
            LlmError::Overloaded {
                retry_after: Some(Duration::from_millis(250))
            }
        );
    }

    #[test]
    fn x_should_retry_overrules_the_status() {
        let yes = headers(&[("x-should-retry", "true")]);
        let no = headers(&[("x-should-retry", "false")]);
        let bad = anthropic_body("invalid_request_error", "m");
        assert_eq!(
            classify_anthropic(400, &yes, &bad, "m"),
            LlmError::Server { status: 400 }
        );
        let e = classify_anthropic(500, &no, &anthropic_body("api_error", "boom"), "m");
        assert!(
            matches!(&e, LlmError::BadRequest { message } if message.contains("HTTP 500")),
            "{e:?}"
        );
        assert!(!e.is_retryable());
        let e = classify_anthropic(429, &no, &anthropic_body("rate_limit_error", "m"), "m");
        assert!(matches!(e, LlmError::QuotaExceeded { .. }), "{e:?}");
        // Agreeing or unknown values change nothing.
        assert_eq!(
            classify_anthropic(500, &yes, &anthropic_body("api_error", "m"), "m"),
            LlmError::Server { status: 500 }
        );
        let maybe = headers(&[("x-should-retry", "maybe")]);
        assert!(matches!(
            classify_anthropic(400, &maybe, &bad, "m"),
            LlmError::BadRequest { .. }
        ));
    }

    #[test]
    fn x_should_retry_does_not_change_the_openai_table() {
        let no = headers(&[("x-should-retry", "false")]);
        assert_eq!(
            classify(500, &no, b"", "m"),
            LlmError::Server { status: 500 }
        );
    }

    #[test]
    fn anthropic_stream_error_events_are_typed() {
        let event = |kind: &str| {
            format!(r#"{{"type":"error","error":{{"type":"{kind}","message":"Overloaded"}}}}"#)
        };
        assert_eq!(
            classify_anthropic_event(&event("overloaded_error")),
            LlmError::Overloaded { retry_after: None }
        );
        assert_eq!(
            classify_anthropic_event(&event("rate_limit_error")),
            LlmError::RateLimited { retry_after: None }
        );
        assert_eq!(
            classify_anthropic_event(&event("api_error")),
            LlmError::InStream {
                message: "Overloaded".into()
            }
        );
        assert!(matches!(
            classify_anthropic_event("not json"),
            LlmError::InStream { message } if message == "not json"
        ));
    }
}
