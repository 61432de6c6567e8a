//! Unit tests without a server: mapping, mention stripping, the plain fallback, error
//! classification, configuration checks.

use std::time::Duration;

use nexus_core::{ChannelCredentialId, ChannelError, Conversation};
use secrecy::SecretString;
use serde_json::{Value, json};

use super::client::{CallError, classify};
use super::config::{TelegramConfig, TelegramMode};
use super::inbound::{Bot, Disposition, byte_range, map_update};
use super::payload::{ResponseParameters, Update};
use super::render::plain_fallback;

fn bot() -> Bot {
    Bot {
        id: 999,
        username: "nexus_bot".to_owned(),
    }
}

fn update(message: Value) -> Update {
    serde_json::from_value(json!({"update_id": 10, "message": message})).unwrap()
}

fn group_message(text: &str, entities: Value) -> Value {
    json!({"message_id": 5, "date": 1_700_000_000, "from": {"id": 7, "is_bot": false, "first_name": "Ann", "last_name": "Lee"},
        "chat": {"id": -1001, "type": "supergroup"}, "text": text, "entities": entities})
}

fn mapped(message: Value) -> nexus_core::InboundMessage {
    match map_update(&update(message), &bot(), ChannelCredentialId::new()) {
        Disposition::Deliver { message, .. } => *message,
        Disposition::Ignore(why) => panic!("ignored: {why}"),
    }
}

#[test]
fn a_leading_mention_is_stripped_and_addresses_the_bot() {
    let m = mapped(group_message(
        "@Nexus_Bot /new now",
        json!([{"type": "mention", "offset": 0, "length": 10}, {"type": "bot_command", "offset": 11, "length": 4}]),
    ));
    assert_eq!(m.text, "/new now");
    assert!(m.addressed);
    assert_eq!(m.conversation, Conversation::Group);
    assert_eq!(m.sender.display_name.as_deref(), Some("Ann Lee"));
    assert_eq!(m.external_id, "10");
    assert_eq!(m.metadata["telegram_chat_type"], "supergroup");
    assert_eq!(m.received_at.timestamp(), 1_700_000_000);
}

#[test]
fn a_command_for_the_bot_loses_its_suffix_and_one_for_another_bot_does_not() {
    let m = mapped(group_message(
        "/new@nexus_bot please",
        json!([{"type": "bot_command", "offset": 0, "length": 14}]),
    ));
    assert_eq!((m.text.as_str(), m.addressed), ("/new please", true));
    let other = mapped(group_message(
        "/new@other_bot",
        json!([{"type": "bot_command", "offset": 0, "length": 14}]),
    ));
    assert_eq!(
        (other.text.as_str(), other.addressed),
        ("/new@other_bot", false)
    );
}

#[test]
fn entity_offsets_count_utf16_units() {
    let text = "😀 @nexus_bot hi";
    assert_eq!(byte_range(text, 3, 10), Some(5..15));
    let m = mapped(group_message(
        text,
        json!([{"type": "mention", "offset": 3, "length": 10}]),
    ));
    assert!(m.addressed, "a mention after an emoji is found");
    assert_eq!(m.text, text, "only a leading mention is removed");
    assert_eq!(byte_range("ab", 1, 5), None);
}

#[test]
fn a_group_message_not_for_the_bot_is_delivered_unaddressed() {
    let m = mapped(group_message("just chatting", json!([])));
    assert!(!m.addressed);
}

