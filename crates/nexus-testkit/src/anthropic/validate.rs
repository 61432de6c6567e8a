//! The request checks the real service answers with 400 `invalid_request_error`, and the
//! prompt's blocks in rendering order (tools → system → messages) for cache accounting.
//!
//! Messages follow the real ones where known (field paths like `messages.1.content.0`), so a
//! client that surfaces them reads naturally. Only what a client could get wrong is checked;
//! this is not a JSON Schema validator.

use std::collections::HashSet;

use serde_json::Value;

use super::errors::ApiError;

/// The most `cache_control` breakpoints one request may carry.
pub(crate) const MAX_BREAKPOINTS: usize = 4;

/// Media types of base64 images the API accepts.
const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/gif", "image/webp"];

/// One block of the prompt, as the cache sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PromptBlock {
    /// Where the block sits (`tool`, `system`, a role at a message start, `+` inside a
    /// message) and its canonical JSON without `cache_control`: what the cache key hashes.
    pub(crate) key: String,
    /// The token estimate: ceil(bytes / 4) of the canonical JSON.
    pub(crate) tokens: u64,
    /// Whether the block carries `cache_control`.
    pub(crate) breakpoint: bool,
}

/// What a valid message request asks for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Plan {
    pub(crate) model: String,
    pub(crate) stream: bool,
    /// The text of the latest user message that has text.
    pub(crate) last_user_text: String,
    /// The prompt's blocks, in rendering order.
    pub(crate) prompt: Vec<PromptBlock>,
}

impl Plan {
    /// All input tokens of the prompt.
    pub(crate) fn input_tokens(&self) -> u64 {
        self.prompt.iter().map(|b| b.tokens).sum()
    }
}

/// The 400 for a body that is not a JSON object.
pub(crate) fn not_json() -> ApiError {
    ApiError::invalid(
        "There was an error parsing the body of your request. Please ensure that the body is \
         valid JSON.",
    )
}

/// Checks a `/v1/messages` body (`count_tokens` does not require `max_tokens`).
pub(crate) fn messages(body: &Value, require_max_tokens: bool) -> Result<Plan, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(not_json());
    };
    let model = match obj.get("model") {
        None | Some(Value::Null) => return Err(ApiError::invalid("model: Field required")),
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(_) => return Err(ApiError::invalid("model: Input should be a valid string")),
    };
    match obj.get("max_tokens") {
        None | Some(Value::Null) if require_max_tokens => {
            return Err(ApiError::invalid("max_tokens: Field required"));
        }
        None | Some(Value::Null) => {}
        Some(v) => match v.as_i64() {
            None => {
                return Err(ApiError::invalid(
                    "max_tokens: Input should be a valid integer",
                ));
            }
            Some(n) if n < 1 => {
                return Err(ApiError::invalid(
                    "max_tokens: Input should be greater than or equal to 1",
                ));
            }
            Some(_) => {}
        },
    }
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(ApiError::invalid("stream: Input should be a valid boolean")),
    };
    if let Some(t) = obj.get("temperature").filter(|v| !v.is_null()) {
        match t.as_f64() {
            None => {
                return Err(ApiError::invalid(
                    "temperature: Input should be a valid number",
                ));
            }
            Some(t) if t < 0.0 => {
                return Err(ApiError::invalid(
                    "temperature: Input should be greater than or equal to 0",
                ));
            }
            Some(t) if t > 1.0 => {
                return Err(ApiError::invalid(
                    "temperature: Input should be less than or equal to 1",
                ));
            }
            Some(_) => {}
        }
    }
    let mut prompt = Vec::new();
    if let Some(tools) = obj.get("tools").filter(|v| !v.is_null()) {
        check_tools(tools, &mut prompt)?;
    }
    if let Some(system) = obj.get("system").filter(|v| !v.is_null()) {
        check_system(system, &mut prompt)?;
    }
    let messages = match obj.get("messages") {
        None | Some(Value::Null) => return Err(ApiError::invalid("messages: Field required")),
        Some(Value::Array(m)) if m.is_empty() => {
            return Err(ApiError::invalid(
                "messages: at least one message is required",
            ));
        }
        Some(Value::Array(m)) => m,
        Some(_) => return Err(ApiError::invalid("messages: Input should be a valid list")),
    };
    let last_user_text = check_messages(messages, &mut prompt)?;
    let breakpoints = prompt.iter().filter(|b| b.breakpoint).count();
    if breakpoints > MAX_BREAKPOINTS {
        return Err(ApiError::invalid(format!(
            "A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. Found \
             {breakpoints}."
        )));
    }
    Ok(Plan {
        model,
        stream,
        last_user_text,
        prompt,
    })
}

/// `block` without `cache_control`, as canonical JSON (object keys sorted).
fn canonical(block: &Value) -> String {
    match block {
        Value::Object(map) if map.contains_key("cache_control") => {
            let mut map = map.clone();
            map.remove("cache_control");
            Value::Object(map).to_string()
        }
        other => other.to_string(),
    }
}

