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

// ---------------------------------------------------------------------------------------------
// Socket Mode

#[tokio::test]
async fn a_direct_message_arrives_over_socket_mode_and_is_acked_after_the_router() {
    let mut rig = Rig::socket().await;
    let said = rig.fake.say(UserSays::direct("U1", "hello there")).await;
    let (message, outcome) = rig.router.next().await;
    assert_eq!(outcome, AckOutcome::Committed);
    assert_eq!(message.text, "hello there");
    assert_eq!(message.conversation, Conversation::Direct);
    assert!(message.addressed);
    assert_eq!(
        message.chat,
        ChatRef {
            chat_id: said.chat_id.clone(),
            thread_id: None
        }
    );
    assert_eq!(
        message.external_id,
        format!("{}:{}", said.chat_id, said.message_id)
    );
    assert_eq!(message.sender.external_id, "U1");
    assert_eq!(message.sender.display_name.as_deref(), Some("user U1"));
    assert_eq!(message.metadata["slack_channel"], said.chat_id.as_str());
    rig.fake.wait_for("the ack", |f| f.acks().len() == 1).await;
    assert_eq!(rig.fake.acks()[0], rig.fake.sent_envelopes()[0].envelope_id);
    assert_eq!(rig.stop().await, Ok(()));
}

#[tokio::test]
async fn a_failed_commit_is_not_acked_and_the_redelivery_is_stored() {
    let mut rig = Rig::socket().await;
    rig.router.then(
        Duration::ZERO,
        AckOutcome::Failed {
            reason: "disk full".into(),
        },
    );
    rig.fake.say(UserSays::direct("U1", "keep this")).await;
    let (_, first) = rig.router.next().await;
    assert!(matches!(first, AckOutcome::Failed { .. }));
    let (again, second) = rig.router.next().await;
    assert_eq!(
        (again.text.as_str(), second),
        ("keep this", AckOutcome::Committed)
    );
    rig.fake.wait_for("the ack", |f| f.acks().len() == 1).await;
    let sent = rig.fake.sent_envelopes();
    assert_eq!(sent.len(), 2, "delivered, then redelivered once");
    assert_eq!(sent[1].retry_attempt, 1);
    assert_eq!(rig.fake.acks(), vec![sent[0].envelope_id.clone()]);
}

#[tokio::test]
async fn a_channel_mention_reaches_the_router_once_addressed_and_stripped() {
    let mut rig = Rig::socket().await;
    let said = rig
        .fake
        .say(UserSays::group("U1", "C1", "/new").mentioning())
        .await;
    let (message, outcome) = rig.router.next().await;
    assert_eq!(outcome, AckOutcome::Committed);
    assert_eq!(message.text, "/new");
    assert!(message.addressed);
    assert_eq!(message.conversation, Conversation::Group);
    assert_eq!(
        message.chat.thread_id.as_deref(),
        Some(said.message_id.as_str())
    );
    rig.fake
        .wait_for("both envelopes acked", |f| f.acks().len() == 2)
        .await;
    while let Ok(Some((m, o))) =
        tokio::time::timeout(Duration::from_millis(200), rig.router.seen.recv()).await
    {
        assert_eq!(
            o,
            AckOutcome::Duplicate,
            "the second copy of {:?} is a duplicate",
            m.text
        );
    }
}

#[tokio::test]
async fn replies_go_into_the_thread_and_a_reply_there_is_addressed_without_loops() {
    let mut rig = Rig::socket().await;
    let said = rig.fake.say(UserSays::group("U1", "C1", "anyone?")).await;
    let (message, _) = rig.router.next().await;
    assert!(!message.addressed, "no mention, no thread of the bot's");
    let sent = rig
        .adapter
        .send(&rig.reply_in(&message.chat, "*here*"))
        .await
        .unwrap();
    assert_eq!(
        sent.chat.thread_id.as_deref(),
        Some(said.message_id.as_str())
    );
    rig.adapter.edit(&sent, "*here!*").await.unwrap();
    rig.fake
        .say(UserSays::group("U1", "C1", "thanks").in_thread(&said.message_id))
        .await;
    let (reply, _) = rig.router.next().await;
    assert_eq!(reply.text, "thanks");
    assert!(reply.addressed, "a reply in a thread the bot posted in");
    assert_eq!(reply.reply_to.as_deref(), Some(said.message_id.as_str()));
    assert_eq!(
        reply.chat.thread_id.as_deref(),
        Some(said.message_id.as_str())
    );
    // The bot's own post and edit came back as events: acked, never delivered.
    rig.fake
        .wait_for("all envelopes acked", |f| {
            f.acks().len() == f.sent_envelopes().len() && f.acks().len() >= 4
        })
        .await;
    rig.router.quiet(Duration::from_millis(200)).await;
    let bot = rig.fake.bot_messages();
    assert_eq!(bot.len(), 1);
    assert_eq!((bot[0].text.as_str(), bot[0].edits), ("*here!*", 1));
    assert_eq!(bot[0].thread_id.as_deref(), Some(said.message_id.as_str()));
}

