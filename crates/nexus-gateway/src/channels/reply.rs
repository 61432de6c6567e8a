//! Replies on a channel. A live reply follows a turn's events: typing indicators until the
//! first words, then one message edited in place no more often than the platform allows,
//! continued in new messages past its length limit, and replaced by the stored answer at the
//! end. Every platform message it creates is recorded before the next step, and the delivery
//! is marked delivered with the first message's id, so a delivery retried after a crash edits
//! what exists instead of sending the reply twice ([`Replier::deliver_stored`]).
//!
//! A lease on the turn's delivery keeps a live reply and the outbox (of this or another
//! replica) from delivering the same reply at once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nexus_channels::{Action, Platform, StreamingReply};
use nexus_core::{
    ChannelAdapter, ChannelCredentialId, ChannelError, ChannelKind, ChatRef, Message,
    OutboundMessage, SentMessage, SessionId, TurnErrorKind, TurnEvent, TurnId,
};
use nexus_runtime::TurnHandle;
use nexus_store::{ChannelReply, Delivery, DeliveryStatus, Store, StoreError};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

/// Where a reply goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ReplyTarget {
    /// The channel.
    pub(crate) channel_id: ChannelCredentialId,
    /// The chat (and thread).
    pub(crate) chat: ChatRef,
    /// The platform message the first reply message quotes.
    pub(crate) reply_to: Option<String>,
}

/// How long a delivery lease lasts; a live reply renews it as it goes.
const DELIVERY_LEASE: Duration = Duration::from_secs(120);
/// How often typing indicators are refreshed (Telegram shows one for 5 s, Discord ~10 s).
const TYPING_EVERY: Duration = Duration::from_secs(4);
/// Deliveries given up after this many failed attempts.
pub(crate) const MAX_DELIVERY_ATTEMPTS: u32 = 10;

/// The platform's markup and limits for a channel kind.
pub(crate) fn platform(kind: ChannelKind) -> Option<Platform> {
    match kind {
        ChannelKind::Telegram => Some(Platform::Telegram),
        ChannelKind::Discord => Some(Platform::Discord),
        ChannelKind::Slack => Some(Platform::Slack),
        _ => None,
    }
}

/// The fastest edit rate each platform tolerates for one message: Telegram about one message
/// per second per chat, Discord 5 per 5 s per channel, Slack about one per second.
fn edit_interval(platform: Platform) -> Duration {
    match platform {
        Platform::Telegram => Duration::from_millis(1000),
        Platform::Discord | Platform::Slack => Duration::from_millis(1200),
    }
}

fn lease_name(turn_id: TurnId) -> String {
    format!("delivery:{turn_id}")
}

/// Sends and edits replies on one channel.
#[derive(Debug, Clone)]
pub(crate) struct Replier {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) adapter: Arc<dyn ChannelAdapter>,
    pub(crate) channel_id: ChannelCredentialId,
    pub(crate) holder: Arc<str>,
    pub(crate) tracker: TaskTracker,
    /// Fired when the channel stops: a live reply still waiting then gives up (its turn,
    /// abandoned at shutdown, is answered after the restart through the outbox).
    pub(crate) cancel: CancellationToken,
    /// Multiplies the edit interval (tests shorten it).
    pub(crate) edit_interval_scale: f64,
}

/// The messages of one reply on the platform, in order.
struct Shown {
    chat: ChatRef,
    reply_to: Option<String>,
    sent: Vec<SentMessage>,
}

impl Replier {
    /// The delivery-lease holder of this replica's live replies. It differs from the
    /// outbox's, so that the outbox does not take over a live reply still at work (waiting out
    /// a platform rate limit, say) and send the reply a second time: a lease is re-entrant for
    /// its holder.
    fn live_holder(&self) -> String {
        format!("{}/live", self.holder)
    }

    /// The delivery-lease holder of this replica's outbox.
    fn outbox_holder(&self) -> String {
        format!("{}/outbox", self.holder)
    }

