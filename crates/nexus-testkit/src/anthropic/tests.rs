//! Wire tests of the fake: what a client sees must match the real service's shapes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeAnthropic, FakeAnthropicConfig, Reply, WireUsage};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post_with(
    fake: &FakeAnthropic,
    path: &str,
    body: Value,
    key: Option<&str>,
    version: bool,
) -> reqwest::Response {
    let mut req = client().post(format!("{}{path}", fake.base_url()));
    if let Some(key) = key {
        req = req.header("x-api-key", key);
    }
    if version {
        req = req.header("anthropic-version", "2023-06-01");
    }
    req.json(&body).send().await.unwrap()
}

async fn post(fake: &FakeAnthropic, body: Value) -> reqwest::Response {
    post_with(fake, "/v1/messages", body, Some(fake.api_key()), true).await
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

fn request(messages: Value) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": messages})
}

/// The `(event name, data)` pairs of an SSE body, pings included.
fn events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter_map(|frame| {
            let name = frame.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = frame.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((name.to_owned(), serde_json::from_str(data).unwrap()))
        })
        .collect()
}

async fn stream(fake: &FakeAnthropic, body: Value) -> Vec<(String, Value)> {
    let mut body = body;
    body["stream"] = json!(true);
    let resp = post(fake, body).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    assert!(
        resp.headers()["request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    events(&resp.text().await.unwrap())
}

async fn rejected(fake: &FakeAnthropic, body: Value) -> (u16, Value) {
    let resp = post(fake, body).await;
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

fn message_of(error: &Value) -> &str {
    error["error"]["message"].as_str().unwrap()
}

fn usage_at_start(events: &[(String, Value)]) -> WireUsage {
    let usage = &events[0].1["message"]["usage"];
    WireUsage {
        input_tokens: usage["input_tokens"].as_u64().unwrap(),
        cache_creation_input_tokens: usage["cache_creation_input_tokens"].as_u64().unwrap(),
        cache_read_input_tokens: usage["cache_read_input_tokens"].as_u64().unwrap(),
        output_tokens: usage["output_tokens"].as_u64().unwrap(),
    }
}

#[tokio::test]
async fn missing_or_wrong_key_gets_401_authentication_error_and_keeps_the_script() {
    let fake = FakeAnthropic::start().await;
    fake.push(Reply::text("scripted"));
    for key in [None, Some("sk-ant-wrong")] {
        let resp = post_with(
            &fake,
            "/v1/messages",
            request(json!([user("hi")])),
            key,
            true,
        )
        .await;
        assert_eq!(resp.status(), 401);
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["type"], "error");
        assert_eq!(body["error"]["type"], "authentication_error");
        assert!(body["request_id"].as_str().unwrap().starts_with("req_"));
    }
    assert_eq!(fake.pending_replies(), 1);
    assert_eq!(fake.request_count(), 2);
}

#[tokio::test]
async fn missing_anthropic_version_is_a_400() {
    let fake = FakeAnthropic::start().await;
    let resp = post_with(
        &fake,
        "/v1/messages",
        request(json!([user("hi")])),
        Some(fake.api_key()),
        false,
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(message_of(&body).contains("anthropic-version"));
}

#[tokio::test]
async fn what_the_real_api_rejects_is_rejected_with_its_message() {
    let fake = FakeAnthropic::start().await;
    let tool_use = json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        {"type": "tool_use", "id": "toolu_2", "name": "f", "input": {}}
    ]});
    let result = |id: &str| json!({"type": "tool_result", "tool_use_id": id, "content": "ok"});
    let too_many: Vec<Value> = (0..5)
        .map(|i| json!({"type": "text", "text": format!("t{i}"), "cache_control": {"type": "ephemeral"}}))
        .collect();
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"model": "claude-sonnet-4-5", "messages": [user("hi")]}),
            "max_tokens: Field required",
        ),
        (request(json!([])), "at least one message"),
        (
            request(json!([{"role": "assistant", "content": "hi"}])),
            "first message must use the \"user\" role",
        ),
        (
            request(
                json!([user("hi"), tool_use, {"role": "user", "content": [result("toolu_1")]}]),
            ),
            "toolu_2",
        ),
        (
            request(json!([user("hi"), tool_use, {"role": "user", "content": [
                result("toolu_1"), result("toolu_2"), result("toolu_9")]}])),
            "unexpected `tool_use_id`",
        ),
        (
            request(json!([user("hi"), tool_use, {"role": "user", "content": [
                {"type": "text", "text": "first"}, result("toolu_1"), result("toolu_2")]}])),
            "must come first",
        ),
        (
            request(json!([user("hi"), tool_use])),
            "without `tool_result` blocks",
        ),
        (
            request(json!([{"role": "user", "content": too_many}])),
            "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        ),
        (
            request(json!([{"role": "user", "content": [{"type": "text", "text": ""}]}])),
            "text content blocks must be non-empty",
        ),
        (
            json!({"model": "claude-sonnet-4-5", "max_tokens": 0, "messages": [user("hi")]}),
            "greater than or equal to 1",
        ),
    ];
    for (body, want) in cases {
        let (status, error) = rejected(&fake, body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(error["error"]["type"], "invalid_request_error");
        assert!(message_of(&error).contains(want), "{body}: {error}");
    }
    let resp = client()
        .post(format!("{}/v1/messages", fake.base_url()))
        .header("x-api-key", fake.api_key())
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body("{\"model\": \"claude-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    assert_eq!(fake.pending_replies(), 0);
}

#[tokio::test]
async fn answered_tool_uses_are_accepted() {
    let fake = FakeAnthropic::start().await;
    let messages = json!([
        user("hi"),
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "42", "is_error": false},
            {"type": "text", "text": "and?"}
        ]}
    ]);
    let resp = post(&fake, request(messages)).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn unknown_model_is_404_not_found_error() {
    let fake = FakeAnthropic::start().await;
    let mut body = request(json!([user("hi")]));
    body["model"] = json!("gpt-4o");
    let (status, error) = rejected(&fake, body).await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["type"], "not_found_error");
    assert_eq!(message_of(&error), "model: gpt-4o");
}

