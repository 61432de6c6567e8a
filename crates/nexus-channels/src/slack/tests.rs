use std::time::Duration;

use hmac::{Hmac, Mac};
use nexus_core::{ChannelError, Conversation, WebhookRequest};
use secrecy::SecretString;
use serde_json::{Value, json};
use sha2::Sha256;

use super::client::{Identity, classify};
use super::config::SlackConfig;
use super::events::{Refusal, verify_signature};
use super::payload::{self, Callback, Frame, Mapped, MessageEvent};
use super::threads::BotThreads;
use crate::settings::{ChannelSecrets, ChannelSettings, ReceiveMode};

fn me() -> Identity {
    Identity {
        user_id: "U0BOT".into(),
        bot_id: Some("B0BOT".into()),
        user: "nexus".into(),
        team_id: Some("T1".into()),
    }
}

fn callback() -> Callback {
    serde_json::from_value(json!({"type": "event_callback", "event_id": "Ev1", "team_id": "T1"}))
        .unwrap()
}

fn event(value: Value) -> MessageEvent {
    serde_json::from_value(value).unwrap()
}

fn map(value: Value) -> Mapped {
    payload::map(&callback(), event(value), &me(), |_, _| false)
}

fn delivered(mapped: Mapped) -> payload::Draft {
    match mapped {
        Mapped::Deliver(draft) => *draft,
        Mapped::Drop(reason) => panic!("dropped: {reason}"),
    }
}

#[test]
fn a_top_level_channel_message_opens_its_own_thread_and_is_not_addressed() {
    let draft = delivered(map(json!({
        "type": "message", "channel": "C1", "user": "U1", "text": "hello",
        "ts": "1700000000.000100", "channel_type": "channel",
        "user_profile": {"display_name": "Ada"}
    })));
    assert_eq!(draft.external_id, "C1:1700000000.000100");
    assert_eq!(draft.chat.thread_id.as_deref(), Some("1700000000.000100"));
    assert_eq!(draft.conversation, Conversation::Group);
    assert!(!draft.addressed);
    assert_eq!(draft.reply_to, None);
    assert_eq!(draft.sender.display_name.as_deref(), Some("Ada"));
    assert_eq!(draft.metadata["slack_event_id"], "Ev1");
    assert_eq!(draft.metadata["slack_team_id"], "T1");
    assert_eq!(draft.metadata["slack_ts"], "1700000000.000100");
    assert_eq!(draft.received_at.timestamp_micros(), 1_700_000_000_000_100);
}

#[test]
fn a_direct_message_is_addressed_and_has_no_thread() {
    let draft = delivered(map(json!({
        "type": "message", "channel": "D1", "user": "U1", "text": "hi",
        "ts": "1700000000.000200", "channel_type": "im"
    })));
    assert_eq!(draft.conversation, Conversation::Direct);
    assert!(draft.addressed);
    assert_eq!(draft.chat.thread_id, None);
}

#[test]
fn a_mention_is_addressed_and_stripped_from_the_text() {
    for kind in ["app_mention", "message"] {
        let draft = delivered(map(json!({
            "type": kind, "channel": "C1", "user": "U1", "text": "<@U0BOT> /new",
            "ts": "1700000000.000300"
        })));
        assert!(draft.addressed, "{kind}");
        assert_eq!(draft.text, "/new");
        assert_eq!(draft.external_id, "C1:1700000000.000300");
    }
    assert_eq!(payload::strip_mention("<@U0BOT|nexus>  hi", "U0BOT"), "hi");
    assert_eq!(payload::strip_mention("<@U9> hi", "U0BOT"), "<@U9> hi");
}

#[test]
fn a_reply_in_a_thread_the_bot_posted_in_is_addressed() {
    let reply = json!({
        "type": "message", "channel": "C1", "user": "U1", "text": "and then?",
        "ts": "1700000000.000500", "thread_ts": "1700000000.000100", "channel_type": "channel"
    });
    let threads = BotThreads::new(8);
    let check = |t: &BotThreads| {
        payload::map(&callback(), event(reply.clone()), &me(), |c, ts| {
            t.contains(c, ts)
        })
    };
    let before = delivered(check(&threads));
    assert!(!before.addressed);
    assert_eq!(before.reply_to.as_deref(), Some("1700000000.000100"));
    assert_eq!(before.chat.thread_id.as_deref(), Some("1700000000.000100"));
    threads.remember("C1", "1700000000.000100");
    assert!(delivered(check(&threads)).addressed);
    let mut under_bot = reply.clone();
    under_bot["parent_user_id"] = json!("U0BOT");
    assert!(delivered(map(under_bot)).addressed);
}

