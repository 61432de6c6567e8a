//! The usual chat request, checked without building a tree of JSON values.
//!
//! A client that sends the whole conversation sends a hundred messages or more per request,
//! and a fake that turns each into a map of owned strings spends more time on it than the
//! server under test does on the turn. Most requests are plain: text messages, no tool
//! results. [`plain_chat`] reads those into borrowed fields and applies the same checks as
//! [`validate::chat`]; anything else (a tool call, content parts, a wrong type, a missing
//! field, a duplicate key) gives `None`, and the caller runs the full check, which has the
//! real error message. So the answer to a request does not depend on which path took it (one
//! exception: an ignored field nested deeper than serde_json's recursion limit, which only the
//! full parse refuses).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::validate::{self, ChatPlan};

#[derive(Deserialize)]
struct Request<'a> {
    #[serde(borrow)]
    model: Option<Text<'a>>,
    #[serde(borrow)]
    messages: Option<Vec<Object<Message<'a>>>>,
    stream: Option<bool>,
    stream_options: Option<Value>,
    tools: Option<Value>,
    max_completion_tokens: Option<Value>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<Text<'a>>,
    #[serde(borrow)]
    content: Option<Text<'a>>,
    tool_calls: Option<IgnoredAny>,
}

/// The plan of a valid plain chat request; `None` for any other request, valid or not.
pub(crate) fn plain_chat(body: &[u8]) -> Option<ChatPlan> {
    let Object(request) = serde_json::from_slice::<Object<Request<'_>>>(body).ok()?;
    let model = request.model?.0.into_owned();
    let messages = request.messages.filter(|m| !m.is_empty())?;
    let stream = request.stream.unwrap_or(false);
    let include_usage = match request.stream_options {
        None => false,
        Some(_) if !stream => return None,
        Some(options) => options
            .get("include_usage")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    };
    if let Some(tools) = &request.tools {
        validate::check_tools(tools).ok()?;
    }
    if let Some(max) = &request.max_completion_tokens
        && max.as_u64().is_none_or(|n| n == 0)
    {
        return None;
    }
    let mut last_user_text: Option<&str> = None;
    let mut prompt_chars = 0;
    for Object(message) in &messages {
        let content = &message.content.as_ref()?.0;
        if message.tool_calls.is_some() {
            return None;
        }
        match &*message.role.as_ref()?.0 {
            "user" => last_user_text = Some(content.as_ref()),
            "system" | "developer" | "assistant" => {}
            _ => return None,
        }
        prompt_chars += content.len();
    }
    Some(ChatPlan {
        model,
        stream,
        include_usage,
        last_user_text: last_user_text.unwrap_or_default().to_owned(),
        prompt_chars,
    })
}

/// `T` read only from a JSON object: a derived `Deserialize` also takes an array, by position,
/// where the full check wants an object.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }

        deserializer
            .deserialize_map(Fields(PhantomData))
            .map(Object)
    }
}

/// A string, borrowed from the body unless it has escapes.
struct Text<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Chars;

        impl<'de> Visitor<'de> for Chars {
            type Value = Cow<'de, str>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Cow::Borrowed(v))
            }

            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v.to_owned()))
            }

            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(Cow::Owned(v))
            }
        }

        deserializer.deserialize_str(Chars).map(Text)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::plain_chat;
    use crate::openai::validate;

    fn full(body: &[u8]) -> Result<validate::ChatPlan, String> {
        let value = serde_json::from_slice(body).unwrap_or(Value::Null);
        validate::chat(&value).map_err(|e| e.message)
    }

    fn conversation(n: usize) -> Value {
        let messages: Vec<Value> = (0..n)
            .map(|i| match i % 3 {
                0 => json!({"role": "user", "content": format!("message {i}")}),
                1 => json!({"role": "assistant", "content": format!("You said: \"message\"\n{i}")}),
                _ => json!({"role": "system", "content": "Be brief. Ünïcode ✓", "name": 5}),
            })
            .collect();
        json!({"model": "gpt-4o", "messages": messages, "stream": true,
               "stream_options": {"include_usage": true}, "max_completion_tokens": 100})
    }

    #[test]
    fn plain_requests_take_the_fast_path_with_the_full_checks_plan() {
        let mut with_tools = conversation(4);
        with_tools["tools"] = json!([{"type": "function", "function": {"name": "web_search"}}]);
        let bodies = [
            conversation(1),
            conversation(101),
            with_tools,
            json!({"model": "m", "messages": [{"role": "developer", "content": ""}]}),
            json!({"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": null,
                   "tools": null, "max_completion_tokens": null, "stream_options": null}),
        ];
        for body in bodies {
            let bytes = serde_json::to_vec(&body).unwrap();
            let fast = plain_chat(&bytes);
            assert!(fast.is_some(), "not taken for {body}");
            assert_eq!(fast.map(Ok), Some(full(&bytes)), "for {body}");
        }
    }

    #[test]
    fn every_other_request_is_left_to_the_full_check() {
        let user = json!({"role": "user", "content": "hi"});
        let with = |key: &str, value: Value| {
            let mut body = json!({"model": "m", "messages": [user.clone()]});
            body[key] = value;
            serde_json::to_vec(&body).unwrap()
        };
        let bodies: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"not json".to_vec(),
            br#"["m", [{"role": "user", "content": "hi"}]]"#.to_vec(),
            br#"{"model": "m", "messages": [["user", "hi"]]}"#.to_vec(),
            br#"{"model": "m", "model": "n", "messages": [{"role": "user", "content": "hi"}]}"#
                .to_vec(),
            br#"{"model": "m", "messages": [{"role": "user", "content": "a"}]} trailing"#.to_vec(),
            with("model", Value::Null),
            with("model", json!(4)),
            with("messages", json!([])),
            with("messages", json!({"role": "user"})),
            with("messages", json!([{"role": "user"}])),
            with("messages", json!([{"content": "hi"}])),
            with("messages", json!([{"role": "robot", "content": "hi"}])),
            with(
                "messages",
                json!([{"role": "user", "content": [{"type": "text", "text": "hi"}]}]),
            ),
            with(
                "messages",
                json!([{"role": "assistant", "content": null, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "ok"}]),
            ),
            with(
                "messages",
                json!([{"role": "assistant", "content": "x", "tool_calls": []}]),
            ),
            with("stream", json!("yes")),
            with("stream_options", json!({"include_usage": true})),
            with("tools", json!([])),
            with(
                "tools",
                json!([{"type": "function", "function": {"name": "bad name"}}]),
            ),
            with("max_completion_tokens", json!(0)),
            with("max_completion_tokens", json!("ten")),
        ];
        for body in bodies {
            // Most are invalid; content parts and tool results are valid but not plain.
            let text = String::from_utf8_lossy(&body).into_owned();
            assert_eq!(plain_chat(&body), None, "taken for {text}");
        }
    }
}