    /// Sends `text` (Markdown) to `chat` in the background; failures are logged.
    pub(crate) fn spawn_notice(&self, chat: ChatRef, text: String) {
        let this = self.clone();
        self.tracker.spawn(async move {
            let Some(platform) = platform(this.adapter.kind()) else {
                return;
            };
            for part in platform.messages(&text) {
                let message = OutboundMessage {
                    chat: chat.clone(),
                    text: part,
                    reply_to: None,
                    attachments: Vec::new(),
                };
                if let Err(err) = this.adapter.send(&message).await {
                    warn!(channel_id = %this.channel_id, error = %err, "Could not send a notice");
                    return;
                }
            }
        });
    }

    /// Follows a committed turn and streams its reply, in the background.
    pub(crate) fn spawn_live(&self, target: ReplyTarget, handle: TurnHandle) {
        let this = self.clone();
        self.tracker.spawn(async move {
            let turn_id = handle.turn_id;
            match this.live(target, handle).await {
                Ok(()) => {}
                Err(err) => {
                    warn!(%turn_id, channel_id = %this.channel_id, error = %err, "Live reply failed; the outbox will retry the delivery");
                }
            }
            if let Err(err) = this
                .store
                .release_lease(&lease_name(turn_id), &this.live_holder())
                .await
            {
                debug!(%turn_id, error = %err, "Could not release a delivery lease");
            }
        });
    }

    /// The platform's format, and whether `holder` took the turn's delivery lease.
    async fn start_delivery(
        &self,
        turn_id: TurnId,
        holder: &str,
    ) -> Result<(Platform, bool), String> {
        let Some(platform) = platform(self.adapter.kind()) else {
            return Err(format!("{} has no reply format", self.adapter.kind()));
        };
        let held = self
            .store
            .try_acquire_lease(&lease_name(turn_id), holder, DELIVERY_LEASE)
            .await
            .map_err(|e| e.to_string())?;
        Ok((platform, held))
    }

    async fn live(&self, target: ReplyTarget, handle: TurnHandle) -> Result<(), String> {
        let turn_id = handle.turn_id;
        let lease = lease_name(turn_id);
        let holder = self.live_holder();
        let (platform, held) = self.start_delivery(turn_id, &holder).await?;
        if !held {
            debug!(%turn_id, "Another worker is delivering this reply");
            return Ok(());
        }
        let caps = self.adapter.capabilities();
        let interval = edit_interval(platform).mul_f64(self.edit_interval_scale);
        let mut plan = StreamingReply::new(platform, interval);
        let mut shown = Shown {
            chat: target.chat.clone(),
            reply_to: target.reply_to.clone(),
            sent: Vec::new(),
        };
        let mut events = handle.events;
        let mut typing = tokio::time::interval(TYPING_EVERY);
        let mut renew = tokio::time::interval(DELIVERY_LEASE / 3);
        renew.tick().await;
        loop {
            let due = plan.next_due().filter(|_| caps.edit);
            tokio::select! {
                event = events.recv() => match event {
                    Some(TurnEvent::TextDelta { text }) => {
                        if caps.edit {
                            let actions = plan.push(&text, Instant::now());
                            self.apply(turn_id, &mut shown, actions).await;
                        }
                    }
                    Some(TurnEvent::Done { session_id, message_id, .. }) => {
                        let answer = self
                            .answer(session_id, handle.message_seq, message_id)
                            .await
                            .map_err(|e| e.to_string())?;
                        let actions = if caps.edit {
                            plan.finish(&answer.content)
                        } else {
                            platform
                                .messages(&answer.content)
                                .into_iter()
                                .enumerate()
                                .map(|(index, text)| Action::Send { index, text })
                                .collect()
                        };
                        let complete = self.apply(turn_id, &mut shown, actions).await;
                        self.send_attachments(&shown, &answer).await?;
                        if !complete {
                            return Err("a part of the reply could not be sent".to_owned());
                        }
                        return self.mark_delivered(turn_id, &shown).await;
                    }
                    // Abandoned at shutdown: answered after the restart, through the outbox,
                    // which edits what this reply showed. Nothing to tell the person now.
                    Some(TurnEvent::Error { kind: TurnErrorKind::Cancelled, .. }) => return Ok(()),
                    Some(TurnEvent::Error { message, .. }) => {
                        let notice = OutboundMessage {
                            chat: shown.chat.clone(),
                            text: platform.render(&format!("⚠️ I could not answer: {message}")),
                            reply_to: shown.reply_to.clone(),
                            attachments: Vec::new(),
                        };
                        self.adapter.send(&notice).await.map_err(|e| e.to_string())?;
                        return Ok(());
                    }
                    Some(_) => {}
                    // The turn was abandoned (shutdown); it runs again after the restart and
                    // the outbox delivers it, editing what this reply showed.
                    None => return Ok(()),
                },
                () = self.cancel.cancelled() => return Ok(()),
                () = sleep_until(due), if due.is_some() => {
                    let actions = plan.flush(Instant::now());
                    self.apply(turn_id, &mut shown, actions).await;
                }
                _ = typing.tick(), if caps.typing && shown.sent.is_empty() => {
                    if let Err(err) = self.adapter.typing(&shown.chat).await {
                        debug!(%turn_id, error = %err, "Typing indicator failed");
                    }
                }
                _ = renew.tick() => {
                    if let Err(err) = self.store.try_acquire_lease(&lease, &holder, DELIVERY_LEASE).await {
                        debug!(%turn_id, error = %err, "Could not renew a delivery lease");
                    }
                }
            }
        }
    }

