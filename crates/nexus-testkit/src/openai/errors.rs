//! Error answers in the real shape: `{"error":{"message","type","param","code"}}`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) status: u16,
    pub(crate) message: String,
    pub(crate) kind: &'static str,
    pub(crate) param: Option<String>,
    pub(crate) code: Option<String>,
}

impl ApiError {
    /// A 400 `invalid_request_error`.
    pub(crate) fn invalid(
        message: impl Into<String>,
        param: Option<String>,
        code: Option<&str>,
    ) -> ApiError {
        ApiError {
            status: 400,
            message: message.into(),
            kind: "invalid_request_error",
            param,
            code: code.map(str::to_owned),
        }
    }

    /// The 401 for a missing bearer token.
    pub(crate) fn missing_key() -> ApiError {
        ApiError {
            status: 401,
            message: "You didn't provide an API key. You need to provide your API key in an \
                      Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), \
                      or as the password field (with blank username) if you're accessing the API \
                      from your browser and are prompted for a username and password. You can \
                      obtain an API key from https://platform.openai.com/account/api-keys."
                .to_owned(),
            kind: "invalid_request_error",
            param: None,
            code: None,
        }
    }

    /// The 401 for a wrong bearer token (shown masked, like the real service).
    pub(crate) fn wrong_key(given: &str) -> ApiError {
        ApiError {
            status: 401,
            message: format!(
                "Incorrect API key provided: {}. You can find your API key at \
                 https://platform.openai.com/account/api-keys.",
                mask(given)
            ),
            kind: "invalid_request_error",
            param: None,
            code: Some("invalid_api_key".to_owned()),
        }
    }

    /// The error a scripted `Reply::error(status, code)` answers.
    pub(crate) fn scripted(
        status: u16,
        code: &str,
        message: Option<String>,
        model: &str,
    ) -> ApiError {
        let (kind, default_message) = match code {
            "rate_limit_exceeded" => (
                "requests",
                format!(
                    "Rate limit reached for {model} in organization org-fake on requests per min \
                     (RPM): Limit 3, Used 3, Requested 1. Please try again in 20s."
                ),
            ),
            "insufficient_quota" => (
                "insufficient_quota",
                "You exceeded your current quota, please check your plan and billing details."
                    .to_owned(),
            ),
            "context_length_exceeded" => (
                "invalid_request_error",
                format!(
                    "This model's maximum context length is 128000 tokens. However, your messages \
                     resulted in 130012 tokens. Please reduce the length of the messages. ({model})"
                ),
            ),
            "model_not_found" => (
                "invalid_request_error",
                format!("The model `{model}` does not exist or you do not have access to it."),
            ),
            "invalid_api_key" => (
                "invalid_request_error",
                "Incorrect API key provided: sk-***. You can find your API key at \
                 https://platform.openai.com/account/api-keys."
                    .to_owned(),
            ),
            _ if status >= 500 => (
                "server_error",
                if status == 503 {
                    "The engine is currently overloaded, please try again later.".to_owned()
                } else {
                    "The server had an error while processing your request. Sorry about that!"
                        .to_owned()
                },
            ),
            _ => ("invalid_request_error", format!("Scripted error `{code}`.")),
        };
        ApiError {
            status,
            message: message.unwrap_or(default_message),
            kind,
            param: None,
            code: if code.is_empty() || code == "server_error" && status >= 500 {
                None
            } else {
                Some(code.to_owned())
            },
        }
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Value {
        json!({
            "error": {
                "message": self.message,
                "type": self.kind,
                "param": self.param,
                "code": self.code,
            }
        })
    }

    /// The HTTP response as OpenRouter shapes it: `{"error":{"code":<status>,"message",
    /// "metadata"}}`, with `Retry-After` when given.
    pub(crate) fn into_openrouter_response(
        self,
        request_id: &str,
        retry_after: Option<Duration>,
    ) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = json!({
            "error": {
                "code": self.status,
                "message": self.message,
                "metadata": {"provider_name": "FakeUpstream"}
            }
        });
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-generation-id", value);
        }
        if let Some(delay) = retry_after {
            let secs = delay.as_millis().div_ceil(1000);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
        }
        response
    }

    /// The HTTP response, with `retry-after` headers when given.
    pub(crate) fn into_response(
        self,
        request_id: &str,
        retry_after: Option<Duration>,
    ) -> Response<Body> {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Response::new(Body::from(self.body().to_string()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(value) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", value);
        }
        if let Some(delay) = retry_after {
            let secs = delay.as_millis().div_ceil(1000);
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs as u64));
            headers.insert(
                "retry-after-ms",
                HeaderValue::from(delay.as_millis() as u64),
            );
        }
        if self.status == 429 {
            headers.insert("x-ratelimit-limit-requests", HeaderValue::from_static("3"));
            headers.insert(
                "x-ratelimit-remaining-requests",
                HeaderValue::from_static("0"),
            );
            headers.insert(
                "x-ratelimit-reset-requests",
                HeaderValue::from_static("20s"),
            );
        }
        response
    }
}

/// `sk-abc…wxyz` → `sk-ab***wxyz`, as the real 401 message shows keys.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "***".to_owned();
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}
