//! Sending, replying, topics, edits, typing, and what people say.

use serde_json::json;

use super::super::FakeTelegram;
use super::{call, client, dm, result};
use crate::chat::{ChatPlatform, FakeFile, UserSays};

#[tokio::test]
async fn send_message_enforces_length_emptiness_and_html() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    let too_long = "é".repeat(4097);
    let (s, b) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": too_long}),
    )
    .await;
    assert_eq!(
        (s, b["description"].as_str()),
        (400, Some("Bad Request: message is too long"))
    );
    let fits = format!("<b>{}</b>", "x".repeat(4096));
    result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": fits, "parse_mode": "HTML"}),
    )
    .await;
    let (s, b) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "<b> </b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(
        (s, b["description"].as_str()),
        (400, Some("Bad Request: message text is empty"))
    );
    let (s, b) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "<p>x</p>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: can't parse entities: ")
    );
    let (s, b) = call(&fake, "sendMessage", json!({"chat_id": 999, "text": "x"})).await;
    assert_eq!(
        (s, b["description"].as_str()),
        (400, Some("Bad Request: chat not found"))
    );
    let sent = result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "<i>ok</i> &amp; more", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(sent["text"], "ok & more");
    assert_eq!(sent["entities"][0]["type"], "italic");
}

#[tokio::test]
async fn replies_and_topics_are_checked() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    let (s, _) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "x", "reply_parameters": {"message_id": 77}}),
    )
    .await;
    assert_eq!(s, 400, "message to be replied not found");
    let lenient = result(&fake, "sendMessage", json!({"chat_id": chat, "text": "x", "reply_parameters": {"message_id": 77, "allow_sending_without_reply": true}})).await;
    assert!(lenient.get("reply_to_message").is_none());
    let reply = result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "x", "reply_parameters": {"message_id": 1}}),
    )
    .await;
    assert_eq!(reply["reply_to_message"]["text"], "hello");
    fake.add_topic(-1_001_234, 7);
    let (s, _) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": -1_001_234, "text": "x", "message_thread_id": 8}),
    )
    .await;
    assert_eq!(s, 400, "message thread not found");
    let in_topic = result(
        &fake,
        "sendMessage",
        json!({"chat_id": -1_001_234, "text": "x", "message_thread_id": 7}),
    )
    .await;
    assert_eq!(in_topic["is_topic_message"], true);
    assert_eq!(
        fake.bot_messages().last().unwrap().thread_id.as_deref(),
        Some("7")
    );
}

#[tokio::test]
async fn edits_that_change_nothing_or_miss_are_refused() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    let sent = result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "<b>a</b>", "parse_mode": "HTML"}),
    )
    .await;
    let id = sent["message_id"].clone();
    let (s, b) = call(
        &fake,
        "editMessageText",
        json!({"chat_id": chat, "message_id": id, "text": "<b>a</b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .starts_with("Bad Request: message is not modified")
    );
    result(
        &fake,
        "editMessageText",
        json!({"chat_id": chat, "message_id": id, "text": "a"}),
    )
    .await;
    let (s, b) = call(
        &fake,
        "editMessageText",
        json!({"chat_id": chat, "message_id": 999, "text": "b"}),
    )
    .await;
    assert_eq!(
        (s, b["description"].as_str()),
        (400, Some("Bad Request: message to edit not found"))
    );
    let m = &fake.bot_messages()[0];
    assert_eq!((m.text.as_str(), m.edits), ("a", 1));
}

#[tokio::test]
async fn typing_is_counted_per_chat() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    result(
        &fake,
        "sendChatAction",
        json!({"chat_id": chat, "action": "typing"}),
    )
    .await;
    let (s, _) = call(
        &fake,
        "sendChatAction",
        json!({"chat_id": chat, "action": "dancing"}),
    )
    .await;
    assert_eq!(s, 400);
    assert_eq!(fake.typing_count("42"), 1);
}

#[tokio::test]
async fn what_people_say_carries_entities_replies_and_files() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "bot says"}),
    )
    .await;
    fake.say(
        UserSays::group("42", "-1009", "/new now")
            .mentioning()
            .replying_to("1"),
    )
    .await;
    let photo = FakeFile {
        name: "cat.png".into(),
        content_type: "image/png".into(),
        bytes: vec![7; 100],
    };
    fake.say(
        UserSays::direct("42", "look")
            .replying_to("2")
            .with_file(photo),
    )
    .await;
    fake.say(UserSays::group("43", "-1001", "in topic").in_thread("5"))
        .await;
    let updates = result(&fake, "getUpdates", json!({})).await;
    let group = &updates[1]["message"];
    assert_eq!(group["text"], "@nexus_fake_bot /new now");
    assert_eq!(
        group["entities"],
        json!([{"type": "mention", "offset": 0, "length": 15}, {"type": "bot_command", "offset": 16, "length": 4}])
    );
    assert_eq!(group["chat"]["type"], "group");
    let photo = &updates[2]["message"];
    assert_eq!(photo["caption"], "look");
    assert_eq!(photo["reply_to_message"]["from"]["is_bot"], true);
    let sizes = photo["photo"].as_array().unwrap();
    let largest = sizes.last().unwrap();
    let file = result(&fake, "getFile", json!({"file_id": largest["file_id"]})).await;
    let bytes = client()
        .get(format!(
            "{}/file/bot{}/{}",
            fake.base_url(),
            fake.token(),
            file["file_path"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), &[7u8; 100][..]);
    let topic = &updates[3]["message"];
    assert_eq!(
        (
            topic["message_thread_id"].as_i64(),
            topic["is_topic_message"].as_bool()
        ),
        (Some(5), Some(true))
    );
    assert_eq!(topic["chat"]["is_forum"], true);
    assert_eq!(
        topic["reply_to_message"]["message_id"], 5,
        "a topic message replies to the topic root"
    );
}