#[test]
fn a_reply_to_the_bot_addresses_it_but_a_topic_root_is_not_a_reply() {
    let mut msg = group_message("and?", json!([]));
    msg["reply_to_message"] = json!({"message_id": 3, "date": 0, "chat": {"id": -1001, "type": "supergroup"},
        "from": {"id": 999, "is_bot": true, "first_name": "Nexus"}});
    let m = mapped(msg);
    assert_eq!((m.addressed, m.reply_to.as_deref()), (true, Some("3")));

    let mut topic = group_message("in a topic", json!([]));
    topic["message_thread_id"] = json!(3);
    topic["is_topic_message"] = json!(true);
    topic["reply_to_message"] = json!({"message_id": 3, "date": 0, "chat": {"id": -1001, "type": "supergroup"},
        "from": {"id": 999, "is_bot": true, "first_name": "Nexus"}, "forum_topic_created": {"name": "t"}});
    let m = mapped(topic);
    assert_eq!(m.chat.thread_id.as_deref(), Some("3"));
    assert_eq!(m.reply_to, None);
    assert!(!m.addressed, "a topic the bot created does not address it");
    assert_eq!(m.metadata["telegram_thread_id"], 3);
}

#[test]
fn a_thread_id_without_is_topic_message_is_not_a_session_scope() {
    let mut msg = group_message("reply thread", json!([]));
    msg["message_thread_id"] = json!(4);
    assert_eq!(mapped(msg).chat.thread_id, None);
}

#[test]
fn the_bots_own_messages_edits_and_service_messages_are_dropped() {
    let mut own = group_message("me", json!([]));
    own["from"] = json!({"id": 999, "is_bot": true, "first_name": "Nexus"});
    let drop = |u: Update| {
        matches!(
            map_update(&u, &bot(), ChannelCredentialId::new()),
            Disposition::Ignore(_)
        )
    };
    assert!(drop(update(own)));
    let edit: Update = serde_json::from_value(
        json!({"update_id": 1, "edited_message": group_message("x", json!([]))}),
    )
    .unwrap();
    assert!(drop(edit));
    let mut join = group_message("", json!([]));
    join.as_object_mut().unwrap().remove("text");
    join["new_chat_members"] = json!([{"id": 5, "is_bot": false, "first_name": "B"}]);
    assert!(drop(update(join)));
}

#[test]
fn another_bot_is_delivered_marked_as_a_bot() {
    let mut msg = group_message("beep", json!([]));
    msg["from"] = json!({"id": 55, "is_bot": true, "first_name": "Other"});
    assert!(mapped(msg).sender.is_bot);
}

#[test]
fn a_caption_is_text_and_the_largest_photo_size_is_fetched() {
    let msg = json!({"message_id": 8, "date": 0, "from": {"id": 7, "first_name": "A"}, "chat": {"id": 7, "type": "private"},
        "caption": "look", "photo": [
            {"file_id": "small", "width": 90, "height": 90, "file_size": 10},
            {"file_id": "big", "width": 800, "height": 600, "file_size": 900},
            {"file_id": "mid", "width": 320, "height": 240, "file_size": 100}]});
    let Disposition::Deliver { message, files } =
        map_update(&update(msg), &bot(), ChannelCredentialId::new())
    else {
        panic!("delivered");
    };
    assert_eq!((message.text.as_str(), message.addressed), ("look", true));
    assert_eq!(message.conversation, Conversation::Direct);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].file_id, "big");
    assert_eq!(files[0].content_type.as_deref(), Some("image/jpeg"));
}

#[test]
fn the_plain_fallback_strips_tags_and_decodes_references() {
    assert_eq!(
        plain_fallback(
            "<b>a &lt;b&gt;</b> &amp; &quot;q&quot; &#33;&#x21; <a href=\"x\">l</a> & &nbsp;"
        ),
        "a <b> & \"q\" !! l & &nbsp;"
    );
}

