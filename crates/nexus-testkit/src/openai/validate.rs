//! The request checks the real service answers with 400 `invalid_request_error`.
//!
//! Messages are the real ones where known, so a client that surfaces them reads naturally.
//! Only what a client could get wrong is checked; this is not a JSON Schema validator.

use serde_json::Value;

use super::errors::ApiError;

/// What a valid chat request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ChatPlan {
    pub(crate) model: String,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) last_user_text: String,
    /// Characters of all message text, for a token estimate.
    pub(crate) prompt_chars: usize,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn missing(param: &str) -> ApiError {
    ApiError::invalid(
        format!("Missing required parameter: '{param}'."),
        Some(param.to_owned()),
        Some("missing_required_parameter"),
    )
}

fn wrong_type(param: &str, expected: &str, got: &Value) -> ApiError {
    ApiError::invalid(
        format!(
            "Invalid type for '{param}': expected {expected}, but got {} instead.",
            type_name(got)
        ),
        Some(param.to_owned()),
        Some("invalid_type"),
    )
}

fn empty_array(param: &str) -> ApiError {
    ApiError::invalid(
        format!(
            "Invalid '{param}': empty array. Expected an array with minimum length 1, but got an \
             empty array instead."
        ),
        Some(param.to_owned()),
        Some("empty_array"),
    )
}

/// Checks a chat completion request and extracts what the answer needs.
pub(crate) fn chat(body: &Value) -> Result<ChatPlan, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid(
            "We could not parse the JSON body of your request. (HINT: This likely means you \
             aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, but \
             what was sent was not valid JSON.)",
            None,
            None,
        ));
    };
    let model = match obj.get("model") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "you must provide a model parameter",
                None,
                None,
            ));
        }
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => return Err(missing("messages")),
        Some(Value::Array(m)) if m.is_empty() => return Err(empty_array("messages")),
        Some(Value::Array(m)) => m,
        Some(other) => return Err(wrong_type("messages", "an array", other)),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(wrong_type("stream", "a boolean", other)),
    };
    let include_usage = match obj.get("stream_options") {
        None | Some(Value::Null) => false,
        Some(opts) => {
            if !stream {
                return Err(ApiError::invalid(
                    "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                    Some("stream_options".to_owned()),
                    None,
                ));
            }
            opts.get("include_usage")
                .and_then(Value::as_bool)
                .unwrap_or(false)
        }
    };
    if let Some(tools) = obj.get("tools") {
        check_tools(tools)?;
    }
    if let Some(max) = obj.get("max_completion_tokens").filter(|v| !v.is_null())
        && max.as_u64().is_none_or(|n| n == 0)
    {
        return Err(ApiError::invalid(
            format!("Invalid 'max_completion_tokens': expected a positive integer, got {max}."),
            Some("max_completion_tokens".to_owned()),
            Some("invalid_value"),
        ));
    }
    let (last_user_text, prompt_chars) = check_messages(messages)?;
    Ok(ChatPlan {
        model,
        stream,
        include_usage,
        last_user_text,
        prompt_chars,
    })
}

pub(crate) fn check_tools(tools: &Value) -> Result<(), ApiError> {
    let list = match tools {
        Value::Null => return Ok(()),
        Value::Array(list) if list.is_empty() => return Err(empty_array("tools")),
        Value::Array(list) => list,
        other => return Err(wrong_type("tools", "an array", other)),
    };
    for (i, tool) in list.iter().enumerate() {
        if tool.get("type").and_then(Value::as_str) != Some("function") {
            return Err(missing(&format!("tools[{i}].type")));
        }
        let Some(function) = tool.get("function").filter(|f| f.is_object()) else {
            return Err(missing(&format!("tools[{i}].function")));
        };
        let name_ok = function
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| {
                !n.is_empty()
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            });
        if !name_ok {
            return Err(ApiError::invalid(
                format!(
                    "Invalid 'tools[{i}].function.name': string does not match pattern. Expected \
                     a string that matches the pattern '^[a-zA-Z0-9_-]+$'."
                ),
                Some(format!("tools[{i}].function.name")),
                Some("invalid_value"),
            ));
        }
    }
    Ok(())
}