#[tokio::test]
async fn stream_follows_the_real_event_order_with_a_ping() {
    let fake = FakeAnthropic::start().await;
    let events = stream(&fake, request(json!([user("hi there")]))).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[..3], ["message_start", "content_block_start", "ping"]);
    assert_eq!(
        names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );
    assert!(
        names[3..names.len() - 3]
            .iter()
            .all(|n| *n == "content_block_delta")
    );
    for (name, data) in &events {
        assert_eq!(data["type"], *name, "event name and data type agree");
    }
    let text: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["text"].as_str())
        .collect();
    assert_eq!(text, "You said: hi there");
    let start = &events[0].1["message"];
    assert_eq!(start["role"], "assistant");
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    let delta = &events[events.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 4, "one token a word");
}

#[tokio::test]
async fn tool_use_stream_splits_the_input_and_stops_with_tool_use() {
    let fake = FakeAnthropic::start().await;
    let input = json!({"city": "Paris", "unit": "celsius"});
    fake.push(Reply::tool_use(vec![("get_weather", input.clone())]).preamble("Checking."));
    let events = stream(&fake, request(json!([user("weather?")]))).await;
    let starts: Vec<&Value> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| &d["content_block"])
        .collect();
    assert_eq!(starts[0]["type"], "text");
    assert_eq!(starts[1]["type"], "tool_use");
    assert!(starts[1]["id"].as_str().unwrap().starts_with("toolu_"));
    assert_eq!(starts[1]["input"], json!({}));
    let fragments: Vec<&str> = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    assert!(fragments.len() > 2);
    let joined: Value = serde_json::from_str(&fragments.concat()).unwrap();
    assert_eq!(joined, input);
    let delta = events.iter().find(|(n, _)| n == "message_delta").unwrap();
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");
}

