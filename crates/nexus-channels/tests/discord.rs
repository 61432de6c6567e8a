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

// ---- verify -------------------------------------------------------------------------------

#[tokio::test]
async fn verify_names_the_bot_and_sends_bot_authorization_and_user_agent() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, _) = adapter(&fake, fake.token(), true, limits());
    let me = adapter.verify().await.unwrap();
    assert_eq!(me.id, fake.bot_user_id());
    assert_eq!(me.name, "nexus-bot");
    let request = fake.requests().pop().unwrap();
    assert_eq!(
        request.authorization.as_deref(),
        Some(format!("Bot {}", fake.token()).as_str())
    );
    assert_eq!(
        request.user_agent.as_deref(),
        Some("DiscordBot (https://github.com/nexus, 0.1)")
    );
}

#[tokio::test]
async fn verify_with_a_wrong_token_fails_with_auth() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, _) = adapter(&fake, "wrong", true, limits());
    let err = adapter.verify().await.unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }), "{err:?}");
    assert!(!err.restartable());
    assert!(
        !err.to_string().contains("wrong"),
        "the token never shows: {err}"
    );
}

#[tokio::test]
async fn capabilities_are_discords() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, _) = adapter(&fake, fake.token(), true, limits());
    let caps = adapter.capabilities();
    assert_eq!(caps.max_message_len, 2000);
    assert!(caps.edit && caps.threads && caps.typing && caps.media);
}

// ---- gateway handshake ----------------------------------------------------------------------

#[tokio::test]
async fn identify_carries_token_intents_and_properties_on_a_versioned_url_from_gateway_bot() {
    let h = Harness::start().await;
    let identify = h.frame(is_op(2)).await;
    assert_eq!(identify.path, "/gateway?v=10&encoding=json");
    assert_eq!(identify.d["token"], h.fake.token());
    assert_eq!(identify.d["intents"], 37377);
    assert_eq!(identify.d["properties"]["browser"], "nexus");
    assert_eq!(identify.d["properties"]["device"], "nexus");
    assert!(
        h.fake
            .requests()
            .iter()
            .any(|r| r.path == "/api/v10/gateway/bot"),
        "the URL was asked for"
    );
}

#[tokio::test]
async fn heartbeats_carry_the_last_sequence_and_a_server_request_is_answered_at_once() {
    let h = Harness::start().await;
    let beat = h.frame(|f| f.op == Some(1) && f.d.is_u64()).await;
    assert!(
        beat.d.as_u64().unwrap() >= 2,
        "READY and GUILD_CREATE were seen: {beat:?}"
    );
    let mark = h.fake.frame_count();
    h.fake.inject(GatewayFault::RequestHeartbeat);
    let asked = Instant::now();
    let answer = h.frame(|f| f.index >= mark && f.op == Some(1)).await;
    assert!(
        asked.elapsed() < Duration::from_millis(150),
        "answered at once: {answer:?}"
    );
}

#[tokio::test]
async fn cancel_closes_with_1000_and_start_returns_ok() {
    let h = Harness::start().await;
    h.cancel.cancel();
    let fake_frames = h
        .fake
        .wait_for_frame(WAIT, |f| f.close_code.is_some())
        .await
        .unwrap();
    assert_eq!(fake_frames.close_code, Some(1000));
    assert_eq!(h.ended().await, Ok(()));
}

#[tokio::test]
async fn stop_ends_a_running_start() {
    let h = Harness::start().await;
    h.adapter.stop().await.unwrap();
    assert_eq!(h.ended().await, Ok(()));
}

#[tokio::test]
async fn a_wrong_token_on_the_gateway_ends_start_with_auth() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let (adapter, media) = adapter(&fake, "wrong", true, limits());
    let h = Harness::run(fake, adapter, media);
    let err = h.ended().await.unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }), "{err:?}");
}

#[tokio::test]
async fn a_disallowed_message_content_intent_is_fatal_and_names_the_portal_setting() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        message_content_enabled: false,
        ..fake_config()
    })
    .await;
    let (adapter, media) = adapter(&fake, fake.token(), true, limits());
    let h = Harness::run(fake, adapter, media);
    let (identifies, _) = h.fake.sessions_started();
    let err = h.ended().await.unwrap_err();
    assert!(matches!(err, ChannelError::Fatal { .. }), "{err:?}");
    assert!(!err.restartable());
    assert!(err.to_string().contains("Message Content intent"), "{err}");
    assert_eq!(identifies, 0);
}

