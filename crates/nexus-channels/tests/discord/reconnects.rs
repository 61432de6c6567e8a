//! Resumes and new sessions after reconnects and faults.

use super::*;

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
