//! The Web API: verify, sends, errors, rate limits.

use super::*;

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
