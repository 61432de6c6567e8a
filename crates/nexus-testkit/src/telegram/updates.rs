//! `getUpdates`: long polling over the queue of unconfirmed updates, with the two 409
//! conflicts (a second poller terminates the first; no polling while a webhook is set).

use std::time::Duration;

use serde_json::{Value, json};

use super::Shared;
use super::params::Params;
use super::state::ApiError;

/// The longest `timeout` honoured, in seconds (Telegram's own cap is not documented).
const MAX_TIMEOUT_SECS: i64 = 50;

fn webhook_conflict() -> ApiError {
    ApiError::new(
        409,
        "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first",
    )
}

fn terminated() -> ApiError {
    ApiError::new(
        409,
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
    )
}

/// Answers a `getUpdates` call: confirms updates below `offset`, then returns at most `limit`
/// updates, waiting up to `timeout` seconds for one to arrive.
pub(crate) async fn get_updates(shared: &Shared, p: &Params) -> Result<Value, ApiError> {
    let offset = p.int("offset")?;
    let limit = p.int("limit")?.unwrap_or(100).clamp(1, 100);
    let limit = usize::try_from(limit).unwrap_or(100);
    let timeout = p.int("timeout")?.unwrap_or(0).clamp(0, MAX_TIMEOUT_SECS);
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
    let mut changes = shared.changes.subscribe();
    let generation = {
        let mut state = shared.state();
        if state.webhook.is_some() {
            return Err(webhook_conflict());
        }
        if let Some(offset) = offset {
            state.confirm(offset);
        }
        if allowed.is_some() {
            state.allowed_updates = allowed;
        }
        state.poll_generation += 1;
        state.poll_generation
    };
    // Wakes an earlier poll, which then answers 409.
    shared.bump();
    let deadline =
        tokio::time::Instant::now() + Duration::from_secs(u64::try_from(timeout).unwrap_or(0));
    loop {
        {
            let state = shared.state();
            if state.closed {
                return Ok(json!([]));
            }
            if state.poll_generation != generation {
                return Err(terminated());
            }
            if state.webhook.is_some() {
                return Err(webhook_conflict());
            }
            let batch: Vec<Value> = state.updates.iter().take(limit).cloned().collect();
            if !batch.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(Value::Array(batch));
            }
        }
        tokio::select! {
            changed = changes.changed() => {
                if changed.is_err() {
                    return Ok(json!([]));
                }
            }
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}
