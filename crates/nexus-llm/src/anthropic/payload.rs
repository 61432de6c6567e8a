//! Vendor mapping of a request: a neutral [`CompletionRequest`] to the Messages API body.
//!
//! - the system prompt becomes one `system` text block;
//! - messages keep their roles; content is always a block array: `text` (empty ones dropped,
//!   the API refuses them; a message left without blocks is dropped), `image` (`base64` or
//!   `url` source), `tool_use` (assistant), `tool_result` (user, moved before the other blocks
//!   of its message, as the API requires; `is_error` only when true);
//! - tools carry their JSON Schema as `input_schema` (`{"type":"object"}` when they have none);
//! - `max_tokens` is always sent (the API requires it): the request's `max_output_tokens`, else
//!   [`AnthropicConfig::default_max_tokens`](super::AnthropicConfig::default_max_tokens) capped
//!   by the model's known output limit; `stream: true`; `temperature` when set.
//!
//! **Prompt caching.** `cache_control: {"type":"ephemeral"}` marks at most four breakpoints,
//! each the end of a prefix the service may cache (it renders tools → system → messages):
//!
//! 1. the last tool definition (tools are the most stable part, shared across conversations);
//! 2. the system block;
//! 3. the last block of the last message (the conversation tail: the next request of the same
//!    conversation reads everything up to here from the cache);
//! 4. the last block of the user message before the last message, which is where the previous
//!    request of the conversation ended: a guaranteed hit even when a turn added more blocks
//!    (e.g. many tool calls) than the service's lookback of about 20 blocks.
//!
//! Nothing variable (time, ids) is inserted, so the requests of one conversation are
//! byte-identical up to where they differ in content (the `cache_control` markers themselves
//! are not part of the cached content).
//!
//! What the API cannot express is refused with [`LlmError::Unsupported`] rather than dropped.

use nexus_core::llm::{
    ChatMessage, ChatRole, CompletionRequest, ContentBlock, ImageSource, LlmError,
};
use serde::Serialize;
use serde_json::Value;

/// Known output limits below the usual default, by model-name prefix.
const OUTPUT_LIMITS: &[(&str, u32)] = &[
    ("claude-3-haiku", 4096),
    ("claude-3-opus", 4096),
    ("claude-3-sonnet", 4096),
];

/// The request body.
#[derive(Debug, Serialize)]
pub(crate) struct MessagesRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    system: Vec<Block<'a>>,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    stream: bool,
}

/// `{"type":"ephemeral"}`: a breakpoint with the default five-minute lifetime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

const EPHEMERAL: CacheControl = CacheControl { kind: "ephemeral" };

#[derive(Debug, Serialize)]
struct WireTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    description: &'a str,
    input_schema: Schema<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum Schema<'a> {
    Given(&'a Value),
    Empty { r#type: &'static str },
}

#[derive(Debug, Serialize)]
struct WireMessage<'a> {
    role: &'static str,
    content: Vec<Block<'a>>,
}

/// A content block and its optional breakpoint.
#[derive(Debug, Serialize)]
struct Block<'a> {
    #[serde(flatten)]
    kind: BlockKind<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockKind<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: WireImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a Value,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        content: &'a str,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