#[tokio::test]
async fn without_the_message_content_intent_only_mentions_keep_their_text() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let mut config = DiscordConfig::new(SecretString::from(fake.token().to_owned()));
    config.api_base = Url::parse(&fake.api_base()).unwrap();
    config.intents = 37377 - (1 << 15);
    let media = Arc::new(MemoryMedia::new());
    let ctx = ChannelContext {
        account_id: ChannelCredentialId::new(),
        http: reqwest::Client::new(),
        media: media.clone(),
        limits: limits(),
    };
    let adapter = DiscordAdapter::new(config, ctx)
        .unwrap()
        .with_timing(timing());
    let mut h = Harness::run(fake, adapter, media);
    assert!(h.fake.wait_connected(WAIT).await);
    assert_eq!(h.frame(is_op(2)).await.d["intents"], 4609);
    h.fake.say(UserSays::group("42", "500", "hidden")).await;
    assert_eq!(h.next().await.text, "");
    h.fake
        .say(UserSays::group("42", "500", "visible").mentioning())
        .await;
    assert_eq!(h.next().await.text, "visible");
}

#[tokio::test]
async fn close_4013_is_fatal_and_never_reconnected() {
    let h = Harness::start().await;
    h.fake.inject(GatewayFault::Close(4013));
    let frames_before = h.fake.client_frames().len();
    let fake = h.fake;
    let err = tokio::time::timeout(WAIT, h.run)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ChannelError::Fatal { .. }), "{err:?}");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !fake.client_frames()[frames_before..]
            .iter()
            .any(|f| f.op == Some(2) || f.op == Some(6))
    );
}

#[tokio::test]
async fn close_4004_mid_session_ends_start_with_auth() {
    let h = Harness::start().await;
    h.fake.inject(GatewayFault::Close(4004));
    let err = h.ended().await.unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }), "{err:?}");
}

// ---- reconnects -----------------------------------------------------------------------------

/// Waits for a RESUME after frame `mark` and checks it resumes the first session.
async fn resumed(h: &Harness, mark: u64) -> ClientFrame {
    let identify = h.frame(is_op(2)).await;
    let resume = h.frame(|f| f.index >= mark && f.op == Some(6)).await;
    assert!(
        resume.path.starts_with("/resume"),
        "RESUME goes to resume_gateway_url: {}",
        resume.path
    );
    assert!(resume.d["session_id"].is_string());
    assert!(resume.d["seq"].as_u64().unwrap() >= 2);
    assert_eq!(resume.d["token"], h.fake.token());
    assert!(resume.conn > identify.conn);
    resume
}

/// Says something in a group and checks it arrives (nothing lost after a fault).
async fn still_delivers(h: &mut Harness, text: &str) {
    let said = h
        .fake
        .say(UserSays::group("42", "500", text).mentioning())
        .await;
    let got = h.next().await;
    assert_eq!(got.external_id, said.message_id);
    assert_eq!(got.text, text);
}

#[tokio::test]
async fn op7_reconnect_resumes_the_session_at_the_resume_url() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake.inject(GatewayFault::Reconnect);
    resumed(&h, mark).await;
    still_delivers(&mut h, "after op 7").await;
    assert_eq!(h.fake.sessions_started(), (1, 1));
}

#[tokio::test]
async fn a_dropped_connection_is_resumed_and_missed_messages_are_replayed() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake.inject(GatewayFault::Drop);
    // Said while the connection is down or coming back: RESUME replays it.
    still_delivers(&mut h, "while away").await;
    resumed(&h, mark).await;
    h.nothing_more().await;
}

#[tokio::test]
async fn a_resumable_close_code_is_resumed() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake.inject(GatewayFault::Close(4000));
    resumed(&h, mark).await;
    still_delivers(&mut h, "after 4000").await;
}

#[tokio::test]
async fn close_4009_starts_a_new_session() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake.inject(GatewayFault::Close(4009));
    let identify = h.frame(|f| f.index >= mark && f.op == Some(2)).await;
    assert!(
        identify.path.starts_with("/gateway"),
        "a new session starts at the gateway URL"
    );
    still_delivers(&mut h, "new session").await;
    assert_eq!(h.fake.sessions_started(), (2, 0));
}

#[tokio::test]
async fn a_resumable_invalid_session_is_resumed() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake
        .inject(GatewayFault::InvalidSession { resumable: true });
    resumed(&h, mark).await;
    still_delivers(&mut h, "resumed").await;
}

