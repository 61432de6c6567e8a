//! One event on its way to the router, whichever way it came (Socket Mode envelope or Events
//! API POST): filtered and mapped, its files downloaded into media, delivered once even when
//! Slack sends it twice at the same time (an `app_mention` and its `message`, a retry while
//! the first delivery still waits), and answered with whether Slack may be acknowledged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nexus_core::{AckOutcome, Attachment, ChannelError, ChannelKind, InboundMessage};
use serde_json::{Value, json};
use tokio::sync::{OnceCell, watch};
use tracing::{debug, warn};

use super::client::{Client, Identity};
use super::payload::{self, Callback, Draft, Mapped, MessageEvent, SlackFile};
use super::threads::{BotThreads, REMEMBERED_THREADS};
use crate::context::{ChannelContext, Inbound, acknowledged};

/// What inbound handling needs.
#[derive(Debug)]
pub(crate) struct Dispatch {
    pub(crate) ctx: ChannelContext,
    pub(crate) inbound: Inbound,
    pub(crate) client: Arc<Client>,
    pub(crate) identity: OnceCell<Identity>,
    pub(crate) threads: BotThreads,
    /// Deliveries under way by `external_id`: a second copy waits for the first's outcome.
    inflight: Mutex<HashMap<String, watch::Receiver<Option<bool>>>>,
}

impl Dispatch {
    pub(crate) fn new(ctx: ChannelContext, client: Arc<Client>) -> Self {
        Dispatch {
            inbound: Inbound::new(ctx.limits.ack_timeout),
            ctx,
            client,
            identity: OnceCell::new(),
            threads: BotThreads::new(REMEMBERED_THREADS),
            inflight: Mutex::new(HashMap::new()),
        }
    }

    /// Who the bot is, asked of Slack once.
    pub(crate) async fn identity(&self) -> Result<&Identity, ChannelError> {
        self.identity
            .get_or_try_init(|| self.client.auth_test())
            .await
    }

    /// Handles one `event_callback` payload; true when Slack may be acknowledged (the event
    /// was dropped, or the router acknowledged it).
    pub(crate) async fn handle(self: &Arc<Self>, payload: Value) -> bool {
        let callback: Callback = match serde_json::from_value(payload) {
            Ok(callback) => callback,
            Err(err) => {
                warn!(error = %err, channel = "slack", "Dropped a malformed Slack payload");
                return true;
            }
        };
        if callback.kind != "event_callback" {
            debug!(kind = %callback.kind, channel = "slack", "Dropped a Slack payload");
            return true;
        }
        let Some(raw_event) = callback.event.clone() else {
            return true;
        };
        let Ok(event) = serde_json::from_value::<MessageEvent>(raw_event) else {
            debug!(
                channel = "slack",
                "Dropped a Slack event of an unknown shape"
            );
            return true;
        };
        let me = match self.identity().await {
            Ok(me) => me.clone(),
            Err(err) => {
                warn!(error = %err, channel = "slack", "Cannot learn the bot's identity; event left for redelivery");
                return false;
            }
        };
        match payload::map(&callback, event, &me, |c, t| self.threads.contains(c, t)) {
            Mapped::Drop(reason) => {
                debug!(reason, channel = "slack", "Dropped a Slack event");
                true
            }
            Mapped::Deliver(draft) => self.deliver_once(*draft).await,
        }
    }

    /// Delivers `draft`, or waits for the delivery of the same message already under way.
    async fn deliver_once(self: &Arc<Self>, draft: Draft) -> bool {
        let key = draft.external_id.clone();
        let mut outcome = {
            let mut inflight = self
                .inflight
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match inflight.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx.clone());
                    let me = Arc::clone(self);
                    // Spawned so that an Events API answer given up at Slack's deadline does
                    // not cancel the delivery: the retry finds it here.
                    tokio::spawn(async move {
                        let acked = me.complete(draft).await;
                        me.inflight
                            .lock()
                            .unwrap_or_else(std::sync::PoisonError::into_inner)
                            .remove(&key);
                        let _ = tx.send(Some(acked));
                    });
                    rx
                }
            }
        };
        match outcome.wait_for(Option::is_some).await {
            Ok(done) => done.unwrap_or(false),
            Err(_) => false,
        }
    }

    /// Downloads the files, hands the message to the router and reads its decision.
    async fn complete(&self, draft: Draft) -> bool {
        let mut metadata = draft.metadata;
        let (attachments, skipped) = match self.fetch(&draft.files).await {
            Ok(fetched) => fetched,
            Err(err) => {
                warn!(error = %err, channel = "slack", "Cannot store a Slack file; event left for redelivery");
                return false;
            }
        };
        if !skipped.is_empty() {
            metadata.insert("skipped_attachments".into(), Value::Array(skipped));
        }
        let message_id = metadata
            .get("slack_ts")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let message = InboundMessage {
            channel: ChannelKind::Slack,
            account_id: self.ctx.account_id,
            external_id: draft.external_id,
            message_id,
            chat: draft.chat,
            sender: draft.sender,
            conversation: draft.conversation,
            addressed: draft.addressed,
            text: draft.text,
            attachments,
            reply_to: draft.reply_to,
            metadata,
            received_at: draft.received_at,
        };
        let outcome = self.inbound.deliver(message).await;
        if let AckOutcome::Failed { reason } = &outcome {
            warn!(reason = %reason, channel = "slack", "The router failed a Slack message; Slack will redeliver it");
        }
        acknowledged(&outcome)
    }

    /// Downloads `files` into media: the attachments, and the files skipped as
    /// `{name, size, reason}`. Only a media store failure is an error.
    async fn fetch(
        &self,
        files: &[SlackFile],
    ) -> Result<(Vec<Attachment>, Vec<Value>), ChannelError> {
        let max = self.ctx.limits.max_file_bytes;
        let mut attachments = Vec::new();
        let mut skipped = Vec::new();
        for file in files {
            let name = file.display_name();
            let skip = |reason: &str| json!({ "name": name, "size": file.size, "reason": reason });
            if file.size.is_some_and(|size| size > max) {
                skipped.push(skip("too_large"));
                continue;
            }
            let Some(url) = &file.url_private_download else {
                skipped.push(skip("not_downloadable"));
                continue;
            };
            let download = match self.client.download(url, max).await {
                Ok(download) => download,
                Err(err) => {
                    debug!(error = %err, channel = "slack", "Cannot download a Slack file");
                    skipped.push(skip("download_failed"));
                    continue;
                }
            };
            let content_type = file
                .mimetype
                .clone()
                .or_else(|| download.content_type.clone())
                .unwrap_or_else(|| "application/octet-stream".to_owned());
            let served_html = download
                .content_type
                .as_deref()
                .is_some_and(|t| t.starts_with("text/html"));
            if served_html && !content_type.starts_with("text/html") {
                // Slack answers a download it refuses with its sign-in page (HTTP 200).
                skipped.push(skip("refused"));
                continue;
            }
            let attachment = self
                .ctx
                .media
                .put(
                    self.ctx.account_id,
                    Some(&name),
                    &content_type,
                    download.bytes,
                )
                .await?;
            attachments.push(attachment);
        }
        Ok((attachments, skipped))
    }
}
