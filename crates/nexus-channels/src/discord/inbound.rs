//! The inbound worker: turns `MESSAGE_CREATE` payloads into Nexus messages (attachments
//! downloaded into media), hands them to the router in order, and retries a failed hand-over,
//! since Discord never delivers a gateway event twice. A message still refused is logged as
//! lost, loudly.

use std::sync::Arc;
use std::time::Duration;

use nexus_core::{AckOutcome, Attachment, ChannelCredentialId, InboundMessage};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, error, warn};

use super::payload::{self, Message};
use crate::backoff::Backoff;
use crate::context::{Inbound, Limits, MediaStore, acknowledged};
use crate::http;

/// Messages waiting for the worker; past this the gateway drops (and logs) new ones rather
/// than stall its heartbeats.
pub(crate) const QUEUE: usize = 1024;

/// A message to hand over, with the bot's id (for mentions and replies).
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) message: Message,
    pub(crate) bot_id: String,
}

/// What the worker uses.
#[derive(Debug, Clone)]
pub(crate) struct Delivery {
    pub(crate) account: ChannelCredentialId,
    pub(crate) inbound: Arc<Inbound>,
    pub(crate) http: reqwest::Client,
    pub(crate) media: Arc<dyn MediaStore>,
    pub(crate) limits: Limits,
    pub(crate) attempts: u32,
    pub(crate) backoff: Duration,
}

/// Starts a worker taking jobs from `rx` until every sender is gone.
pub(crate) fn spawn(delivery: Delivery, mut rx: mpsc::Receiver<Job>) {
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            delivery.handle(job).await;
        }
    });
}

impl Delivery {
    async fn handle(&self, job: Job) {
        let mut message = payload::inbound(&job.message, &job.bot_id, self.account);
        self.download(&job.message, &mut message).await;
        let mut backoff = Backoff::new(self.backoff, self.backoff.saturating_mul(8));
        let attempts = self.attempts.max(1);
        let mut last = String::new();
        for attempt in 1..=attempts {
            let outcome = self.inbound.deliver(message.clone()).await;
            if acknowledged(&outcome) {
                debug!(channel = "discord", discord_message_id = %job.message.id, ?outcome, "Inbound message handed over");
                return;
            }
            if let AckOutcome::Failed { reason } = outcome {
                warn!(channel = "discord", discord_message_id = %job.message.id, attempt, %reason, "The router did not take an inbound message");
                last = reason;
            }
            if attempt < attempts {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        error!(
            channel = "discord",
            account = %self.account,
            discord_message_id = %job.message.id,
            discord_channel_id = %job.message.channel_id,
            discord_author_id = %job.message.author.id,
            attempts,
            reason = %last,
            "Inbound Discord message LOST: the router refused it and Discord cannot deliver it again"
        );
    }

    /// Downloads the attachments within the size cap into media; notes the others in
    /// `metadata["skipped_attachments"]`.
    async fn download(&self, source: &Message, message: &mut InboundMessage) {
        let max = self.limits.max_file_bytes;
        let mut skipped = Vec::new();
        for file in &source.attachments {
            let skip = |reason: String| json!({"name": file.filename, "size": file.size, "reason": reason});
            if file.size > max {
                skipped.push(skip(format!("larger than the {max}-byte limit")));
                continue;
            }
            match self.fetch(file, max).await {
                Ok(attachment) => message.attachments.push(attachment),
                Err(reason) => {
                    warn!(channel = "discord", discord_message_id = %source.id, file = %file.filename, %reason, "Attachment skipped");
                    skipped.push(skip(reason));
                }
            }
        }
        if !skipped.is_empty() {
            message
                .metadata
                .insert("skipped_attachments".to_owned(), Value::Array(skipped));
        }
    }

    async fn fetch(&self, file: &payload::Attachment, max: u64) -> Result<Attachment, String> {
        let url = url::Url::parse(&file.url).map_err(|e| format!("bad URL: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("unsupported URL scheme {}", url.scheme()));
        }
        // The CDN needs no token; never send it one.
        let download = http::download(self.http.get(url), max)
            .await
            .map_err(|e| format!("download failed: {e}"))?;
        let content_type = file
            .content_type
            .clone()
            .or(download.content_type)
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        self.media
            .put(
                self.account,
                Some(&file.filename),
                &content_type,
                download.bytes,
            )
            .await
            .map_err(|e| format!("storage failed: {e}"))
    }
}
