//! Inbound events mapped to messages.

use super::*;

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