/// Records `block` at `place`; checks its `cache_control`.
fn push_block(
    prompt: &mut Vec<PromptBlock>,
    place: &str,
    block: &Value,
    path: &str,
) -> Result<(), ApiError> {
    let breakpoint = match block.get("cache_control") {
        None | Some(Value::Null) => false,
        Some(control) => {
            if control.get("type").and_then(Value::as_str) != Some("ephemeral") {
                return Err(ApiError::invalid(format!(
                    "{path}.cache_control.type: Input should be 'ephemeral'"
                )));
            }
            match control.get("ttl") {
                None | Some(Value::Null) => {}
                Some(Value::String(ttl)) if ttl == "5m" || ttl == "1h" => {}
                Some(_) => {
                    return Err(ApiError::invalid(format!(
                        "{path}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'"
                    )));
                }
            }
            true
        }
    };
    let json = canonical(block);
    prompt.push(PromptBlock {
        tokens: (json.len() as u64).div_ceil(4),
        key: format!("{place}:{json}"),
        breakpoint,
    });
    Ok(())
}

fn check_tools(tools: &Value, prompt: &mut Vec<PromptBlock>) -> Result<(), ApiError> {
    let Value::Array(list) = tools else {
        return Err(ApiError::invalid("tools: Input should be a valid list"));
    };
    let mut names = HashSet::new();
    for (i, tool) in list.iter().enumerate() {
        let name_ok = tool.get("name").and_then(Value::as_str).is_some_and(|n| {
            (1..=64).contains(&n.len())
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
        if !name_ok {
            return Err(ApiError::invalid(format!(
                "tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )));
        }
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if !names.insert(name.to_owned()) {
            return Err(ApiError::invalid("tools: Tool names must be unique."));
        }
        match tool.get("input_schema") {
            None | Some(Value::Null) => {
                return Err(ApiError::invalid(format!(
                    "tools.{i}.custom.input_schema: Field required"
                )));
            }
            Some(schema) if schema.get("type").and_then(Value::as_str) != Some("object") => {
                return Err(ApiError::invalid(format!(
                    "tools.{i}.custom.input_schema.type: Input should be 'object'"
                )));
            }
            Some(_) => {}
        }
        push_block(prompt, "tool", tool, &format!("tools.{i}"))?;
    }
    Ok(())
}

fn check_system(system: &Value, prompt: &mut Vec<PromptBlock>) -> Result<(), ApiError> {
    match system {
        Value::String(text) => {
            if !text.is_empty() {
                let block = serde_json::json!({"type": "text", "text": text});
                push_block(prompt, "system", &block, "system")?;
            }
            Ok(())
        }
        Value::Array(blocks) => {
            for (i, block) in blocks.iter().enumerate() {
                let path = format!("system.{i}");
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(ApiError::invalid(format!(
                        "{path}.type: Input should be 'text'"
                    )));
                }
                check_text(block, &path)?;
                push_block(prompt, "system", block, &path)?;
            }
            Ok(())
        }
        _ => Err(ApiError::invalid(
            "system: Input should be a valid string or a valid list",
        )),
    }
}

fn check_text(block: &Value, path: &str) -> Result<(), ApiError> {
    match block.get("text") {
        Some(Value::String(t)) if t.is_empty() => {
            let what = if block.get("cache_control").is_some_and(|c| !c.is_null()) {
                "cache_control cannot be set for empty text blocks"
            } else {
                "text content blocks must be non-empty"
            };
            Err(ApiError::invalid(format!("{path}: {what}")))
        }
        Some(Value::String(_)) => Ok(()),
        None | Some(Value::Null) => Err(ApiError::invalid(format!("{path}.text: Field required"))),
        Some(_) => Err(ApiError::invalid(format!(
            "{path}.text: Input should be a valid string"
        ))),
    }
}

/// The `tool_use` ids of an assistant message (empty for other messages).
fn tool_use_ids(message: &Value) -> Vec<String> {
    if message.get("role").and_then(Value::as_str) != Some("assistant") {
        return Vec::new();
    }
    message
        .get("content")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_use"))
        .filter_map(|b| b.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect()
}

/// Checks roles, contents and the pairing of `tool_use` with `tool_result`; records the
/// blocks. Returns the text of the latest user message that has text.
fn check_messages(messages: &[Value], prompt: &mut Vec<PromptBlock>) -> Result<String, ApiError> {
    let mut last_user_text = String::new();
    for (i, message) in messages.iter().enumerate() {
        let role = match message.get("role").and_then(Value::as_str) {
            Some(role @ ("user" | "assistant")) => role,
            None => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.role: Field required"
                )));
            }
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.role: Input should be 'user' or 'assistant'"
                )));
            }
        };
        if i == 0 && role != "user" {
            return Err(ApiError::invalid(
                "messages: first message must use the \"user\" role",
            ));
        }
        let is_last = i + 1 == messages.len();
        let blocks: Vec<Value> = match message.get("content") {
            None | Some(Value::Null) => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.content: Field required"
                )));
            }
            Some(Value::String(text)) if text.is_empty() && !(is_last && role == "assistant") => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}: all messages must have non-empty content except for the \
                     optional final assistant message"
                )));
            }
            Some(Value::String(text)) if text.is_empty() => Vec::new(),
            Some(Value::String(text)) => vec![serde_json::json!({"type": "text", "text": text})],
            Some(Value::Array(list)) if list.is_empty() && !(is_last && role == "assistant") => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}: all messages must have non-empty content except for the \
                     optional final assistant message"
                )));
            }
            Some(Value::Array(list)) => list.clone(),
            Some(_) => {
                return Err(ApiError::invalid(format!(
                    "messages.{i}.content: Input should be a valid list"
                )));
            }
        };
        let expected: Vec<String> = if i > 0 {
            tool_use_ids(&messages[i - 1])
        } else {
            Vec::new()
        };
        let mut answered: HashSet<String> = HashSet::new();
        let mut seen_other = false;
        let mut text = String::new();
        for (j, block) in blocks.iter().enumerate() {
            let path = format!("messages.{i}.content.{j}");
            let kind = block
                .get("type")
                .and_then(Value::as_str)
                .unwrap_or_default();
            match (kind, role) {
                ("text", _) => {
                    check_text(block, &path)?;
                    text.push_str(
                        block
                            .get("text")
                            .and_then(Value::as_str)
                            .unwrap_or_default(),
                    );
                }
                ("image", _) => check_image(block, &path)?,
                ("tool_use", "assistant") => {
                    let fields_ok = block.get("id").and_then(Value::as_str).is_some()
                        && block.get("name").and_then(Value::as_str).is_some()
                        && block.get("input").is_some_and(Value::is_object);
                    if !fields_ok {
                        return Err(ApiError::invalid(format!(
                            "{path}.tool_use: `id`, `name` and an object `input` are required"
                        )));
                    }
                }
                ("tool_result", "user") => {
                    if seen_other {
                        return Err(ApiError::invalid(format!(
                            "messages.{i}: `tool_result` blocks must come first in the user \
                             message, before any other content"
                        )));
                    }
                    let id = block
                        .get("tool_use_id")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    if !expected.iter().any(|e| e == id) {
                        return Err(ApiError::invalid(format!(
                            "{path}: unexpected `tool_use_id` found in `tool_result` blocks: \
                             {id}. Each `tool_result` block must have a corresponding \
                             `tool_use` block in the previous message."
                        )));
                    }
                    answered.insert(id.to_owned());
                }
                ("thinking" | "redacted_thinking", "assistant") => {}
                ("tool_use" | "tool_result" | "thinking" | "redacted_thinking", _) => {
                    return Err(ApiError::invalid(format!(
                        "{path}: `{kind}` blocks are not allowed in `{role}` messages"
                    )));
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "{path}: Input tag '{kind}' found using 'type' does not match any of \
                         the expected tags"
                    )));
                }
            }
            if kind != "tool_result" {
                seen_other = true;
            }
            let place = if j == 0 { role } else { "+" };
            push_block(prompt, place, block, &path)?;
        }
        let missing: Vec<&str> = expected
            .iter()
            .filter(|id| !answered.contains(*id))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(ApiError::invalid(format!(
                "messages.{}: `tool_use` ids were found without `tool_result` blocks \
                 immediately after: {}. Each `tool_use` block must have a corresponding \
                 `tool_result` block in the next message.",
                i - 1,
                missing.join(", ")
            )));
        }
        if role == "user" && !text.is_empty() {
            last_user_text = text;
        }
    }
    if let Some(last) = messages.last() {
        let pending = tool_use_ids(last);
        if !pending.is_empty() {
            return Err(ApiError::invalid(format!(
                "messages.{}: `tool_use` ids were found without `tool_result` blocks \
                 immediately after: {}. Each `tool_use` block must have a corresponding \
                 `tool_result` block in the next message.",
                messages.len() - 1,
                pending.join(", ")
            )));
        }
    }
    Ok(last_user_text)
}

