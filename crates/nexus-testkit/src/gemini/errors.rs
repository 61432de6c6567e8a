//! Error answers in the real shape, `google.rpc.Status` pretty-printed as Google sends it:
//! `{"error":{"code","message","status","details":[{"@type":…},…]}}`.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode, header};
use serde_json::{Value, json};

const ERROR_INFO: &str = "type.googleapis.com/google.rpc.ErrorInfo";
const BAD_REQUEST: &str = "type.googleapis.com/google.rpc.BadRequest";
const QUOTA_FAILURE: &str = "type.googleapis.com/google.rpc.QuotaFailure";
const RETRY_INFO: &str = "type.googleapis.com/google.rpc.RetryInfo";
const HELP: &str = "type.googleapis.com/google.rpc.Help";
const LOCALIZED: &str = "type.googleapis.com/google.rpc.LocalizedMessage";

/// The quota a per-minute rate limit names.
pub(crate) const PER_MINUTE_QUOTA: &str = "GenerateRequestsPerMinutePerProjectPerModel-FreeTier";
/// The quota an exhausted daily allowance names.
pub(crate) const PER_DAY_QUOTA: &str = "GenerateRequestsPerDayPerProjectPerModel-FreeTier";

/// An error answer of the API.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) status: String,
    pub(crate) message: String,
    pub(crate) details: Vec<Value>,
}