#[test]
fn the_bots_own_posts_and_non_message_subtypes_are_dropped() {
    let own = json!({"type": "message", "channel": "C1", "user": "U0BOT", "bot_id": "B0BOT", "text": "x", "ts": "1.1"});
    assert!(matches!(map(own), Mapped::Drop(_)));
    let own_bot_id = json!({"type": "message", "subtype": "bot_message", "channel": "C1", "bot_id": "B0BOT", "text": "x", "ts": "1.1"});
    assert!(matches!(map(own_bot_id), Mapped::Drop(_)));
    for subtype in ["message_changed", "message_deleted", "channel_join"] {
        let e = json!({"type": "message", "subtype": subtype, "channel": "C1", "user": "U1", "ts": "1.2"});
        assert!(matches!(map(e), Mapped::Drop(_)), "{subtype}");
    }
    let reaction = json!({"type": "reaction_added", "user": "U1"});
    assert!(matches!(map(reaction), Mapped::Drop(_)));
}

#[test]
fn other_bots_are_delivered_as_bots_and_file_shares_as_messages() {
    let bot = delivered(map(json!({
        "type": "message", "subtype": "bot_message", "channel": "C1", "bot_id": "B9",
        "username": "ci", "text": "build ok", "ts": "1.3"
    })));
    assert!(bot.sender.is_bot);
    assert_eq!(bot.sender.external_id, "B9");
    assert_eq!(bot.sender.display_name.as_deref(), Some("ci"));
    let share = delivered(map(json!({
        "type": "message", "subtype": "file_share", "channel": "D1", "channel_type": "im",
        "user": "U1", "text": "", "ts": "1.4",
        "files": [{"id": "F1", "name": "a.png", "mimetype": "image/png", "size": 3,
                   "url_private_download": "https://files.slack.com/x"}]
    })));
    assert_eq!(share.files.len(), 1);
    assert_eq!(share.files[0].display_name(), "a.png");
}

#[test]
fn ts_is_read_as_integers_not_floats() {
    let t = payload::ts_time("1700000000.123456").unwrap();
    assert_eq!(t.timestamp_micros(), 1_700_000_000_123_456);
    assert!(payload::ts_time("soon").is_none());
}

