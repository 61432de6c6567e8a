//! The gateway handshake, heartbeats and close codes.

use super::*;

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