impl ApiError {
    pub(crate) fn new(code: u16, status: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            status: status.to_owned(),
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// A 400 `INVALID_ARGUMENT` of request validation (`* Request.field: problem`).
    pub(crate) fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "INVALID_ARGUMENT", message)
    }

    /// A 400 for JSON the proto parser refuses, with a `BadRequest` field violation.
    pub(crate) fn invalid_payload(field: &str, description: impl Into<String>) -> ApiError {
        let description = description.into();
        ApiError {
            details: vec![json!({
                "@type": BAD_REQUEST,
                "fieldViolations": [{"field": field, "description": description}]
            })],
            ..ApiError::invalid(description)
        }
    }

    /// `Unknown name "key" at 'path': Cannot find field.`
    pub(crate) fn unknown_field(path: &str, key: &str) -> ApiError {
        let description = if path.is_empty() {
            format!("Invalid JSON payload received. Unknown name \"{key}\": Cannot find field.")
        } else {
            format!(
                "Invalid JSON payload received. Unknown name \"{key}\" at '{path}': Cannot find field."
            )
        };
        ApiError::invalid_payload(path, description)
    }

    /// The answer to a key the service does not know: 400 with reason `API_KEY_INVALID`.
    pub(crate) fn bad_key() -> ApiError {
        let message = "API key not valid. Please pass a valid API key.";
        ApiError {
            details: vec![
                json!({
                    "@type": ERROR_INFO,
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}
                }),
                json!({"@type": LOCALIZED, "locale": "en-US", "message": message}),
            ],
            ..ApiError::invalid(message)
        }
    }

    /// The answer to a request without any key: 403 `PERMISSION_DENIED`.
    pub(crate) fn missing_key() -> ApiError {
        ApiError::new(
            403,
            "PERMISSION_DENIED",
            "Method doesn't allow unregistered callers (callers without established identity). \
             Please use API Key or other form of API consumer identity to call this API.",
        )
    }

    /// The 404 for a model that does not exist or does not offer `verb`.
    pub(crate) fn model_not_found(model: &str, verb: &str) -> ApiError {
        ApiError::new(
            404,
            "NOT_FOUND",
            format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 {verb}. Call ListModels to see the list of available models and their \
                 supported methods."
            ),
        )
    }

    /// A 429 `RESOURCE_EXHAUSTED` naming `quota_id`, with `RetryInfo` when `retry_delay` is set.
    pub(crate) fn quota(model: &str, quota_id: &str, retry_delay: Option<Duration>) -> ApiError {
        let mut details = vec![
            json!({
                "@type": QUOTA_FAILURE,
                "violations": [{
                    "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                    "quotaId": quota_id,
                    "quotaDimensions": {"location": "global", "model": model},
                    "quotaValue": if quota_id.contains("PerDay") { "250" } else { "10" }
                }]
            }),
            json!({"@type": HELP, "links": [{
                "description": "Learn more about Gemini API quotas",
                "url": "https://ai.google.dev/gemini-api/docs/rate-limits"
            }]}),
        ];
        if let Some(delay) = retry_delay {
            details.push(json!({"@type": RETRY_INFO, "retryDelay": duration(delay)}));
        }
        ApiError {
            details,
            ..ApiError::new(
                429,
                "RESOURCE_EXHAUSTED",
                "You exceeded your current quota, please check your plan and billing details. \
                 For more information on this error, head to: \
                 https://ai.google.dev/gemini-api/docs/rate-limits.",
            )
        }
    }

    /// The usual message of a status, for scripted errors.
    pub(crate) fn default_message(code: u16, status: &str, model: &str) -> String {
        match (code, status) {
            (_, "UNAVAILABLE") => "The model is overloaded. Please try again later.".to_owned(),
            (_, "INTERNAL") => "An internal error has occurred. Please retry or report in \
                                https://developers.generativeai.google/guide/troubleshooting"
                .to_owned(),
            (_, "DEADLINE_EXCEEDED") => {
                "Deadline expired before operation could complete.".to_owned()
            }
            (_, "PERMISSION_DENIED") => "The caller does not have permission".to_owned(),
            (_, "NOT_FOUND") => format!(
                "models/{model} is not found for API version v1beta, or is not supported for \
                 generateContent."
            ),
            (_, "FAILED_PRECONDITION") => {
                "User location is not supported for the API use.".to_owned()
            }
            (_, "RESOURCE_EXHAUSTED") => {
                "Resource has been exhausted (e.g. check quota).".to_owned()
            }
            _ => "Request contains an invalid argument.".to_owned(),
        }
    }

    /// Adds an `ErrorInfo` detail with `reason`.
    pub(crate) fn with_reason(mut self, reason: &str) -> ApiError {
        self.details.push(json!({
            "@type": ERROR_INFO,
            "reason": reason,
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"}
        }));
        self
    }

    /// The JSON body.
    pub(crate) fn body(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message, "status": self.status});
        if !self.details.is_empty() {
            error["details"] = Value::Array(self.details.clone());
        }
        json!({ "error": error })
    }

    /// The body as Google prints it: indented JSON and a final line end.
    pub(crate) fn pretty(&self) -> String {
        let mut text = serde_json::to_string_pretty(&self.body()).unwrap_or_default();
        text.push('\n');
        text
    }

    /// The HTTP response.
    pub(crate) fn into_response(self) -> Response<Body> {
        let status = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = Response::new(Body::from(self.pretty()));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=UTF-8"),
        );
        headers.insert(
            "vary",
            HeaderValue::from_static("Origin, X-Origin, Referer"),
        );
        headers.insert(
            "server",
            HeaderValue::from_static("scaffolding on HTTPServer2"),
        );
        response
    }
}

/// A protobuf `Duration` in JSON: `"37s"`, `"1.5s"`.
pub(crate) fn duration(delay: Duration) -> String {
    if delay.subsec_nanos() == 0 {
        format!("{}s", delay.as_secs())
    } else {
        let text = format!("{:.9}", delay.as_secs_f64());
        format!("{}s", text.trim_end_matches('0'))
    }
}

/// The HTML page Google's front end answers for a path no API serves.
pub(crate) fn html_not_found(path: &str) -> Response<Body> {
    let mut response = Response::new(Body::from(format!(
        "<!DOCTYPE html>\n<html lang=en>\n  <meta charset=utf-8>\n  <title>Error 404 (Not Found)!!1</title>\n  \
         <p><b>404.</b> <ins>That’s an error.</ins>\n  <p>The requested URL <code>{path}</code> was not \
         found on this server.  <ins>That’s all we know.</ins>\n"
    )));
    *response.status_mut() = StatusCode::NOT_FOUND;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_protobuf_json() {
        assert_eq!(duration(Duration::from_secs(37)), "37s");
        assert_eq!(duration(Duration::from_millis(1500)), "1.5s");
        assert_eq!(duration(Duration::from_millis(250)), "0.25s");
    }
}
