//! Wire tests of the fake: what a client sees must match the real service's shapes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeOpenAi, FakeOpenAiConfig, Reply};

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

async fn post(fake: &FakeOpenAi, path: &str, body: Value) -> reqwest::Response {
    client()
        .post(format!("{}{path}", fake.base_url()))
        .bearer_auth(fake.api_key())
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "content": text})
}

/// The `data:` payloads of an SSE body, in order.
fn data_frames(body: &str) -> Vec<String> {
    body.split("\n\n")
        .flat_map(|frame| frame.lines())
        .filter_map(|line| line.strip_prefix("data: "))
        .map(str::to_owned)
        .collect()
}

async fn stream_body(fake: &FakeOpenAi, extra: Value) -> String {
    let mut body = json!({"model": "gpt-4o-mini", "messages": [user("hi there")], "stream": true});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    let resp = post(fake, "/chat/completions", body).await;
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    resp.text().await.unwrap()
}

#[tokio::test]
async fn missing_key_gets_401_with_real_error_shape() {
    let fake = FakeOpenAi::start().await;
    let resp = client()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(&json!({"model": "gpt-4o-mini", "messages": [user("hi")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("didn't provide an API key")
    );
    assert!(body["error"].get("param").is_some() && body["error"].get("code").is_some());
}

#[tokio::test]
async fn wrong_key_gets_401_invalid_api_key_and_does_not_consume_script() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::text("scripted"));
    let resp = client()
        .post(format!("{}/chat/completions", fake.base_url()))
        .bearer_auth("sk-wrong-key-123456789")
        .json(&json!({"model": "gpt-4o-mini", "messages": [user("hi")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_api_key");
    assert!(
        !body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sk-wrong-key-123456789")
    );
    assert_eq!(fake.pending_replies(), 1);
    assert_eq!(fake.request_count(), 1);
}

#[tokio::test]
async fn stream_starts_with_role_delta_ends_with_usage_then_done() {
    let fake = FakeOpenAi::start().await;
    let body = stream_body(&fake, json!({"stream_options": {"include_usage": true}})).await;
    let frames = data_frames(&body);
    assert_eq!(frames.last().unwrap(), "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk")
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[0]["choices"][0]["delta"]["content"], "");
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "You said: hi there");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["prompt_tokens"].as_u64().unwrap() > 0);
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["usage"].is_null())
    );
}

#[tokio::test]
async fn stream_without_include_usage_has_no_usage_chunk() {
    let fake = FakeOpenAi::start().await;
    let body = stream_body(&fake, json!({})).await;
    let frames = data_frames(&body);
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    assert!(
        chunks
            .iter()
            .all(|c| c["choices"].as_array().unwrap().len() == 1)
    );
    assert!(chunks.iter().all(|c| c.get("usage").is_none()));
}

#[tokio::test]
async fn reply_words_gives_deterministic_reply_of_that_many_words() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        reply_words: 5,
        ..FakeOpenAiConfig::default()
    })
    .await;
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": [user("x")]}),
    )
    .await;
    let body: Value = resp.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(text.split_whitespace().count(), 5);
    assert_eq!(body["object"], "chat.completion");
}

#[tokio::test]
async fn tool_call_stream_splits_arguments_and_finishes_with_tool_calls() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::tool_calls(vec![
        ("get_weather", json!({"city": "Paris", "unit": "celsius"})),
        ("get_time", json!({"tz": "Europe/Paris"})),
    ]));
    let body = stream_body(&fake, json!({})).await;
    let frames = data_frames(&body);
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f).unwrap())
        .collect();
    let mut args = [String::new(), String::new()];
    let mut fragments = [0, 0];
    for c in &chunks {
        for call in c["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = call["index"].as_u64().unwrap() as usize;
            args[i].push_str(call["function"]["arguments"].as_str().unwrap());
            fragments[i] += 1;
        }
    }
    assert!(
        fragments.iter().all(|&n| n > 2),
        "arguments arrive in several fragments"
    );
    let first: Value = serde_json::from_str(&args[0]).unwrap();
    assert_eq!(first, json!({"city": "Paris", "unit": "celsius"}));
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "tool_calls"
    );
}

