//! Vendor mapping of a request: a neutral [`CompletionRequest`] to a `GenerateContentRequest`.
//!
//! - the system prompt becomes `systemInstruction`;
//! - messages become `contents` with roles `user` / `model`; consecutive messages of one role
//!   are merged into one content, and messages with nothing to send (empty text) are skipped,
//!   since the API refuses empty `parts`;
//! - text becomes `text` parts, base64 images `inlineData` parts;
//! - the model's tool calls become `functionCall` parts, with the thought signature their id
//!   carries (see [`callid`](super::callid)) echoed unchanged on that part; the first call of
//!   a model turn whose calls all came from another provider gets
//!   [`FOREIGN_SIGNATURE`](super::callid::FOREIGN_SIGNATURE);
//! - tool results become `functionResponse` parts at the start of their user turn, named after
//!   the call they answer (found by id in the conversation), their `response` always an object:
//!   a JSON-object output as it is, any other output as `{"result": …}`, a failure as
//!   `{"error": …}` (the key the API documents for errors);
//! - tools become one `functionDeclarations` list, parameters cleaned by [`schema`](super::schema);
//! - `maxOutputTokens` and `temperature` go in `generationConfig`.
//!
//! Refused with [`LlmError::Unsupported`] rather than dropped: image URLs (Gemini only fetches
//! its own Files API and Cloud Storage URIs; fetching arbitrary URLs here would bypass the
//! agent's network policy, so attachments must be sent as bytes), images from the model, tool
//! calls in a user message and tool results in a model message. Call ids are never sent.

use std::collections::HashMap;

use nexus_core::llm::{ChatRole, CompletionRequest, ContentBlock, ImageSource, LlmError};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::callid::{self, CallOrigin, FOREIGN_SIGNATURE};
use super::schema;

/// The request body.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct GenerateContentRequest<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    system_instruction: Option<Content<'a>>,
    contents: Vec<Content<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<Tool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Serialize)]
struct Content<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    parts: Vec<Part<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Part<'a> {
    #[serde(flatten)]
    data: PartData<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thought_signature: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
enum PartData<'a> {
    Text(&'a str),
    InlineData(InlineData<'a>),
    FunctionCall(FunctionCall<'a>),
    FunctionResponse(FunctionResponse<'a>),
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct InlineData<'a> {
    mime_type: &'a str,
    data: &'a str,
}

#[derive(Debug, Serialize)]
struct FunctionCall<'a> {
    name: &'a str,
    args: Value,
}

#[derive(Debug, Serialize)]
struct FunctionResponse<'a> {
    name: &'a str,
    response: Value,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Tool<'a> {
    function_declarations: Vec<FunctionDeclaration<'a>>,
}

#[derive(Debug, Serialize)]
struct FunctionDeclaration<'a> {
    name: &'a str,
    description: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    max_output_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

/// Maps `request` to the wire body.
pub(crate) fn build(request: &CompletionRequest) -> Result<GenerateContentRequest<'_>, LlmError> {
    // Function names by call id, of the calls made so far (a later call with a reused id
    // wins, so a result finds the call it follows).
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut contents: Vec<Content<'_>> = Vec::with_capacity(request.messages.len());
    for message in request.messages.iter() {
        for block in &message.content {
            if let ContentBlock::ToolUse { id, name, .. } = block {
                names.insert(id, name);
            }
        }
        let (role, parts) = match message.role {
            ChatRole::User => ("user", user_parts(&message.content, &names)?),
            ChatRole::Assistant => ("model", model_parts(&message.content)?),
        };
        if parts.is_empty() {
            continue;
        }
        match contents.last_mut() {
            Some(last) if last.role == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role),
                parts,
            }),
        }
    }
    let system_instruction = request
        .system
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(|text| Content {
            role: None,
            parts: vec![plain(PartData::Text(text))],
        });
    let declarations: Vec<FunctionDeclaration<'_>> = request
        .tools
        .iter()
        .map(|tool| FunctionDeclaration {
            name: &tool.name,
            description: &tool.description,
            parameters: schema::parameters(&tool.parameters),
        })
        .collect();
    let tools = if declarations.is_empty() {
        Vec::new()
    } else {
        vec![Tool {
            function_declarations: declarations,
        }]
    };
    let generation_config = (request.max_output_tokens.is_some() || request.temperature.is_some())
        .then_some(GenerationConfig {
            max_output_tokens: request.max_output_tokens,
            temperature: request.temperature,
        });
    Ok(GenerateContentRequest {
        system_instruction,
        contents,
        tools,
        generation_config,
    })
}

