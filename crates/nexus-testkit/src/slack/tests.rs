use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use super::*;
use crate::chat::{FakeFile, UserSays};

async fn call(
    fake: &FakeSlack,
    method: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}{method}", fake.base_url()))
        .header("content-type", "application/json; charset=utf-8")
        .body(body.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let retry = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, retry, response.json().await.unwrap())
}

fn fast_config() -> FakeSlackConfig {
    FakeSlackConfig {
        events_timeout: Duration::from_millis(300),
        events_retry_delays: vec![
            Duration::ZERO,
            Duration::from_millis(50),
            Duration::from_millis(50),
        ],
        echo_bot_messages: false,
        ..FakeSlackConfig::default()
    }
}

type Seen = Arc<Mutex<Vec<(Vec<(String, String)>, Value)>>>;

/// A Request URL that records what it gets and answers `statuses` in turn (then 200).
async fn receiver(statuses: Vec<u16>, delay: Duration) -> (WebhookHost, Seen) {
    let seen: Seen = Arc::default();
    let statuses = Arc::new(Mutex::new(statuses));
    let host = {
        let seen = Arc::clone(&seen);
        WebhookHost::start(move |headers, body| {
            let seen = Arc::clone(&seen);
            let statuses = Arc::clone(&statuses);
            async move {
                let value: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                seen.lock().unwrap().push((headers, value));
                let status = {
                    let mut s = statuses.lock().unwrap();
                    if s.is_empty() { 200 } else { s.remove(0) }
                };
                tokio::time::sleep(delay).await;
                (status, Vec::new(), Vec::new())
            }
        })
        .await
    };
    (host, seen)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn auth_test_names_the_bot_and_wrong_tokens_fail_with_http_200() {
    let fake = FakeSlack::start().await;
    let (status, _, body) = call(&fake, "auth.test", Some(DEFAULT_BOT_TOKEN), json!({})).await;
    assert_eq!(status, 200);
    assert_eq!(body["ok"], true);
    assert_eq!(body["user_id"], DEFAULT_BOT_USER_ID);
    assert_eq!(body["bot_id"], "B0BOT");
    let (status, _, body) = call(&fake, "auth.test", Some("xoxb-wrong"), json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (200, Some("invalid_auth"))
    );
    let (_, _, body) = call(&fake, "auth.test", None, json!({})).await;
    assert_eq!(body["error"], "not_authed");
}

#[tokio::test]
async fn posts_get_unique_increasing_ts_and_show_as_bot_messages_in_their_thread() {
    let fake = FakeSlack::start().await;
    fake.create_channel("C1");
    let post = |text: &str, thread: Option<&str>| {
        let mut body = json!({"channel": "C1", "text": text});
        if let Some(t) = thread {
            body["thread_ts"] = json!(t);
        }
        body
    };
    let (_, _, first) = call(
        &fake,
        "chat.postMessage",
        Some(DEFAULT_BOT_TOKEN),
        post("one", None),
    )
    .await;
    let ts1 = first["ts"].as_str().unwrap().to_owned();
    let (_, _, second) = call(
        &fake,
        "chat.postMessage",
        Some(DEFAULT_BOT_TOKEN),
        post("two", Some(&ts1)),
    )
    .await;
    let ts2 = second["ts"].as_str().unwrap().to_owned();
    assert!(ts2 > ts1, "{ts2} after {ts1}");
    assert_eq!(first["channel"], "C1");
    assert_eq!(first["message"]["bot_id"], "B0BOT");
    let messages = fake.bot_messages();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[1].thread_id.as_deref(), Some(ts1.as_str()));
    assert_eq!(fake.typing_count("C1"), 0);
}

#[tokio::test]
async fn post_message_refuses_unknown_channels_empty_and_overlong_text() {
    let fake = FakeSlack::start().await;
    fake.create_channel("C1");
    let token = Some(DEFAULT_BOT_TOKEN);
    let (_, _, body) = call(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "C404", "text": "x"}),
    )
    .await;
    assert_eq!(body["error"], "channel_not_found");
    let (_, _, body) = call(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "C1", "text": ""}),
    )
    .await;
    assert_eq!(body["error"], "no_text");
    let long = "a".repeat(40_001);
    let (_, _, body) = call(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "C1", "text": long}),
    )
    .await;
    assert_eq!(body["error"], "msg_too_long");
    assert!(fake.bot_messages().is_empty());
}

