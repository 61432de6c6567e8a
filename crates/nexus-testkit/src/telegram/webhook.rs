//! Webhooks: `setWebhook`, `deleteWebhook`, `getWebhookInfo`, and the worker that POSTs
//! queued updates to the registered URL one at a time, in order, with the secret header,
//! retrying non-2xx answers a few times before giving the update up.

use std::sync::Weak;

use serde_json::{Value, json};
use tokio::sync::watch;

use super::params::Params;
use super::state::{ApiError, WebhookDelivery, WebhookInfo};
use super::{Shared, now};

/// The header Telegram sends the secret token in.
pub const SECRET_HEADER: &str = "X-Telegram-Bot-Api-Secret-Token";

fn bad_webhook(why: &str) -> ApiError {
    ApiError::bad_request(format!("bad webhook: {why}"))
}

/// Checks a webhook URL as Telegram does (HTTPS on ports 443, 80, 88 or 8443), except that
/// plain HTTP to a loopback host is accepted so tests can receive on 127.0.0.1.
fn check_url(url: &str) -> Result<(), ApiError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| bad_webhook("invalid URL"))?;
    let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    match parsed.scheme() {
        "http" if loopback => Ok(()),
        "https" => match parsed.port_or_known_default() {
            Some(443 | 80 | 88 | 8443) => Ok(()),
            _ => Err(bad_webhook(
                "Webhook can be set up only on ports 80, 88, 443 or 8443",
            )),
        },
        _ => Err(bad_webhook("HTTPS url must be provided for webhook")),
    }
}

fn check_secret(secret: &str) -> Result<(), ApiError> {
    let ok_len = (1..=256).contains(&secret.len());
    let ok_chars = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(bad_webhook("secret token contains unallowed characters"))
    }
}

pub(crate) fn set_webhook(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let url = p.str("url").unwrap_or_default();
    let secret = p.str("secret_token").filter(|s| !s.is_empty());
    if !url.is_empty() {
        check_url(&url)?;
    }
    if let Some(s) = &secret {
        check_secret(s)?;
    }
    let allowed = match p.json("allowed_updates")? {
        Some(Value::Array(kinds)) => Some(
            kinds
                .iter()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect::<Vec<_>>(),
        ),
        Some(_) => {
            return Err(ApiError::bad_request(
                "can't parse allowed_updates JSON array",
            ));
        }
        None => None,
    };
    {
        let mut state = shared.state();
        if p.bool("drop_pending_updates") {
            state.updates.clear();
        }
        if allowed.is_some() {
            state.allowed_updates.clone_from(&allowed);
        }
        state.webhook = (!url.is_empty()).then_some(WebhookInfo {
            url,
            secret_token: secret,
            allowed_updates: allowed,
        });
        state.last_webhook_error = None;
    }
    shared.bump();
    Ok(json!(true))
}

pub(crate) fn delete_webhook(shared: &Shared, p: &Params) -> Value {
    {
        let mut state = shared.state();
        if p.bool("drop_pending_updates") {
            state.updates.clear();
        }
        state.webhook = None;
    }
    shared.bump();
    json!(true)
}

pub(crate) fn get_webhook_info(shared: &Shared) -> Value {
    let state = shared.state();
    let mut info = json!({
        "url": state.webhook.as_ref().map(|w| w.url.clone()).unwrap_or_default(),
        "has_custom_certificate": false,
        "pending_update_count": state.updates.len(),
    });
    if let Some(w) = &state.webhook {
        info["max_connections"] = json!(40);
        if let Some(a) = &w.allowed_updates {
            info["allowed_updates"] = json!(a);
        }
    }
    if let Some((date, message)) = &state.last_webhook_error {
        info["last_error_date"] = json!(date);
        info["last_error_message"] = json!(message);
    }
    info
}

/// POSTs `body` to `url` with `headers`; the HTTP status, or `None` when unreachable.
pub(crate) async fn post(
    shared: &Shared,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Option<u16> {
    let mut request = shared
        .http
        .post(url)
        .timeout(shared.config.webhook_timeout)
        .body(body);
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    match request.send().await {
        Ok(response) => {
            let status = response.status().as_u16();
            // Read the answer so the connection can be reused; its content is not used.
            let _ = response.bytes().await;
            Some(status)
        }
        Err(err) => {
            tracing::debug!(error = %err, "Fake Telegram cannot reach the webhook");
            None
        }
    }
}

/// Delivers queued updates while a webhook is set, until the fake is dropped.
pub(crate) fn spawn_worker(shared: Weak<Shared>, mut changes: watch::Receiver<u64>) {
    tokio::spawn(async move {
        loop {
            let Some(strong) = shared.upgrade() else {
                return;
            };
            let job = {
                let state = strong.state();
                match (&state.webhook, state.updates.front()) {
                    (Some(w), Some(update)) if !state.closed => Some((w.clone(), update.clone())),
                    _ => None,
                }
            };
            match job {
                Some((webhook, update)) => deliver(&strong, webhook, update).await,
                None => {
                    drop(strong);
                    if changes.changed().await.is_err() {
                        return;
                    }
                }
            }
        }
    });
}

/// Delivers one update with retries, then removes it from the queue.
async fn deliver(shared: &Shared, webhook: WebhookInfo, update: Value) {
    let update_id = update["update_id"].as_i64().unwrap_or_default();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let Some(secret) = &webhook.secret_token {
        headers.push((SECRET_HEADER.to_owned(), secret.clone()));
    }
    let body = update.to_string().into_bytes();
    let attempts = shared.config.webhook_attempts.max(1);
    let mut last_error = None;
    for attempt in 1..=attempts {
        if attempt > 1 {
            tokio::time::sleep(shared.config.webhook_retry_delay).await;
        }
        let status = post(shared, &webhook.url, &headers, body.clone()).await;
        shared.state().deliveries.push(WebhookDelivery {
            update_id,
            attempt,
            status,
        });
        match status {
            Some(s) if (200..300).contains(&s) => {
                last_error = None;
                break;
            }
            Some(s) => last_error = Some(format!("Wrong response from the webhook: {s}")),
            None => last_error = Some("Connection refused".to_owned()),
        }
    }
    {
        let mut state = shared.state();
        if state.webhook.as_ref() != Some(&webhook) {
            // Changed or deleted meanwhile: the update stays queued for the new receiver.
            drop(state);
            shared.bump();
            return;
        }
        if let Some(at) = state
            .updates
            .iter()
            .position(|u| u["update_id"].as_i64() == Some(update_id))
        {
            state.updates.remove(at);
        }
        if let Some(message) = last_error {
            state.last_webhook_error = Some((now(), message));
        }
    }
    shared.bump();
}