/// The serialized body.
pub(crate) fn to_body(request: &CompletionRequest) -> Result<Vec<u8>, LlmError> {
    let wire = build(request)?;
    crate::body::serialize(request, &wire)
}

fn plain(data: PartData<'_>) -> Part<'_> {
    Part {
        data,
        thought_signature: None,
    }
}

/// A user turn: function responses first (they must directly follow the calls), then the rest.
fn user_parts<'a>(
    blocks: &'a [ContentBlock],
    names: &HashMap<&str, &'a str>,
) -> Result<Vec<Part<'a>>, LlmError> {
    let mut responses = Vec::new();
    let mut rest = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Text { text } if text.is_empty() => {}
            ContentBlock::Text { text } => rest.push(plain(PartData::Text(text))),
            ContentBlock::Image { source } => rest.push(plain(image(source)?)),
            ContentBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => {
                let Some(name) = names.get(tool_use_id.as_str()) else {
                    return Err(LlmError::BadRequest {
                        message: format!(
                            "tool result for `{tool_use_id}` answers no earlier tool call of \
                             the conversation (Gemini needs the called function's name)"
                        ),
                    });
                };
                responses.push(plain(PartData::FunctionResponse(FunctionResponse {
                    name,
                    response: tool_response(content, *is_error),
                })));
            }
            ContentBlock::ToolUse { .. } => {
                return Err(LlmError::Unsupported {
                    what: "tool calls in a user message".to_owned(),
                });
            }
        }
    }
    responses.extend(rest);
    Ok(responses)
}

/// A model turn: text and function calls in order, signatures echoed.
fn model_parts(blocks: &[ContentBlock]) -> Result<Vec<Part<'_>>, LlmError> {
    let mut parts = Vec::with_capacity(blocks.len());
    let mut all_foreign = true;
    let mut first_call: Option<usize> = None;
    for block in blocks {
        match block {
            ContentBlock::Text { text } if text.is_empty() => {}
            ContentBlock::Text { text } => parts.push(plain(PartData::Text(text))),
            ContentBlock::ToolUse { id, name, input } => {
                let signature = match callid::origin(id) {
                    CallOrigin::Gemini { signature } => {
                        all_foreign = false;
                        signature
                    }
                    CallOrigin::Foreign => None,
                };
                first_call.get_or_insert(parts.len());
                parts.push(Part {
                    data: PartData::FunctionCall(FunctionCall {
                        name,
                        args: call_args(name, input)?,
                    }),
                    thought_signature: signature,
                });
            }
            ContentBlock::Image { .. } => {
                return Err(LlmError::Unsupported {
                    what: "images in a model message".to_owned(),
                });
            }
            ContentBlock::ToolResult { .. } => {
                return Err(LlmError::Unsupported {
                    what: "tool results in a model message".to_owned(),
                });
            }
        }
    }
    if all_foreign
        && let Some(at) = first_call
        && let Some(part) = parts.get_mut(at)
    {
        part.thought_signature = Some(FOREIGN_SIGNATURE.to_owned());
    }
    Ok(parts)
}

fn image(source: &ImageSource) -> Result<PartData<'_>, LlmError> {
    match source {
        ImageSource::Base64 { media_type, data } => Ok(PartData::InlineData(InlineData {
            mime_type: media_type,
            data,
        })),
        ImageSource::Url { .. } => Err(LlmError::Unsupported {
            what: "image URLs with Gemini (send the image bytes as base64 instead)".to_owned(),
        }),
    }
}

/// Tool call arguments: an object (a missing one is `{}`).
fn call_args(name: &str, input: &Value) -> Result<Value, LlmError> {
    match input {
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Object(_) => Ok(input.clone()),
        _ => Err(LlmError::Unsupported {
            what: format!("arguments of tool call `{name}` that are not a JSON object"),
        }),
    }
}

/// The `response` object of a tool result.
fn tool_response(content: &str, is_error: bool) -> Value {
    let parsed: Value =
        serde_json::from_str(content).unwrap_or_else(|_| Value::String(content.to_owned()));
    match (is_error, parsed) {
        (true, parsed) => json!({ "error": parsed }),
        (false, Value::Object(object)) => Value::Object(object),
        (false, parsed) => json!({ "result": parsed }),
    }
}

#[cfg(test)]
mod tests {
    use nexus_core::llm::ChatMessage;

    use super::*;
    use crate::gemini::tests::full_request;