#[tokio::test]
async fn an_invalid_session_identifies_anew_after_a_pause() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    let invalidated = Instant::now();
    h.fake
        .inject(GatewayFault::InvalidSession { resumable: false });
    h.frame(|f| f.index >= mark && f.op == Some(2)).await;
    assert!(
        invalidated.elapsed() >= Duration::from_millis(200),
        "waited before IDENTIFY"
    );
    assert!(
        !h.fake.client_frames().iter().any(|f| f.op == Some(6)),
        "no RESUME of a dead session"
    );
    still_delivers(&mut h, "fresh").await;
}

#[tokio::test]
async fn a_gateway_that_stops_acking_heartbeats_is_left_and_resumed() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake.set_heartbeat_acks(false);
    let close = h.frame(|f| f.index >= mark && f.close_code.is_some()).await;
    assert_ne!(
        close.close_code,
        Some(1000),
        "a zombie close keeps the session"
    );
    h.fake.set_heartbeat_acks(true);
    resumed(&h, mark).await;
    still_delivers(&mut h, "alive again").await;
}

#[tokio::test]
async fn a_malformed_frame_is_ignored_without_reconnecting() {
    let mut h = Harness::start().await;
    h.fake.inject(GatewayFault::Malformed);
    still_delivers(&mut h, "after garbage").await;
    assert_eq!(h.fake.sessions_started(), (1, 0));
}

#[tokio::test]
async fn an_oversized_frame_costs_a_resume_but_no_message() {
    let mut h = Harness::start().await;
    let mark = h.fake.frame_count();
    h.fake.inject(GatewayFault::Oversized(5 * 1024 * 1024));
    resumed(&h, mark).await;
    still_delivers(&mut h, "after the big one").await;
}

#[tokio::test]
async fn a_gateway_that_keeps_refusing_connections_ends_start_with_a_transport_error() {
    let fake = FakeDiscord::start_with(fake_config()).await;
    let mut config = DiscordConfig::new(SecretString::from(fake.token().to_owned()));
    config.api_base = Url::parse(&fake.api_base()).unwrap();
    // Nothing listens there.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    config.gateway_url =
        Some(Url::parse(&format!("ws://{}/gateway", closed.local_addr().unwrap())).unwrap());
    drop(closed);
    let ctx = ChannelContext {
        account_id: ChannelCredentialId::new(),
        http: reqwest::Client::new(),
        media: Arc::new(MemoryMedia::new()),
        limits: limits(),
    };
    let adapter = DiscordAdapter::new(config, ctx)
        .unwrap()
        .with_timing(timing());
    let err = tokio::time::timeout(WAIT, adapter.start(CancellationToken::new()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ChannelError::Transport { .. }), "{err:?}");
    assert!(err.restartable());
}

// ---- inbound mapping ----------------------------------------------------------------------

#[tokio::test]
async fn a_guild_message_mentioning_the_bot_arrives_addressed_without_the_mention() {
    let mut h = Harness::start().await;
    let said = h
        .fake
        .say(UserSays::group("42", "500", "/new please").mentioning())
        .await;
    let got = h.next().await;
    assert_eq!(got.external_id, said.message_id);
    assert_eq!(got.text, "/new please");
    assert_eq!(
        got.chat,
        ChatRef {
            chat_id: "500".into(),
            thread_id: None
        }
    );
    assert_eq!(got.conversation, Conversation::Group);
    assert!(got.addressed);
    assert_eq!(got.sender.external_id, "42");
    assert_eq!(got.sender.display_name.as_deref(), Some("user 42"));
    assert!(!got.sender.is_bot);
    assert_eq!(got.metadata["discord_channel_id"], "500");
    assert_eq!(got.metadata["discord_message_id"], said.message_id.as_str());
    assert_eq!(
        got.metadata["discord_guild_id"],
        nexus_testkit::discord::DEFAULT_GUILD_ID
    );
}

#[tokio::test]
async fn a_group_message_without_a_mention_arrives_unaddressed() {
    let mut h = Harness::start().await;
    h.fake
        .say(UserSays::group("42", "500", "just chatting"))
        .await;
    let got = h.next().await;
    assert!(!got.addressed);
    assert_eq!(got.text, "just chatting");
}