#[tokio::test]
async fn other_bots_are_delivered_as_bots() {
    let mut rig = Rig::socket().await;
    rig.fake
        .say(UserSays::group("U7", "C1", "deploy done").from_bot())
        .await;
    let (message, _) = rig.router.next().await;
    assert!(message.sender.is_bot);
    assert_eq!(message.text, "deploy done");
}

#[tokio::test]
async fn a_shared_file_is_downloaded_into_media_and_an_oversized_one_noted() {
    let mut rig = Rig::socket().await;
    let small = FakeFile {
        name: "a.png".into(),
        content_type: "image/png".into(),
        bytes: vec![7; 10],
    };
    rig.fake
        .say(UserSays::direct("U1", "look").with_file(small))
        .await;
    let (message, _) = rig.router.next().await;
    assert_eq!(message.attachments.len(), 1);
    let attachment = &message.attachments[0];
    assert_eq!(
        (
            attachment.filename.as_deref(),
            attachment.content_type.as_str()
        ),
        (Some("a.png"), "image/png")
    );
    assert_eq!(
        rig.media.bytes(&attachment.storage_key),
        Some(Bytes::from(vec![7; 10]))
    );
    let big = FakeFile {
        name: "big.bin".into(),
        content_type: "application/octet-stream".into(),
        bytes: vec![0; 4096],
    };
    rig.fake
        .say(UserSays::direct("U1", "and this").with_file(big))
        .await;
    let (message, _) = rig.router.next().await;
    assert!(message.attachments.is_empty());
    let skipped = &message.metadata["skipped_attachments"][0];
    assert_eq!(
        (
            skipped["name"].as_str(),
            skipped["size"].as_u64(),
            skipped["reason"].as_str()
        ),
        (Some("big.bin"), Some(4096), Some("too_large"))
    );
}

#[tokio::test]
async fn a_refresh_disconnect_opens_the_next_connection_before_closing_the_old() {
    refresh_before_close("refresh_requested").await;
}

#[tokio::test]
async fn a_warning_disconnect_opens_the_next_connection_before_closing_the_old() {
    refresh_before_close("warning").await;
}

async fn refresh_before_close(reason: &str) {
    let mut rig = Rig::socket().await;
    rig.fake.disconnect(reason);
    rig.fake
        .wait_for("the old connection closed", |f| {
            f.socket_log().contains(&SocketEvent::Closed(1))
        })
        .await;
    let log = rig.fake.socket_log();
    let opened = log
        .iter()
        .position(|e| *e == SocketEvent::Opened(2))
        .expect("a second connection");
    let closed = log
        .iter()
        .position(|e| *e == SocketEvent::Closed(1))
        .unwrap();
    assert!(opened < closed, "{log:?}");
    assert_eq!(
        rig.fake.calls_to("apps.connections.open").len(),
        2,
        "a fresh URL per connection"
    );
    rig.fake.say(UserSays::direct("U1", "still there?")).await;
    assert_eq!(rig.router.next().await.0.text, "still there?");
    assert_eq!(rig.fake.sent_envelopes().last().unwrap().connection, 2);
}

#[tokio::test]
async fn a_dropped_connection_is_reopened_and_nothing_is_lost() {
    let mut rig = Rig::socket().await;
    rig.fake.drop_connections();
    rig.fake
        .say(UserSays::direct("U1", "during the outage"))
        .await;
    rig.fake
        .wait_for("a new connection", |f| {
            f.socket_log().contains(&SocketEvent::Opened(2))
        })
        .await;
    let (message, _) = rig.router.next().await;
    assert_eq!(message.text, "during the outage");
    rig.fake.wait_for("the ack", |f| !f.acks().is_empty()).await;
}