/// Checks roles, contents and the pairing of tool calls with tool messages. Returns the last
/// user text and the prompt size in characters.
fn check_messages(messages: &[Value]) -> Result<(String, usize), ApiError> {
    let mut last_user_text = String::new();
    let mut chars = 0usize;
    // The latest assistant message with tool calls (its index) and the call ids still
    // awaiting their `tool` message; `None` outside a tool-result block.
    let mut block: Option<(usize, Vec<String>)> = None;
    for (i, message) in messages.iter().enumerate() {
        let Some(role) = message.get("role").and_then(Value::as_str) else {
            return Err(missing(&format!("messages[{i}].role")));
        };
        if role != "tool" {
            if let Some((at, pending)) = &block
                && !pending.is_empty()
            {
                return Err(unanswered(*at, pending));
            }
            block = None;
        }
        match role {
            "system" | "developer" | "user" => {
                let text = check_content(i, message.get("content"), role == "user")?;
                chars += text.len();
                if role == "user" {
                    last_user_text = text;
                }
            }
            "assistant" => {
                let content = message.get("content").filter(|c| !c.is_null());
                if let Some(content) = content {
                    chars += check_content(i, Some(content), false)?.len();
                }
                let calls = check_tool_calls(i, message.get("tool_calls"))?;
                if content.is_none() && calls.is_empty() {
                    return Err(ApiError::invalid(
                        format!(
                            "Invalid value for 'messages[{i}].content': expected a string, got null."
                        ),
                        Some(format!("messages.[{i}].content")),
                        None,
                    ));
                }
                if !calls.is_empty() {
                    block = Some((i, calls));
                }
            }
            "tool" => {
                let id = match message.get("tool_call_id") {
                    Some(Value::String(id)) => id,
                    None | Some(Value::Null) => {
                        return Err(missing(&format!("messages[{i}].tool_call_id")));
                    }
                    Some(other) => {
                        return Err(wrong_type(
                            &format!("messages[{i}].tool_call_id"),
                            "a string",
                            other,
                        ));
                    }
                };
                let Some((_, pending)) = &mut block else {
                    return Err(ApiError::invalid(
                        "Invalid parameter: messages with role 'tool' must be a response to a \
                         preceeding message with 'tool_calls'.",
                        Some(format!("messages.[{i}].role")),
                        None,
                    ));
                };
                let Some(pos) = pending.iter().position(|p| p == id) else {
                    return Err(ApiError::invalid(
                        format!(
                            "Invalid parameter: 'tool_call_id' of '{id}' not found in \
                             'tool_calls' of previous message."
                        ),
                        Some(format!("messages.[{i}].tool_call_id")),
                        None,
                    ));
                };
                pending.remove(pos);
                chars += check_content(i, message.get("content"), false)?.len();
            }
            other => {
                return Err(ApiError::invalid(
                    format!(
                        "Invalid value: '{other}'. Supported values are: 'system', 'assistant', \
                         'user', 'function', 'tool', and 'developer'."
                    ),
                    Some(format!("messages[{i}].role")),
                    Some("invalid_value"),
                ));
            }
        }
    }
    if let Some((at, pending)) = &block
        && !pending.is_empty()
    {
        return Err(unanswered(*at, pending));
    }
    Ok((last_user_text, chars))
}

fn unanswered(index: usize, pending: &[String]) -> ApiError {
    ApiError::invalid(
        format!(
            "An assistant message with 'tool_calls' must be followed by tool messages responding \
             to each 'tool_call_id'. The following tool_call_ids did not have response messages: {}",
            pending.join(", ")
        ),
        Some(format!("messages.[{index}].role")),
        None,
    )
}

