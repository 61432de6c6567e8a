//! The wire protocol of the Gemini provider: one pooled HTTP client, the POST of
//! `models/{model}:streamGenerateContent?alt=sse`, the three deadlines, error answers read with
//! a size cap and classified ([`classify::google`](crate::classify::google)); the body goes
//! through the shared pump (`crate::pump`, keeping bare JSON lines for the decoder).
//!
//! Deadlines: `connect` (reqwest's connect timeout), `first_byte` (from sending the request to
//! the first body bytes, headers included), `idle` (longest gap between two body reads). Each
//! expiry is [`LlmError::Timeout`] with that stage.
//!
//! The API key is sent only as the `x-goog-api-key` header, built once as a sensitive value;
//! it is never put in the URL and never reaches a log.

use nexus_core::llm::{ChunkStream, LlmError};
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout_at};

use super::config::GeminiConfig;
use super::decode::Decoder;
use crate::classify::google;
use crate::error::ConfigError;
use crate::http::LazyClient;
use crate::pump::{self, read_capped, send_and_read, send_error};

/// The header carrying the API key.
pub(crate) const API_KEY_HEADER: &str = "x-goog-api-key";

/// An HTTP client bound to one Gemini API key and base URL.
#[derive(Debug, Clone)]
pub(crate) struct GeminiClient {
    http: LazyClient,
    config: GeminiConfig,
}

impl GeminiClient {
    pub(crate) fn new(config: &GeminiConfig) -> Result<GeminiClient, ConfigError> {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_str(config.api_key.expose_secret()).map_err(|_| {
            ConfigError::InvalidValue {
                field: "api_key",
                reason: "contains characters not allowed in an HTTP header".to_owned(),
            }
        })?;
        key.set_sensitive(true);
        headers.insert(API_KEY_HEADER, key);
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/event-stream"),
        );
        let http = LazyClient::new(headers, config.connect_timeout);
        Ok(GeminiClient {
            http,
            config: config.clone(),
        })
    }

    /// POSTs `body` for `model` and returns the stream of chunks once the first body bytes
    /// arrived.
    pub(crate) async fn stream(&self, body: Vec<u8>, model: &str) -> Result<ChunkStream, LlmError> {
        let url = self.config.stream_url(model)?;
        let deadline = Instant::now() + self.config.first_byte_timeout;
        let idle = self.config.idle_timeout;
        let request = self.http.get()?.post(url).body(body);
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
            let body = read_capped(response.bytes_stream(), idle).await;
            let error = google::classify(status.as_u16(), &headers, &body, model);
            tracing::debug!(status = status.as_u16(), error = %error, "Model call rejected");
            return Err(error);
        }
        pump::stream(response, deadline, idle, Decoder::new(model)).await
    }
}

impl GeminiClient {
    /// POSTs a JSON `body` to `url` (not streamed) and returns the answer's JSON; the whole
    /// call is bounded by the first-byte deadline.
    pub(crate) async fn post_json(
        &self,
        url: url::Url,
        body: Vec<u8>,
        model: &str,
    ) -> Result<serde_json::Value, LlmError> {
        let deadline = Instant::now() + self.config.first_byte_timeout;
        let request = self
            .http
            .get()?
            .post(url)
            .header(header::ACCEPT, "application/json")
            .body(body);
        let (status, headers, body) = send_and_read(request, deadline).await?;
        if !status.is_success() {
            return Err(google::classify(status.as_u16(), &headers, &body, model));
        }
        serde_json::from_slice(&body).map_err(|e| LlmError::Malformed {
            detail: format!("answer is not JSON: {e}"),
        })
    }
}