#[tokio::test]
async fn a_direct_message_arrives_direct_and_addressed_in_its_dm_channel() {
    let mut h = Harness::start().await;
    let said = h.fake.say(UserSays::direct("42", "hello")).await;
    let got = h.next().await;
    assert_eq!(got.conversation, Conversation::Direct);
    assert!(got.addressed);
    assert_eq!(got.chat.chat_id, said.chat_id);
    assert!(!got.metadata.contains_key("discord_guild_id"));
    let sent = h
        .adapter
        .send(&reply(&said.chat_id, "hi back"))
        .await
        .unwrap();
    assert_eq!(h.fake.bot_messages()[0].chat_id, said.chat_id);
    assert_eq!(sent.platform_message_id, h.fake.bot_messages()[0].id);
}

#[tokio::test]
async fn a_thread_is_its_own_chat_and_replies_land_in_it() {
    let mut h = Harness::start().await;
    let said = h
        .fake
        .say(
            UserSays::group("42", "500", "in a thread")
                .in_thread("900")
                .mentioning(),
        )
        .await;
    let got = h.next().await;
    assert_eq!(said.chat_id, "900");
    assert_eq!(
        got.chat,
        ChatRef {
            chat_id: "900".into(),
            thread_id: None
        }
    );
    h.adapter
        .send(&reply("900", "threaded answer"))
        .await
        .unwrap();
    let bot = &h.fake.bot_messages()[0];
    assert_eq!(
        (bot.chat_id.as_str(), bot.thread_id.as_deref()),
        ("900", Some("900"))
    );
}

#[tokio::test]
async fn a_reply_to_the_bots_message_is_addressed_and_names_it() {
    let mut h = Harness::start().await;
    h.fake.add_channel("500");
    let sent = h.adapter.send(&reply("500", "ask me")).await.unwrap();
    h.fake
        .say(UserSays::group("42", "500", "answer").replying_to(&sent.platform_message_id))
        .await;
    let got = h.next().await;
    assert!(got.addressed);
    assert_eq!(
        got.reply_to.as_deref(),
        Some(sent.platform_message_id.as_str())
    );
}

#[tokio::test]
async fn another_bots_message_arrives_marked_as_a_bot() {
    let mut h = Harness::start().await;
    h.fake
        .say(UserSays::group("77", "500", "beep").from_bot().mentioning())
        .await;
    let got = h.next().await;
    assert!(got.sender.is_bot);
}

#[tokio::test]
async fn the_bots_own_messages_never_come_back() {
    let mut h = Harness::start().await;
    h.fake.add_channel("500");
    h.adapter.send(&reply("500", "my own words")).await.unwrap();
    let said = h.fake.say(UserSays::group("42", "500", "a person")).await;
    let got = h.next().await;
    assert_eq!(
        got.external_id, said.message_id,
        "the bot's MESSAGE_CREATE was dropped"
    );
    h.nothing_more().await;
}

#[tokio::test]
async fn an_attachment_is_downloaded_into_media() {
    let mut h = Harness::start().await;
    let file = FakeFile {
        name: "cat.png".into(),
        content_type: "image/png".into(),
        bytes: vec![7; 300],
    };
    h.fake
        .say(UserSays::direct("42", "look").with_file(file))
        .await;
    let got = h.next().await;
    assert_eq!(got.attachments.len(), 1);
    let attachment = &got.attachments[0];
    assert_eq!(attachment.filename.as_deref(), Some("cat.png"));
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(
        h.media.bytes(&attachment.storage_key).unwrap(),
        Bytes::from(vec![7u8; 300])
    );
}

#[tokio::test]
async fn an_attachment_over_the_size_cap_is_skipped_and_noted() {
    let mut h = Harness::start().await;
    let file = FakeFile {
        name: "big.bin".into(),
        content_type: "application/octet-stream".into(),
        bytes: vec![0; 4096],
    };
    h.fake
        .say(UserSays::direct("42", "too big").with_file(file))
        .await;
    let got = h.next().await;
    assert!(got.attachments.is_empty());
    let skipped = &got.metadata["skipped_attachments"][0];
    assert_eq!(skipped["name"], "big.bin");
    assert_eq!(skipped["size"], 4096);
    assert!(skipped["reason"].as_str().unwrap().contains("1024"));
}

// ---- hand-over to the router ----------------------------------------------------------------

#[tokio::test]
async fn a_failed_hand_over_is_retried_until_the_router_commits() {
    let mut h = Harness::start().await;
    h.script.lock().unwrap().extend([
        AckOutcome::Failed {
            reason: "database busy".into(),
        },
        AckOutcome::Failed {
            reason: "database busy".into(),
        },
    ]);
    let said = h.fake.say(UserSays::direct("42", "keep trying")).await;
    for _ in 0..3 {
        assert_eq!(h.next().await.external_id, said.message_id);
    }
    h.nothing_more().await;
}

