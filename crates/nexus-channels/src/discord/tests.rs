//! Unit tests of the Discord pieces that need no server: mapping, error classification, close
//! codes, the frame budget, rate-limit buckets (paused time) and configuration.

use std::time::Duration;

use nexus_core::{ChannelCredentialId, ChannelError, ChatRef, Conversation, OutboundMessage};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde_json::json;
use tokio::time::Instant;

use super::client::classify;
use super::config::{self, DEFAULT_INTENTS, DiscordConfig};
use super::payload::{self, Message};
use super::protocol::{self, CloseAction, FrameBudget};
use super::ratelimit::{RateLimits, Route};
use crate::settings::{ChannelSecrets, ChannelSettings, ReceiveMode};

const BOT: &str = "1100000000000000001";

fn message(extra: serde_json::Value) -> Message {
    let mut base = json!({
        "id": "10", "channel_id": "20", "guild_id": "30",
        "author": {"id": "42", "username": "ada", "global_name": null},
        "content": "hello", "timestamp": "2024-05-01T12:00:00.000000+00:00",
        "mentions": [], "attachments": [], "type": 0,
    });
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    serde_json::from_value(base).unwrap()
}

#[test]
fn a_leading_bot_mention_is_stripped_in_both_forms() {
    assert_eq!(
        payload::strip_mention(&format!("<@{BOT}> /new"), BOT),
        "/new"
    );
    assert_eq!(
        payload::strip_mention(&format!("  <@!{BOT}>   hi"), BOT),
        "hi"
    );
    assert_eq!(payload::strip_mention("<@999> hi", BOT), "<@999> hi");
    assert_eq!(
        payload::strip_mention(&format!("hi <@{BOT}>"), BOT),
        format!("hi <@{BOT}>")
    );
}

#[test]
fn a_guild_message_maps_to_an_unaddressed_group_message_with_discord_ids() {
    let m = payload::inbound(&message(json!({})), BOT, ChannelCredentialId::new());
    assert_eq!(m.external_id, "10");
    assert_eq!(
        m.chat,
        ChatRef {
            chat_id: "20".into(),
            thread_id: None
        }
    );
    assert_eq!(m.conversation, Conversation::Group);
    assert!(!m.addressed);
    assert_eq!(
        m.sender.display_name.as_deref(),
        Some("ada"),
        "username when no global name"
    );
    assert_eq!(m.metadata["discord_guild_id"], "30");
    assert_eq!(m.received_at.to_rfc3339(), "2024-05-01T12:00:00+00:00");
}

#[test]
fn mentions_dms_and_replies_to_the_bot_address_it_but_other_mentions_do_not() {
    let bot = json!({"id": BOT, "username": "nexus-bot", "bot": true});
    let other = json!({"id": "77", "username": "bob"});
    let id = ChannelCredentialId::new();
    assert!(payload::inbound(&message(json!({"mentions": [bot.clone()]})), BOT, id).addressed);
    assert!(!payload::inbound(&message(json!({"mentions": [other.clone()]})), BOT, id).addressed);
    let dm = payload::inbound(&message(json!({"guild_id": null})), BOT, id);
    assert!(dm.addressed);
    assert_eq!(dm.conversation, Conversation::Direct);
    let reply = message(
        json!({"message_reference": {"message_id": "5"}, "referenced_message": {"author": bot}}),
    );
    let reply = payload::inbound(&reply, BOT, id);
    assert!(reply.addressed);
    assert_eq!(reply.reply_to.as_deref(), Some("5"));
    let to_other = message(
        json!({"message_reference": {"message_id": "6"}, "referenced_message": {"author": other}}),
    );
    assert!(!payload::inbound(&to_other, BOT, id).addressed);
}

#[test]
fn system_messages_are_not_chat() {
    assert!(message(json!({"type": 19})).is_chat());
    assert!(!message(json!({"type": 7})).is_chat(), "a member join");
}

#[test]
fn the_create_body_never_pings_and_references_the_replied_message() {
    let out = OutboundMessage {
        chat: ChatRef {
            chat_id: "20".into(),
            thread_id: None,
        },
        text: "hi".into(),
        reply_to: Some("5".into()),
        attachments: Vec::new(),
    };
    let body = payload::create_body(&out, &["a.png".to_owned()]);
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    assert_eq!(
        body["message_reference"],
        json!({"message_id": "5", "fail_if_not_exists": false})
    );
    assert_eq!(body["attachments"], json!([{"id": 0, "filename": "a.png"}]));
}

fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (name, value) in pairs {
        h.insert(*name, HeaderValue::from_str(value).unwrap());
    }
    h
}

#[test]
fn http_failures_are_classified_once() {
    let none = HeaderMap::new();
    let unauthorized = classify(
        StatusCode::UNAUTHORIZED,
        &none,
        br#"{"message": "401: Unauthorized", "code": 0}"#,
    );
    assert!(matches!(unauthorized, ChannelError::Auth { .. }));
    let limited = classify(
        StatusCode::TOO_MANY_REQUESTS,
        &headers(&[("retry-after", "2")]),
        br#"{"retry_after": 1.5, "global": false}"#,
    );
    assert_eq!(
        limited,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_millis(1500))
        }
    );
    let header_only = classify(
        StatusCode::TOO_MANY_REQUESTS,
        &headers(&[("retry-after", "2")]),
        b"",
    );
    assert_eq!(
        header_only,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    let form = br#"{"code": 50035, "message": "Invalid Form Body", "errors": {"content": {"_errors": [{"code": "BASE_TYPE_MAX_LENGTH", "message": "Must be 2000 or fewer in length."}]}}}"#;
    match classify(StatusCode::BAD_REQUEST, &none, form) {
        ChannelError::Rejected { message } => {
            assert_eq!(
                message,
                "Discord error 50035: Invalid Form Body (content: Must be 2000 or fewer in length.)"
            );
        }
        other => panic!("{other:?}"),
    }
    let forbidden = classify(
        StatusCode::FORBIDDEN,
        &none,
        br#"{"code": 50013, "message": "Missing Permissions"}"#,
    );
    assert!(matches!(forbidden, ChannelError::Rejected { .. }));
    assert!(matches!(
        classify(StatusCode::BAD_GATEWAY, &none, b"<html>"),
        ChannelError::Transport { .. }
    ));
}

