//! Vendor mapping of a request: a neutral [`CompletionRequest`] to the Chat Completions body.
//!
//! - the system prompt becomes the first `system` message;
//! - assistant text and tool calls become one `assistant` message, `content: null` when there
//!   is no text, each call's `arguments` a JSON *string*;
//! - each tool result becomes its own `role: tool` message, placed before the rest of the
//!   user message that carried it (so it directly follows the calls it answers);
//! - images become `image_url` parts (base64 as a `data:` URL);
//! - a tool call id longer than the API's 40 characters (another provider's, e.g. a Gemini id
//!   carrying a thought signature) is replaced by a stable hash, the same for the call and its
//!   result;
//! - `stream: true` with `stream_options.include_usage`, and `max_completion_tokens` (OpenAI)
//!   or `max_tokens` (OpenRouter and other servers);
//! - no tools for a model configured without tool support.
//!
//! What the API cannot express is refused with [`LlmError::Unsupported`] rather than dropped.

use std::borrow::Cow;

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionRequest, ContentBlock, ImageSource, LlmError,
};
use serde::Serialize;

use super::config::Flavor;

/// The request body.
#[derive(Debug, Serialize)]
pub(crate) struct ChatRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    /// What servers other than OpenAI's understand.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
    stream_options: StreamOptions,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: UserContent<'a>,
    },
    Assistant {
        content: Option<String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: Cow<'a, str>,
        content: Cow<'a, str>,
    },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum UserContent<'a> {
    Text(&'a str),
    Parts(Vec<Part<'a>>),
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Part<'a> {
    Text { text: &'a str },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Debug, Serialize)]
struct ImageUrl<'a> {
    url: Cow<'a, str>,
}

#[derive(Debug, Serialize)]
struct WireToolCall<'a> {
    id: Cow<'a, str>,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunctionCall<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunctionCall<'a> {
    name: &'a str,
    arguments: String,
}

#[derive(Debug, Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Debug, Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

/// Maps `request` to the wire body for a server of `flavor`; `tools` is false for a model
/// that cannot take them.
pub(crate) fn build(
    request: &CompletionRequest,
    flavor: Flavor,
    tools: bool,
) -> Result<ChatRequest<'_>, LlmError> {
    let mut messages = Vec::with_capacity(request.messages.len() + 1);
    if let Some(system) = request.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(WireMessage::System { content: system });
    }
    for message in request.messages.iter() {
        match message.role {
            ChatRole::User => map_user(message, &mut messages)?,
            ChatRole::Assistant => messages.push(map_assistant(message)?),
        }
    }
    let tools = request
        .tools
        .iter()
        .filter(|_| tools)
        .map(|tool| WireTool {
            kind: "function",
            function: WireFunction {
                name: &tool.name,
                description: &tool.description,
                parameters: &tool.parameters,
            },
        })
        .collect();
    Ok(ChatRequest {
        model: &request.model,
        messages,
        tools,
        max_completion_tokens: (flavor == Flavor::OpenAi)
            .then_some(request.max_output_tokens)
            .flatten(),
        max_tokens: (flavor != Flavor::OpenAi)
            .then_some(request.max_output_tokens)
            .flatten(),
        temperature: request.temperature,
        stream: true,
        stream_options: StreamOptions {
            include_usage: true,
        },
    })
}

/// The serialized body.
pub(crate) fn to_body(
    request: &CompletionRequest,
    flavor: Flavor,
    tools: bool,
) -> Result<Vec<u8>, LlmError> {
    let wire = build(request, flavor, tools)?;
    crate::body::serialize(request, &wire)
}

fn map_user<'a>(message: &'a ChatMessage, out: &mut Vec<WireMessage<'a>>) -> Result<(), LlmError> {
    let mut parts: Vec<Part<'a>> = Vec::new();
    let mut has_image = false;
    for block in &message.content {
        match block {
            ContentBlock::Text { text } => parts.push(Part::Text { text }),
            ContentBlock::Image { source } => {
                has_image = true;
                parts.push(Part::ImageUrl {
                    image_url: ImageUrl {
                        url: image_url(source),
                    },
                });
            }
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => out.push(WireMessage::Tool {
                tool_call_id: wire_id(tool_use_id),
                content: if *is_error {
                    Cow::Owned(format!("Error: {content}"))
                } else {
                    Cow::Borrowed(content)
                },
            }),
            ContentBlock::ToolUse { .. } => {
                return Err(LlmError::Unsupported {
                    what: "tool calls in a user message".to_owned(),
                });
            }
        }
    }
    let only_tool_results = parts.is_empty() && !message.content.is_empty();
    if only_tool_results {
        return Ok(());
    }
    let content = match parts.as_slice() {
        [] => UserContent::Text(""),
        [Part::Text { text }] if !has_image => UserContent::Text(text),
        _ => UserContent::Parts(parts),
    };
    out.push(WireMessage::User { content });
    Ok(())
}

fn map_assistant(message: &ChatMessage) -> Result<WireMessage<'_>, LlmError> {
    let mut text: Option<String> = None;
    let mut tool_calls = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::Text { text: t } => text.get_or_insert_with(String::new).push_str(t),
            ContentBlock::ToolUse { id, name, input } => tool_calls.push(WireToolCall {
                id: wire_id(id),
                kind: "function",
                function: WireFunctionCall {
                    name,
                    arguments: input.to_string(),
                },
            }),
            ContentBlock::Image { .. } => {
                return Err(LlmError::Unsupported {
                    what: "images in an assistant message".to_owned(),
                });
            }
            ContentBlock::ToolResult { .. } => {
                return Err(LlmError::Unsupported {
                    what: "tool results in an assistant message".to_owned(),
                });
            }
        }
    }
    let content = match text {
        Some(t) if !t.is_empty() || tool_calls.is_empty() => Some(t),
        Some(_) => None,
        None if tool_calls.is_empty() => Some(String::new()),
        None => None,
    };
    Ok(WireMessage::Assistant {
        content,
        tool_calls,
    })
}

fn image_url(source: &ImageSource) -> Cow<'_, str> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            Cow::Owned(format!("data:{media_type};base64,{data}"))
        }
        ImageSource::Url { url } => Cow::Borrowed(url),
    }
}

/// The longest tool call id the API accepts (`string_above_max_length` beyond).
const MAX_CALL_ID: usize = 40;

/// `id`, or a stable `call_…` hash of it when it is longer than [`MAX_CALL_ID`].
fn wire_id(id: &str) -> Cow<'_, str> {
    if id.len() <= MAX_CALL_ID {
        return Cow::Borrowed(id);
    }
    let fnv = |basis: u64| {
        id.bytes().fold(basis, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
    };
    Cow::Owned(format!(
        "call_{:016x}{:016x}",
        fnv(0xcbf2_9ce4_8422_2325),
        fnv(0x6c62_272e_07bb_0142)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_foreign_call_ids_are_hashed_the_same_for_call_and_result() {
        let long = format!("gem_0123456789abcdef_b{}", "A".repeat(300));
        let short = wire_id(&long);
        assert!(
            short.len() <= MAX_CALL_ID && short.starts_with("call_"),
            "{short}"
        );
        assert_eq!(short, wire_id(&long));
        assert_ne!(short, wire_id(&format!("{long}B")));
        assert_eq!(wire_id("call_abc"), "call_abc");
    }
}
