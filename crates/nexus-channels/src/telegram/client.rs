//! The Bot API on the wire: `{api_base}/bot{token}/{method}` calls (JSON or multipart), the
//! `{"ok":…}` envelope, file downloads, rate-limit waits, and the one place where Telegram's
//! errors are classified.
//!
//! The token is part of every URL, so URLs never reach logs or errors (transport errors go
//! through [`http::transport`]).

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use nexus_core::ChannelError;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;
use url::Url;

use super::payload::{Envelope, ResponseParameters};
use crate::http;

/// How long a call other than a long poll may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a long poll may take beyond its own timeout.
const POLL_GRACE: Duration = Duration::from_secs(10);
/// Attempts per call when Telegram answers 429 with a short `retry_after`.
const RATE_LIMIT_ATTEMPTS: u32 = 3;

/// A failed call, classified once by [`classify`]. The variants besides `Channel` are the
/// answers callers act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallError {
    /// 409: another `getUpdates` poller, or a webhook is set.
    Conflict {
        /// Telegram's description.
        description: String,
    },
    /// 400 `message is not modified`: the edit changes nothing.
    NotModified,
    /// 400 `can't parse entities`: the HTML was refused.
    EntitiesRejected {
        /// Telegram's description.
        description: String,
    },
    /// Anything else.
    Channel(ChannelError),
}

impl From<CallError> for ChannelError {
    fn from(err: CallError) -> Self {
        match err {
            CallError::Conflict { description } => ChannelError::Rejected {
                message: description,
            },
            CallError::NotModified => ChannelError::Rejected {
                message: "Telegram: message is not modified".to_owned(),
            },
            CallError::EntitiesRejected { description } => ChannelError::Rejected {
                message: description,
            },
            CallError::Channel(err) => err,
        }
    }
}

/// Classifies Telegram's answer `status` to `method`. Telegram has no error codes besides the
/// HTTP status, so the two 400s callers act on are told apart by their description here, and
/// only here.
pub(crate) fn classify(
    method: &str,
    status: u16,
    description: &str,
    parameters: Option<&ResponseParameters>,
) -> CallError {
    let parameters = parameters.cloned().unwrap_or_default();
    let channel = |err| CallError::Channel(err);
    match status {
        401 => channel(ChannelError::Auth {
            message: "Telegram rejected the bot token (401 Unauthorized); copy it again from @BotFather".to_owned(),
        }),
        // A token that cannot be one (no `digits:` prefix) gets 404 from Telegram.
        404 => channel(ChannelError::Auth {
            message: "Telegram does not recognise the bot token (404 Not Found); a token looks like 123456789:AA…".to_owned(),
        }),
        409 => CallError::Conflict {
            description: description.to_owned(),
        },
        429 => channel(ChannelError::RateLimited {
            retry_after: parameters.retry_after.map(Duration::from_secs),
        }),
        400 if parameters.migrate_to_chat_id.is_some() => channel(ChannelError::Rejected {
            message: format!(
                "the Telegram group was upgraded to a supergroup; its new chat id is {}",
                parameters.migrate_to_chat_id.unwrap_or_default()
            ),
        }),
        400 if description.contains("message is not modified") => CallError::NotModified,
        400 if description.contains("can't parse entities") => CallError::EntitiesRejected {
            description: description.to_owned(),
        },
        400..=499 => channel(ChannelError::Rejected {
            message: format!("Telegram refused {method}: {description} (HTTP {status})"),
        }),
        _ => channel(ChannelError::Transport {
            message: format!("Telegram answered {method} with HTTP {status}: {description}"),
        }),
    }
}

/// A Bot API client for one token.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    token: SecretString,
    max_body: usize,
    max_rate_limit_wait: Duration,
}

/// A file part of a multipart call.
#[derive(Debug, Clone)]
pub(crate) struct FilePart {
    pub(crate) field: &'static str,
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Bytes,
}