#[tokio::test]
async fn a_message_the_router_keeps_failing_is_given_up_and_later_ones_still_arrive() {
    let mut h = Harness::start().await;
    h.script
        .lock()
        .unwrap()
        .extend((0..3).map(|_| AckOutcome::Failed {
            reason: "down".into(),
        }));
    let lost = h.fake.say(UserSays::direct("42", "lost")).await;
    for _ in 0..3 {
        assert_eq!(h.next().await.external_id, lost.message_id);
    }
    let later = h.fake.say(UserSays::direct("42", "later")).await;
    assert_eq!(h.next().await.external_id, later.message_id);
}

#[tokio::test]
async fn a_rejected_message_is_not_handed_over_again() {
    let mut h = Harness::start().await;
    h.script.lock().unwrap().push_back(AckOutcome::Rejected {
        reason: "not allowed".into(),
    });
    h.fake.say(UserSays::direct("42", "no")).await;
    h.next().await;
    h.nothing_more().await;
}

// ---- sending --------------------------------------------------------------------------------

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

#[tokio::test]
async fn send_posts_the_text_without_pings_as_a_reply() {
    let mut h = Harness::start().await;
    let said = h
        .fake
        .say(UserSays::group("42", "500", "question").mentioning())
        .await;
    h.next().await;
    let mut out = reply("500", "**answer**");
    out.reply_to = Some(said.message_id.clone());
    let sent = h.adapter.send(&out).await.unwrap();
    let request = h
        .fake
        .requests()
        .into_iter()
        .rfind(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .unwrap();
    assert_eq!(request.body["content"], "**answer**");
    assert_eq!(
        request.body["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    assert_eq!(
        request.body["message_reference"]["message_id"],
        said.message_id.as_str()
    );
    assert_eq!(
        request.body["message_reference"]["fail_if_not_exists"],
        false
    );
    let bot = &h.fake.bot_messages()[0];
    assert_eq!(
        (bot.id.as_str(), bot.text.as_str()),
        (sent.platform_message_id.as_str(), "**answer**")
    );
    assert_eq!(bot.reply_to.as_deref(), Some(said.message_id.as_str()));
}

#[tokio::test]
async fn send_with_attachments_uploads_them_as_multipart_files() {
    let (fake, adapter, media) = rest_only(fake_config(), limits()).await;
    let mut out = reply("500", "here it is");
    out.attachments.push(media.insert(
        "report.pdf",
        "application/pdf",
        Bytes::from_static(b"%PDF-1"),
    ));
    adapter.send(&out).await.unwrap();
    let request = fake.requests().pop().unwrap();
    assert!(
        request
            .content_type
            .unwrap()
            .starts_with("multipart/form-data")
    );
    assert_eq!(request.body["content"], "here it is");
    assert_eq!(request.body["attachments"][0]["filename"], "report.pdf");
    assert_eq!(request.files.len(), 1);
    assert_eq!(request.files[0].field, "files[0]");
    assert_eq!(request.files[0].filename.as_deref(), Some("report.pdf"));
    assert_eq!(
        request.files[0].content_type.as_deref(),
        Some("application/pdf")
    );
    assert_eq!(request.files[0].bytes, b"%PDF-1");
}

#[tokio::test]
async fn edit_replaces_the_text_of_a_sent_message() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    let sent = adapter.send(&reply("500", "draft")).await.unwrap();
    adapter.edit(&sent, "final").await.unwrap();
    let bot = &fake.bot_messages()[0];
    assert_eq!((bot.text.as_str(), bot.edits), ("final", 1));
}

#[tokio::test]
async fn editing_someone_elses_message_is_rejected() {
    let mut h = Harness::start().await;
    let said = h.fake.say(UserSays::group("42", "500", "mine")).await;
    h.next().await;
    let theirs = nexus_core::SentMessage {
        chat: ChatRef {
            chat_id: "500".into(),
            thread_id: None,
        },
        platform_message_id: said.message_id,
    };
    let err = h.adapter.edit(&theirs, "hijack").await.unwrap_err();
    assert!(
        matches!(&err, ChannelError::Rejected { message } if message.contains("50005")),
        "{err:?}"
    );
}

#[tokio::test]
async fn sending_to_an_unknown_channel_is_rejected() {
    let (_fake, adapter, _) = rest_only(fake_config(), limits()).await;
    let err = adapter.send(&reply("999", "anyone?")).await.unwrap_err();
    assert!(
        matches!(&err, ChannelError::Rejected { message } if message.contains("10003")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_over_long_message_is_rejected_with_the_field_error() {
    let (_fake, adapter, _) = rest_only(fake_config(), limits()).await;
    let err = adapter
        .send(&reply("500", &"x".repeat(2001)))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChannelError::Rejected { message } if message.contains("2000 or fewer")),
        "{err:?}"
    );
}

#[tokio::test]
async fn typing_reaches_the_channel() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    adapter
        .typing(&ChatRef {
            chat_id: "500".into(),
            thread_id: None,
        })
        .await
        .unwrap();
    adapter
        .typing(&ChatRef {
            chat_id: "500".into(),
            thread_id: None,
        })
        .await
        .unwrap();
    assert_eq!(fake.typing_count("500"), 2);
}

#[tokio::test]
async fn a_send_with_a_revoked_token_fails_with_auth() {
    let (fake, _, _) = rest_only(fake_config(), limits()).await;
    let (adapter, _) = adapter(&fake, "revoked", true, limits());
    let err = adapter.send(&reply("500", "hi")).await.unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }), "{err:?}");
}

