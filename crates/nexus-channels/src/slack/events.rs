//! The Events API: Slack's POSTs to `/channels/{id}/webhook`, checked (v0 signature over the
//! raw body in constant time, timestamp within 5 minutes, body size), the `url_verification`
//! handshake answered, and each `event_callback` answered 200 only once the router
//! acknowledged it, within Slack's 3 s (else 500, and Slack retries).

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use nexus_core::{WebhookRequest, WebhookResponse};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use sha2::Sha256;
use tracing::{debug, warn};

use super::dispatch::Dispatch;

/// How long an event may wait for the router before Slack is answered 500 (Slack gives up,
/// and retries, after 3 s).
pub(crate) const ACK_BUDGET: Duration = Duration::from_millis(2500);
/// Oldest (or most future) request timestamp accepted, in seconds.
pub(crate) const MAX_SKEW_SECS: i64 = 300;

/// Why a request was refused before its body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    MissingHeaders,
    BadTimestamp,
    Stale,
    BadSignature,
}

/// Checks Slack's v0 signature of `request` at Unix time `now`.
pub(crate) fn verify_signature(
    secret: &SecretString,
    request: &WebhookRequest,
    now: i64,
) -> Result<(), Refusal> {
    let (Some(timestamp), Some(signature)) = (
        request.header("x-slack-request-timestamp"),
        request.header("x-slack-signature"),
    ) else {
        return Err(Refusal::MissingHeaders);
    };
    let ts: i64 = timestamp
        .trim()
        .parse()
        .map_err(|_| Refusal::BadTimestamp)?;
    if (now - ts).abs() > MAX_SKEW_SECS {
        return Err(Refusal::Stale);
    }
    let given = signature
        .strip_prefix("v0=")
        .and_then(|h| hex::decode(h).ok())
        .ok_or(Refusal::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes())
        .map_err(|_| Refusal::BadSignature)?;
    mac.update(b"v0:");
    mac.update(timestamp.trim().as_bytes());
    mac.update(b":");
    mac.update(&request.body);
    mac.verify_slice(&given).map_err(|_| Refusal::BadSignature)
}

/// Answers one POST of Slack's.
pub(crate) async fn handle(
    dispatch: &Arc<Dispatch>,
    secret: &SecretString,
    request: WebhookRequest,
) -> WebhookResponse {
    if request.body.len() > dispatch.ctx.limits.max_body_bytes {
        return WebhookResponse::text(413, "request body too large");
    }
    if let Err(refusal) = verify_signature(secret, &request, chrono::Utc::now().timestamp()) {
        warn!(
            ?refusal,
            channel = "slack",
            "Refused an unsigned or badly signed Slack request"
        );
        return WebhookResponse::text(401, "invalid signature");
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&request.body) else {
        return WebhookResponse::text(400, "body is not JSON");
    };
    if let Some(retry) = request.header("x-slack-retry-num") {
        debug!(
            retry,
            reason = request.header("x-slack-retry-reason").unwrap_or(""),
            channel = "slack",
            "Slack retried an event"
        );
    }
    match payload.get("type").and_then(Value::as_str) {
        Some("url_verification") => {
            let challenge = payload
                .get("challenge")
                .and_then(Value::as_str)
                .unwrap_or("");
            WebhookResponse::text(200, challenge)
        }
        Some("event_callback") => {
            match tokio::time::timeout(ACK_BUDGET, dispatch.handle(payload)).await {
                Ok(true) => WebhookResponse::status(200),
                Ok(false) => WebhookResponse::text(500, "not stored; retry"),
                Err(_) => {
                    warn!(
                        channel = "slack",
                        "The router took too long; Slack will retry the event"
                    );
                    WebhookResponse::text(500, "not stored in time; retry")
                }
            }
        }
        // `app_rate_limited` and anything new: nothing to do.
        _ => WebhookResponse::status(200),
    }
}
