//! The wire protocol of the OpenAI provider: one pooled HTTP client, the POST of a streaming
//! chat completion, the three deadlines, error answers read with a size cap and classified;
//! the body goes through the shared pump (`crate::pump`: SSE parser → this provider's decoder).
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

use super::config::OpenAiConfig;
use super::decode::Decoder;
use crate::classify;
use crate::error::ConfigError;
use crate::http::LazyClient;
use crate::pump::{self, read_capped, send_and_read, send_error};

/// An HTTP client bound to one OpenAI account and base URL.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiClient {
    http: LazyClient,
    url: Url,
    embeddings_url: Url,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
}

impl OpenAiClient {
    pub(crate) fn new(config: &OpenAiConfig) -> Result<OpenAiClient, ConfigError> {
        let mut headers = HeaderMap::new();
        // A local server (Ollama, llama.cpp) may want no key at all.
        if !config.api_key.expose_secret().is_empty() {
            let mut auth =
                HeaderValue::from_str(&format!("Bearer {}", config.api_key.expose_secret()))
                    .map_err(|_| ConfigError::InvalidValue {
                        field: "api_key",
                        reason: "contains characters not allowed in an HTTP header".to_owned(),
                    })?;
            auth.set_sensitive(true);
            headers.insert(header::AUTHORIZATION, auth);
        }
        for (name, value) in &config.headers {
            let name = header::HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                ConfigError::InvalidValue {
                    field: "headers",
                    reason: format!("`{name}` is not an HTTP header name"),
                }
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| ConfigError::InvalidValue {
                field: "headers",
                reason: format!("the value of `{name}` is not allowed in an HTTP header"),
            })?;
            headers.insert(name, value);
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        for (name, value, field) in [
            ("openai-organization", &config.organization, "organization"),
            ("openai-project", &config.project, "project"),
        ] {
            if let Some(value) = value {
                let value =
                    HeaderValue::from_str(value).map_err(|_| ConfigError::InvalidValue {
                        field,
                        reason: "contains characters not allowed in an HTTP header".to_owned(),
                    })?;
                headers.insert(name, value);
            }
        }
        let http = LazyClient::new(headers, config.connect_timeout);
        Ok(OpenAiClient {
            http,
            url: config.chat_completions_url(),
            embeddings_url: config.endpoint_url("embeddings"),
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
            Ok(Err(err)) => return Err(send_error(&err)),
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if !status.is_success() {
            let headers = response.headers().clone();
            let body = read_capped(response.bytes_stream(), self.idle_timeout).await;
            let error = classify::classify(status.as_u16(), &headers, &body, model);
            tracing::debug!(status = status.as_u16(), error = %error, "Model call rejected");
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

impl OpenAiClient {
    /// POSTs a JSON `body` to `/embeddings` and returns the answer's JSON. The whole call is
    /// bounded by the first-byte deadline.
    pub(crate) async fn embeddings(
        &self,
        body: Vec<u8>,
        model: &str,
    ) -> Result<serde_json::Value, LlmError> {
        let deadline = Instant::now() + self.first_byte_timeout;
        let request = self
            .http
            .get()?
            .post(self.embeddings_url.clone())
            .header(header::ACCEPT, "application/json")
            .body(body);
        let (status, headers, body) = send_and_read(request, deadline).await?;
        if !status.is_success() {
            return Err(classify::classify(status.as_u16(), &headers, &body, model));
        }
        serde_json::from_slice(&body).map_err(|e| LlmError::Malformed {
            detail: format!("embeddings answer is not JSON: {e}"),
        })
    }
}