impl Client {
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        token: SecretString,
        max_body: usize,
        max_rate_limit_wait: Duration,
    ) -> Self {
        Client {
            http,
            base,
            token,
            max_body,
            max_rate_limit_wait,
        }
    }

    /// `{base}/{prefix}bot{token}/{segments…}`, built by segments (a token's `:` must never
    /// be read as a URL scheme).
    fn url(&self, file: bool, segments: &[&str]) -> Result<Url, ChannelError> {
        let mut url = self.base.clone();
        let mut path = url.path_segments_mut().map_err(|()| ChannelError::Fatal {
            message: "the Telegram API base URL cannot take a path".to_owned(),
        })?;
        path.pop_if_empty();
        if file {
            path.push("file");
        }
        path.push(&format!("bot{}", self.token.expose_secret()));
        path.extend(segments);
        drop(path);
        Ok(url)
    }

    /// Calls `method` with JSON `params`, waiting out short rate limits.
    pub(crate) async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &Value,
    ) -> Result<T, CallError> {
        self.obeying_rate_limits(|| self.call_once(method, params, CALL_TIMEOUT))
            .await
    }

    /// `getUpdates` with `params`, whose `timeout` is `poll`: the request may take that long.
    pub(crate) async fn poll(&self, params: &Value, poll: Duration) -> Result<Value, CallError> {
        self.obeying_rate_limits(|| self.call_once("getUpdates", params, poll + POLL_GRACE))
            .await
    }

    /// Calls `method` as `multipart/form-data` with text `fields` and one file part.
    pub(crate) async fn call_multipart<T: DeserializeOwned>(
        &self,
        method: &str,
        fields: &[(&'static str, String)],
        file: &FilePart,
    ) -> Result<T, CallError> {
        self.obeying_rate_limits(|| async {
            let part = reqwest::multipart::Part::bytes(file.bytes.to_vec())
                .file_name(file.filename.clone())
                .mime_str(&file.content_type)
                .or_else(|_| {
                    reqwest::multipart::Part::bytes(file.bytes.to_vec())
                        .file_name(file.filename.clone())
                        .mime_str("application/octet-stream")
                })
                .map_err(|e| CallError::Channel(http::transport(e)))?;
            let mut form = reqwest::multipart::Form::new().part(file.field, part);
            for (name, value) in fields {
                form = form.text(*name, value.clone());
            }
            let url = self.url(false, &[method]).map_err(CallError::Channel)?;
            let request = self.http.post(url).timeout(CALL_TIMEOUT).multipart(form);
            self.answer(method, request).await
        })
        .await
    }

    /// Downloads the file at `file_path` (from `getFile`), at most `max` bytes.
    pub(crate) async fn download(
        &self,
        file_path: &str,
        max: u64,
    ) -> Result<http::Download, ChannelError> {
        let segments: Vec<&str> = file_path.split('/').filter(|s| !s.is_empty()).collect();
        let url = self.url(true, &segments)?;
        http::download(self.http.get(url).timeout(CALL_TIMEOUT), max).await
    }

    async fn call_once<T: DeserializeOwned>(
        &self,
        method: &str,
        params: &Value,
        timeout: Duration,
    ) -> Result<T, CallError> {
        let url = self.url(false, &[method]).map_err(CallError::Channel)?;
        let request = self.http.post(url).timeout(timeout).json(params);
        self.answer(method, request).await
    }

    /// Sends `request` and reads Telegram's envelope.
    async fn answer<T: DeserializeOwned>(
        &self,
        method: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<T, CallError> {
        let response = request
            .send()
            .await
            .map_err(|e| CallError::Channel(http::transport(e)))?;
        let status = response.status().as_u16();
        let body = http::read_capped(response, self.max_body)
            .await
            .map_err(CallError::Channel)?;
        let Ok(envelope) = serde_json::from_slice::<Envelope>(&body) else {
            if (200..300).contains(&status) {
                return Err(CallError::Channel(ChannelError::Transport {
                    message: format!("Telegram's answer to {method} is not a JSON envelope"),
                }));
            }
            return Err(classify(method, status, "(no JSON body)", None));
        };
        if envelope.ok && (200..300).contains(&status) {
            let result = envelope.result.unwrap_or(Value::Null);
            return serde_json::from_value(result).map_err(|e| {
                CallError::Channel(ChannelError::Transport {
                    message: format!("Telegram's result for {method} has an unexpected shape: {e}"),
                })
            });
        }
        let status = envelope.error_code.unwrap_or(status);
        let description = envelope.description.unwrap_or_default();
        Err(classify(
            method,
            status,
            &description,
            envelope.parameters.as_ref(),
        ))
    }

    /// Runs `op`, sleeping out 429s with a `retry_after` up to the configured wait.
    async fn obeying_rate_limits<T, F, Fut>(&self, mut op: F) -> Result<T, CallError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, CallError>>,
    {
        let outcome = http::obey_rate_limits(self.max_rate_limit_wait, RATE_LIMIT_ATTEMPTS, || {
            let attempt = op();
            async move {
                match attempt.await {
                    Err(CallError::Channel(err @ ChannelError::RateLimited { .. })) => Err(err),
                    other => Ok(other),
                }
            }
        })
        .await;
        outcome.unwrap_or_else(|err| Err(CallError::Channel(err)))
    }
}