impl<'a> Block<'a> {
    fn new(kind: BlockKind<'a>) -> Block<'a> {
        Block {
            kind,
            cache_control: None,
        }
    }
}

/// Maps `request` to the wire body; `default_max_tokens` applies when the request sets no
/// output limit.
pub(crate) fn build(
    request: &CompletionRequest,
    default_max_tokens: u32,
) -> Result<MessagesRequest<'_>, LlmError> {
    let mut messages = Vec::with_capacity(request.messages.len());
    for message in request.messages.iter() {
        let content = match message.role {
            ChatRole::User => map_user(message)?,
            ChatRole::Assistant => map_assistant(message)?,
        };
        if content.is_empty() {
            continue;
        }
        let role = match message.role {
            ChatRole::User => "user",
            ChatRole::Assistant => "assistant",
        };
        messages.push(WireMessage { role, content });
    }
    let tools = request
        .tools
        .iter()
        .map(|tool| WireTool {
            name: &tool.name,
            description: &tool.description,
            input_schema: if tool.parameters.is_null() {
                Schema::Empty { r#type: "object" }
            } else {
                Schema::Given(&tool.parameters)
            },
            cache_control: None,
        })
        .collect();
    let system = request
        .system
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|text| vec![Block::new(BlockKind::Text { text })])
        .unwrap_or_default();
    let mut body = MessagesRequest {
        model: &request.model,
        max_tokens: request
            .max_output_tokens
            .unwrap_or_else(|| default_for(&request.model, default_max_tokens)),
        tools,
        system,
        messages,
        temperature: request.temperature,
        stream: true,
    };
    place_breakpoints(&mut body);
    Ok(body)
}

/// The serialized body.
pub(crate) fn to_body(
    request: &CompletionRequest,
    default_max_tokens: u32,
) -> Result<Vec<u8>, LlmError> {
    let wire = build(request, default_max_tokens)?;
    crate::body::serialize(request, &wire)
}

/// `default` lowered to the output limit of `model` when it is known to be below it.
fn default_for(model: &str, default: u32) -> u32 {
    OUTPUT_LIMITS
        .iter()
        .find(|(prefix, _)| model.starts_with(prefix))
        .map_or(default, |(_, limit)| default.min(*limit))
}

/// Sets the breakpoints listed in the module doc: at most four, the API's limit.
fn place_breakpoints(body: &mut MessagesRequest<'_>) {
    if let Some(tool) = body.tools.last_mut() {
        tool.cache_control = Some(EPHEMERAL);
    }
    if let Some(block) = body.system.last_mut() {
        block.cache_control = Some(EPHEMERAL);
    }
    let Some((last, history)) = body.messages.split_last_mut() else {
        return;
    };
    if let Some(block) = last.content.last_mut() {
        block.cache_control = Some(EPHEMERAL);
    }
    if let Some(block) = history
        .iter_mut()
        .rev()
        .find(|m| m.role == "user")
        .and_then(|m| m.content.last_mut())
    {
        block.cache_control = Some(EPHEMERAL);
    }
}

fn map_user(message: &ChatMessage) -> Result<Vec<Block<'_>>, LlmError> {
    let mut results = Vec::new();
    let mut rest = Vec::new();
    for block in &message.content {
        match block {
            ContentBlock::Text { text } if text.is_empty() => {}
            ContentBlock::Text { text } => rest.push(Block::new(BlockKind::Text { text })),
            ContentBlock::Image { source } => rest.push(Block::new(BlockKind::Image {
                source: image_source(source),
            })),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => results.push(Block::new(BlockKind::ToolResult {
                tool_use_id,
                content,
                is_error: *is_error,
            })),
            ContentBlock::ToolUse { .. } => {
                return Err(LlmError::Unsupported {
                    what: "tool calls in a user message".to_owned(),
                });
            }
        }
    }
    results.append(&mut rest);
    Ok(results)
}

fn map_assistant(message: &ChatMessage) -> Result<Vec<Block<'_>>, LlmError> {
    let mut blocks = Vec::with_capacity(message.content.len());
    for block in &message.content {
        match block {
            ContentBlock::Text { text } if text.is_empty() => {}
            ContentBlock::Text { text } => blocks.push(Block::new(BlockKind::Text { text })),
            ContentBlock::ToolUse { id, name, input } => {
                blocks.push(Block::new(BlockKind::ToolUse { id, name, input }));
            }
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
    Ok(blocks)
}

fn image_source(source: &ImageSource) -> WireImageSource<'_> {
    match source {
        ImageSource::Base64 { media_type, data } => WireImageSource::Base64 { media_type, data },
        ImageSource::Url { url } => WireImageSource::Url { url },
    }
}
