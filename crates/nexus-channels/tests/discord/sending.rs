//! Sends, edits, typing and REST errors.

use super::*;

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