    #[test]
    fn tool_results_are_objects_named_after_the_call_they_answer() {
        let mut req = full_request();
        req.tools.clear();
        req.max_output_tokens = None;
        req.temperature = None;
        req.messages_mut()[1].content.push(ContentBlock::ToolUse {
            id: "call_b".into(),
            name: "lookup".into(),
            input: Value::Null,
        });
        req.messages_mut()[1].content.push(ContentBlock::ToolUse {
            id: "call_c".into(),
            name: "count".into(),
            input: json!({}),
        });
        req.messages_mut()[2].content = vec![
            ContentBlock::ToolResult {
                tool_use_id: "call_c".into(),
                content: "42".into(),
                is_error: false,
            },
            ContentBlock::ToolResult {
                tool_use_id: "call_b".into(),
                content: r#"{"rows": [1, 2]}"#.into(),
                is_error: false,
            },
            ContentBlock::ToolResult {
                tool_use_id: "call_a".into(),
                content: "service unavailable".into(),
                is_error: true,
            },
        ];
        let body: Value = serde_json::from_slice(&to_body(&req).unwrap()).unwrap();
        assert_eq!(
            body["contents"][2]["parts"],
            json!([
                {"functionResponse": {"name": "count", "response": {"result": 42}}},
                {"functionResponse": {"name": "lookup", "response": {"rows": [1, 2]}}},
                {"functionResponse": {"name": "get_weather", "response": {"error": "service unavailable"}}}
            ])
        );
        let calls = &body["contents"][1]["parts"];
        assert_eq!(calls[1]["functionCall"]["args"], json!({}));
        assert_eq!(calls[0]["thoughtSignature"], FOREIGN_SIGNATURE);
        assert!(calls[1].get("thoughtSignature").is_none());
        assert!(body.get("tools").is_none() && body.get("generationConfig").is_none());
    }

    #[test]
    fn a_reused_call_id_names_the_call_it_follows() {
        let turn = |name: &str| {
            [
                ChatMessage {
                    role: ChatRole::Assistant,
                    content: vec![ContentBlock::ToolUse {
                        id: "call_0".into(),
                        name: name.into(),
                        input: json!({}),
                    }],
                },
                ChatMessage {
                    role: ChatRole::User,
                    content: vec![ContentBlock::ToolResult {
                        tool_use_id: "call_0".into(),
                        content: "done".into(),
                        is_error: false,
                    }],
                },
            ]
        };
        let mut messages = vec![ChatMessage::text(ChatRole::User, "go")];
        messages.extend(turn("first_tool"));
        messages.extend(turn("second_tool"));
        let req = CompletionRequest {
            model: "gemini-2.5-flash".into(),
            messages: messages.into(),
            ..CompletionRequest::default()
        };
        let body: Value = serde_json::from_slice(&to_body(&req).unwrap()).unwrap();
        let names: Vec<&Value> = [2, 4]
            .iter()
            .map(|i| &body["contents"][i]["parts"][0]["functionResponse"]["name"])
            .collect();
        assert_eq!(names, [&json!("first_tool"), &json!("second_tool")]);
    }

    #[test]
    fn a_result_for_an_unknown_call_is_refused_before_sending() {
        let mut req = full_request();
        req.messages_mut()[2].content[0] = ContentBlock::ToolResult {
            tool_use_id: "call_zzz".into(),
            content: "x".into(),
            is_error: false,
        };
        let err = to_body(&req).unwrap_err();
        assert!(matches!(err, LlmError::BadRequest { .. }), "{err:?}");
    }

    #[test]
    fn url_images_and_model_images_are_unsupported_not_dropped() {
        let mut req = full_request();
        req.messages_mut()[0].content.push(ContentBlock::Image {
            source: ImageSource::Url {
                url: "https://example.com/cat.png".into(),
            },
        });
        assert!(matches!(to_body(&req), Err(LlmError::Unsupported { .. })));
        let mut req = full_request();
        req.messages_mut()[1].content.push(ContentBlock::Image {
            source: ImageSource::Base64 {
                media_type: "image/png".into(),
                data: "iVBORw0KGgo=".into(),
            },
        });
        assert!(matches!(to_body(&req), Err(LlmError::Unsupported { .. })));
    }

    #[test]
    fn empty_messages_are_skipped_and_same_role_turns_merged() {
        let req = CompletionRequest {
            model: "gemini-2.5-flash".into(),
            messages: vec![
                ChatMessage::text(ChatRole::User, "one"),
                ChatMessage::text(ChatRole::Assistant, ""),
                ChatMessage::text(ChatRole::User, "two"),
            ]
            .into(),
            ..CompletionRequest::default()
        };
        let body: Value = serde_json::from_slice(&to_body(&req).unwrap()).unwrap();
        assert_eq!(
            body["contents"],
            json!([{"role": "user", "parts": [{"text": "one"}, {"text": "two"}]}])
        );
        assert!(body.get("systemInstruction").is_none());
    }
}
