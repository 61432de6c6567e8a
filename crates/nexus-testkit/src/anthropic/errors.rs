//! Error answers in the real shape:
//! `{"type":"error","error":{"type","message"},"request_id":"req_…"}`, with `request-id`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) kind: String,
    pub(crate) message: String,
}

/// Headers a scripted error adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct ErrorHeaders {
    pub(crate) retry_after: Option<Duration>,
    pub(crate) retry_after_ms: Option<Duration>,
    pub(crate) should_retry: Option<bool>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError {
            status: 400,
            kind: "invalid_request_error".to_owned(),
            message: message.into(),
        }
    }

    /// The 401 for a missing or wrong `x-api-key`.
    pub(crate) fn authentication(missing: bool) -> ApiError {
        ApiError {
            status: 401,
            kind: "authentication_error".to_owned(),
            message: if missing {
                "x-api-key header is required".to_owned()
            } else {
                "invalid x-api-key".to_owned()
            },
        }
    }

    /// The 404 for an unknown model.
    pub(crate) fn unknown_model(model: &str) -> ApiError {
        ApiError {
            status: 404,
            kind: "not_found_error".to_owned(),
            message: format!("model: {model}"),
        }
    }

    /// The error a scripted `Reply::error(status, kind)` answers, with the real message of
    /// that type unless one is given.
    pub(crate) fn scripted(
        status: u16,
        kind: &str,
        message: Option<String>,
        model: &str,
    ) -> ApiError {
        let default = match kind {
            "authentication_error" => "invalid x-api-key".to_owned(),
            "billing_error" => "Your credit balance is too low to access the Anthropic API. \
                                Please go to Plans & Billing to upgrade or purchase credits."
                .to_owned(),
            "permission_error" => {
                "Your API key does not have permission to use the specified resource.".to_owned()
            }
            "not_found_error" => format!("model: {model}"),
            "request_too_large" => {
                "Request exceeds the maximum allowed number of bytes.".to_owned()
            }
            "rate_limit_error" => "This request would exceed the rate limit for your \
                                   organization of 50 requests per minute. For details, refer \
                                   to: https://docs.claude.com/en/api/rate-limits. You can see \
                                   the response headers for current usage. Please reduce the \
                                   prompt length or the maximum tokens requested, or try again \
                                   later."
                .to_owned(),
            "api_error" => "Internal server error".to_owned(),
            "timeout_error" => "Request timed out".to_owned(),
            "overloaded_error" => "Overloaded".to_owned(),
            _ => format!("Scripted error `{kind}`."),
        };
        ApiError {
            status,
            kind: kind.to_owned(),
            message: message.unwrap_or(default),
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self, request_id: &str) -> Value {
        json!({
            "type": "error",
            "error": {"type": self.kind, "message": self.message},
            "request_id": request_id,
        })
    }

    /// The HTTP response, with the scripted headers.
    pub(crate) fn into_response(self, request_id: &str, extra: ErrorHeaders) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Response::new(Body::from(self.body(request_id).to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("request-id", value);
        }
        if let Some(delay) = extra.retry_after {
            let secs = delay.as_millis().div_ceil(1000);
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from(u64::try_from(secs).unwrap_or(u64::MAX)),
            );
        }
        if let Some(delay) = extra.retry_after_ms {
            headers.insert(
                "retry-after-ms",
                HeaderValue::from(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
            );
        }
        if let Some(verdict) = extra.should_retry {
            headers.insert(
                "x-should-retry",
                HeaderValue::from_static(if verdict { "true" } else { "false" }),
            );
        }
        if self.status == 429 {
            for (name, value) in [
                ("anthropic-ratelimit-requests-limit", "50"),
                ("anthropic-ratelimit-requests-remaining", "0"),
                ("anthropic-ratelimit-requests-reset", "2030-01-01T00:00:00Z"),
            ] {
                headers.insert(name, HeaderValue::from_static(value));
            }
        }
        response
    }
}
