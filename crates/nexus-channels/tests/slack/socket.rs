//! Socket Mode end to end.

use super::*;

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
