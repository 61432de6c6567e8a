//! The wire protocol of the OpenAI provider: one pooled HTTP client, the POST of a streaming
//! chat completion, the three deadlines, error answers read with a size cap and classified,
//! and the pump that turns body bytes into chunks (SSE parser → decoder).
//!
//! Deadlines: `connect` (reqwest's connect timeout), `first_byte` (from sending the request to
//! the first body bytes, headers included), `idle` (longest gap between two body reads). Each
//! expiry is [`LlmError::Timeout`] with that stage.
//!
//! The API key lives in a sensitive header value built once; it never reaches a log.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nexus_core::llm::{ChunkStream, CompletionChunk, LlmError};
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout, timeout_at};
use url::Url;

use super::config::OpenAiConfig;
use super::decode::Decoder;
use crate::classify;
use crate::error::ConfigError;
use crate::pump::{MAX_ERROR_BODY, error_chain, read_capped, send_and_read, send_error};
use crate::sse::{DEFAULT_MAX_FRAME, SseParser};

/// How long the rest of a finished body is drained so its connection returns to the pool.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An HTTP client bound to one OpenAI account and base URL.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiClient {
    http: reqwest::Client,
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
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .connect_timeout(config.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .user_agent(concat!("nexus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| ConfigError::HttpClient {
                message: error_chain(&err),
            })?;
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
        let request = self.http.post(self.url.clone()).body(body);
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
        let mut body: BodyStream = Box::pin(response.bytes_stream());
        let mut pump = Pump::new(self.idle_timeout);
        match timeout_at(deadline, body.next()).await {
            Err(_) => {
                return Err(LlmError::Timeout {
                    stage: "first_byte",
                });
            }
            Ok(Some(Ok(bytes))) => {
                pump.sse.feed(&bytes);
                pump.body = Some(body);
            }
            // An empty body or one that broke at once: let the pump report it.
            Ok(Some(Err(err))) => pump.broken = Some(error_chain(&err)),
            Ok(None) => {}
        }
        let stream = futures::stream::unfold(pump, |mut pump| async move {
            let item = pump.next().await?;
            Some((item, pump))
        });
        Ok(Box::pin(stream))
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

/// One read of the body.
enum Read {
    Bytes(Bytes),
    /// The connection broke (the cause, for the log).
    Broken(String),
    End,
}

/// Reads the body and yields decoded chunks, one at a time.
struct Pump {
    body: Option<BodyStream>,
    sse: SseParser,
    decoder: Decoder,
    out: VecDeque<CompletionChunk>,
    idle: Duration,
    /// The body broke on its first read (the cause, for the log).
    broken: Option<String>,
    finished: bool,
}

impl Pump {
    fn new(idle: Duration) -> Pump {
        Pump {
            body: None,
            sse: SseParser::new(DEFAULT_MAX_FRAME),
            decoder: Decoder::default(),
            out: VecDeque::new(),
            idle,
            broken: None,
            finished: false,
        }
    }

    async fn next(&mut self) -> Option<Result<CompletionChunk, LlmError>> {
        loop {
            if let Some(chunk) = self.out.pop_front() {
                return Some(Ok(chunk));
            }
            if self.finished {
                return None;
            }
            match self.sse.next_event() {
                Ok(Some(event)) => {
                    if let Err(err) = self.decoder.on_event(&event, &mut self.out) {
                        return self.fail(err);
                    }
                    if self.decoder.is_done() {
                        self.close();
                    }
                    continue;
                }
                Ok(None) => {}
                Err(err) => {
                    return self.fail(LlmError::Malformed {
                        detail: err.to_string(),
                    });
                }
            }
            let read = match self.body.as_mut() {
                Some(body) => match timeout(self.idle, body.next()).await {
                    Err(_) => return self.fail(LlmError::Timeout { stage: "idle" }),
                    Ok(Some(Ok(bytes))) => Read::Bytes(bytes),
                    Ok(Some(Err(err))) => Read::Broken(error_chain(&err)),
                    Ok(None) => Read::End,
                },
                None => self.broken.take().map_or(Read::End, Read::Broken),
            };
            match read {
                Read::Bytes(bytes) => self.sse.feed(&bytes),
                Read::Broken(cause) => {
                    tracing::debug!(error = %cause, "Model stream broke");
                    if !self.decoder.has_finished() {
                        return self.fail(LlmError::StreamInterrupted);
                    }
                    self.body = None;
                    if let Err(err) = self.end() {
                        return self.fail(err);
                    }
                }
                Read::End => {
                    self.body = None;
                    if let Err(err) = self.end() {
                        return self.fail(err);
                    }
                }
            }
        }
    }

    /// The body ended: decode a last unterminated event, then let the decoder conclude.
    fn end(&mut self) -> Result<(), LlmError> {
        if let Some(event) = self.sse.finish() {
            self.decoder.on_event(&event, &mut self.out)?;
        }
        self.decoder.on_end(&mut self.out)?;
        self.finished = true;
        Ok(())
    }

    fn fail(&mut self, err: LlmError) -> Option<Result<CompletionChunk, LlmError>> {
        self.finished = true;
        self.out.clear();
        self.body = None;
        Some(Err(err))
    }

    /// The answer is complete: drain what is left of the body in the background, so the
    /// connection goes back to the pool, and stop reading.
    fn close(&mut self) {
        self.finished = true;
        if let Some(mut body) = self.body.take() {
            tokio::spawn(async move {
                let mut left = MAX_ERROR_BODY;
                while let Ok(Some(Ok(bytes))) = timeout(DRAIN_TIMEOUT, body.next()).await {
                    left = left.saturating_sub(bytes.len());
                    if left == 0 {
                        break;
                    }
                }
            });
        }
    }
}
