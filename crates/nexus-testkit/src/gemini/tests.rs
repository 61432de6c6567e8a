//! Wire tests of the Gemini fake: what a client sees must match the real service's shapes.

use std::time::Duration;

use serde_json::{Value, json};

use super::{FakeGemini, FakeGeminiConfig, Reply};

const MODEL: &str = "gemini-2.5-flash";

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

fn url(fake: &FakeGemini, model: &str, verb: &str) -> String {
    format!("{}/models/{model}:{verb}", fake.base_url())
}

async fn post(fake: &FakeGemini, verb: &str, body: Value) -> reqwest::Response {
    let mut target = url(fake, MODEL, verb);
    if verb == "streamGenerateContent" {
        target.push_str("?alt=sse");
    }
    client()
        .post(target)
        .header("x-goog-api-key", fake.api_key())
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn user(text: &str) -> Value {
    json!({"role": "user", "parts": [{"text": text}]})
}

fn ask(text: &str) -> Value {
    json!({"contents": [user(text)]})
}

/// The `data:` payloads of an SSE body, parsed.
fn events(body: &str) -> Vec<Value> {
    body.split("\r\n\r\n")
        .flat_map(|frame| frame.lines())
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_str(data).unwrap())
        .collect()
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].clone())
}

async fn rejected(fake: &FakeGemini, body: Value) -> (u16, String) {
    let (status, error) = error_of(post(fake, "generateContent", body).await).await;
    assert_eq!(error["status"], "INVALID_ARGUMENT", "{error}");
    (status, error["message"].as_str().unwrap().to_owned())
}

#[tokio::test]
async fn a_missing_key_is_403_and_a_wrong_key_is_400_api_key_invalid() {
    let fake = FakeGemini::start().await;
    fake.push(Reply::text("scripted"));
    let resp = client()
        .post(url(&fake, MODEL, "generateContent"))
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(resp).await;
    assert_eq!(
        (status, error["status"].as_str()),
        (403, Some("PERMISSION_DENIED"))
    );
    let resp = client()
        .post(url(&fake, MODEL, "generateContent"))
        .header("x-goog-api-key", "AIza-wrong")
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(resp).await;
    assert_eq!(status, 400);
    assert_eq!(error["status"], "INVALID_ARGUMENT");
    assert_eq!(error["details"][0]["reason"], "API_KEY_INVALID");
    assert_eq!(fake.pending_replies(), 1, "rejected calls keep the script");
    assert_eq!(fake.request_count(), 2);
    assert_eq!(fake.model_call_count(), 2);
}

#[tokio::test]
async fn the_key_query_parameter_is_accepted_and_recorded() {
    let fake = FakeGemini::start().await;
    let resp = client()
        .post(format!(
            "{}?key={}",
            url(&fake, MODEL, "generateContent"),
            fake.api_key()
        ))
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let recorded = fake.last_request().unwrap();
    assert_eq!(recorded.api_key, None);
    assert!(recorded.query.unwrap().contains("key="));
}