/// Checks `content` (a string or an array of parts) and returns its text.
fn check_content(
    i: usize,
    content: Option<&Value>,
    images_allowed: bool,
) -> Result<String, ApiError> {
    let param = format!("messages[{i}].content");
    match content {
        None | Some(Value::Null) => Err(missing(&param)),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Array(parts)) => {
            let mut text = String::new();
            for (j, part) in parts.iter().enumerate() {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
                match kind {
                    "text" => match part.get("text") {
                        Some(Value::String(t)) => text.push_str(t),
                        Some(other) => {
                            return Err(wrong_type(
                                &format!("{param}[{j}].text"),
                                "a string",
                                other,
                            ));
                        }
                        None => return Err(missing(&format!("{param}[{j}].text"))),
                    },
                    "image_url" if images_allowed => check_image(&format!("{param}[{j}]"), part)?,
                    _ => {
                        return Err(ApiError::invalid(
                            format!(
                                "Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'."
                            ),
                            Some(format!("{param}[{j}].type")),
                            Some("invalid_value"),
                        ));
                    }
                }
            }
            Ok(text)
        }
        Some(other) => Err(wrong_type(
            &param,
            "one of a string or array of objects",
            other,
        )),
    }
}

fn check_image(param: &str, part: &Value) -> Result<(), ApiError> {
    let Some(url) = part.pointer("/image_url/url").and_then(Value::as_str) else {
        return Err(missing(&format!("{param}.image_url.url")));
    };
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(());
    }
    let valid_data_url = url
        .strip_prefix("data:image/")
        .and_then(|rest| rest.split_once(";base64,"))
        .is_some_and(|(_, data)| {
            !data.is_empty()
                && data
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b))
        });
    if valid_data_url {
        Ok(())
    } else {
        Err(ApiError::invalid(
            format!(
                "Invalid '{param}.image_url.url'. Expected a base64-encoded data URL with an image \
                 MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), or an http(s) URL."
            ),
            Some(format!("{param}.image_url.url")),
            Some("invalid_value"),
        ))
    }
}

/// Checks an assistant's `tool_calls` and returns their ids.
fn check_tool_calls(i: usize, calls: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let list = match calls {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.is_empty() => {
            return Err(empty_array(&format!("messages[{i}].tool_calls")));
        }
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(wrong_type(
                &format!("messages[{i}].tool_calls"),
                "an array",
                other,
            ));
        }
    };
    let mut ids = Vec::with_capacity(list.len());
    for (j, call) in list.iter().enumerate() {
        let param = format!("messages[{i}].tool_calls[{j}]");
        let Some(id) = call.get("id").and_then(Value::as_str) else {
            return Err(missing(&format!("{param}.id")));
        };
        if call.get("type").and_then(Value::as_str) != Some("function") {
            return Err(missing(&format!("{param}.type")));
        }
        if call
            .pointer("/function/name")
            .and_then(Value::as_str)
            .is_none()
        {
            return Err(missing(&format!("{param}.function.name")));
        }
        match call.pointer("/function/arguments") {
            Some(Value::String(_)) => {}
            None => return Err(missing(&format!("{param}.function.arguments"))),
            Some(other) => {
                return Err(wrong_type(
                    &format!("{param}.function.arguments"),
                    "a string",
                    other,
                ));
            }
        }
        ids.push(id.to_owned());
    }
    Ok(ids)
}

/// Checks an embeddings request; returns the model, the inputs as text, and the dimension.
pub(crate) fn embeddings(body: &Value) -> Result<(String, Vec<String>, usize, bool), ApiError> {
    let model = match body.get("model") {
        None | Some(Value::Null) => {
            return Err(ApiError::invalid(
                "you must provide a model parameter",
                None,
                None,
            ));
        }
        Some(Value::String(m)) => m.clone(),
        Some(other) => return Err(wrong_type("model", "a string", other)),
    };
    let inputs: Vec<String> = match body.get("input") {
        None | Some(Value::Null) => return Err(missing("input")),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if items.is_empty() => return Err(empty_array("input")),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(other) => return Err(wrong_type("input", "a string or array", other)),
    };
    if inputs.len() > 2048 {
        return Err(ApiError::invalid(
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
            None,
            None,
        ));
    }
    let default_dim = if model.contains("3-large") {
        3072
    } else {
        1536
    };
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => default_dim,
        Some(d) => match d.as_u64() {
            Some(n) if (1..=default_dim as u64).contains(&n) => n as usize,
            _ => {
                return Err(ApiError::invalid(
                    format!("Invalid value for 'dimensions': expected 1..={default_dim}, got {d}."),
                    Some("dimensions".to_owned()),
                    Some("invalid_value"),
                ));
            }
        },
    };
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    Ok((model, inputs, dimensions, base64))
}
