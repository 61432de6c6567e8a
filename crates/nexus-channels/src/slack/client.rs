//! The Slack Web API on the wire: `POST {api_base}{method}` with a bearer token and a JSON body
//! (with charset), answers classified once here (HTTP 429 and `ratelimited` → rate limited,
//! credential errors → auth, other `ok:false` → rejected, 5xx and Slack's internal errors →
//! transport), every call under the shared rate-limit wait; and private file downloads.

use std::time::Duration;

use nexus_core::ChannelError;
use reqwest::header;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Value, json};
use url::Url;

use crate::context::Limits;
use crate::http::{self, Download};

/// How many times a rate-limited call is tried in all.
const RATE_LIMIT_ATTEMPTS: u32 = 3;

/// Who the bot is (`auth.test`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub(crate) struct Identity {
    /// The bot's user id (`U…`): mentions are `<@user_id>`.
    pub(crate) user_id: String,
    /// The bot id (`B…`) its posts carry.
    #[serde(default)]
    pub(crate) bot_id: Option<String>,
    /// Its user name.
    #[serde(default)]
    pub(crate) user: String,
    /// The workspace.
    #[serde(default)]
    pub(crate) team_id: Option<String>,
}

/// A Web API client for one bot.
#[derive(Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    base: Url,
    bot_token: SecretString,
    limits: Limits,
}