#[tokio::test]
async fn sse_stream_sends_whole_responses_with_the_finish_and_usage_last() {
    let fake = FakeGemini::start().await;
    let resp = post(&fake, "streamGenerateContent", ask("hi there")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let body = resp.text().await.unwrap();
    assert!(body.ends_with("\r\n\r\n") && !body.contains("[DONE]"));
    let chunks = events(&body);
    assert!(chunks.len() > 1);
    let text: String = chunks
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "You said: hi there");
    for chunk in &chunks {
        assert_eq!(chunk["candidates"][0]["content"]["role"], "model");
        assert_eq!(chunk["modelVersion"], MODEL);
        assert!(chunk["responseId"].is_string());
    }
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    assert!(
        last["usageMetadata"]["candidatesTokenCount"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert!(
        chunks[..chunks.len() - 1]
            .iter()
            .all(|c| c["candidates"][0].get("finishReason").is_none())
    );
}

#[tokio::test]
async fn stream_without_alt_sse_is_a_json_array() {
    let fake = FakeGemini::start().await;
    let resp = client()
        .post(url(&fake, MODEL, "streamGenerateContent"))
        .header("x-goog-api-key", fake.api_key())
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let chunks: Vec<Value> = resp.json().await.unwrap();
    assert!(chunks.len() > 1);
    assert_eq!(
        chunks.last().unwrap()["candidates"][0]["finishReason"],
        "STOP"
    );
}

#[tokio::test]
async fn generate_content_answers_one_merged_response() {
    let fake = FakeGemini::start().await;
    fake.push(Reply::text("one two three").usage(10, 3, 4));
    let resp = post(&fake, "generateContent", ask("hi")).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body["candidates"][0]["content"]["parts"],
        json!([{"text": "one two three"}])
    );
    assert_eq!(body["candidates"][0]["finishReason"], "STOP");
    assert_eq!(body["usageMetadata"]["promptTokenCount"], 10);
    assert_eq!(body["usageMetadata"]["cachedContentTokenCount"], 4);
}

#[tokio::test]
async fn routing_is_on_the_model_and_verb_segment() {
    let fake = FakeGemini::start().await;
    let key = fake.api_key().to_owned();
    let send = |target: String| {
        let key = key.clone();
        async move {
            client()
                .post(target)
                .header("x-goog-api-key", key)
                .json(&ask("hi"))
                .send()
                .await
                .unwrap()
        }
    };
    let unknown_verb = send(url(&fake, MODEL, "teleport")).await;
    assert_eq!(unknown_verb.status(), 404);
    assert!(
        unknown_verb
            .text()
            .await
            .unwrap()
            .contains("<!DOCTYPE html>")
    );
    let (status, error) = error_of(send(url(&fake, "gpt-4o", "generateContent")).await).await;
    assert_eq!((status, error["status"].as_str()), (404, Some("NOT_FOUND")));
    let (status, _) = error_of(send(url(&fake, MODEL, "embedContent")).await).await;
    assert_eq!(status, 404, "a chat model does not embed");
    let (status, _) =
        error_of(send(url(&fake, "gemini-embedding-001", "generateContent")).await).await;
    assert_eq!(status, 404, "an embedding model does not chat");
    let list: Value = client()
        .get(format!("{}/models", fake.base_url()))
        .header("x-goog-api-key", fake.api_key())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        list["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "models/gemini-2.5-flash")
    );
}

#[tokio::test]
async fn malformed_and_incomplete_requests_are_refused_like_the_service() {
    let fake = FakeGemini::start().await;
    let resp = client()
        .post(url(&fake, MODEL, "generateContent"))
        .header("x-goog-api-key", fake.api_key())
        .header("content-type", "application/json")
        .body("{\"contents\": [")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(resp).await;
    assert_eq!(status, 400);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid JSON payload received")
    );

    let (_, message) = rejected(&fake, json!({"contents": []})).await;
    assert!(message.contains("contents is not specified"), "{message}");
    let (_, message) = rejected(
        &fake,
        json!({"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]}),
    )
    .await;
    assert_eq!(message, "Please use a valid role: user, model.");
    let (_, message) = rejected(&fake, json!({"contents": [{"role": "user", "parts": []}]})).await;
    assert!(
        message.contains("contents.parts must not be empty"),
        "{message}"
    );
    let (_, message) = rejected(
        &fake,
        json!({"contents": [{"role": "user", "parts": [{}]}]}),
    )
    .await;
    assert!(message.contains("required oneof field 'data'"), "{message}");
    let (_, message) = rejected(&fake, json!({"contents": [user("x")], "stream": true})).await;
    assert!(message.contains("Unknown name \"stream\""), "{message}");
    let (_, message) = rejected(
        &fake,
        json!({"contents": [user("x")], "generationConfig": {"max_tokens": 5}}),
    )
    .await;
    assert!(message.contains("Unknown name \"max_tokens\""), "{message}");
    assert_eq!(fake.model_call_count(), 7);
}

fn call_turn(calls: Value) -> Value {
    json!({"role": "model", "parts": calls})
}

fn response_part(name: &str, response: Value) -> Value {
    json!({"functionResponse": {"name": name, "response": response}})
}

#[tokio::test]
async fn function_responses_must_answer_the_previous_calls_by_name_with_objects() {
    let fake = FakeGemini::start().await;
    let call = json!([{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]);
    let ok = json!({"contents": [
        user("Weather?"),
        call_turn(call.clone()),
        {"role": "user", "parts": [response_part("get_weather", json!({"result": "sunny"}))]}
    ]});
    assert_eq!(post(&fake, "generateContent", ok).await.status(), 200);

    let (_, message) = rejected(
        &fake,
        json!({"contents": [
            user("Weather?"),
            call_turn(call.clone()),
            {"role": "user", "parts": [response_part("get_time", json!({"result": "noon"}))]}
        ]}),
    )
    .await;
    assert!(
        message.contains("`get_time` answers no function call"),
        "{message}"
    );

    let (_, message) = rejected(
        &fake,
        json!({"contents": [
            user("Weather?"),
            {"role": "user", "parts": [response_part("get_weather", json!({"result": "sunny"}))]}
        ]}),
    )
    .await;
    assert!(
        message.contains("function response turn comes immediately after"),
        "{message}"
    );

    let (_, message) = rejected(
        &fake,
        json!({"contents": [
            user("Weather?"),
            call_turn(call.clone()),
            {"role": "user", "parts": [response_part("get_weather", json!("sunny"))]}
        ]}),
    )
    .await;
    assert!(
        message.starts_with("Invalid value at 'contents[2].parts[0].function_response.response' (type.googleapis.com/google.protobuf.Struct)"),
        "{message}"
    );

    let (_, message) = rejected(
        &fake,
        json!({"contents": [
            user("Weather?"),
            call_turn(call),
            user("never mind")
        ]}),
    )
    .await;
    assert!(
        message.contains("number of function response parts"),
        "{message}"
    );
}

#[tokio::test]
async fn json_schema_only_keys_in_parameters_are_unknown_fields() {
    let fake = FakeGemini::start().await;
    let with = |parameters: Value| {
        json!({"contents": [user("x")], "tools": [{"functionDeclarations": [
            {"name": "f", "description": "d", "parameters": parameters}
        ]}]})
    };
    let (_, message) = rejected(
        &fake,
        with(json!({"$schema": "x", "type": "object",
        "properties": {"a": {"type": "string"}}})),
    )
    .await;
    assert_eq!(
        message,
        "Invalid JSON payload received. Unknown name \"$schema\" at 'tools[0].function_declarations[0].parameters': Cannot find field."
    );
    let (_, message) = rejected(
        &fake,
        with(json!({"type": "object",
        "properties": {"a": {"type": "object", "additionalProperties": false,
                             "properties": {"b": {"type": "string"}}}}})),
    )
    .await;
    assert!(
        message.contains("Unknown name \"additionalProperties\" at 'tools[0].function_declarations[0].parameters.properties[0].value'"),
        "{message}"
    );
    let (_, message) = rejected(&fake, with(json!({"type": "object", "properties": {}}))).await;
    assert!(
        message.contains("should be non-empty for OBJECT type"),
        "{message}"
    );
    let (_, message) = rejected(
        &fake,
        with(json!({"type": "object",
        "properties": {"a": {"type": "string"}}, "required": ["b"]})),
    )
    .await;
    assert!(
        message.contains("required[0]: property is not defined"),
        "{message}"
    );
    let (_, message) = rejected(
        &fake,
        with(json!({"type": "object",
        "properties": {"a": {"type": ["string", "null"]}}})),
    )
    .await;
    assert!(
        message.contains("Proto field is not repeating"),
        "{message}"
    );
    let accepted = with(json!({"type": "object", "properties": {
        "a": {"type": "string", "enum": ["x", "y"], "default": "x", "nullable": true},
        "b": {"anyOf": [{"type": "string"}, {"type": "integer", "minimum": 1}]}
    }, "required": ["a"]}));
    assert_eq!(post(&fake, "generateContent", accepted).await.status(), 200);
}

async fn calls_with_signature(fake: &FakeGemini) -> Vec<Value> {
    fake.push(
        Reply::function_calls(vec![
            ("get_weather", json!({"city": "Paris"})),
            ("get_weather", json!({"city": "Rome"})),
        ])
        .thought_signature(),
    );
    let body = post(fake, "streamGenerateContent", ask("Weather?"))
        .await
        .text()
        .await
        .unwrap();
    let chunks = events(&body);
    let last = chunks.last().unwrap();
    assert_eq!(last["candidates"][0]["finishReason"], "STOP");
    last["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .clone()
}

fn follow_up(parts: Vec<Value>) -> Value {
    json!({"contents": [
        user("Weather?"),
        {"role": "model", "parts": parts},
        {"role": "user", "parts": [
            response_part("get_weather", json!({"result": "sunny"})),
            response_part("get_weather", json!({"result": "rain"}))
        ]}
    ]})
}

#[tokio::test]
async fn issued_thought_signatures_must_come_back_on_their_part() {
    let fake = FakeGemini::start().await;
    let parts = calls_with_signature(&fake).await;
    let signature = parts[0]["thoughtSignature"].as_str().unwrap().to_owned();
    assert!(
        parts[1].get("thoughtSignature").is_none(),
        "only the first call is signed"
    );
    assert_eq!(fake.issued_signatures(), vec![signature.clone()]);

    let echoed = post(&fake, "generateContent", follow_up(parts.clone())).await;
    assert_eq!(echoed.status(), 200);

    let mut dropped = parts.clone();
    dropped[0]
        .as_object_mut()
        .unwrap()
        .remove("thoughtSignature");
    let (_, message) = rejected(&fake, follow_up(dropped.clone())).await;
    assert!(message.contains("missing a thought_signature"), "{message}");

    let mut moved = dropped.clone();
    moved[1]["thoughtSignature"] = json!(signature);
    let (status, _) = rejected(&fake, follow_up(moved)).await;
    assert_eq!(status, 400, "a signature on another part does not count");

    let mut forged = dropped.clone();
    forged[0]["thoughtSignature"] = json!("Zm9yZ2Vk");
    let (_, message) = rejected(&fake, follow_up(forged)).await;
    assert!(message.contains("Corrupted thought signature"), "{message}");

    let mut foreign = dropped;
    foreign[0]["thoughtSignature"] = json!("skip_thought_signature_validator");
    assert_eq!(
        post(&fake, "generateContent", follow_up(foreign))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn scripted_quota_errors_carry_quota_failure_and_retry_info() {
    let fake = FakeGemini::start().await;
    fake.push(Reply::rate_limited(Duration::from_secs(2)));
    let (status, error) = error_of(post(&fake, "streamGenerateContent", ask("x")).await).await;
    assert_eq!(
        (status, error["status"].as_str()),
        (429, Some("RESOURCE_EXHAUSTED"))
    );
    let details = error["details"].as_array().unwrap();
    let find = |kind: &str| {
        details
            .iter()
            .find(|d| d["@type"].as_str().unwrap().ends_with(kind))
            .unwrap()
            .clone()
    };
    assert_eq!(find("RetryInfo")["retryDelay"], "2s");
    assert!(
        find("QuotaFailure")["violations"][0]["quotaId"]
            .as_str()
            .unwrap()
            .contains("PerMinute")
    );
    fake.push(Reply::daily_quota_exhausted());
    let (_, error) = error_of(post(&fake, "streamGenerateContent", ask("x")).await).await;
    assert!(
        error["details"][0]["violations"][0]["quotaId"]
            .as_str()
            .unwrap()
            .contains("PerDay")
    );
}

#[tokio::test]
async fn an_error_inside_a_stream_is_plain_json_lines_without_data() {
    let fake = FakeGemini::start().await;
    fake.push(Reply::in_stream_error());
    let resp = post(&fake, "streamGenerateContent", ask("x")).await;
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert_eq!(events(&body).len(), 2);
    let raw: String = body
        .split("\r\n\r\n")
        .filter(|frame| !frame.starts_with("data: "))
        .collect();
    let error: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(error["error"]["status"], "INTERNAL");
    assert!(
        raw.contains("\n  \"error\""),
        "pretty-printed like Google's"
    );
}

#[tokio::test]
async fn blocked_prompts_and_cut_streams_look_like_the_service() {
    let fake = FakeGemini::start().await;
    fake.push(Reply::blocked_prompt("SAFETY"));
    let body = post(&fake, "streamGenerateContent", ask("x"))
        .await
        .text()
        .await
        .unwrap();
    let chunks = events(&body);
    assert_eq!(chunks.len(), 1);
    assert_eq!(chunks[0]["promptFeedback"]["blockReason"], "SAFETY");
    assert!(chunks[0].get("candidates").is_none());

    fake.push(Reply::cut_after(2));
    let resp = post(&fake, "streamGenerateContent", ask("x")).await;
    assert!(
        resp.text().await.is_err(),
        "the body must end in a broken connection"
    );
}

#[tokio::test]
async fn embeddings_are_deterministic_unit_vectors_of_the_asked_size() {
    let fake = FakeGemini::start().await;
    let key = fake.api_key().to_owned();
    let embed = |model: &'static str, verb: &'static str, body: Value| {
        let target = url(&fake, model, verb);
        let key = key.clone();
        async move {
            let resp = client()
                .post(target)
                .header("x-goog-api-key", key)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let content = |text: &str| json!({"parts": [{"text": text}]});
    let (status, one) = embed(
        "text-embedding-004",
        "embedContent",
        json!({"content": content("hello")}),
    )
    .await;
    assert_eq!(status, 200);
    let values: Vec<f64> = serde_json::from_value(one["embedding"]["values"].clone()).unwrap();
    assert_eq!(values.len(), 768);
    let norm: f64 = values.iter().map(|v| v * v).sum::<f64>().sqrt();
    assert!((norm - 1.0).abs() < 1e-3, "{norm}");
    let (_, again) = embed(
        "text-embedding-004",
        "embedContent",
        json!({"content": content("hello"), "taskType": "RETRIEVAL_QUERY"}),
    )
    .await;
    assert_eq!(again, one);
    let (_, big) = embed(
        "gemini-embedding-001",
        "embedContent",
        json!({"content": content("hello")}),
    )
    .await;
    assert_eq!(big["embedding"]["values"].as_array().unwrap().len(), 3072);

    let (status, batch) = embed("gemini-embedding-001", "batchEmbedContents", json!({"requests": [
        {"model": "models/gemini-embedding-001", "content": content("hello"), "outputDimensionality": 768},
        {"model": "models/gemini-embedding-001", "content": content("world"), "outputDimensionality": 128}
    ]})).await;
    assert_eq!(status, 200);
    let embeddings = batch["embeddings"].as_array().unwrap();
    assert_eq!(embeddings.len(), 2);
    assert_eq!(embeddings[0]["values"].as_array().unwrap().len(), 768);
    assert_eq!(embeddings[1]["values"].as_array().unwrap().len(), 128);
    assert_ne!(embeddings[0]["values"], embeddings[1]["values"]);

    let (status, _) = embed(
        "gemini-embedding-001",
        "batchEmbedContents",
        json!({"requests": [
            {"model": "models/text-embedding-004", "content": content("hello")}
        ]}),
    )
    .await;
    assert_eq!(status, 400, "a request naming another model is refused");
    let (status, _) = embed(
        "text-embedding-004",
        "embedContent",
        json!({"content": {"parts": []}}),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = embed(
        "text-embedding-004",
        "embedContent",
        json!({"content": content("x"), "outputDimensionality": 0}),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn default_replies_can_be_long_and_slow() {
    let fake = FakeGemini::start_with(FakeGeminiConfig {
        reply_words: 5,
        token_delay: Duration::from_millis(5),
        ..FakeGeminiConfig::default()
    })
    .await;
    let body = post(&fake, "streamGenerateContent", ask("x"))
        .await
        .text()
        .await
        .unwrap();
    let text: String = events(&body)
        .iter()
        .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
        .collect();
    assert_eq!(text, "lorem ipsum dolor sit amet.");
}
