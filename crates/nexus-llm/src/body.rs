//! Request bodies serialized into one buffer sized up front.
//!
//! A model call carries the whole conversation. Serialized into a `Vec` that starts empty, a
//! conversation of a hundred messages goes through a dozen reallocations, each copying all that
//! was written so far; sized from the request first, it is written once.

use nexus_core::llm::{CompletionRequest, ContentBlock, ImageSource};
use serde::Serialize;

use crate::LlmError;

/// JSON keys and punctuation around one message or content block, roughly.
const PER_ITEM: usize = 64;
/// The fixed fields of a request (model, limits, stream options), roughly.
const BASE: usize = 256;
/// A tool's schema, whose size is not known without serializing it.
const PER_TOOL: usize = 512;
/// A tool call's arguments, likewise.
const PER_TOOL_INPUT: usize = 128;

/// Serializes `wire`, a provider's form of `request`.
pub(crate) fn serialize<T: Serialize>(
    request: &CompletionRequest,
    wire: &T,
) -> Result<Vec<u8>, LlmError> {
    let mut body = Vec::with_capacity(size_hint(request));
    serde_json::to_writer(&mut body, wire).map_err(|err| LlmError::BadRequest {
        message: format!("cannot serialize the request: {err}"),
    })?;
    Ok(body)
}

/// About how many bytes `request` takes as JSON (escaping can make it longer; the buffer then
/// grows once).
fn size_hint(request: &CompletionRequest) -> usize {
    let mut n = BASE + request.system.as_ref().map_or(0, String::len);
    for message in request.messages.iter() {
        n += PER_ITEM;
        for block in &message.content {
            n += PER_ITEM
                + match block {
                    ContentBlock::Text { text } => text.len(),
                    ContentBlock::Image {
                        source: ImageSource::Base64 { media_type, data },
                    } => media_type.len() + data.len(),
                    ContentBlock::Image {
                        source: ImageSource::Url { url },
                    } => url.len(),
                    ContentBlock::ToolUse { id, name, .. } => {
                        id.len() + name.len() + PER_TOOL_INPUT
                    }
                    ContentBlock::ToolResult {
                        tool_use_id,
                        content,
                        ..
                    } => tool_use_id.len() + content.len(),
                };
        }
    }
    for tool in &request.tools {
        n += PER_TOOL + tool.name.len() + tool.description.len();
    }
    n
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use nexus_core::llm::{ChatMessage, ChatRole};

    use super::*;

    #[test]
    fn the_hint_covers_a_plain_conversation_so_the_buffer_is_not_regrown() {
        let request = CompletionRequest {
            model: "m".into(),
            system: Some("be brief".into()),
            messages: (0..100)
                .map(|i| ChatMessage::text(ChatRole::User, format!("message number {i} says hi")))
                .collect::<Vec<_>>()
                .into(),
            ..CompletionRequest::default()
        };
        let body = serialize(&request, &request).unwrap();
        assert!(body.len() <= size_hint(&request), "{} bytes", body.len());
        assert!(size_hint(&request) < body.len() * 4);
        let back: CompletionRequest = serde_json::from_slice(&body).unwrap();
        assert_eq!(back, request);
    }
}
