//! What every adapter is given: its account id, the shared HTTP client, the media port, limits,
//! and the sending half of its inbound stream.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{
    AckOutcome, Attachment, ChannelCredentialId, ChannelError, InboundEnvelope, InboundMessage,
};
use tokio::sync::{mpsc, oneshot};

/// Where adapters keep the files people send and find the files replies carry (object
/// storage, implemented by the gateway).
#[async_trait]
pub trait MediaStore: Send + Sync + fmt::Debug {
    /// Stores a file received on `account` and describes it as an attachment.
    async fn put(
        &self,
        account: ChannelCredentialId,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ChannelError>;

    /// The bytes of an attachment, to upload to the platform.
    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ChannelError>;
}

/// Limits on what comes in from a platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file downloaded into object storage; bigger files are skipped with a note.
    pub max_file_bytes: u64,
    /// Largest webhook or API response body read.
    pub max_body_bytes: usize,
    /// How long an adapter waits for the router's acknowledgement of one message.
    pub ack_timeout: Duration,
    /// Longest platform rate-limit wait honoured in place; a longer one fails the operation.
    pub max_rate_limit_wait: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_file_bytes: 20 * 1024 * 1024,
            max_body_bytes: 4 * 1024 * 1024,
            ack_timeout: Duration::from_secs(10),
            max_rate_limit_wait: Duration::from_secs(60),
        }
    }
}

/// Everything an adapter needs besides its own configuration.
#[derive(Debug, Clone)]
pub struct ChannelContext {
    /// The channel (credential) this adapter runs for; the account of its dedupe keys.
    pub account_id: ChannelCredentialId,
    /// The shared HTTP client (one connection pool, one TLS stack).
    pub http: reqwest::Client,
    /// Object storage for attachments.
    pub media: Arc<dyn MediaStore>,
    /// Limits.
    pub limits: Limits,
}

/// The inbound stream of an adapter: the sending half it keeps and the receiving half the
/// router takes once.
#[derive(Debug)]
pub struct Inbound {
    tx: mpsc::Sender<InboundEnvelope>,
    rx: Mutex<Option<mpsc::Receiver<InboundEnvelope>>>,
    ack_timeout: Duration,
}

/// How many inbound messages wait for the router before an adapter waits too.
const INBOUND_CAPACITY: usize = 256;

impl Inbound {
    /// A new stream; acknowledgements not given within `ack_timeout` count as failures.
    pub fn new(ack_timeout: Duration) -> Self {
        let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
        Inbound {
            tx,
            rx: Mutex::new(Some(rx)),
            ack_timeout,
        }
    }

    /// The receiving half, for [`nexus_core::ChannelAdapter::messages`]; only once.
    pub fn take(&self) -> Result<mpsc::Receiver<InboundEnvelope>, ChannelError> {
        self.rx
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .ok_or_else(|| ChannelError::NotRunning {
                message: "the inbound stream was already taken".to_owned(),
            })
    }

    /// Hands `message` to the router and waits for its decision. Anything but a decision in
    /// time (no router, a dropped acknowledgement, a timeout) is `Failed`: the adapter must
    /// then not acknowledge the platform, which will deliver the event again.
    pub async fn deliver(&self, message: InboundMessage) -> AckOutcome {
        let (ack, decided) = oneshot::channel();
        let envelope = InboundEnvelope { message, ack };
        let wait = async {
            if self.tx.send(envelope).await.is_err() {
                return AckOutcome::Failed {
                    reason: "no router is taking messages".to_owned(),
                };
            }
            decided.await.unwrap_or_else(|_| AckOutcome::Failed {
                reason: "the router dropped the message".to_owned(),
            })
        };
        tokio::time::timeout(self.ack_timeout, wait)
            .await
            .unwrap_or_else(|_| AckOutcome::Failed {
                reason: format!(
                    "the router did not answer within {} ms",
                    self.ack_timeout.as_millis()
                ),
            })
    }
}

/// Whether an acknowledgement lets the adapter acknowledge the platform.
pub fn acknowledged(outcome: &AckOutcome) -> bool {
    match outcome {
        AckOutcome::Committed | AckOutcome::Duplicate | AckOutcome::Rejected { .. } => true,
        AckOutcome::Failed { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use nexus_core::{ChannelKind, ChatRef, Conversation, Sender};

    fn message() -> InboundMessage {
        InboundMessage {
            channel: ChannelKind::Telegram,
            account_id: ChannelCredentialId::new(),
            external_id: "1".into(),
            message_id: "10".into(),
            chat: ChatRef {
                chat_id: "5".into(),
                thread_id: None,
            },
            sender: Sender {
                external_id: "7".into(),
                display_name: None,
                is_bot: false,
            },
            conversation: Conversation::Direct,
            addressed: true,
            text: "hi".into(),
            attachments: Vec::new(),
            reply_to: None,
            metadata: Default::default(),
            received_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn the_routers_decision_reaches_the_adapter() {
        let inbound = Inbound::new(Duration::from_secs(1));
        let mut rx = inbound.take().unwrap();
        assert!(inbound.take().is_err(), "the stream is taken once");
        let router = tokio::spawn(async move {
            let envelope = rx.recv().await.unwrap();
            envelope.ack.send(AckOutcome::Committed).unwrap();
        });
        assert_eq!(inbound.deliver(message()).await, AckOutcome::Committed);
        router.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_router_that_never_answers_fails_the_message() {
        let inbound = Inbound::new(Duration::from_secs(1));
        let _rx = inbound.take().unwrap();
        let outcome = inbound.deliver(message()).await;
        assert!(matches!(outcome, AckOutcome::Failed { .. }));
        assert!(!acknowledged(&outcome));
    }
}
