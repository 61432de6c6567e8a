//! The outbox: deliveries of channel replies that no live reply finished (the process died,
//! the platform failed, the turn was answered after a restart) are picked up here and
//! delivered, editing what an earlier attempt showed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nexus_core::{ChannelCredentialId, ChannelKind, ChatRef, Message};
use nexus_store::{DeliveryStatus, Store};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::reply::{MAX_DELIVERY_ATTEMPTS, Replier, ReplyTarget};
use super::router::keys;

/// Where the answer to a stored question goes, from the routing keys the router stored.
pub(crate) fn target_of(question: &Message) -> Option<ReplyTarget> {
    let text = |k: &str| question.metadata.get(k).and_then(|v| v.as_str());
    let channel_id = text(keys::CHANNEL_ID)?.parse::<uuid::Uuid>().ok()?;
    Some(ReplyTarget {
        channel_id: ChannelCredentialId::from(channel_id),
        chat: ChatRef {
            chat_id: text(keys::CHAT_ID)?.to_owned(),
            thread_id: text(keys::THREAD_ID).map(str::to_owned),
        },
        reply_to: text(keys::REPLY_TO).map(str::to_owned),
    })
}

/// Outbox settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutboxSettings {
    /// How often pending deliveries are looked for.
    pub(crate) interval: Duration,
    /// How old a pending delivery must be before the outbox takes it (live replies finish
    /// within moments of the turn's commit).
    pub(crate) grace: Duration,
}

/// Delivers pending replies of the channels this replica runs, until `cancel` fires. A server
/// that never ran a channel (`ran_channels`) has nothing to deliver and does not query; once one
/// ran, the deliveries of channels removed since are given up here too.
pub(crate) async fn run(
    store: Arc<dyn Store>,
    repliers: impl Fn() -> HashMap<ChannelCredentialId, Replier>,
    ran_channels: impl Fn() -> bool,
    settings: OutboxSettings,
    cancel: CancellationToken,
) {
    let mut tick = tokio::time::interval(settings.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = cancel.cancelled() => return,
        }
        if !ran_channels() {
            continue;
        }
        let repliers = repliers();
        for kind in [
            ChannelKind::Telegram,
            ChannelKind::Discord,
            ChannelKind::Slack,
        ] {
            if let Err(err) = pass(store.as_ref(), kind, &repliers, settings.grace).await {
                warn!(channel = %kind, error = %err, "Outbox pass failed");
            }
        }
    }
}

async fn pass(
    store: &dyn Store,
    kind: ChannelKind,
    repliers: &HashMap<ChannelCredentialId, Replier>,
    grace: Duration,
) -> Result<(), nexus_store::StoreError> {
    let deliveries = store.pending_deliveries(kind, 200).await?;
    let now = Utc::now();
    for delivery in deliveries {
        let age = (now - delivery.updated_at).to_std().unwrap_or_default();
        if age < grace {
            continue;
        }
        // Which channel? The question says; skip channels this replica does not run.
        let Some(item) = store.get_inbox_item(delivery.turn_id).await? else {
            continue;
        };
        let question = store
            .list_messages(item.session_id, item.message_seq - 1, 1)
            .await?
            .into_iter()
            .next();
        let Some(target) = question.as_ref().and_then(target_of) else {
            warn!(turn_id = %delivery.turn_id, "A channel delivery without routing; giving up on it");
            store
                .update_delivery(
                    delivery.id,
                    DeliveryStatus::Failed,
                    None,
                    Some("the question does not say where to answer"),
                )
                .await?;
            continue;
        };
        let Some(replier) = repliers.get(&target.channel_id) else {
            // Not running here: paused (delivered once resumed) or removed (never deliverable;
            // left pending it would crowd out the deliveries behind it).
            if store
                .get_channel_credential(target.channel_id)
                .await?
                .is_none()
            {
                store
                    .update_delivery(
                        delivery.id,
                        DeliveryStatus::Failed,
                        None,
                        Some("the channel was removed"),
                    )
                    .await?;
            }
            continue;
        };
        match replier.deliver_stored(&delivery).await {
            Ok(true) => {}
            Ok(false) => debug!(turn_id = %delivery.turn_id, "Delivery held elsewhere"),
            Err(err) => {
                let attempts = delivery.attempts + 1;
                let status = if attempts >= MAX_DELIVERY_ATTEMPTS {
                    warn!(turn_id = %delivery.turn_id, attempts, error = %err, "Giving up on a reply delivery");
                    DeliveryStatus::Failed
                } else {
                    warn!(turn_id = %delivery.turn_id, attempts, error = %err, "Reply delivery failed; will retry");
                    DeliveryStatus::Pending
                };
                store
                    .update_delivery(delivery.id, status, None, Some(&err))
                    .await?;
            }
        }
    }
    Ok(())
}
