//! Wire tests of the fake: what a client sees must match the Bot API's behaviour.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeTelegram, Fault, WebhookEndpoint};
use crate::chat::{ChatPlatform, FakeFile, UserSays};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn url(fake: &FakeTelegram, method: &str) -> String {
    format!("{}/bot{}/{method}", fake.base_url(), fake.token())
}

async fn call(fake: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let resp = client()
        .post(url(fake, method))
        .json(&params)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn result(fake: &FakeTelegram, method: &str, params: Value) -> Value {
    let (status, body) = call(fake, method, params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    body["result"].clone()
}

/// A private chat with user 42 exists once they said something.
async fn dm(fake: &FakeTelegram) -> i64 {
    fake.say(UserSays::direct("42", "hello")).await;
    42
}

#[tokio::test]
async fn wrong_token_is_401_and_malformed_token_is_404() {
    let fake = FakeTelegram::start().await;
    let wrong = client()
        .get(format!("{}/bot1:nope/getMe", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let body: Value = wrong.json().await.unwrap();
    assert_eq!(
        body,
        json!({"ok": false, "error_code": 401, "description": "Unauthorized"})
    );
    let malformed = client()
        .get(format!("{}/botnotatoken/getMe", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 404);
}

#[tokio::test]
async fn methods_are_case_insensitive_and_unknown_ones_are_404() {
    let fake = FakeTelegram::start().await;
    let me = result(&fake, "GETME", json!({})).await;
    assert_eq!(me["username"], "nexus_fake_bot");
    assert_eq!(me["is_bot"], true);
    assert_eq!(me["id"], fake.bot_id());
    let (status, body) = call(&fake, "sendTelepathy", json!({})).await;
    assert_eq!(
        (status, body["description"].as_str()),
        (404, Some("Not Found"))
    );
}

#[tokio::test]
async fn parameters_are_read_from_query_form_json_and_multipart() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    let query = client()
        .get(format!(
            "{}?chat_id={chat}&text=via+query",
            url(&fake, "sendMessage")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(query.status(), 200);
    let form = client()
        .post(url(&fake, "sendMessage"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "chat_id={chat}&text=via%20form&link_preview_options=%7B%22is_disabled%22%3Atrue%7D"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "via json"}),
    )
    .await;
    let boundary = "XyZ";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"chat_id\"\r\n\r\n{chat}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"document\"; filename=\"a.pdf\"\r\n\
         Content-Type: application/pdf\r\n\r\n%PDF\r\n--{boundary}--\r\n"
    );
    let resp = client()
        .post(url(&fake, "sendDocument"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let texts: Vec<String> = fake.bot_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["via query", "via form", "via json", ""]);
    assert_eq!(
        fake.calls("sendMessage")[1]["link_preview_options"],
        json!({"is_disabled": true})
    );
    let sent = &fake.sent_files()[0];
    assert_eq!(
        (sent.filename.as_deref(), sent.bytes.as_slice()),
        (Some("a.pdf"), &b"%PDF"[..])
    );
}

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

#[tokio::test]
async fn scripted_errors_answer_with_the_real_envelope() {
    let fake = FakeTelegram::start().await;
    fake.fail_next("getMe", 1, Fault::RateLimited { retry_after: 3 });
    fake.fail_next("getme", 1, Fault::ServerError { status: 502 });
    fake.fail_next("getMe", 1, Fault::MigratedTo { chat_id: -100_777 });
    fake.fail_next(
        "getMe",
        1,
        Fault::Error {
            status: 403,
            description: "Forbidden: bot was blocked by the user".into(),
        },
    );
    let (s, b) = call(&fake, "getMe", json!({})).await;
    assert_eq!((s, b["parameters"]["retry_after"].as_i64()), (429, Some(3)));
    assert_eq!(b["description"], "Too Many Requests: retry after 3");
    assert_eq!(call(&fake, "getMe", json!({})).await.0, 502);
    let (s, b) = call(&fake, "getMe", json!({})).await;
    assert_eq!(
        (s, b["parameters"]["migrate_to_chat_id"].as_i64()),
        (400, Some(-100_777))
    );
    assert_eq!(call(&fake, "getMe", json!({})).await.0, 403);
    assert_eq!(
        call(&fake, "getMe", json!({})).await.0,
        200,
        "faults are used up"
    );
}

#[tokio::test]
async fn a_dropped_connection_malformed_and_oversized_bodies_can_be_scripted() {
    let fake = FakeTelegram::start().await;
    fake.fail_next("getUpdates", 1, Fault::DropConnection);
    fake.fail_next("getUpdates", 1, Fault::MalformedBody);
    fake.fail_next("getUpdates", 1, Fault::OversizedBody { bytes: 100_000 });
    let dropped = client()
        .post(url(&fake, "getUpdates"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await;
    assert!(dropped.is_err(), "the body never completes");
    let malformed = client()
        .post(url(&fake, "getUpdates"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(serde_json::from_slice::<Value>(&malformed).is_err());
    let big = client()
        .post(url(&fake, "getUpdates"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(big.len(), 100_000);
    assert_eq!(
        serde_json::from_slice::<Value>(&big).unwrap()["result"],
        json!([])
    );
}

#[tokio::test]
async fn rejected_entities_are_forced_only_on_calls_with_a_parse_mode() {
    let fake = FakeTelegram::start().await;
    let chat = dm(&fake).await;
    fake.fail_next("sendMessage", 1, Fault::RejectEntities);
    result(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "plain"}),
    )
    .await;
    let (s, b) = call(
        &fake,
        "sendMessage",
        json!({"chat_id": chat, "text": "<b>x</b>", "parse_mode": "HTML"}),
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        b["description"]
            .as_str()
            .unwrap()
            .contains("can't parse entities")
    );
}

#[tokio::test]
async fn a_duplicated_update_is_delivered_twice_with_one_id() {
    let fake = FakeTelegram::start().await;
    fake.duplicate_next_update();
    fake.say(UserSays::direct("42", "twice")).await;
    let updates = result(&fake, "getUpdates", json!({})).await;
    assert_eq!(updates.as_array().unwrap().len(), 2);
    assert_eq!(updates[0]["update_id"], updates[1]["update_id"]);
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
