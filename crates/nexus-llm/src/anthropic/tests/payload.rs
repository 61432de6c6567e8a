//! The request body: shape, `max_tokens`, cache breakpoints and prefix stability.

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionRequest, ContentBlock, ImageSource, LlmError,
};
use serde_json::{Value, json};

use super::full_request;
use crate::anthropic::payload;

/// Every block of `body` carrying `cache_control`, as `(where, block)`.
fn breakpoints(body: &Value) -> Vec<(String, Value)> {
    let mut found = Vec::new();
    for (i, t) in body["tools"].as_array().into_iter().flatten().enumerate() {
        if t.get("cache_control").is_some() {
            found.push((format!("tools.{i}"), t.clone()));
        }
    }
    for (i, b) in body["system"].as_array().into_iter().flatten().enumerate() {
        if b.get("cache_control").is_some() {
            found.push((format!("system.{i}"), b.clone()));
        }
    }
    for (i, m) in body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        for (j, b) in m["content"].as_array().into_iter().flatten().enumerate() {
            if b.get("cache_control").is_some() {
                found.push((format!("messages.{i}.{j}"), b.clone()));
            }
        }
    }
    found
}

/// `value` without any `cache_control` field.
fn strip_cache_control(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| *k != "cache_control")
                .map(|(k, v)| (k.clone(), strip_cache_control(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_cache_control).collect()),
        other => other.clone(),
    }
}

fn body_of(request: &CompletionRequest) -> Value {
    serde_json::from_slice(&payload::to_body(request, 8192).unwrap()).unwrap()
}

#[test]
fn cache_breakpoints_mark_tools_system_the_previous_turn_and_the_tail() {
    let body = body_of(&full_request());
    let places: Vec<String> = breakpoints(&body).into_iter().map(|(p, _)| p).collect();
    // Last tool, the system block, the last block of the user message before the tail, and
    // the last block of the last message.
    assert_eq!(
        places,
        ["tools.1", "system.0", "messages.0.2", "messages.2.2"]
    );
    for (_, block) in breakpoints(&body) {
        assert_eq!(block["cache_control"], json!({"type": "ephemeral"}));
    }
}

#[test]
fn never_more_than_four_breakpoints_whatever_the_shape() {
    let mut shapes = Vec::new();
    let mut long = full_request();
    for i in 0..20 {
        long.messages_mut()
            .push(ChatMessage::text(ChatRole::Assistant, format!("reply {i}")));
        long.messages_mut()
            .push(ChatMessage::text(ChatRole::User, format!("question {i}")));
    }
    shapes.push(long);
    let mut bare = full_request();
    bare.tools.clear();
    bare.system = None;
    bare.messages_mut().truncate(1);
    shapes.push(bare);
    let mut prefill = full_request();
    prefill
        .messages_mut()
        .push(ChatMessage::text(ChatRole::Assistant, "{"));
    shapes.push(prefill);
    for request in &shapes {
        let body = body_of(request);
        let count = breakpoints(&body).len();
        assert!((1..=4).contains(&count), "{count} breakpoints");
    }
    let bare = body_of(&shapes[1]);
    assert_eq!(
        breakpoints(&bare)
            .into_iter()
            .map(|(p, _)| p)
            .collect::<Vec<_>>(),
        ["messages.0.2"]
    );
    assert!(bare.get("tools").is_none() && bare.get("system").is_none());
}

#[test]
fn the_next_turn_repeats_the_previous_request_byte_for_byte_but_for_the_markers() {
    let turn = full_request();
    let mut next = turn.clone();
    next.messages_mut().push(ChatMessage::text(
        ChatRole::Assistant,
        "Sunny today, rain tomorrow.",
    ));
    next.messages_mut()
        .push(ChatMessage::text(ChatRole::User, "Thanks!"));
    let a = strip_cache_control(&body_of(&turn));
    let b = strip_cache_control(&body_of(&next));
    assert_eq!(a["tools"], b["tools"]);
    assert_eq!(a["system"], b["system"]);
    let (a_msgs, b_msgs) = (
        a["messages"].as_array().unwrap(),
        b["messages"].as_array().unwrap(),
    );
    assert_eq!(a_msgs[..], b_msgs[..a_msgs.len()]);
    // Building the same request twice gives the same bytes.
    assert_eq!(
        payload::to_body(&next, 8192).unwrap(),
        payload::to_body(&next, 8192).unwrap()
    );
}

#[test]
fn max_tokens_is_always_sent() {
    let mut req = full_request();
    req.max_output_tokens = None;
    assert_eq!(body_of(&req)["max_tokens"], 8192);
    req.model = "claude-3-haiku-20240307".into();
    assert_eq!(
        body_of(&req)["max_tokens"],
        4096,
        "capped by the model's output limit"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&payload::to_body(&req, 1000).unwrap()).unwrap()["max_tokens"],
        1000
    );
}

#[test]
fn empty_text_blocks_and_empty_messages_are_not_sent() {
    let mut req = full_request();
    req.messages_mut()[1].content.insert(
        0,
        ContentBlock::Text {
            text: String::new(),
        },
    );
    req.messages_mut()
        .insert(1, ChatMessage::text(ChatRole::Assistant, ""));
    let body = body_of(&req);
    assert_eq!(body["messages"].as_array().unwrap().len(), 3);
    assert_eq!(body["messages"][1]["content"][0]["text"], "Checking.");
}

#[test]
fn what_the_api_cannot_express_is_unsupported_not_dropped() {
    let mut req = full_request();
    req.messages_mut()[1].content.push(ContentBlock::Image {
        source: ImageSource::Url {
            url: "https://x/y.png".into(),
        },
    });
    assert!(matches!(
        payload::to_body(&req, 8192),
        Err(LlmError::Unsupported { .. })
    ));
}