/// Turns one Web API answer into its JSON or a classified error.
pub(crate) fn classify(
    method: &str,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Result<Value, ChannelError> {
    match status {
        429 => return Err(ChannelError::RateLimited { retry_after }),
        401 | 403 => {
            return Err(ChannelError::Auth {
                message: format!("Slack answered HTTP {status} to {method}"),
            });
        }
        400..=499 => {
            return Err(ChannelError::Rejected {
                message: format!("Slack answered HTTP {status} to {method}"),
            });
        }
        200..=299 => {}
        _ => {
            return Err(ChannelError::Transport {
                message: format!("Slack answered HTTP {status} to {method}"),
            });
        }
    }
    let value: Value = serde_json::from_slice(body).map_err(|_| ChannelError::Transport {
        message: format!("Slack answered {method} with a body that is not JSON"),
    })?;
    if value.get("ok").and_then(Value::as_bool) == Some(true) {
        return Ok(value);
    }
    let code = value
        .get("error")
        .and_then(Value::as_str)
        .unwrap_or("unknown_error");
    Err(classify_code(method, code, retry_after))
}

/// The error an `ok:false` code means.
fn classify_code(method: &str, code: &str, retry_after: Option<Duration>) -> ChannelError {
    match code {
        "invalid_auth"
        | "not_authed"
        | "account_inactive"
        | "token_revoked"
        | "token_expired"
        | "not_allowed_token_type"
        | "missing_scope"
        | "no_permission"
        | "team_access_not_granted"
        | "ekm_access_denied" => ChannelError::Auth {
            message: format!("Slack refused the token for {method}: {code}"),
        },
        "ratelimited" | "rate_limited" => ChannelError::RateLimited { retry_after },
        "internal_error" | "fatal_error" | "service_unavailable" | "request_timeout" => {
            ChannelError::Transport {
                message: format!("Slack failed {method}: {code}"),
            }
        }
        _ => ChannelError::Rejected {
            message: format!("Slack refused {method}: {code}"),
        },
    }
}

fn retry_after(headers: &header::HeaderMap) -> Option<Duration> {
    headers
        .get(header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

impl Client {
    pub(crate) fn new(
        http: reqwest::Client,
        base: Url,
        bot_token: SecretString,
        limits: Limits,
    ) -> Self {
        Client {
            http,
            base,
            bot_token,
            limits,
        }
    }

    /// Calls `method` with `args` and `token`, waiting out short rate limits.
    async fn call(
        &self,
        method: &str,
        token: &SecretString,
        args: &Value,
    ) -> Result<Value, ChannelError> {
        http::obey_rate_limits(self.limits.max_rate_limit_wait, RATE_LIMIT_ATTEMPTS, || {
            self.call_once(method, token, args)
        })
        .await
    }

    async fn call_once(
        &self,
        method: &str,
        token: &SecretString,
        args: &Value,
    ) -> Result<Value, ChannelError> {
        let url = self.base.join(method).map_err(|err| ChannelError::Fatal {
            message: format!("the Slack API base cannot take {method}: {err}"),
        })?;
        let response = self
            .http
            .post(url)
            .bearer_auth(token.expose_secret())
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(args.to_string())
            .send()
            .await
            .map_err(http::transport)?;
        let status = response.status().as_u16();
        let wait = retry_after(response.headers());
        let body = match http::read_capped(response, self.limits.max_body_bytes).await {
            Ok(body) => body,
            // The status alone classifies a failed call whose body cannot be read.
            Err(_) if status != 200 => Default::default(),
            Err(err) => return Err(err),
        };
        classify(method, status, wait, &body)
    }

    /// `auth.test` with the bot token.
    pub(crate) async fn auth_test(&self) -> Result<Identity, ChannelError> {
        let value = self.call("auth.test", &self.bot_token, &json!({})).await?;
        serde_json::from_value(value).map_err(|_| ChannelError::Transport {
            message: "Slack answered auth.test without a user id".to_owned(),
        })
    }

    /// `chat.postMessage`; the new message's `ts`.
    pub(crate) async fn post_message(
        &self,
        channel: &str,
        text: &str,
        thread_ts: Option<&str>,
    ) -> Result<String, ChannelError> {
        let mut args = json!({
            "channel": channel,
            "text": text,
            "mrkdwn": true,
            "unfurl_links": false,
            "unfurl_media": false,
        });
        if let Some(thread) = thread_ts {
            args["thread_ts"] = Value::String(thread.to_owned());
        }
        let value = self
            .call("chat.postMessage", &self.bot_token, &args)
            .await?;
        value
            .get("ts")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ChannelError::Transport {
                message: "Slack answered chat.postMessage without a ts".to_owned(),
            })
    }

    /// `chat.update`.
    pub(crate) async fn update(
        &self,
        channel: &str,
        ts: &str,
        text: &str,
    ) -> Result<(), ChannelError> {
        let args = json!({ "channel": channel, "ts": ts, "text": text });
        self.call("chat.update", &self.bot_token, &args)
            .await
            .map(drop)
    }

    /// `apps.connections.open` with the app-level token: a single-use WebSocket URL.
    pub(crate) async fn open_connection(
        &self,
        app_token: &SecretString,
    ) -> Result<String, ChannelError> {
        let value = self
            .call("apps.connections.open", app_token, &json!({}))
            .await?;
        value
            .get("url")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| ChannelError::Transport {
                message: "Slack answered apps.connections.open without a url".to_owned(),
            })
    }

    /// Downloads a private file (`url_private_download`) with the bot token, at most
    /// `max` bytes. The token goes only to the API's own host or Slack's.
    pub(crate) async fn download(&self, url: &str, max: u64) -> Result<Download, ChannelError> {
        let parsed = Url::parse(url).map_err(|_| ChannelError::Rejected {
            message: "the file URL does not parse".to_owned(),
        })?;
        if !self.trusted(&parsed) {
            return Err(ChannelError::Rejected {
                message: "the file is not on a Slack host".to_owned(),
            });
        }
        let request = self
            .http
            .get(parsed)
            .bearer_auth(self.bot_token.expose_secret());
        http::download(request, max).await
    }

    /// Whether the bot token may be sent to `url`: the API base's own host, or Slack's over
    /// HTTPS.
    fn trusted(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        if Some(host) == self.base.host_str()
            && url.scheme() == self.base.scheme()
            && url.port_or_known_default() == self.base.port_or_known_default()
        {
            return true;
        }
        url.scheme() == "https" && (host == "slack.com" || host.ends_with(".slack.com"))
    }
}