#[tokio::test]
async fn form_bodies_work_and_json_without_charset_is_warned() {
    let fake = FakeSlack::start().await;
    fake.create_channel("C1");
    let response = reqwest::Client::new()
        .post(format!("{}chat.postMessage", fake.base_url()))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "token={DEFAULT_BOT_TOKEN}&channel=C1&text=hello+w%C3%B6rld"
        ))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["ok"], true);
    assert_eq!(fake.bot_messages()[0].text, "hello wörld");
    let response = reqwest::Client::new()
        .post(format!("{}auth.test", fake.base_url()))
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["response_metadata"]["warnings"][0], "missing_charset");
    assert_eq!(
        fake.calls_to("auth.test")[0].warnings,
        vec!["missing_charset"]
    );
}

#[tokio::test]
async fn update_edits_only_the_bots_own_messages() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let said = fake.say(UserSays::group("U1", "C1", "hi")).await;
    let token = Some(DEFAULT_BOT_TOKEN);
    let (_, _, posted) = call(
        &fake,
        "chat.postMessage",
        token,
        json!({"channel": "C1", "text": "draft"}),
    )
    .await;
    let ts = posted["ts"].as_str().unwrap();
    let (_, _, body) = call(
        &fake,
        "chat.update",
        token,
        json!({"channel": "C1", "ts": ts, "text": "final"}),
    )
    .await;
    assert_eq!(
        (body["ok"].as_bool(), body["text"].as_str()),
        (Some(true), Some("final"))
    );
    let (_, _, body) = call(
        &fake,
        "chat.update",
        token,
        json!({"channel": "C1", "ts": said.message_id, "text": "x"}),
    )
    .await;
    assert_eq!(body["error"], "cant_update_message");
    let (_, _, body) = call(
        &fake,
        "chat.update",
        token,
        json!({"channel": "C1", "ts": "1.000001", "text": "x"}),
    )
    .await;
    assert_eq!(body["error"], "message_not_found");
    let messages = fake.bot_messages();
    assert_eq!((messages[0].text.as_str(), messages[0].edits), ("final", 1));
}

#[tokio::test]
async fn connections_open_needs_the_app_token_and_the_app_token_nothing_else() {
    let fake = FakeSlack::start().await;
    let (_, _, body) = call(
        &fake,
        "apps.connections.open",
        Some(DEFAULT_BOT_TOKEN),
        json!({}),
    )
    .await;
    assert_eq!(body["error"], "not_allowed_token_type");
    let (_, _, body) = call(
        &fake,
        "apps.connections.open",
        Some(DEFAULT_APP_TOKEN),
        json!({}),
    )
    .await;
    assert!(
        body["url"].as_str().unwrap().starts_with("ws://127.0.0.1:"),
        "{body}"
    );
    let (_, _, body) = call(&fake, "auth.test", Some(DEFAULT_APP_TOKEN), json!({})).await;
    assert_eq!(body["error"], "not_allowed_token_type");
}

#[tokio::test]
async fn scripted_rate_limits_and_errors_hit_the_next_calls_only() {
    let fake = FakeSlack::start().await;
    fake.rate_limit("auth.test", 1, 7);
    fake.fail("auth.test", "internal_error", 1);
    let (status, retry, body) = call(&fake, "auth.test", Some(DEFAULT_BOT_TOKEN), json!({})).await;
    assert_eq!((status, retry.as_deref()), (429, Some("7")));
    assert_eq!(body["error"], "ratelimited");
    let (status, _, body) = call(&fake, "auth.test", Some(DEFAULT_BOT_TOKEN), json!({})).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (200, Some("internal_error"))
    );
    let (_, _, body) = call(&fake, "auth.test", Some(DEFAULT_BOT_TOKEN), json!({})).await;
    assert_eq!(body["ok"], true);
}

#[tokio::test]
async fn files_download_with_the_bot_token_and_show_a_sign_in_page_without() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let (host, seen) = receiver(vec![], Duration::ZERO).await;
    fake.use_events_api(&host.url(), "secret");
    let file = FakeFile {
        name: "a.png".into(),
        content_type: "image/png".into(),
        bytes: vec![1, 2, 3],
    };
    fake.say(UserSays::direct("U1", "look").with_file(file))
        .await;
    let event = seen.lock().unwrap()[0].1["event"].clone();
    assert_eq!(event["subtype"], "file_share");
    let url = event["files"][0]["url_private_download"]
        .as_str()
        .unwrap()
        .to_owned();
    let http = reqwest::Client::new();
    let ok = http
        .get(&url)
        .bearer_auth(DEFAULT_BOT_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.bytes().await.unwrap().as_ref(), &[1, 2, 3]);
    let refused = http.get(&url).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 200);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

