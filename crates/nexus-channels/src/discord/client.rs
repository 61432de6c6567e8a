//! Discord's REST API: authenticated calls through the rate-limit buckets, and the one place
//! where HTTP answers become [`ChannelError`]s.

use bytes::Bytes;
use nexus_core::ChannelError;
use reqwest::header::{AUTHORIZATION, HeaderMap, USER_AGENT};
use reqwest::{Method, RequestBuilder, StatusCode};
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::payload::{ApiError, Created, GatewayBot, RateLimitBody, User};
use super::ratelimit::{RateLimits, Route, seconds, seconds_f64};
use crate::context::Limits;
use crate::http;

/// The `User-Agent` Discord asks bots to send.
pub(crate) const USER_AGENT_VALUE: &str = "DiscordBot (https://github.com/nexus, 0.1)";

/// Attempts per call when Discord answers 429 (see [`http::obey_rate_limits`]).
const ATTEMPTS: u32 = 3;

/// A file to upload with a message.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub(crate) filename: String,
    pub(crate) content_type: String,
    pub(crate) bytes: Bytes,
}

/// The REST client of one bot token.
#[derive(Debug)]
pub(crate) struct Rest {
    http: reqwest::Client,
    base: String,
    token: SecretString,
    limits: Limits,
    buckets: RateLimits,
}

impl Rest {
    pub(crate) fn new(
        http: reqwest::Client,
        base: &url::Url,
        token: SecretString,
        limits: Limits,
    ) -> Rest {
        Rest {
            http,
            base: base.as_str().trim_end_matches('/').to_owned(),
            token,
            limits,
            buckets: RateLimits::default(),
        }
    }

    /// `GET /users/@me`: who the token belongs to.
    pub(crate) async fn me(&self) -> Result<User, ChannelError> {
        let route = Route::new("GET /users/@me", "");
        self.json(&route, || Ok(self.request(Method::GET, "/users/@me")))
            .await
    }

    /// `GET /gateway/bot`: the gateway URL to connect to.
    pub(crate) async fn gateway_bot(&self) -> Result<GatewayBot, ChannelError> {
        let route = Route::new("GET /gateway/bot", "");
        self.json(&route, || Ok(self.request(Method::GET, "/gateway/bot")))
            .await
    }

    /// `POST /channels/{channel}/messages` with a JSON `payload`, or multipart with
    /// `payload_json` and `files[n]` when there are `files`.
    pub(crate) async fn create_message(
        &self,
        channel: &str,
        payload: &Value,
        files: &[Upload],
    ) -> Result<Created, ChannelError> {
        let route = Route::new("POST /channels/{id}/messages", channel);
        let path = format!("/channels/{channel}/messages");
        self.json(&route, || {
            let request = self.request(Method::POST, &path);
            if files.is_empty() {
                return Ok(request.json(payload));
            }
            let mut form =
                reqwest::multipart::Form::new().text("payload_json", payload.to_string());
            for (i, file) in files.iter().enumerate() {
                let part = reqwest::multipart::Part::stream(file.bytes.clone())
                    .file_name(file.filename.clone())
                    .mime_str(&file.content_type)
                    .map_err(http::transport)?;
                form = form.part(format!("files[{i}]"), part);
            }
            Ok(request.multipart(form))
        })
        .await
    }

    /// `PATCH /channels/{channel}/messages/{message}`.
    pub(crate) async fn edit_message(
        &self,
        channel: &str,
        message: &str,
        payload: &Value,
    ) -> Result<Created, ChannelError> {
        let route = Route::new("PATCH /channels/{id}/messages/{id}", channel);
        let path = format!("/channels/{channel}/messages/{message}");
        self.json(&route, || {
            Ok(self.request(Method::PATCH, &path).json(payload))
        })
        .await
    }

    /// `POST /channels/{channel}/typing` (204).
    pub(crate) async fn typing(&self, channel: &str) -> Result<(), ChannelError> {
        let route = Route::new("POST /channels/{id}/typing", channel);
        let path = format!("/channels/{channel}/typing");
        self.call(&route, || Ok(self.request(Method::POST, &path)))
            .await
            .map(|_| ())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header(AUTHORIZATION, format!("Bot {}", self.token.expose_secret()))
            .header(USER_AGENT, USER_AGENT_VALUE)
    }

    async fn json<T: DeserializeOwned>(
        &self,
        route: &Route,
        build: impl Fn() -> Result<RequestBuilder, ChannelError>,
    ) -> Result<T, ChannelError> {
        let body = self.call(route, build).await?;
        serde_json::from_slice(&body).map_err(|e| ChannelError::Transport {
            message: format!(
                "Discord sent an unreadable answer to {}: {e}",
                route.template
            ),
        })
    }

    /// One call: waits for its bucket, sends, learns the bucket's state, classifies failures;
    /// 429s are waited out and retried up to [`ATTEMPTS`] times.
    async fn call(
        &self,
        route: &Route,
        build: impl Fn() -> Result<RequestBuilder, ChannelError>,
    ) -> Result<Bytes, ChannelError> {
        let max_wait = self.limits.max_rate_limit_wait;
        http::obey_rate_limits(max_wait, ATTEMPTS, || async {
            self.buckets.acquire(route, max_wait).await?;
            let response = build()?.send().await.map_err(http::transport)?;
            let status = response.status();
            let headers = response.headers().clone();
            self.buckets.update(route, &headers);
            let body = http::read_capped(response, self.limits.max_body_bytes).await?;
            if status.is_success() {
                return Ok(body);
            }
            let err = classify(status, &headers, &body);
            if let ChannelError::RateLimited {
                retry_after: Some(wait),
            } = &err
            {
                self.buckets
                    .limited(route, is_global(&headers, &body), *wait);
                tracing::warn!(
                    route = route.template,
                    wait_ms = wait.as_millis() as u64,
                    "Rate limited by Discord"
                );
            }
            Err(err)
        })
        .await
    }
}

fn is_global(headers: &HeaderMap, body: &[u8]) -> bool {
    let header = headers
        .get("x-ratelimit-global")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let in_body = serde_json::from_slice::<RateLimitBody>(body)
        .ok()
        .and_then(|b| b.global)
        .unwrap_or(false);
    header || in_body
}

/// Classifies a failed answer: 401 → `Auth`; 429 → `RateLimited` (body `retry_after` in
/// float seconds, else `Retry-After`); other 4xx → `Rejected` with Discord's code and message;
/// everything else → `Transport` (whether Discord acted is unknown).
pub(crate) fn classify(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ChannelError {
    let api: Option<ApiError> = serde_json::from_slice(body).ok();
    let explain = || match &api {
        Some(e) => e.describe(),
        None => format!("HTTP {}", status.as_u16()),
    };
    match status.as_u16() {
        401 => ChannelError::Auth {
            message: format!("Discord rejected the bot token ({})", explain()),
        },
        429 => {
            let from_body = serde_json::from_slice::<RateLimitBody>(body)
                .ok()
                .and_then(|b| b.retry_after)
                .and_then(seconds_f64);
            let from_header = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(seconds);
            ChannelError::RateLimited {
                retry_after: from_body.or(from_header),
            }
        }
        400..=499 => ChannelError::Rejected { message: explain() },
        _ => ChannelError::Transport {
            message: format!("Discord answered HTTP {}", status.as_u16()),
        },
    }
}
