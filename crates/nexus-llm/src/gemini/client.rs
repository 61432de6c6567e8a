//! The wire protocol of the Gemini provider: one pooled HTTP client, the POST of
//! `models/{model}:streamGenerateContent?alt=sse`, the three deadlines, error answers read with
//! a size cap and classified ([`classify::google`](crate::classify::google)), and the pump that
//! turns body bytes into chunks (SSE parser keeping foreign lines → decoder).
//!
//! Deadlines: `connect` (reqwest's connect timeout), `first_byte` (from sending the request to
//! the first body bytes, headers included), `idle` (longest gap between two body reads). Each
//! expiry is [`LlmError::Timeout`] with that stage.
//!
//! The API key is sent only as the `x-goog-api-key` header, built once as a sensitive value;
//! it is never put in the URL and never reaches a log.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nexus_core::llm::{ChunkStream, CompletionChunk, LlmError};
use reqwest::header::{self, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use tokio::time::{Instant, timeout, timeout_at};

use super::config::GeminiConfig;
use super::decode::Decoder;
use crate::classify::google;
use crate::error::ConfigError;
use crate::pump::{error_chain, read_capped, send_and_read, send_error};
use crate::sse::{DEFAULT_MAX_FRAME, SseParser};

/// The header carrying the API key.
pub(crate) const API_KEY_HEADER: &str = "x-goog-api-key";

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// An HTTP client bound to one Gemini API key and base URL.
#[derive(Debug, Clone)]
pub(crate) struct GeminiClient {
    http: reqwest::Client,
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
        let request = self.http.post(url).body(body);
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
        let mut body: BodyStream = Box::pin(response.bytes_stream());
        let mut pump = Pump::new(idle, model);
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
    fn new(idle: Duration, model: &str) -> Pump {
        Pump {
            body: None,
            sse: SseParser::new(DEFAULT_MAX_FRAME).keep_foreign_lines(),
            decoder: Decoder::new(model),
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
            match self.sse.next_item() {
                Ok(Some(item)) => {
                    if let Err(err) = self.decoder.on_item(item, &mut self.out) {
                        return self.fail(err);
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

    /// The body ended: decode what the parser still holds, then let the decoder conclude.
    fn end(&mut self) -> Result<(), LlmError> {
        let items = self.sse.finish_items().map_err(|err| LlmError::Malformed {
            detail: err.to_string(),
        })?;
        for item in items {
            self.decoder.on_item(item, &mut self.out)?;
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
}
