//! Webhook mode: `setWebhook` at start (left registered on cancel), and the requests Telegram
//! POSTs: secret checked in constant time (403), body capped (413), then handed to the router
//! and answered 200 once acknowledged or 500 so Telegram retries.
//!
//! A body that passed the secret check but is not an update (invalid JSON, no `update_id`) is
//! answered **200** and logged: the same bytes would fail on every retry, and Telegram holds
//! later updates back while it retries one, so refusing it would stall the bot.

use nexus_core::{ChannelError, WebhookRequest, WebhookResponse};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use url::Url;

use super::adapter::{Receipt, TelegramAdapter, cancellable};
use super::config::TelegramMode;

/// The header Telegram sends the secret in (lowercase, as the gateway passes headers).
const SECRET_HEADER: &str = "x-telegram-bot-api-secret-token";

/// Equality of `a` and `b` in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TelegramAdapter {
    /// Registers the webhook, then waits for `cancel`.
    pub(super) async fn register_webhook(
        &self,
        cancel: &CancellationToken,
        url: &Url,
        secret: &SecretString,
    ) -> Result<(), ChannelError> {
        let Some(bot) = cancellable(cancel, self.refresh_bot()).await else {
            return Ok(());
        };
        bot?;
        let params = json!({
            "url": url.as_str(),
            "secret_token": secret.expose_secret(),
            "allowed_updates": ["message"],
        });
        let set = self.client.call::<bool>("setWebhook", &params);
        match cancellable(cancel, set).await {
            None => return Ok(()),
            Some(Ok(_)) => {}
            Some(Err(err)) => {
                return Err(match ChannelError::from(err) {
                    ChannelError::Rejected { message } => ChannelError::Fatal {
                        message: format!("Telegram refused the webhook URL {url}: {message}"),
                    },
                    other => other,
                });
            }
        }
        info!(%url, "Telegram webhook registered");
        cancel.cancelled().await;
        Ok(())
    }

    /// Answers one request Telegram sent to the webhook.
    pub(super) async fn handle_webhook(
        &self,
        request: WebhookRequest,
    ) -> Result<WebhookResponse, ChannelError> {
        let TelegramMode::Webhook { secret, .. } = &self.mode else {
            return Err(ChannelError::Unsupported {
                what: "webhooks on a Telegram channel in polling mode".to_owned(),
            });
        };
        let given = request.header(SECRET_HEADER).unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), secret.expose_secret().as_bytes()) {
            warn!("Telegram webhook request with a wrong or missing secret token; refused");
            return Ok(WebhookResponse::text(403, "forbidden"));
        }
        if request.body.len() > self.ctx.limits.max_body_bytes {
            warn!(
                bytes = request.body.len(),
                "Telegram webhook body too large; refused"
            );
            return Ok(WebhookResponse::text(413, "body too large"));
        }
        let raw: Value = match serde_json::from_slice(&request.body) {
            Ok(v @ Value::Object(_)) if v.get("update_id").is_some_and(Value::is_i64) => v,
            Ok(_) | Err(_) => {
                warn!(
                    bytes = request.body.len(),
                    "Telegram webhook body is not an update; acknowledged and dropped"
                );
                return Ok(WebhookResponse::text(200, "ignored: not an update"));
            }
        };
        Ok(match self.receive(raw).await {
            Receipt::Acknowledge => WebhookResponse::status(200),
            Receipt::Redeliver => WebhookResponse::text(500, "not committed; retry"),
        })
    }
}