    /// Carries out a plan's actions; whether every one succeeded. A failed edit is left for
    /// the next edit or the final text; a failed send stops the plan's later sends.
    async fn apply(&self, turn_id: TurnId, shown: &mut Shown, actions: Vec<Action>) -> bool {
        let mut complete = true;
        for action in actions {
            let (index, text) = match action {
                Action::Send { index, text } | Action::Edit { index, text } => (index, text),
            };
            let result = match shown.sent.get(index) {
                Some(sent) => self.adapter.edit(sent, &text).await,
                None if index == shown.sent.len() => self.send(turn_id, shown, text).await,
                None => Err(ChannelError::Rejected {
                    message: format!("part {index} follows a part that was not sent"),
                }),
            };
            if let Err(err) = result {
                warn!(%turn_id, channel_id = %self.channel_id, part = index, error = %err, "Reply step failed");
                complete = false;
            }
        }
        complete
    }

    async fn send(
        &self,
        turn_id: TurnId,
        shown: &mut Shown,
        text: String,
    ) -> Result<(), ChannelError> {
        let message = OutboundMessage {
            chat: shown.chat.clone(),
            text,
            reply_to: if shown.sent.is_empty() {
                shown.reply_to.clone()
            } else {
                None
            },
            attachments: Vec::new(),
        };
        let sent = self.adapter.send(&message).await?;
        shown.sent.push(sent);
        let record = ChannelReply {
            turn_id,
            channel_id: self.channel_id,
            message_ids: shown
                .sent
                .iter()
                .map(|s| s.platform_message_id.clone())
                .collect(),
            updated_at: Utc::now(),
        };
        if let Err(err) = self.store.put_channel_reply(&record).await {
            // The message is out; if the process dies before the delivery is recorded, a
            // retry cannot know about it and may send it again.
            warn!(%turn_id, error = %err, "Could not record a sent reply message");
        }
        Ok(())
    }

    async fn send_attachments(&self, shown: &Shown, answer: &Message) -> Result<(), String> {
        if answer.attachments.is_empty() {
            return Ok(());
        }
        let message = OutboundMessage {
            chat: shown.chat.clone(),
            text: String::new(),
            reply_to: None,
            attachments: answer.attachments.clone(),
        };
        self.adapter
            .send(&message)
            .await
            .map(|_| ())
            .map_err(|e| format!("attachments: {e}"))
    }