#[test]
fn errors_are_classified_by_status() {
    let auth = classify("getMe", 401, "Unauthorized", None);
    assert!(matches!(
        auth,
        CallError::Channel(ChannelError::Auth { .. })
    ));
    let malformed = classify("getMe", 404, "Not Found", None);
    assert!(matches!(
        malformed,
        CallError::Channel(ChannelError::Auth { .. })
    ));
    let params = ResponseParameters {
        retry_after: Some(7),
        migrate_to_chat_id: None,
    };
    assert_eq!(
        classify(
            "sendMessage",
            429,
            "Too Many Requests: retry after 7",
            Some(&params)
        ),
        CallError::Channel(ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(7))
        })
    );
    let migrated = ResponseParameters {
        retry_after: None,
        migrate_to_chat_id: Some(-10_042),
    };
    let CallError::Channel(ChannelError::Rejected { message }) = classify(
        "sendMessage",
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        Some(&migrated),
    ) else {
        panic!("rejected");
    };
    assert!(message.contains("-10042"), "{message}");
    assert!(matches!(
        classify("x", 403, "Forbidden: bot was blocked by the user", None),
        CallError::Channel(ChannelError::Rejected { .. })
    ));
    assert!(matches!(
        classify("x", 502, "Bad Gateway", None),
        CallError::Channel(ChannelError::Transport { .. })
    ));
    assert!(matches!(
        classify("getUpdates", 409, "Conflict: terminated", None),
        CallError::Conflict { .. }
    ));
    assert_eq!(
        classify(
            "editMessageText",
            400,
            "Bad Request: message is not modified: specified",
            None
        ),
        CallError::NotModified
    );
    assert!(matches!(
        classify(
            "sendMessage",
            400,
            "Bad Request: can't parse entities: x",
            None
        ),
        CallError::EntitiesRejected { .. }
    ));
}

#[test]
fn configurations_that_cannot_work_are_fatal() {
    let fatal = |c: TelegramConfig| matches!(c.validate(), Err(ChannelError::Fatal { .. }));
    assert!(
        TelegramConfig::new(SecretString::from("1:abc"))
            .validate()
            .is_ok()
    );
    assert!(fatal(TelegramConfig::new(SecretString::from(""))));
    assert!(fatal(TelegramConfig::new(SecretString::from("1:a/b"))));
    let mut short = TelegramConfig::new(SecretString::from("1:abc"));
    short.mode = TelegramMode::Polling {
        timeout: Duration::from_millis(10),
    };
    assert!(fatal(short));
    let mut hook = TelegramConfig::new(SecretString::from("1:abc"));
    hook.mode = TelegramMode::Webhook {
        url: "https://x.example/h".parse().unwrap(),
        secret: SecretString::from("has space"),
    };
    assert!(fatal(hook));
    assert_eq!(
        TelegramConfig::new(SecretString::from("1:a"))
            .api_base
            .as_str(),
        "https://api.telegram.org/"
    );
}

#[test]
fn the_token_never_shows_in_debug() {
    let config = TelegramConfig::new(SecretString::from("123:SECRETPART"));
    assert!(!format!("{config:?}").contains("SECRETPART"));
}

#[test]
fn stored_settings_become_a_config_and_an_incomplete_webhook_is_fatal() {
    use crate::settings::{AccessPolicy, ChannelSecrets, ChannelSettings, ReceiveMode};
    let mut settings = ChannelSettings {
        mode: ReceiveMode::Webhook,
        api_base: Some("http://127.0.0.1:8081".into()),
        gateway_url: None,
        webhook_url: Some("https://nexus.example.com/channels/1/webhook".into()),
        access: AccessPolicy::default(),
    };
    let mut secrets = ChannelSecrets {
        token: Some("123:ABC".into()),
        webhook_secret: Some("s3cret".into()),
        ..ChannelSecrets::default()
    };
    let config = TelegramConfig::from_settings(&settings, &secrets).unwrap();
    assert_eq!(config.api_base.as_str(), "http://127.0.0.1:8081/");
    assert!(matches!(config.mode, TelegramMode::Webhook { .. }));

    secrets.webhook_secret = None;
    let err = TelegramConfig::from_settings(&settings, &secrets).unwrap_err();
    assert!(matches!(err, ChannelError::Fatal { .. }), "{err}");

    settings.mode = ReceiveMode::Gateway;
    assert!(TelegramConfig::from_settings(&settings, &secrets).is_err());
}