#[tokio::test]
async fn scripted_errors_carry_the_real_body_and_retry_headers() {
    let fake = FakeAnthropic::start().await;
    fake.push(Reply::error(429, "rate_limit_error").retry_after(Duration::from_millis(1500)));
    fake.push(Reply::overloaded().should_retry(true));
    let resp = post(&fake, request(json!([user("x")]))).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert!(
        resp.headers()
            .contains_key("anthropic-ratelimit-requests-remaining")
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let resp = post(&fake, request(json!([user("x")]))).await;
    assert_eq!(resp.status(), 529);
    assert_eq!(resp.headers()["x-should-retry"], "true");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["error"],
        json!({"type": "overloaded_error", "message": "Overloaded"})
    );
}

#[tokio::test]
async fn mid_stream_error_event_follows_some_text() {
    let fake = FakeAnthropic::start().await;
    fake.push(Reply::in_stream_error("overloaded_error"));
    let events = stream(&fake, request(json!([user("x")]))).await;
    let (name, data) = events.last().unwrap();
    assert_eq!(name, "error");
    assert_eq!(data["error"]["type"], "overloaded_error");
    assert!(events.iter().any(|(n, _)| n == "content_block_delta"));
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
}

#[tokio::test]
async fn cut_after_drops_the_connection_without_message_stop() {
    let fake = FakeAnthropic::start().await;
    fake.push(Reply::cut_after(2));
    let mut body = request(json!([user("x")]));
    body["stream"] = json!(true);
    let resp = post(&fake, body).await;
    assert_eq!(resp.status(), 200);
    let result = resp.text().await;
    assert!(
        result.is_err(),
        "the body must end in a transport error, got {result:?}"
    );
}

#[tokio::test]
async fn noisy_and_thinking_replies_add_blocks_a_client_must_skip() {
    let fake = FakeAnthropic::start().await;
    fake.push(Reply::text("fine").noisy());
    let mut body = request(json!([user("x")]));
    body["stream"] = json!(true);
    let raw = post(&fake, body).await.text().await.unwrap();
    assert!(raw.contains("\n: keep-alive comment\n") || raw.starts_with(": "));
    let events = events(&raw);
    assert!(
        events
            .iter()
            .any(|(_, d)| d["delta"]["type"] == "thinking_delta")
    );
    assert!(
        events
            .iter()
            .any(|(_, d)| d["delta"]["type"] == "signature_delta")
    );
    assert!(events.iter().any(|(n, _)| n == "content_block_annotation"));
    assert!(events.iter().filter(|(n, _)| n == "ping").count() >= 2);
}

#[tokio::test]
async fn non_stream_request_gets_a_message_object() {
    let fake = FakeAnthropic::start_with(FakeAnthropicConfig {
        reply_words: 5,
        ..FakeAnthropicConfig::default()
    })
    .await;
    let body: Value = post(&fake, request(json!([user("x")])))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["type"], "message");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    assert_eq!(body["content"][0]["type"], "text");
    assert_eq!(
        body["content"][0]["text"]
            .as_str()
            .unwrap()
            .split_whitespace()
            .count(),
        5
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["output_tokens"], 5);
}

#[tokio::test]
async fn count_tokens_and_models_answer() {
    let fake = FakeAnthropic::start().await;
    let resp = post_with(
        &fake,
        "/v1/messages/count_tokens",
        json!({"model": "claude-sonnet-4-5", "messages": [user("hello there")]}),
        Some(fake.api_key()),
        true,
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert!(body["input_tokens"].as_u64().unwrap() > 0);
    let resp = client()
        .get(format!("{}/v1/models", fake.base_url()))
        .header("x-api-key", fake.api_key())
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert!(!body["data"].as_array().unwrap().is_empty());
    assert_eq!(body["has_more"], false);
}

// ---- prompt caching ----

/// A system prompt of about `tokens` tokens.
fn system(tokens: usize) -> Value {
    json!([{"type": "text", "text": "rule ".repeat(tokens * 4 / 5), "cache_control": {"type": "ephemeral"}}])
}

fn cached_request(system: &Value, messages: Value) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "system": system, "messages": messages, "stream": true})
}

fn tail(text: &str) -> Value {
    json!({"role": "user", "content": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]})
}