#[tokio::test]
async fn a_connection_url_works_once() {
    let fake = FakeSlack::start_with(fake_config()).await;
    let answer: serde_json::Value = reqwest::Client::new()
        .post(format!("{}apps.connections.open", fake.base_url()))
        .bearer_auth(&fake.config().app_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = answer["url"].as_str().unwrap();
    let first = nexus_channels::ws::connect(url).await;
    assert!(first.is_ok());
    assert!(
        nexus_channels::ws::connect(url).await.is_err(),
        "a used URL is refused"
    );
    assert!(fake.socket_log().contains(&SocketEvent::Refused));
}

#[tokio::test]
async fn malformed_frames_are_skipped_and_an_oversized_one_costs_only_the_connection() {
    let mut rig = Rig::socket().await;
    assert!(rig.fake.push_raw("this is not json"));
    assert!(rig.fake.push_raw(r#"{"envelope_id":"junk-1","type":"events_api","payload":{"type":"event_callback","event":7}}"#));
    rig.fake
        .wait_for("the junk envelope acked", |f| {
            f.acks().contains(&"junk-1".to_owned())
        })
        .await;
    assert_eq!(rig.fake.live_connections(), 1);
    assert!(rig.fake.push_raw("x".repeat(5 << 20)));
    rig.fake
        .wait_for("a new connection", |f| {
            f.socket_log().contains(&SocketEvent::Opened(2))
        })
        .await;
    rig.fake.say(UserSays::direct("U1", "after the junk")).await;
    assert_eq!(rig.router.next().await.0.text, "after the junk");
}

#[tokio::test]
async fn pings_are_answered() {
    let rig = Rig::socket().await;
    assert!(rig.fake.ping());
    rig.fake.wait_for("a pong", |f| f.pongs() >= 1).await;
}

#[tokio::test]
async fn the_same_event_sent_again_is_acked_as_a_duplicate() {
    let mut rig = Rig::socket().await;
    rig.fake.say(UserSays::direct("U1", "once")).await;
    rig.router.next().await;
    rig.fake.wait_for("the ack", |f| f.acks().len() == 1).await;
    let event_id = rig.fake.delivered_event_ids()[0].clone();
    assert!(rig.fake.repeat_event(&event_id).await);
    let (message, outcome) = rig.router.next().await;
    assert_eq!(
        (message.text.as_str(), outcome),
        ("once", AckOutcome::Duplicate)
    );
    rig.fake
        .wait_for("the repeat acked", |f| f.acks().len() == 2)
        .await;
}

#[tokio::test]
async fn cancel_and_stop_close_the_connection_and_start_returns_ok() {
    let mut rig = Rig::socket().await;
    assert_eq!(rig.stop().await, Ok(()));
    rig.fake
        .wait_for("no connection", |f| f.live_connections() == 0)
        .await;
    let run = {
        let adapter = Arc::clone(&rig.adapter);
        tokio::spawn(async move { adapter.start(CancellationToken::new()).await })
    };
    rig.fake
        .wait_for("a connection again", |f| f.live_connections() == 1)
        .await;
    rig.adapter.stop().await.unwrap();
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap()
            .unwrap(),
        Ok(())
    );
    rig.fake
        .wait_for("no connection", |f| f.live_connections() == 0)
        .await;
}

#[tokio::test]
async fn start_fails_with_auth_when_slack_refuses_the_app_token() {
    let fake = FakeSlack::start_with(fake_config()).await;
    let media = Arc::new(MemoryMedia::new());
    let adapter =
        SlackAdapter::new(socket_config(&fake, "xapp-1-revoked"), context(&media)).unwrap();
    assert!(
        adapter.verify().await.is_ok(),
        "verify only checks the app token's shape"
    );
    let err = adapter.start(CancellationToken::new()).await.unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }), "{err:?}");
    assert!(!err.restartable());
}

// ---------------------------------------------------------------------------------------------
// Web API

#[tokio::test]
async fn verify_names_the_bot_and_refuses_wrong_tokens() {
    let fake = FakeSlack::start_with(fake_config()).await;
    let media = Arc::new(MemoryMedia::new());
    let adapter = SlackAdapter::new(
        socket_config(&fake, &fake.config().app_token),
        context(&media),
    )
    .unwrap();
    let me = adapter.verify().await.unwrap();
    assert_eq!((me.id.as_str(), me.name.as_str()), ("U0BOT", "nexus"));
    let mut wrong = socket_config(&fake, &fake.config().app_token);
    wrong.bot_token = SecretString::from("xoxb-wrong".to_owned());
    let err = SlackAdapter::new(wrong, context(&media))
        .unwrap()
        .verify()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChannelError::Auth { message } if message.contains("invalid_auth")),
        "{err:?}"
    );
    assert!(!err.to_string().contains("xoxb-wrong"));
    let bot_as_app = SlackAdapter::new(
        socket_config(&fake, "xoxb-not-an-app-token"),
        context(&media),
    )
    .unwrap();
    assert!(
        matches!(bot_as_app.verify().await, Err(ChannelError::Auth { message }) if message.contains("xapp-"))
    );
}