fn check_image(block: &Value, path: &str) -> Result<(), ApiError> {
    let source = block.get("source");
    match source.and_then(|s| s.get("type")).and_then(Value::as_str) {
        Some("base64") => {
            let media_type = source
                .and_then(|s| s.get("media_type"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if !IMAGE_TYPES.contains(&media_type) {
                return Err(ApiError::invalid(format!(
                    "{path}.image.source.base64.media_type: Input should be 'image/jpeg', \
                     'image/png', 'image/gif' or 'image/webp'"
                )));
            }
            let data = source
                .and_then(|s| s.get("data"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let valid = !data.is_empty()
                && data
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"+/=".contains(&b));
            if valid {
                Ok(())
            } else {
                Err(ApiError::invalid(format!(
                    "{path}.image.source.base64: The image data is not valid base64."
                )))
            }
        }
        Some("url") => {
            let url = source
                .and_then(|s| s.get("url"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            if url.starts_with("https://") || url.starts_with("http://") {
                Ok(())
            } else {
                Err(ApiError::invalid(format!(
                    "{path}.image.source.url.url: Input should be a valid URL"
                )))
            }
        }
        _ => Err(ApiError::invalid(format!(
            "{path}.image.source: Input tag found using 'type' does not match any of the \
             expected tags: 'base64', 'url', 'file'"
        ))),
    }
}
