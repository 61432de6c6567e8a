//! The Slack adapter against the fake Slack: Socket Mode and the Events API end to end.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nexus_channels::slack::{SlackAdapter, SlackConfig};
use nexus_channels::testing::MemoryMedia;
use nexus_channels::{ChannelContext, Limits};
use nexus_core::{
    AckOutcome, ChannelAdapter, ChannelCredentialId, ChannelError, ChatRef, Conversation,
    InboundMessage, OutboundMessage, SentMessage, WebhookRequest,
};
use nexus_testkit::chat::{ChatPlatform, FakeFile, UserSays};
use nexus_testkit::slack::{AttemptOutcome, SocketEvent, WebhookHost, sign};
use nexus_testkit::{FakeSlack, FakeSlackConfig};
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// The router's side: decisions scripted in order (then: Committed, or Duplicate for a
/// message seen before), every message and decision reported to the test.
struct Router {
    seen: mpsc::UnboundedReceiver<(InboundMessage, AckOutcome)>,
    script: Arc<Mutex<VecDeque<(Duration, AckOutcome)>>>,
}

impl Router {
    fn spawn(adapter: &SlackAdapter) -> Router {
        let mut rx = adapter.messages().unwrap();
        let (tx, seen) = mpsc::unbounded_channel();
        let script: Arc<Mutex<VecDeque<(Duration, AckOutcome)>>> = Arc::default();
        let scripted = Arc::clone(&script);
        tokio::spawn(async move {
            let mut committed = HashSet::new();
            while let Some(envelope) = rx.recv().await {
                let next = scripted.lock().unwrap().pop_front();
                let (delay, outcome) = next.unwrap_or_else(|| {
                    let fresh = committed.insert(envelope.message.external_id.clone());
                    let outcome = if fresh {
                        AckOutcome::Committed
                    } else {
                        AckOutcome::Duplicate
                    };
                    (Duration::ZERO, outcome)
                });
                if outcome == AckOutcome::Committed {
                    committed.insert(envelope.message.external_id.clone());
                }
                let ack = envelope.ack;
                let message = envelope.message;
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let _ = ack.send(outcome.clone());
                    let _ = tx.send((message, outcome));
                });
            }
        });
        Router { seen, script }
    }

    fn then(&self, delay: Duration, outcome: AckOutcome) {
        self.script.lock().unwrap().push_back((delay, outcome));
    }

    async fn next(&mut self) -> (InboundMessage, AckOutcome) {
        tokio::time::timeout(Duration::from_secs(10), self.seen.recv())
            .await
            .expect("the router got nothing within 10 s")
            .expect("the router stopped")
    }

    /// Nothing more arrives within `wait`.
    async fn quiet(&mut self, wait: Duration) {
        if let Ok(Some((m, o))) = tokio::time::timeout(wait, self.seen.recv()).await {
            panic!("unexpected message {:?} ({o:?})", m.text);
        }
    }
}

struct Rig {
    fake: FakeSlack,
    adapter: Arc<SlackAdapter>,
    router: Router,
    media: Arc<MemoryMedia>,
    cancel: CancellationToken,
    run: Option<JoinHandle<Result<(), ChannelError>>>,
    _host: Option<WebhookHost>,
}

fn fake_config() -> FakeSlackConfig {
    FakeSlackConfig {
        socket_ack_timeout: Duration::from_millis(300),
        disconnect_grace: Duration::from_secs(5),
        events_retry_delays: vec![
            Duration::ZERO,
            Duration::from_millis(100),
            Duration::from_millis(100),
        ],
        ..FakeSlackConfig::default()
    }
}

fn limits() -> Limits {
    Limits {
        max_file_bytes: 1024,
        max_body_bytes: 64 * 1024,
        ack_timeout: Duration::from_secs(5),
        max_rate_limit_wait: Duration::from_secs(5),
    }
}

fn context(media: &Arc<MemoryMedia>) -> ChannelContext {
    ChannelContext {
        account_id: ChannelCredentialId::new(),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
        media: Arc::clone(media) as _,
        limits: limits(),
    }
}

fn socket_config(fake: &FakeSlack, app_token: &str) -> SlackConfig {
    let mut config = SlackConfig::socket(
        SecretString::from(fake.config().bot_token.clone()),
        SecretString::from(app_token.to_owned()),
    );
    config.api_base = fake.base_url().parse().unwrap();
    config
}

fn events_config(fake: &FakeSlack) -> SlackConfig {
    let mut config = SlackConfig::events(
        SecretString::from(fake.config().bot_token.clone()),
        SecretString::from(SIGNING_SECRET.to_owned()),
    );
    config.api_base = fake.base_url().parse().unwrap();
    config
}

impl Rig {
    async fn socket() -> Rig {
        Rig::socket_with(fake_config()).await
    }

    async fn socket_with(config: FakeSlackConfig) -> Rig {
        let fake = FakeSlack::start_with(config).await;
        let app_token = fake.config().app_token.clone();
        let rig = Rig::build(fake, |f| socket_config(f, &app_token), None).await;
        rig.fake
            .wait_for("a connection", |f| f.live_connections() == 1)
            .await;
        rig
    }

    async fn events() -> Rig {
        let fake = FakeSlack::start_with(fake_config()).await;
        let slot: Arc<Mutex<Option<Arc<SlackAdapter>>>> = Arc::default();
        let handler_slot = Arc::clone(&slot);
        let host = WebhookHost::start(move |headers, body| {
            let adapter = handler_slot
                .lock()
                .unwrap()
                .clone()
                .expect("adapter is set");
            async move {
                let answer = adapter
                    .webhook(WebhookRequest { headers, body })
                    .await
                    .unwrap();
                (answer.status, answer.headers, answer.body)
            }
        })
        .await;
        fake.use_events_api(&host.url(), SIGNING_SECRET);
        let rig = Rig::build(fake, events_config, Some(host)).await;
        *slot.lock().unwrap() = Some(Arc::clone(&rig.adapter));
        rig
    }

    async fn build(
        fake: FakeSlack,
        config: impl Fn(&FakeSlack) -> SlackConfig,
        host: Option<WebhookHost>,
    ) -> Rig {
        let media = Arc::new(MemoryMedia::new());
        let adapter = Arc::new(SlackAdapter::new(config(&fake), context(&media)).unwrap());
        let router = Router::spawn(&adapter);
        let cancel = CancellationToken::new();
        let run = {
            let adapter = Arc::clone(&adapter);
            let cancel = cancel.clone();
            tokio::spawn(async move { adapter.start(cancel).await })
        };
        Rig {
            fake,
            adapter,
            router,
            media,
            cancel,
            run: Some(run),
            _host: host,
        }
    }

    async fn stop(&mut self) -> Result<(), ChannelError> {
        self.cancel.cancel();
        let run = self.run.take().unwrap();
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap()
            .unwrap()
    }

    fn reply_in(&self, chat: &ChatRef, text: &str) -> OutboundMessage {
        OutboundMessage {
            chat: chat.clone(),
            text: text.into(),
            reply_to: None,
            attachments: vec![],
        }
    }
}

mod events;
mod socket;
mod web_api;