#[tokio::test]
async fn sends_are_threaded_mrkdwn_without_unfurls_and_attachments_are_named() {
    let rig = Rig::socket().await;
    rig.fake.create_channel("C1");
    let media = MemoryMedia::new();
    let chart = media.insert("chart.png", "image/png", Bytes::from_static(b"png"));
    let message = OutboundMessage {
        chat: ChatRef {
            chat_id: "C1".into(),
            thread_id: Some("1700000000.000100".into()),
        },
        text: "*done*".into(),
        reply_to: None,
        attachments: vec![chart],
    };
    let sent = rig.adapter.send(&message).await.unwrap();
    let call = rig.fake.calls_to("chat.postMessage").pop().unwrap();
    assert_eq!(call.params["thread_ts"], "1700000000.000100");
    assert_eq!(call.params["unfurl_links"], false);
    assert_eq!(call.params["unfurl_media"], false);
    assert_eq!(
        call.params["text"],
        "*done*\n(attachment not sent: chart.png)"
    );
    assert!(call.warnings.is_empty(), "JSON is sent with its charset");
    assert_eq!(sent.platform_message_id, rig.fake.bot_messages()[0].id);
    assert!(matches!(
        rig.adapter.typing(&message.chat).await,
        Err(ChannelError::Unsupported { .. })
    ));
    assert_eq!(rig.adapter.capabilities().max_message_len, 4000);
}

#[tokio::test]
async fn slack_errors_reach_the_caller_classified() {
    let rig = Rig::socket().await;
    let nowhere = rig.reply_in(
        &ChatRef {
            chat_id: "C404".into(),
            thread_id: None,
        },
        "hi",
    );
    assert!(
        matches!(rig.adapter.send(&nowhere).await, Err(ChannelError::Rejected { message }) if message.contains("channel_not_found"))
    );
    let said = rig.fake.say(UserSays::group("U1", "C1", "mine")).await;
    let theirs = SentMessage {
        chat: ChatRef {
            chat_id: "C1".into(),
            thread_id: None,
        },
        platform_message_id: said.message_id,
    };
    assert!(
        matches!(rig.adapter.edit(&theirs, "x").await, Err(ChannelError::Rejected { message }) if message.contains("cant_update_message"))
    );
    rig.fake.fail("chat.postMessage", "token_revoked", 1);
    let to_c1 = rig.reply_in(
        &ChatRef {
            chat_id: "C1".into(),
            thread_id: None,
        },
        "hi",
    );
    assert!(matches!(
        rig.adapter.send(&to_c1).await,
        Err(ChannelError::Auth { .. })
    ));
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_and_a_long_one_returned() {
    let rig = Rig::socket().await;
    rig.fake.create_channel("C1");
    let chat = ChatRef {
        chat_id: "C1".into(),
        thread_id: None,
    };
    rig.fake.rate_limit("chat.postMessage", 1, 1);
    let started = std::time::Instant::now();
    rig.adapter
        .send(&rig.reply_in(&chat, "patient"))
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(rig.fake.calls_to("chat.postMessage").len(), 2);
    rig.fake.rate_limit("chat.postMessage", 1, 120);
    let err = rig
        .adapter
        .send(&rig.reply_in(&chat, "hasty"))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
    assert_eq!(rig.fake.bot_messages().len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Events API

#[tokio::test]
async fn the_url_verification_challenge_is_answered() {
    let mut rig = Rig::events().await;
    let answer = rig
        .fake
        .send_url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        .await
        .unwrap();
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    );
    assert_eq!(rig.stop().await, Ok(()));
}

#[tokio::test]
async fn a_signed_event_is_delivered_and_answered_200() {
    let mut rig = Rig::events().await;
    rig.fake
        .say(UserSays::group("U1", "C1", "hi bot").mentioning())
        .await;
    let (message, outcome) = rig.router.next().await;
    assert_eq!(
        (message.text.as_str(), outcome),
        ("hi bot", AckOutcome::Committed)
    );
    assert!(message.addressed);
    let attempts = rig.fake.event_attempts();
    assert_eq!(attempts.len(), 2, "app_mention and message");
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Answered(200))
    );
}

