//! Long polling: `deleteWebhook` (a webhook blocks `getUpdates`), then `getUpdates` in a loop.
//! Updates are handed to the router in order; the offset moves past an update only once the
//! router acknowledged it, so Telegram keeps (and redelivers) anything not yet committed.

use std::time::Duration;

use nexus_core::ChannelError;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::adapter::{Receipt, TelegramAdapter, cancellable};
use super::client::CallError;
use crate::backoff::Backoff;

/// First pause after a failed poll or a refused update.
const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest pause between polls after failures.
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// Failed polls in a row (transport errors, 5xx) before the run ends with the last error
/// and the gateway restarts the channel.
const MAX_FAILURES: u32 = 8;

/// How one batch of updates went.
enum Batch {
    /// All handled and acknowledged.
    Done,
    /// The router did not take an update: refetch it later.
    Redeliver,
    /// Cancelled while handling.
    Cancelled,
}

impl TelegramAdapter {
    /// Receives by long polling until `cancel` fires.
    pub(super) async fn poll(
        &self,
        cancel: &CancellationToken,
        timeout: Duration,
    ) -> Result<(), ChannelError> {
        let Some(bot) = cancellable(cancel, self.refresh_bot()).await else {
            return Ok(());
        };
        bot?;
        let params = json!({"drop_pending_updates": false});
        let delete = self.client.call::<bool>("deleteWebhook", &params);
        match cancellable(cancel, delete).await {
            None => return Ok(()),
            Some(result) => result.map_err(ChannelError::from)?,
        };
        info!(
            timeout_s = timeout.as_secs(),
            "Polling Telegram for updates"
        );
        let mut offset: Option<i64> = None;
        let mut backoff = Backoff::new(BACKOFF_BASE, BACKOFF_MAX);
        let mut failures = 0u32;
        loop {
            let mut params = json!({"timeout": timeout.as_secs(), "allowed_updates": ["message"]});
            if let Some(o) = offset {
                params["offset"] = json!(o);
            }
            let Some(answer) = cancellable(cancel, self.client.poll(&params, timeout)).await else {
                return Ok(());
            };
            let pause = match answer {
                Ok(updates) => {
                    failures = 0;
                    match self.batch(cancel, updates, &mut offset).await {
                        Batch::Done => {
                            backoff.reset();
                            None
                        }
                        Batch::Redeliver => Some(backoff.next_delay()),
                        Batch::Cancelled => return Ok(()),
                    }
                }
                Err(CallError::Conflict { description }) => {
                    warn!(
                        description,
                        "Another instance is polling this bot (or a webhook is set); backing off"
                    );
                    Some(backoff.next_delay())
                }
                Err(CallError::Channel(ChannelError::RateLimited { retry_after })) => {
                    Some(retry_after.unwrap_or_else(|| backoff.next_delay()))
                }
                Err(other) => {
                    let err = ChannelError::from(other);
                    failures += 1;
                    if !err.restartable() || failures >= MAX_FAILURES {
                        return Err(err);
                    }
                    warn!(error = %err, failures, "Telegram poll failed; retrying");
                    Some(backoff.next_delay())
                }
            };
            if let Some(pause) = pause
                && cancellable(cancel, tokio::time::sleep(pause))
                    .await
                    .is_none()
            {
                return Ok(());
            }
        }
    }

    /// Handles `updates` in order, moving `offset` past each acknowledged one.
    async fn batch(
        &self,
        cancel: &CancellationToken,
        updates: Value,
        offset: &mut Option<i64>,
    ) -> Batch {
        let Value::Array(updates) = updates else {
            warn!("Telegram's getUpdates result is not an array; polling again");
            return Batch::Redeliver;
        };
        for raw in updates {
            let Some(id) = raw.get("update_id").and_then(Value::as_i64) else {
                warn!("A Telegram update without update_id; skipped");
                continue;
            };
            if offset.is_some_and(|o| id < o) {
                // Already acknowledged (an update delivered twice).
                continue;
            }
            match cancellable(cancel, self.receive(raw)).await {
                None => return Batch::Cancelled,
                Some(Receipt::Acknowledge) => *offset = Some(id + 1),
                Some(Receipt::Redeliver) => return Batch::Redeliver,
            }
        }
        Batch::Done
    }
}
