//! The Discord adapter against `FakeDiscord`: gateway sessions and their faults, inbound
//! mapping and hand-over, REST sends, edits, typing and rate limits.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use nexus_channels::discord::{DiscordAdapter, DiscordConfig, GatewayTiming};
use nexus_channels::testing::MemoryMedia;
use nexus_channels::{ChannelContext, Limits};
use nexus_core::{
    AckOutcome, ChannelAdapter, ChannelCredentialId, ChannelError, ChatRef, Conversation,
    InboundMessage, OutboundMessage,
};
use nexus_testkit::chat::{ChatPlatform, FakeFile, UserSays};
use nexus_testkit::discord::{
    ClientFrame, FakeDiscord, FakeDiscordConfig, GatewayFault, RestFault,
};
use secrecy::SecretString;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use url::Url;

const WAIT: Duration = Duration::from_secs(5);

fn fake_config() -> FakeDiscordConfig {
    FakeDiscordConfig {
        heartbeat_interval: Duration::from_millis(300),
        ..FakeDiscordConfig::default()
    }
}

fn timing() -> GatewayTiming {
    GatewayTiming {
        invalid_session_min: Duration::from_millis(200),
        invalid_session_max: Duration::from_millis(300),
        reconnect_base: Duration::from_millis(20),
        reconnect_max: Duration::from_millis(200),
        max_reconnects: 4,
        hello_timeout: Duration::from_secs(2),
        delivery_attempts: 3,
        delivery_backoff: Duration::from_millis(20),
    }
}

fn limits() -> Limits {
    Limits {
        max_file_bytes: 1024,
        ack_timeout: Duration::from_secs(2),
        ..Limits::default()
    }
}

/// Builds an adapter for `fake` with `token`, the fake's gateway URL configured or not.
fn adapter(
    fake: &FakeDiscord,
    token: &str,
    gateway_override: bool,
    limits: Limits,
) -> (DiscordAdapter, Arc<MemoryMedia>) {
    let mut config = DiscordConfig::new(SecretString::from(token.to_owned()));
    config.api_base = Url::parse(&fake.api_base()).unwrap();
    if gateway_override {
        config.gateway_url = Some(Url::parse(&fake.gateway_url()).unwrap());
    }
    let media = Arc::new(MemoryMedia::new());
    let ctx = ChannelContext {
        account_id: ChannelCredentialId::new(),
        http: reqwest::Client::new(),
        media: media.clone(),
        limits,
    };
    (
        DiscordAdapter::new(config, ctx)
            .unwrap()
            .with_timing(timing()),
        media,
    )
}

/// An adapter running against a fake, with a router that commits (or follows a script).
struct Harness {
    fake: FakeDiscord,
    adapter: Arc<DiscordAdapter>,
    media: Arc<MemoryMedia>,
    inbox: mpsc::UnboundedReceiver<InboundMessage>,
    script: Arc<Mutex<VecDeque<AckOutcome>>>,
    cancel: CancellationToken,
    run: JoinHandle<Result<(), ChannelError>>,
}

impl Harness {
    async fn start() -> Harness {
        Harness::start_with(FakeDiscord::start_with(fake_config()).await, limits()).await
    }

    async fn start_with(fake: FakeDiscord, limits: Limits) -> Harness {
        let (adapter, media) = adapter(&fake, fake.token(), false, limits);
        let harness = Harness::run(fake, adapter, media);
        assert!(
            harness.fake.wait_connected(WAIT).await,
            "the adapter connects"
        );
        harness
    }

    fn run(fake: FakeDiscord, adapter: DiscordAdapter, media: Arc<MemoryMedia>) -> Harness {
        let adapter = Arc::new(adapter);
        let mut rx = adapter.messages().unwrap();
        let (tx, inbox) = mpsc::unbounded_channel();
        let script: Arc<Mutex<VecDeque<AckOutcome>>> = Arc::default();
        let router_script = script.clone();
        tokio::spawn(async move {
            while let Some(envelope) = rx.recv().await {
                let outcome = router_script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or(AckOutcome::Committed);
                let _ = tx.send(envelope.message);
                let _ = envelope.ack.send(outcome);
            }
        });
        let cancel = CancellationToken::new();
        let run = tokio::spawn({
            let adapter = adapter.clone();
            let cancel = cancel.clone();
            async move { adapter.start(cancel).await }
        });
        Harness {
            fake,
            adapter,
            media,
            inbox,
            script,
            cancel,
            run,
        }
    }

    async fn next(&mut self) -> InboundMessage {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("a message arrives in time")
            .expect("the router runs")
    }

    async fn nothing_more(&mut self) {
        let more = tokio::time::timeout(Duration::from_millis(300), self.inbox.recv()).await;
        assert!(more.is_err(), "no further message: {more:?}");
    }

    async fn frame(&self, what: impl Fn(&ClientFrame) -> bool) -> ClientFrame {
        self.fake
            .wait_for_frame(WAIT, what)
            .await
            .expect("the client sends the frame")
    }

    async fn ended(self) -> Result<(), ChannelError> {
        tokio::time::timeout(WAIT, self.run)
            .await
            .expect("start returns in time")
            .unwrap()
    }
}

fn is_op(op: u64) -> impl Fn(&ClientFrame) -> bool {
    move |f| f.op == Some(op)
}

fn reply(chat: &str, text: &str) -> OutboundMessage {
    OutboundMessage {
        chat: ChatRef {
            chat_id: chat.to_owned(),
            thread_id: None,
        },
        text: text.to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    }
}

mod handover;
mod handshake;
mod inbound;
mod rate_limits;
mod reconnects;
mod sending;

/// An adapter that never starts its gateway, for REST tests.
async fn rest_only(
    config: FakeDiscordConfig,
    limits: Limits,
) -> (FakeDiscord, DiscordAdapter, Arc<MemoryMedia>) {
    let fake = FakeDiscord::start_with(config).await;
    fake.add_channel("500");
    fake.add_channel("600");
    let (adapter, media) = adapter(&fake, fake.token(), true, limits);
    (fake, adapter, media)
}

mod verify;
