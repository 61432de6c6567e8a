//! Wire tests of the fake: what a client sees must match the Bot API's behaviour. Shared
//! helpers and the API basics here; `updates` (polling, webhooks), `messages` (sending,
//! editing, what people say), `faults` (scripted faults).

mod faults;
mod messages;
mod updates;

use serde_json::{Value, json};

use super::FakeTelegram;
use crate::chat::{ChatPlatform, UserSays};

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::new()
}

pub(super) fn url(fake: &FakeTelegram, method: &str) -> String {
    format!("{}/bot{}/{method}", fake.base_url(), fake.token())
}

pub(super) async fn call(fake: &FakeTelegram, method: &str, params: Value) -> (u16, Value) {
    let resp = client()
        .post(url(fake, method))
        .json(&params)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

pub(super) async fn result(fake: &FakeTelegram, method: &str, params: Value) -> Value {
    let (status, body) = call(fake, method, params).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    body["result"].clone()
}

/// A private chat with user 42 exists once they said something.
pub(super) async fn dm(fake: &FakeTelegram) -> i64 {
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