#[tokio::test]
async fn scripted_rate_limit_sets_retry_after_headers() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::error(429, "rate_limit_exceeded").retry_after(Duration::from_millis(1500)));
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": [user("x")]}),
    )
    .await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "2");
    assert_eq!(resp.headers()["retry-after-ms"], "1500");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
}

#[tokio::test]
async fn tool_message_without_matching_call_is_rejected_like_the_real_api() {
    let fake = FakeOpenAi::start().await;
    let messages = json!([user("hi"), {"role": "tool", "tool_call_id": "call_x", "content": "42"}]);
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": messages}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("must be a response")
    );
}

#[tokio::test]
async fn unanswered_tool_call_is_rejected() {
    let fake = FakeOpenAi::start().await;
    let call =
        json!({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}});
    let messages = json!([user("hi"), {"role": "assistant", "content": null, "tool_calls": [call]}, user("again")]);
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": messages}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("call_1")
    );
}

#[tokio::test]
async fn object_arguments_are_rejected_as_invalid_type() {
    let fake = FakeOpenAi::start().await;
    let call = json!({"id": "call_1", "type": "function", "function": {"name": "f", "arguments": {"a": 1}}});
    let messages = json!([
        user("hi"),
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "ok"}
    ]);
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": messages}),
    )
    .await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_type");
}

#[tokio::test]
async fn answered_tool_calls_are_accepted() {
    let fake = FakeOpenAi::start().await;
    let call = |id: &str| json!({"id": id, "type": "function", "function": {"name": "f", "arguments": "{}"}});
    let messages = json!([
        user("hi"),
        {"role": "assistant", "content": null, "tool_calls": [call("call_1"), call("call_2")]},
        {"role": "tool", "tool_call_id": "call_2", "content": "b"},
        {"role": "tool", "tool_call_id": "call_1", "content": "a"},
        user("thanks")
    ]);
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": messages}),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn missing_model_and_messages_are_rejected() {
    let fake = FakeOpenAi::start().await;
    let resp = post(&fake, "/chat/completions", json!({"messages": [user("x")]})).await;
    assert_eq!(resp.status(), 400);
    let resp = post(&fake, "/chat/completions", json!({"model": "m"})).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["param"], "messages");
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors_of_requested_dimension() {
    let fake = FakeOpenAi::start().await;
    let req =
        json!({"model": "text-embedding-3-small", "input": ["a", "b", "a"], "dimensions": 64});
    let body: Value = post(&fake, "/embeddings", req).await.json().await.unwrap();
    let vecs: Vec<Vec<f64>> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            d["embedding"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(vecs.len(), 3);
    assert!(vecs.iter().all(|v| v.len() == 64));
    assert_eq!(vecs[0], vecs[2]);
    assert_ne!(vecs[0], vecs[1]);
    let norm: f64 = vecs[0].iter().map(|x| x * x).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3);
}

#[tokio::test]
async fn models_lists_known_models() {
    let fake = FakeOpenAi::start().await;
    let resp = client()
        .get(format!("{}/models", fake.base_url()))
        .bearer_auth(fake.api_key())
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert!(!body["data"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn recorded_requests_are_capped_to_the_newest() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        max_recorded: 3,
        ..FakeOpenAiConfig::default()
    })
    .await;
    for i in 0..5 {
        post(
            &fake,
            "/chat/completions",
            json!({"model": "m", "messages": [user(&format!("n{i}"))]}),
        )
        .await;
    }
    let recorded = fake.requests();
    assert_eq!(fake.request_count(), 5);
    assert_eq!(recorded.len(), 3);
    assert_eq!(recorded[2].body["messages"][0]["content"], "n4");
    assert_eq!(
        recorded[0].authorization.as_deref(),
        Some(format!("Bearer {}", fake.api_key()).as_str())
    );
}

#[tokio::test]
async fn cut_after_drops_the_connection_without_done() {
    let fake = FakeOpenAi::start().await;
    fake.push(Reply::cut_after(2));
    let resp = post(
        &fake,
        "/chat/completions",
        json!({"model": "m", "messages": [user("x")], "stream": true}),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let result = resp.text().await;
    assert!(
        result.is_err(),
        "the body must end in a transport error, got {result:?}"
    );
}