#[tokio::test]
async fn second_turn_reads_the_first_turns_prefix_and_writes_only_the_new_part() {
    let fake = FakeAnthropic::start().await;
    let sys = system(2000);
    let first = stream(&fake, cached_request(&sys, json!([tail("What is Rust?")]))).await;
    let u1 = usage_at_start(&first);
    assert_eq!(u1.cache_read_input_tokens, 0);
    assert!(u1.cache_creation_input_tokens > 2000, "{u1:?}");
    assert_eq!(u1.input_tokens, 0, "the tail breakpoint covers everything");
    let second = stream(
        &fake,
        cached_request(
            &sys,
            json!([user("What is Rust?"), {"role": "assistant", "content": "A language."}, tail("Why?")]),
        ),
    )
    .await;
    let u2 = usage_at_start(&second);
    assert_eq!(u2.cache_read_input_tokens, u1.cache_creation_input_tokens);
    assert!(
        u2.cache_creation_input_tokens > 0 && u2.cache_creation_input_tokens < 50,
        "{u2:?}"
    );
    // message_delta repeats the cumulative counts.
    let delta = &second.iter().find(|(n, _)| n == "message_delta").unwrap().1["usage"];
    assert_eq!(delta["cache_read_input_tokens"], u2.cache_read_input_tokens);
    assert_eq!(
        fake.last_request()
            .unwrap()
            .usage
            .map(|u| u.cache_read_input_tokens),
        Some(u2.cache_read_input_tokens)
    );
}

#[tokio::test]
async fn prefix_below_the_minimum_is_not_cached_and_no_breakpoint_means_no_cache() {
    let fake = FakeAnthropic::start().await;
    let small = system(200);
    for _ in 0..2 {
        let u = usage_at_start(&stream(&fake, cached_request(&small, json!([user("hi")]))).await);
        assert_eq!(
            (u.cache_read_input_tokens, u.cache_creation_input_tokens),
            (0, 0)
        );
        assert!(u.input_tokens > 150);
    }
    let plain = json!([{"type": "text", "text": "rule ".repeat(2000)}]);
    for _ in 0..2 {
        let u = usage_at_start(&stream(&fake, cached_request(&plain, json!([user("hi")]))).await);
        assert_eq!(
            (u.cache_read_input_tokens, u.cache_creation_input_tokens),
            (0, 0)
        );
    }
    assert_eq!(fake.cached_prefixes(), 0);
}

#[tokio::test]
async fn a_changed_system_prompt_misses_and_entries_expire_after_the_ttl() {
    let fake = FakeAnthropic::start_with(FakeAnthropicConfig {
        cache_ttl: Duration::from_millis(300),
        ..FakeAnthropicConfig::default()
    })
    .await;
    let sys = system(2000);
    stream(&fake, cached_request(&sys, json!([user("hi")]))).await;
    let hit = usage_at_start(&stream(&fake, cached_request(&sys, json!([user("hi")]))).await);
    assert!(hit.cache_read_input_tokens > 2000);
    let mut changed = sys.clone();
    changed[0]["text"] = json!(format!(
        "{} today is Tuesday",
        sys[0]["text"].as_str().unwrap()
    ));
    let miss = usage_at_start(&stream(&fake, cached_request(&changed, json!([user("hi")]))).await);
    assert_eq!(miss.cache_read_input_tokens, 0);
    tokio::time::sleep(Duration::from_millis(450)).await;
    let expired = usage_at_start(&stream(&fake, cached_request(&sys, json!([user("hi")]))).await);
    assert_eq!(expired.cache_read_input_tokens, 0);
    assert!(expired.cache_creation_input_tokens > 2000);
}

#[tokio::test]
async fn scripted_usage_overrides_the_accounting() {
    let fake = FakeAnthropic::start().await;
    fake.push(Reply::text("x").usage(7, 3, 1000, 20));
    let u =
        usage_at_start(&stream(&fake, cached_request(&system(2000), json!([user("hi")]))).await);
    assert_eq!(
        u,
        WireUsage {
            input_tokens: 7,
            cache_creation_input_tokens: 20,
            cache_read_input_tokens: 1000,
            output_tokens: 1,
        }
    );
    assert_eq!(fake.cached_prefixes(), 0);
}