    async fn answer(
        &self,
        session_id: SessionId,
        after_seq: i64,
        message_id: nexus_core::MessageId,
    ) -> Result<Message, StoreError> {
        self.store
            .list_messages(session_id, after_seq, 0)
            .await?
            .into_iter()
            .find(|m| m.id == message_id)
            .ok_or(StoreError::NotFound {
                what: "answer message",
            })
    }

    async fn mark_delivered(&self, turn_id: TurnId, shown: &Shown) -> Result<(), String> {
        let delivery = self
            .store
            .get_delivery_for_turn(turn_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the turn has no delivery record".to_owned())?;
        let first = shown.sent.first().map(|s| s.platform_message_id.as_str());
        self.store
            .update_delivery(delivery.id, DeliveryStatus::Delivered, first, None)
            .await
            .map_err(|e| e.to_string())?;
        debug!(%turn_id, messages = shown.sent.len(), "Reply delivered");
        Ok(())
    }

    /// Delivers a stored answer whose live reply did not finish (a crash, a restart, a
    /// failed send): edits the messages an earlier attempt created, sends the rest, and marks
    /// the delivery. Returns whether it acted (false when another worker holds the delivery).
    pub(crate) async fn deliver_stored(&self, delivery: &Delivery) -> Result<bool, String> {
        let turn_id = delivery.turn_id;
        let lease = lease_name(turn_id);
        let holder = self.outbox_holder();
        let (platform, held) = self.start_delivery(turn_id, &holder).await?;
        if !held {
            return Ok(false);
        }
        let result = self.redeliver(platform, delivery).await;
        if let Err(err) = self.store.release_lease(&lease, &holder).await {
            debug!(%turn_id, error = %err, "Could not release a delivery lease");
        }
        result.map(|()| true)
    }

    async fn redeliver(&self, platform: Platform, delivery: &Delivery) -> Result<(), String> {
        let store = &self.store;
        let turn_id = delivery.turn_id;
        let item = store
            .get_inbox_item(turn_id)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "the delivery's inbox item is gone".to_owned())?;
        let mut around = store
            .list_messages(item.session_id, item.message_seq - 1, 0)
            .await
            .map_err(|e| e.to_string())?
            .into_iter();
        let question = around
            .next()
            .filter(|m| m.id == item.message_id)
            .ok_or_else(|| "the question of the delivery is gone".to_owned())?;
        let answer = around
            .find(|m| m.id == delivery.message_id)
            .ok_or_else(|| "the answer of the delivery is gone".to_owned())?;
        let target = super::outbox::target_of(&question)
            .ok_or_else(|| "the question does not say where to answer".to_owned())?;
        let existing = store
            .get_channel_reply(turn_id)
            .await
            .map_err(|e| e.to_string())?
            .map(|r| r.message_ids)
            .unwrap_or_default();
        let mut shown = Shown {
            chat: target.chat.clone(),
            reply_to: target.reply_to.clone(),
            sent: existing
                .into_iter()
                .map(|id| SentMessage {
                    chat: target.chat.clone(),
                    platform_message_id: id,
                })
                .collect(),
        };
        let actions = platform
            .messages(&answer.content)
            .into_iter()
            .enumerate()
            .map(|(index, text)| Action::Edit { index, text })
            .collect();
        if !self.apply(turn_id, &mut shown, actions).await {
            return Err("a part of the reply could not be sent".to_owned());
        }
        self.send_attachments(&shown, &answer).await?;
        self.mark_delivered(turn_id, &shown).await?;
        info!(%turn_id, channel_id = %self.channel_id, messages = shown.sent.len(), "Reply delivered by the outbox");
        Ok(())
    }
}

async fn sleep_until(due: Option<Instant>) {
    match due {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