#[tokio::test]
async fn a_server_error_is_a_transport_error_and_not_retried() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    fake.fail_rest(RestFault::ServerError(502));
    let err = adapter.send(&reply("500", "hi")).await.unwrap_err();
    assert!(matches!(err, ChannelError::Transport { .. }), "{err:?}");
    assert_eq!(
        fake.requests().len(),
        1,
        "a send of unknown outcome is not repeated"
    );
    assert!(fake.bot_messages().is_empty());
}

// ---- rate limits ----------------------------------------------------------------------------

#[tokio::test]
async fn sends_past_a_bucket_wait_for_its_reset_instead_of_hitting_429() {
    let config = FakeDiscordConfig {
        message_limit: 2,
        message_window: Duration::from_millis(400),
        ..fake_config()
    };
    let (fake, adapter, _) = rest_only(config, limits()).await;
    let started = Instant::now();
    for i in 0..5 {
        adapter
            .send(&reply("500", &format!("message {i}")))
            .await
            .unwrap();
    }
    assert!(
        started.elapsed() >= Duration::from_millis(800),
        "two resets were waited for"
    );
    assert!(
        fake.requests().iter().all(|r| r.status == 200),
        "no 429 was provoked"
    );
    assert_eq!(fake.bot_messages().len(), 5);
    // Another channel is another bucket: no wait.
    let other = Instant::now();
    adapter.send(&reply("600", "elsewhere")).await.unwrap();
    assert!(other.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn a_route_429_is_waited_out_and_retried() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_millis(300),
        global: false,
    });
    let started = Instant::now();
    adapter.send(&reply("500", "patience")).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    let statuses: Vec<u16> = fake.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200]);
}

#[tokio::test]
async fn a_global_429_holds_calls_on_every_route() {
    let (fake, adapter, _) = rest_only(fake_config(), limits()).await;
    let adapter = Arc::new(adapter);
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_millis(400),
        global: true,
    });
    let started = Instant::now();
    let send = tokio::spawn({
        let adapter = adapter.clone();
        async move { adapter.send(&reply("500", "first")).await }
    });
    assert!(fake.wait_for_requests(1, WAIT).await);
    // The 429 is recorded as it is answered; give the client a moment to read it (nothing
    // observable marks that instant).
    tokio::time::sleep(Duration::from_millis(50)).await;
    adapter
        .typing(&ChatRef {
            chat_id: "600".into(),
            thread_id: None,
        })
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "typing waited for the global limit"
    );
    send.await.unwrap().unwrap();
    assert_eq!(
        fake.requests().iter().filter(|r| r.status == 429).count(),
        1
    );
}

#[tokio::test]
async fn a_rate_limit_longer_than_the_cap_fails_at_once() {
    let limits = Limits {
        max_rate_limit_wait: Duration::from_millis(100),
        ..limits()
    };
    let (fake, adapter, _) = rest_only(fake_config(), limits).await;
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_secs(5),
        global: false,
    });
    let started = Instant::now();
    let err = adapter.send(&reply("500", "hurry")).await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(5))
        }
    );
    assert!(started.elapsed() < Duration::from_secs(1));
}