#[test]
fn close_codes_decide_between_resume_identify_and_stop() {
    for code in [1000, 1001, 1006, 4000, 4001, 4002, 4003, 4005, 4008] {
        assert_eq!(protocol::on_close(code), CloseAction::Resume, "{code}");
    }
    for code in [4007, 4009] {
        assert_eq!(protocol::on_close(code), CloseAction::Identify, "{code}");
    }
    assert!(matches!(
        protocol::on_close(4004),
        CloseAction::Stop(ChannelError::Auth { .. })
    ));
    for code in 4010..=4014 {
        assert!(
            matches!(
                protocol::on_close(code),
                CloseAction::Stop(ChannelError::Fatal { .. })
            ),
            "{code}"
        );
    }
}

#[test]
fn gateway_frames_are_small_and_carry_what_discord_needs() {
    let token = SecretString::from("t0ken".to_owned());
    let identify = protocol::identify(&token, DEFAULT_INTENTS);
    assert!(identify.len() <= protocol::MAX_CLIENT_FRAME);
    let v: serde_json::Value = serde_json::from_str(&identify).unwrap();
    assert_eq!(
        (v["op"].as_u64(), v["d"]["intents"].as_u64()),
        (Some(2), Some(37377))
    );
    assert_eq!(protocol::heartbeat(None), r#"{"d":null,"op":1}"#);
    let url = protocol::connect_url(&url::Url::parse("wss://gateway.discord.gg").unwrap());
    assert_eq!(url.as_str(), "wss://gateway.discord.gg/?v=10&encoding=json");
}

#[tokio::test(start_paused = true)]
async fn the_frame_budget_allows_120_frames_a_minute_and_keeps_a_reserve() {
    let mut budget = FrameBudget::default();
    let start = Instant::now();
    for _ in 0..110 {
        assert!(budget.take(start, 10));
    }
    assert!(
        !budget.take(start, 10),
        "the reserve is kept for heartbeats"
    );
    for _ in 0..10 {
        assert!(budget.take(start, 0));
    }
    assert!(!budget.take(start, 0));
    assert_eq!(budget.next_slot(start), start + Duration::from_secs(60));
    tokio::time::advance(Duration::from_secs(60)).await;
    assert!(budget.take(Instant::now(), 0));
}

#[tokio::test(start_paused = true)]
async fn an_exhausted_bucket_holds_the_next_call_until_it_resets() {
    let limits = RateLimits::default();
    let route = Route::new("POST /channels/{id}/messages", "20");
    let h = headers(&[
        ("x-ratelimit-bucket", "abc"),
        ("x-ratelimit-remaining", "0"),
        ("x-ratelimit-reset-after", "2.5"),
    ]);
    limits.update(&route, &h);
    let started = Instant::now();
    limits
        .acquire(&route, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_millis(2500));
    let elsewhere = Route::new("POST /channels/{id}/messages", "21");
    let started = Instant::now();
    limits
        .acquire(&elsewhere, Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        started.elapsed(),
        Duration::ZERO,
        "another channel is another bucket"
    );
}

#[tokio::test(start_paused = true)]
async fn a_global_limit_holds_every_route_and_a_long_one_is_refused() {
    let limits = RateLimits::default();
    let send = Route::new("POST /channels/{id}/messages", "20");
    let typing = Route::new("POST /channels/{id}/typing", "21");
    limits.limited(&send, true, Duration::from_secs(3));
    let err = limits
        .acquire(&typing, Duration::from_secs(1))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(3))
        }
    );
    let started = Instant::now();
    limits
        .acquire(&typing, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(started.elapsed(), Duration::from_secs(3));
}

#[test]
fn config_comes_from_settings_and_refuses_what_cannot_work() {
    let mut settings = ChannelSettings {
        mode: ReceiveMode::Gateway,
        api_base: Some("http://127.0.0.1:9/api/v10".into()),
        gateway_url: Some("ws://127.0.0.1:9/gateway".into()),
        webhook_url: None,
        access: Default::default(),
    };
    let secrets = ChannelSecrets {
        token: Some("t0ken".into()),
        ..Default::default()
    };
    let config = DiscordConfig::from_settings(&settings, &secrets).unwrap();
    assert_eq!(config.intents, 37377);
    assert!(
        !format!("{config:?}").contains("t0ken"),
        "the token never shows"
    );
    assert!(config::validate(&config).is_ok());
    let missing = DiscordConfig::from_settings(&settings, &ChannelSecrets::default()).unwrap_err();
    assert!(matches!(missing, ChannelError::Fatal { .. }));
    settings.gateway_url = Some("https://not-a-socket".into());
    let wrong = DiscordConfig::from_settings(&settings, &secrets).unwrap();
    assert!(matches!(
        config::validate(&wrong),
        Err(ChannelError::Fatal { .. })
    ));
    let default = DiscordConfig::new(SecretString::from("x".to_owned()));
    assert_eq!(default.api_base.as_str(), "https://discord.com/api/v10");
    assert!(default.gateway_url.is_none());
}