#[tokio::test]
async fn a_channel_mention_comes_as_app_mention_and_message_signed_for_the_same_post() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let (host, seen) = receiver(vec![], Duration::ZERO).await;
    fake.use_events_api(&host.url(), "secret");
    let said = fake
        .say(UserSays::group("U1", "C1", "hi").mentioning())
        .await;
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let kinds: Vec<&str> = seen
        .iter()
        .map(|(_, v)| v["event"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["app_mention", "message"]);
    assert_ne!(seen[0].1["event_id"], seen[1].1["event_id"]);
    for (headers, value) in &seen {
        assert_eq!(value["event"]["ts"], said.message_id.as_str());
        assert_eq!(value["event"]["text"], "<@U0BOT> hi");
        let ts: i64 = header(headers, "x-slack-request-timestamp")
            .unwrap()
            .parse()
            .unwrap();
        let body = serde_json::to_vec(value).unwrap();
        assert_eq!(
            header(headers, "x-slack-signature"),
            Some(sign("secret", ts, &body).as_str())
        );
    }
}

#[tokio::test]
async fn failed_deliveries_are_retried_with_retry_headers_until_answered() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let (host, seen) = receiver(vec![500, 503], Duration::ZERO).await;
    fake.use_events_api(&host.url(), "secret");
    fake.say(UserSays::direct("U1", "hi")).await;
    fake.wait_for("three attempts", |f| f.event_attempts().len() == 3)
        .await;
    let attempts = fake.event_attempts();
    assert_eq!(attempts[0].outcome, AttemptOutcome::Answered(500));
    assert_eq!(
        (attempts[1].retry_num, attempts[1].retry_reason.as_deref()),
        (1, Some("http_error"))
    );
    assert_eq!(
        (attempts[2].retry_num, &attempts[2].outcome),
        (2, &AttemptOutcome::Answered(200))
    );
    let seen = seen.lock().unwrap();
    assert_eq!(header(&seen[2].0, "x-slack-retry-num"), Some("2"));
    assert_eq!(header(&seen[0].0, "x-slack-retry-num"), None);
}

#[tokio::test]
async fn a_slow_answer_is_retried_as_http_timeout() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let (host, _seen) = receiver(vec![], Duration::from_millis(500)).await;
    fake.use_events_api(&host.url(), "secret");
    fake.say(UserSays::direct("U1", "hi")).await;
    fake.wait_for("a retry", |f| f.event_attempts().len() >= 2)
        .await;
    let attempts = fake.event_attempts();
    assert_eq!(attempts[0].outcome, AttemptOutcome::TimedOut);
    assert_eq!(attempts[1].retry_reason.as_deref(), Some("http_timeout"));
}

#[tokio::test]
async fn x_slack_no_retry_stops_retries() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let host = WebhookHost::start(|_, _| async {
        (
            500,
            vec![("x-slack-no-retry".to_owned(), "1".to_owned())],
            Vec::new(),
        )
    })
    .await;
    fake.use_events_api(&host.url(), "secret");
    fake.say(UserSays::direct("U1", "hi")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fake.event_attempts().len(), 1);
}

#[tokio::test]
async fn url_verification_and_raw_posts_reach_the_request_url() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let (host, seen) = receiver(vec![], Duration::ZERO).await;
    fake.use_events_api(&host.url(), "secret");
    let answer = fake.send_url_verification("abc").await.unwrap();
    assert_eq!(answer.status, 200);
    fake.post_raw(
        b"raw".to_vec(),
        vec![("x-slack-signature".into(), "v0=00".into())],
    )
    .await
    .unwrap();
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].1["type"], "url_verification");
    assert_eq!(seen[0].1["challenge"], "abc");
    assert_eq!(header(&seen[1].0, "x-slack-signature"), Some("v0=00"));
    assert_eq!(header(&seen[1].0, "x-slack-request-timestamp"), None);
}

#[tokio::test]
async fn a_bot_author_and_a_thread_reply_carry_bot_id_and_parent() {
    let fake = FakeSlack::start_with(fast_config()).await;
    let (host, seen) = receiver(vec![], Duration::ZERO).await;
    fake.use_events_api(&host.url(), "secret");
    let parent = fake.say(UserSays::group("U1", "C1", "top")).await;
    fake.say(
        UserSays::group("U2", "C1", "beep")
            .from_bot()
            .in_thread(&parent.message_id),
    )
    .await;
    let event = seen.lock().unwrap()[1].1["event"].clone();
    assert_eq!(event["subtype"], "bot_message");
    assert!(event["bot_id"].is_string());
    assert_eq!(event["thread_ts"], parent.message_id.as_str());
    assert_eq!(event["parent_user_id"], "U1");
    assert_eq!(event["channel_type"], "channel");
}
