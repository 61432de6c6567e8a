//! Wire tests of the fake's REST side: what a client sees must match Discord's shapes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeDiscord, FakeDiscordConfig, RestFault};

async fn call(
    fake: &FakeDiscord,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", fake.api_base()))
        .header("authorization", format!("Bot {}", fake.token()));
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

async fn post_message(fake: &FakeDiscord, channel: &str, body: Value) -> reqwest::Response {
    call(
        fake,
        reqwest::Method::POST,
        &format!("/channels/{channel}/messages"),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn a_wrong_token_gets_discords_401_body() {
    let fake = FakeDiscord::start().await;
    let response = reqwest::Client::new()
        .get(format!("{}/users/@me", fake.api_base()))
        .header("authorization", "Bot nope")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"message": "401: Unauthorized", "code": 0}));
}

#[tokio::test]
async fn gateway_bot_names_the_fakes_gateway() {
    let fake = FakeDiscord::start().await;
    let body: Value = call(&fake, reqwest::Method::GET, "/gateway/bot", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["url"], fake.gateway_url());
    assert_eq!(body["session_start_limit"]["max_concurrency"], 1);
}

#[tokio::test]
async fn answers_carry_bucket_headers_and_the_sixth_message_in_a_window_gets_a_429() {
    let fake = FakeDiscord::start().await;
    fake.add_channel("1");
    for left in (0..5).rev() {
        let response = post_message(&fake, "1", json!({"content": "hi"})).await;
        assert_eq!(response.status(), 200);
        let h = response.headers();
        assert_eq!(h["x-ratelimit-limit"], "5");
        assert_eq!(h["x-ratelimit-remaining"], left.to_string().as_str());
        assert!(h.contains_key("x-ratelimit-reset") && h.contains_key("x-ratelimit-bucket"));
        let reset_after: f64 = h["x-ratelimit-reset-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(reset_after > 0.0 && reset_after <= 5.0);
    }
    let limited = post_message(&fake, "1", json!({"content": "one too many"})).await;
    assert_eq!(limited.status(), 429);
    assert_eq!(limited.headers()["x-ratelimit-scope"], "user");
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["message"], "You are being rate limited.");
    assert_eq!(body["global"], false);
    assert!(body["retry_after"].as_f64().unwrap() > 0.0);
}

#[tokio::test]
async fn an_injected_global_429_says_so_in_headers_and_body() {
    let fake = FakeDiscord::start().await;
    fake.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_millis(1500),
        global: true,
    });
    let response = call(&fake, reqwest::Method::GET, "/users/@me", None).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["x-ratelimit-global"], "true");
    assert_eq!(response.headers()["x-ratelimit-scope"], "global");
    assert_eq!(response.headers()["retry-after"], "2");
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (body["retry_after"].as_f64(), body["global"].as_bool()),
        (Some(1.5), Some(true))
    );
}

#[tokio::test]
async fn invalid_messages_get_discords_error_codes() {
    let fake = FakeDiscord::start().await;
    fake.add_channel("1");
    let long = post_message(&fake, "1", json!({"content": "x".repeat(2001)})).await;
    assert_eq!(long.status(), 400);
    let body: Value = long.json().await.unwrap();
    assert_eq!(body["code"], 50035);
    assert_eq!(
        body["errors"]["content"]["_errors"][0]["code"],
        "BASE_TYPE_MAX_LENGTH"
    );
    let empty: Value = post_message(&fake, "1", json!({"content": ""}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(empty["code"], 50006);
    let unknown = post_message(&fake, "2", json!({"content": "hi"})).await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(unknown.json::<Value>().await.unwrap()["code"], 10003);
    let edit = call(
        &fake,
        reqwest::Method::PATCH,
        "/channels/1/messages/123",
        Some(json!({"content": "x"})),
    )
    .await;
    assert_eq!(edit.json::<Value>().await.unwrap()["code"], 10008);
}

#[tokio::test]
async fn typing_answers_204_and_is_counted() {
    use crate::chat::ChatPlatform;
    let fake = FakeDiscord::start().await;
    fake.add_channel("1");
    let response = call(&fake, reqwest::Method::POST, "/channels/1/typing", None).await;
    assert_eq!(response.status(), 204);
    assert_eq!(fake.typing_count("1"), 1);
}

#[tokio::test]
async fn multipart_files_become_attachments_served_by_the_cdn() {
    let fake = FakeDiscord::start().await;
    fake.add_channel("1");
    let boundary = "XyZ";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"payload_json\"\r\nContent-Type: application/json\r\n\r\n\
         {{\"content\":\"see file\",\"attachments\":[{{\"id\":0,\"filename\":\"a.txt\"}}]}}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"files[0]\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n\
         hello file\r\n--{boundary}--\r\n"
    );
    let response = reqwest::Client::new()
        .post(format!("{}/channels/1/messages", fake.api_base()))
        .header("authorization", format!("Bot {}", fake.token()))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["content"], "see file");
    let url = message["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = reqwest::get(url).await.unwrap();
    assert_eq!(file.headers()["content-type"], "text/plain");
    assert_eq!(file.text().await.unwrap(), "hello file");
    assert_eq!(fake.requests()[0].files[0].field, "files[0]");
}

#[tokio::test]
async fn a_dm_channel_is_opened_once_per_user() {
    let fake = FakeDiscord::start_with(FakeDiscordConfig::default()).await;
    let open = || {
        call(
            &fake,
            reqwest::Method::POST,
            "/users/@me/channels",
            Some(json!({"recipient_id": "42"})),
        )
    };
    let first: Value = open().await.json().await.unwrap();
    let second: Value = open().await.json().await.unwrap();
    assert_eq!(first["type"], 1);
    assert_eq!(first["id"], second["id"]);
}