#[tokio::test]
async fn forged_stale_or_unsigned_requests_are_refused_401() {
    let mut rig = Rig::events().await;
    let body = br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"evil","ts":"1.1"}}"#.to_vec();
    let now = chrono::Utc::now().timestamp();
    let forged = vec![
        ("x-slack-request-timestamp".to_owned(), now.to_string()),
        (
            "x-slack-signature".to_owned(),
            sign("not-the-secret", now, &body),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    assert_eq!(
        rig.fake
            .post_raw(body.clone(), forged)
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        rig.fake
            .post_signed_at(body.clone(), now - 301)
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        rig.fake
            .post_raw(body.clone(), vec![])
            .await
            .unwrap()
            .status,
        401
    );
    rig.router.quiet(Duration::from_millis(200)).await;
    assert_eq!(
        rig.fake.post_signed_at(body, now).await.unwrap().status,
        200
    );
    assert_eq!(rig.router.next().await.0.text, "evil");
}

#[tokio::test]
async fn an_oversized_body_is_refused_413() {
    let rig = Rig::events().await;
    let body = format!(
        r#"{{"type":"event_callback","pad":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let answer = rig
        .fake
        .post_signed_at(body.into_bytes(), chrono::Utc::now().timestamp())
        .await
        .unwrap();
    assert_eq!(answer.status, 413);
}

#[tokio::test]
async fn a_failed_commit_answers_500_and_slacks_retry_is_stored() {
    let mut rig = Rig::events().await;
    rig.router.then(
        Duration::ZERO,
        AckOutcome::Failed {
            reason: "db down".into(),
        },
    );
    rig.fake.say(UserSays::direct("U1", "important")).await;
    rig.router.next().await;
    let (retried, outcome) = rig.router.next().await;
    assert_eq!(
        (retried.text.as_str(), outcome),
        ("important", AckOutcome::Committed)
    );
    rig.fake
        .wait_for("the retry answered", |f| f.event_attempts().len() == 2)
        .await;
    let attempts = rig.fake.event_attempts();
    assert_eq!(attempts[0].outcome, AttemptOutcome::Answered(500));
    assert_eq!(
        (attempts[1].retry_num, attempts[1].retry_reason.as_deref()),
        (1, Some("http_error"))
    );
    assert_eq!(attempts[1].outcome, AttemptOutcome::Answered(200));
}

#[tokio::test]
async fn a_slow_router_gets_500_in_time_and_the_retry_waits_for_the_same_delivery() {
    let mut rig = Rig::events().await;
    rig.router
        .then(Duration::from_millis(2800), AckOutcome::Committed);
    rig.fake.say(UserSays::direct("U1", "slow")).await;
    let (message, outcome) = rig.router.next().await;
    assert_eq!(
        (message.text.as_str(), outcome),
        ("slow", AckOutcome::Committed)
    );
    rig.fake
        .wait_for("the retry answered 200", |f| {
            f.event_attempts()
                .iter()
                .any(|a| a.outcome == AttemptOutcome::Answered(200))
        })
        .await;
    let attempts = rig.fake.event_attempts();
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Answered(500),
        "answered before Slack's 3 s"
    );
    rig.router.quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_retried_event_is_acked_as_a_duplicate() {
    let mut rig = Rig::events().await;
    rig.fake.say(UserSays::direct("U1", "once")).await;
    rig.router.next().await;
    let event_id = rig.fake.delivered_event_ids()[0].clone();
    assert!(rig.fake.repeat_event(&event_id).await);
    let (_, outcome) = rig.router.next().await;
    assert_eq!(outcome, AckOutcome::Duplicate);
    let last = rig.fake.event_attempts().pop().unwrap();
    assert_eq!(
        (last.retry_num, last.outcome),
        (1, AttemptOutcome::Answered(200))
    );
}

#[tokio::test]
async fn a_socket_mode_adapter_has_no_webhook() {
    let rig = Rig::socket().await;
    let request = WebhookRequest {
        headers: vec![],
        body: b"{}".to_vec(),
    };
    assert!(matches!(
        rig.adapter.webhook(request).await,
        Err(ChannelError::Unsupported { .. })
    ));
}
