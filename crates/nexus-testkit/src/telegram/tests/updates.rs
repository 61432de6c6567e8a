//! getUpdates long polling and its conflicts; webhooks and their deliveries.

use std::time::Duration;

use serde_json::{Value, json};

use super::super::{FakeTelegram, WebhookEndpoint};
use super::{call, result};
use crate::chat::{ChatPlatform, UserSays};

#[tokio::test]
async fn a_long_poll_is_held_until_an_update_arrives() {
    let fake = std::sync::Arc::new(FakeTelegram::start().await);
    let poll = tokio::spawn({
        let fake = std::sync::Arc::clone(&fake);
        async move { result(&fake, "getUpdates", json!({"timeout": 10})).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!poll.is_finished(), "the poll waits");
    fake.say(UserSays::direct("42", "wake up")).await;
    let updates = tokio::time::timeout(Duration::from_secs(5), poll)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(updates[0]["message"]["text"], "wake up");
    let empty = result(
        &fake,
        "getUpdates",
        json!({"timeout": 0, "offset": updates[0]["update_id"].as_i64().unwrap() + 1}),
    )
    .await;
    assert_eq!(empty, json!([]), "a higher offset confirms the update");
    assert!(fake.pending_updates().is_empty());
}

#[tokio::test]
async fn a_second_poller_terminates_the_first_with_409() {
    let fake = std::sync::Arc::new(FakeTelegram::start().await);
    let first = tokio::spawn({
        let fake = std::sync::Arc::clone(&fake);
        async move { call(&fake, "getUpdates", json!({"timeout": 10})).await }
    });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let second = tokio::spawn({
        let fake = std::sync::Arc::clone(&fake);
        async move { call(&fake, "getUpdates", json!({"timeout": 1})).await }
    });
    let (status, body) = tokio::time::timeout(Duration::from_secs(5), first)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 409);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .starts_with("Conflict: terminated by other getUpdates request")
    );
    assert_eq!(second.await.unwrap().0, 200);
}

#[tokio::test]
async fn get_updates_is_refused_while_a_webhook_is_set() {
    let fake = FakeTelegram::start().await;
    let endpoint = WebhookEndpoint::serve(|_, _| async { (200, Vec::new()) }).await;
    result(
        &fake,
        "setWebhook",
        json!({"url": endpoint.url(), "secret_token": "s3cret_-"}),
    )
    .await;
    let (status, body) = call(&fake, "getUpdates", json!({})).await;
    assert_eq!(status, 409);
    assert!(
        body["description"]
            .as_str()
            .unwrap()
            .contains("webhook is active")
    );
    let info = result(&fake, "getWebhookInfo", json!({})).await;
    assert_eq!(info["url"], endpoint.url());
    result(&fake, "deleteWebhook", json!({})).await;
    assert_eq!(call(&fake, "getUpdates", json!({})).await.0, 200);
}

#[tokio::test]
async fn set_webhook_checks_the_secret_and_the_url() {
    let fake = FakeTelegram::start().await;
    let (status, _) = call(
        &fake,
        "setWebhook",
        json!({"url": "https://example.com/hook", "secret_token": "no spaces"}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &fake,
        "setWebhook",
        json!({"url": "https://example.com:9999/hook"}),
    )
    .await;
    assert_eq!(status, 400, "only ports 80, 88, 443, 8443");
    let (status, _) = call(
        &fake,
        "setWebhook",
        json!({"url": "http://example.com/hook"}),
    )
    .await;
    assert_eq!(status, 400, "HTTPS required off loopback");
    assert!(fake.webhook().is_none());
}

#[tokio::test]
async fn webhook_deliveries_carry_the_secret_and_are_retried_after_errors() {
    let fake = FakeTelegram::start().await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let endpoint = WebhookEndpoint::serve({
        let seen = std::sync::Arc::clone(&seen);
        move |headers: Vec<(String, String)>, body: Vec<u8>| {
            let seen = std::sync::Arc::clone(&seen);
            async move {
                let mut seen = seen.lock().unwrap();
                let secret = headers
                    .iter()
                    .find(|(n, _)| n == "x-telegram-bot-api-secret-token")
                    .map(|(_, v)| v.clone());
                seen.push((secret, serde_json::from_slice::<Value>(&body).unwrap()));
                (if seen.len() == 1 { 500 } else { 200 }, Vec::new())
            }
        }
    })
    .await;
    result(
        &fake,
        "setWebhook",
        json!({"url": endpoint.url(), "secret_token": "tok_1"}),
    )
    .await;
    let said = fake.say(UserSays::direct("42", "hi")).await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "retried once after the 500");
    assert_eq!(seen[0].0.as_deref(), Some("tok_1"));
    assert_eq!(
        seen[1].1["message"]["message_id"].to_string(),
        said.message_id
    );
    let statuses: Vec<_> = fake.webhook_deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses, [Some(500), Some(200)]);
    assert!(fake.pending_updates().is_empty());
    let forged = fake
        .post_to_webhook(
            &[("x-telegram-bot-api-secret-token", "forged")],
            b"{}".to_vec(),
        )
        .await;
    assert_eq!(
        forged,
        Some(200),
        "the helper posts anything and reports the status"
    );
}

#[tokio::test]
async fn updates_outside_allowed_updates_are_not_queued() {
    let fake = FakeTelegram::start().await;
    result(&fake, "getUpdates", json!({"allowed_updates": ["message"]})).await;
    assert!(
        fake.push_update(json!({"edited_message": {"message_id": 1}}))
            .is_none()
    );
    assert!(
        fake.push_update(json!({"message": {"message_id": 1}}))
            .is_some()
    );
}