#[test]
fn socket_frames_parse_by_type_and_envelope_id() {
    assert_eq!(
        payload::frame(r#"{"type":"hello","num_connections":1}"#).unwrap(),
        Frame::Hello
    );
    assert_eq!(
        payload::frame(r#"{"type":"disconnect","reason":"refresh_requested"}"#).unwrap(),
        Frame::Disconnect {
            reason: "refresh_requested".into()
        }
    );
    let envelope = payload::frame(
        r#"{"envelope_id":"e1","type":"events_api","retry_attempt":2,"payload":{"type":"event_callback"}}"#,
    )
    .unwrap();
    assert_eq!(
        envelope,
        Frame::Envelope {
            envelope_id: "e1".into(),
            kind: "events_api".into(),
            payload: json!({"type": "event_callback"}),
            retry_attempt: 2
        }
    );
    assert!(payload::frame("not json").is_err());
}

fn signed(secret: &str, ts: i64, body: &[u8]) -> WebhookRequest {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{ts}:").as_bytes());
    mac.update(body);
    WebhookRequest {
        headers: vec![
            ("x-slack-request-timestamp".into(), ts.to_string()),
            (
                "x-slack-signature".into(),
                format!("v0={}", hex::encode(mac.finalize().into_bytes())),
            ),
        ],
        body: body.to_vec(),
    }
}

#[test]
fn signatures_are_checked_over_the_raw_body_within_five_minutes() {
    let secret = SecretString::from("s3cret".to_owned());
    let now = 1_700_000_000;
    let good = signed("s3cret", now - 299, b"{\"a\":1}");
    assert_eq!(verify_signature(&secret, &good, now), Ok(()));
    let mut tampered = good.clone();
    tampered.body = b"{\"a\":2}".to_vec();
    assert_eq!(
        verify_signature(&secret, &tampered, now),
        Err(Refusal::BadSignature)
    );
    let forged = signed("other", now, b"{}");
    assert_eq!(
        verify_signature(&secret, &forged, now),
        Err(Refusal::BadSignature)
    );
    let stale = signed("s3cret", now - 301, b"{}");
    assert_eq!(verify_signature(&secret, &stale, now), Err(Refusal::Stale));
    let missing = WebhookRequest {
        headers: vec![],
        body: b"{}".to_vec(),
    };
    assert_eq!(
        verify_signature(&secret, &missing, now),
        Err(Refusal::MissingHeaders)
    );
}

#[test]
fn web_api_answers_are_classified_once() {
    let ok = classify("auth.test", 200, None, br#"{"ok":true,"user_id":"U"}"#).unwrap();
    assert_eq!(ok["user_id"], "U");
    let wait = Some(Duration::from_secs(3));
    assert_eq!(
        classify(
            "chat.postMessage",
            429,
            wait,
            br#"{"ok":false,"error":"ratelimited"}"#
        ),
        Err(ChannelError::RateLimited { retry_after: wait })
    );
    assert!(matches!(
        classify(
            "auth.test",
            200,
            None,
            br#"{"ok":false,"error":"invalid_auth"}"#
        ),
        Err(ChannelError::Auth { .. })
    ));
    assert!(matches!(
        classify("chat.postMessage", 200, None, br#"{"ok":false,"error":"channel_not_found"}"#),
        Err(ChannelError::Rejected { message }) if message.contains("channel_not_found")
    ));
    assert!(matches!(
        classify(
            "chat.postMessage",
            200,
            None,
            br#"{"ok":false,"error":"internal_error"}"#
        ),
        Err(ChannelError::Transport { .. })
    ));
    assert!(matches!(
        classify("x", 503, None, b""),
        Err(ChannelError::Transport { .. })
    ));
    assert!(matches!(
        classify("x", 404, None, b""),
        Err(ChannelError::Rejected { .. })
    ));
    assert!(matches!(
        classify("x", 200, None, b"<html>"),
        Err(ChannelError::Transport { .. })
    ));
}

#[test]
fn remembered_threads_are_bounded_oldest_first() {
    let threads = BotThreads::new(2);
    threads.remember("C1", "1");
    threads.remember("C1", "2");
    threads.remember("C1", "1");
    threads.remember("C1", "3");
    assert!(threads.contains("C1", "1"));
    assert!(!threads.contains("C1", "2"));
    assert!(threads.contains("C1", "3"));
}

#[test]
fn stored_settings_become_a_config_and_missing_secrets_are_fatal() {
    let settings: ChannelSettings =
        serde_json::from_value(json!({"mode": "socket", "api_base": "http://127.0.0.1:9/api"}))
            .unwrap();
    let secrets = ChannelSecrets {
        bot_token: Some("xoxb-1".into()),
        app_token: Some("xapp-1".into()),
        ..Default::default()
    };
    let config = SlackConfig::from_settings(&settings, &secrets).unwrap();
    assert_eq!(config.api_base.as_str(), "http://127.0.0.1:9/api/");
    let shown = format!("{config:?}");
    assert!(
        !shown.contains("xoxb-1") && !shown.contains("xapp-1"),
        "{shown}"
    );
    let events = ChannelSettings {
        mode: ReceiveMode::Events,
        api_base: None,
        ..settings.clone()
    };
    assert!(matches!(
        SlackConfig::from_settings(&events, &secrets),
        Err(ChannelError::Fatal { message }) if message.contains("signing secret")
    ));
    let polling = ChannelSettings {
        mode: ReceiveMode::Polling,
        ..settings
    };
    assert!(matches!(
        SlackConfig::from_settings(&polling, &secrets),
        Err(ChannelError::Fatal { .. })
    ));
}
