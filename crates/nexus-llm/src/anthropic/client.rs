//! The wire protocol of the Anthropic provider: one pooled HTTP client with the `x-api-key`
//! and `anthropic-version` headers, the POST of a streaming message, error answers read with a
//! size cap and classified ([`classify::classify_anthropic`]), and the body handed to the shared
//! [`pump`] with this provider's [`Decoder`].
//!
//! Deadlines: `connect` (reqwest's connect timeout), `first_byte` (from sending the request to
//! the first body bytes, headers included), `idle` (longest gap between two body reads). Each
//! expiry is [`LlmError::Timeout`] with that stage.
//!
//! The API key lives in a sensitive header value built once; it never reaches a log.

use std::time::Duration;

use nexus_core::llm::{ChunkStream, LlmError};
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout_at};
use url::Url;

use super::config::{API_VERSION, AnthropicConfig};
use super::decode::Decoder;
use crate::classify;
use crate::error::ConfigError;
use crate::http::LazyClient;
use crate::pump;

/// An HTTP client bound to one Anthropic account and base URL.
#[derive(Debug, Clone)]
pub(crate) struct AnthropicClient {
    http: LazyClient,
    url: Url,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

fn header_value(value: &str, field: &'static str) -> Result<HeaderValue, ConfigError> {
    HeaderValue::from_str(value).map_err(|_| ConfigError::InvalidValue {
        field,
        reason: "contains characters not allowed in an HTTP header".to_owned(),
    })
}

impl AnthropicClient {
    pub(crate) fn new(config: &AnthropicConfig) -> Result<AnthropicClient, ConfigError> {
        let mut headers = HeaderMap::new();
        let mut key = header_value(config.api_key.expose_secret(), "api_key")?;
        key.set_sensitive(true);
        headers.insert("x-api-key", key);
        headers.insert("anthropic-version", HeaderValue::from_static(API_VERSION));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let beta: Vec<&str> = config
            .beta
            .iter()
            .map(|b| b.trim())
            .filter(|b| !b.is_empty())
            .collect();
        if !beta.is_empty() {
            headers.insert("anthropic-beta", header_value(&beta.join(","), "beta")?);
        }
        let http = LazyClient::new(headers, config.connect_timeout);
        Ok(AnthropicClient {
            http,
            url: config.messages_url(),
            first_byte_timeout: config.first_byte_timeout,
            idle_timeout: config.idle_timeout,
        })
    }

    /// POSTs `body` and returns the stream of chunks once the first body bytes arrived.
    /// `model` names the model for error messages.
    pub(crate) async fn stream(&self, body: Vec<u8>, model: &str) -> Result<ChunkStream, LlmError> {
        let deadline = Instant::now() + self.first_byte_timeout;
        let request = self.http.get()?.post(self.url.clone()).body(body);
        let response = match timeout_at(deadline, request.send()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    stage: "first_byte",
                });
            }
            Ok(Err(err)) => return Err(pump::send_error(&err)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = pump::read_capped(response.bytes_stream(), self.idle_timeout).await;
            let error = classify::classify_anthropic(status.as_u16(), &headers, &body, model);
            let request_id = headers
                .get("request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            tracing::debug!(
                status = status.as_u16(),
                request_id,
                error = %error,
                "Model call rejected"
            );
            return Err(error);
        }
        let is_json = response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json"));
        if is_json {
            return Err(LlmError::Malformed {
                detail: "expected an event stream, got a JSON body".to_owned(),
            });
        }
        pump::stream(response, deadline, self.idle_timeout, Decoder::default()).await
    }
}
