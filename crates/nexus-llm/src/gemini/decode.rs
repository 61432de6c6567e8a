//! Decoding of a `streamGenerateContent?alt=sse` stream: SSE items in, neutral
//! [`CompletionChunk`]s out.
//!
//! Every event is a whole `GenerateContentResponse` whose text parts are deltas; there is no
//! `[DONE]`, the body just ends. Only candidate 0 is read.
//!
//! - `text` parts → `TextDelta` (parts marked `thought: true` are the model's reasoning and
//!   are not shown);
//! - `functionCall` parts, which arrive whole → `ToolUseStart` at once and a complete `ToolUse`
//!   at the finish, through the shared assembler; ids are minted by [`callid`](super::callid)
//!   and carry the part's `thoughtSignature` (a signature on a text part, sent with answers
//!   without calls, is dropped: the neutral types keep only the text there, and Gemini
//!   validates only the signatures of function calls);
//! - `finishReason`: `STOP` → `EndTurn`, or `ToolUse` when calls were made (Gemini has no
//!   separate reason for them); `MAX_TOKENS` → `MaxTokens`; `SAFETY`, `RECITATION`,
//!   `LANGUAGE`, `BLOCKLIST`, `PROHIBITED_CONTENT`, `SPII` and the image filters →
//!   `ContentFilter`; `MALFORMED_FUNCTION_CALL`, `UNEXPECTED_TOOL_CALL` and
//!   `TOO_MANY_TOOL_CALLS` leave no usable answer → [`LlmError::InStream`]; `OTHER` and
//!   unknown reasons end the turn normally;
//! - `promptFeedback.blockReason` without candidates (a blocked prompt) → `ContentFilter`;
//! - `usageMetadata` (the latest one; it is cumulative) → one `Usage` just before `Done`:
//!   input = `promptTokenCount` (cached tokens included) + `toolUsePromptTokenCount`,
//!   output = `candidatesTokenCount` + `thoughtsTokenCount`, cache read =
//!   `cachedContentTokenCount`;
//! - `Done` when the body ends after a finish; an end before any finish is
//!   [`LlmError::StreamInterrupted`].
//!
//! Errors: an `error` object — in a `data:` event, or as plain (often pretty-printed) JSON
//! lines without `data:`, which the SSE parser hands over as foreign lines — is classified
//! like an HTTP answer when nothing was produced yet (so a 503 inside a fresh stream is still
//! `Overloaded` and retried), and is [`LlmError::InStream`] after that. Invalid JSON is
//! [`LlmError::Malformed`]. Unknown fields are ignored. This module does no I/O.

use std::collections::VecDeque;
use std::hash::{BuildHasher, RandomState};

use nexus_core::llm::{CompletionChunk, LlmError, StopReason, Usage};
use serde::Deserialize;
use serde_json::Value;

use super::callid;
use crate::assemble::{Fragment, ToolCallAssembler};
use crate::classify::google;
use crate::sse::SseEvent;

/// Most bytes of one JSON value sent without `data:` (an error body is a few hundred bytes).
const MAX_RAW_JSON: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireResponse {
    #[serde(default)]
    candidates: Option<Vec<WireCandidate>>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(default)]
    usage_metadata: Option<WireUsage>,
    #[serde(default)]
    response_id: Option<String>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireCandidate {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireContent {
    #[serde(default)]
    parts: Option<Vec<WirePart>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WirePart {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(default)]
    thought_signature: Option<String>,
    #[serde(default)]
    function_call: Option<WireFunctionCall>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionCall {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    args: Option<Value>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireUsage {
    #[serde(default)]
    prompt_token_count: u64,
    #[serde(default)]
    candidates_token_count: u64,
    #[serde(default)]
    cached_content_token_count: u64,
    #[serde(default)]
    thoughts_token_count: u64,
    #[serde(default)]
    tool_use_prompt_token_count: u64,
}

impl WireUsage {
    fn neutral(&self) -> Usage {
        Usage {
            input_tokens: self.prompt_token_count + self.tool_use_prompt_token_count,
            output_tokens: self.candidates_token_count + self.thoughts_token_count,
            cache_read_tokens: self.cached_content_token_count,
            cache_write_tokens: 0,
        }
    }
}

/// The decoding state of one answer.
#[derive(Debug)]
pub(crate) struct Decoder {
    model: String,
    tools: ToolCallAssembler,
    /// Function calls seen so far (the index of the next one).
    calls: u32,
    /// Seeds call ids when a response has no `responseId`.
    salt: u64,
    usage: Option<Usage>,
    stop: Option<StopReason>,
    /// Whether a chunk was produced (errors after it are `InStream`).
    produced: bool,
    raw: RawJson,
}

impl Decoder {
    /// A decoder for an answer of `model` (named in `ModelNotFound`).
    pub(crate) fn new(model: &str) -> Decoder {
        Decoder {
            model: model.to_owned(),
            tools: ToolCallAssembler::default(),
            calls: 0,
            salt: RandomState::new().hash_one(model),
            usage: None,
            stop: None,
            produced: false,
            raw: RawJson::default(),
        }
    }

    /// Whether a finish arrived (the answer is complete once the body ends).
    pub(crate) fn has_finished(&self) -> bool {
        self.stop.is_some()
    }

    /// Decodes one JSON payload: a `GenerateContentResponse`, an error, or an array of them.
    pub(crate) fn on_data(
        &mut self,
        data: &str,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        let data = data.trim();
        if data.is_empty() || data == "[DONE]" {
            return Ok(());
        }
        let malformed = |err: serde_json::Error| LlmError::Malformed {
            detail: format!("stream chunk is not valid JSON: {err}"),
        };
        if data.starts_with('[') {
            let items: Vec<Value> = serde_json::from_str(data).map_err(malformed)?;
            for item in items {
                let response = WireResponse::deserialize(item).map_err(malformed)?;
                self.on_response(response, out)?;
            }
            return Ok(());
        }
        let response: WireResponse = serde_json::from_str(data).map_err(malformed)?;
        self.on_response(response, out)
    }

    /// The body ended: a finished answer gets its usage and `Done`; anything else was cut.
    pub(crate) fn on_end(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        let Some(stop) = self.stop else {
            return Err(LlmError::StreamInterrupted);
        };
        if let Some(usage) = self.usage.take() {
            out.push_back(CompletionChunk::Usage { usage });
        }
        out.push_back(CompletionChunk::Done { stop_reason: stop });
        Ok(())
    }

    fn on_response(
        &mut self,
        response: WireResponse,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if let Some(error) = response.error.filter(|e| !e.is_null()) {
            return Err(self.stream_error(error));
        }
        if let Some(usage) = &response.usage_metadata {
            self.usage = Some(usage.neutral());
        }
        let candidates = response.candidates.unwrap_or_default();
        if candidates.is_empty()
            && let Some(reason) = response.prompt_feedback.and_then(|f| f.block_reason)
        {
            tracing::debug!(reason = %reason, "Gemini blocked the prompt");
            return self.finish(StopReason::ContentFilter, out);
        }
        let Some(candidate) = candidates.into_iter().find(|c| c.index.unwrap_or(0) == 0) else {
            return Ok(());
        };
        let parts = candidate.content.and_then(|c| c.parts).unwrap_or_default();
        for part in parts {
            if part.thought == Some(true) {
                continue;
            }
            if let Some(call) = part.function_call {
                self.on_call(
                    call,
                    part.thought_signature.as_deref(),
                    response.response_id.as_deref(),
                    out,
                )?;
            } else if let Some(text) = part.text.filter(|t| !t.is_empty()) {
                self.produced = true;
                out.push_back(CompletionChunk::TextDelta { text });
            }
        }
        match candidate.finish_reason.as_deref() {
            Some(reason) => self.on_finish(reason, out),
            None => Ok(()),
        }
    }

    fn on_call(
        &mut self,
        call: WireFunctionCall,
        signature: Option<&str>,
        response_id: Option<&str>,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        let index = self.calls;
        self.calls += 1;
        let Some(name) = call.name.filter(|n| !n.is_empty()) else {
            return Err(LlmError::Malformed {
                detail: format!("function call {index} has no name"),
            });
        };
        let id = callid::mint(call.id.as_deref(), response_id, self.salt, index, signature);
        let arguments = match call.args {
            None | Some(Value::Null) => "{}".to_owned(),
            Some(args) => args.to_string(),
        };
        let fragment = Fragment {
            index,
            id: Some(&id),
            name: Some(&name),
            arguments: Some(&arguments),
        };
        if let Some(start) = self.tools.push(fragment)? {
            self.produced = true;
            out.push_back(start);
        }
        Ok(())
    }

    fn on_finish(
        &mut self,
        reason: &str,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        let stop = match reason {
            "STOP" => StopReason::EndTurn,
            "MAX_TOKENS" => StopReason::MaxTokens,
            "SAFETY"
            | "RECITATION"
            | "LANGUAGE"
            | "BLOCKLIST"
            | "PROHIBITED_CONTENT"
            | "SPII"
            | "IMAGE_SAFETY"
            | "IMAGE_PROHIBITED_CONTENT"
            | "IMAGE_RECITATION" => StopReason::ContentFilter,
            "MALFORMED_FUNCTION_CALL" | "UNEXPECTED_TOOL_CALL" | "TOO_MANY_TOOL_CALLS" => {
                return Err(LlmError::InStream {
                    message: format!("the model produced no usable answer ({reason})"),
                });
            }
            other => {
                tracing::debug!(reason = other, "Gemini finished for another reason");
                StopReason::EndTurn
            }
        };
        self.finish(stop, out)
    }

    /// Records the finish (the first one counts) and releases the assembled calls.
    fn finish(
        &mut self,
        stop: StopReason,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if self.stop.is_some() {
            return Ok(());
        }
        let had_tools = !self.tools.is_empty();
        out.extend(self.tools.finish()?);
        self.stop = Some(if had_tools && stop == StopReason::EndTurn {
            StopReason::ToolUse
        } else {
            stop
        });
        Ok(())
    }

    /// An `error` object inside the body: classified like an HTTP answer while nothing was
    /// produced, `InStream` after that.
    fn stream_error(&self, error: Value) -> LlmError {
        let parsed = google::parse_value(&serde_json::json!({ "error": error }));
        let parsed = parsed.unwrap_or_default();
        if self.produced {
            let message = if parsed.message.is_empty() {
                "the stream reported an error".to_owned()
            } else {
                parsed.message
            };
            return LlmError::InStream { message };
        }
        let status = parsed.http_status().unwrap_or(500);
        google::classify_error(status, &parsed, None, &self.model)
    }
}

/// Collects JSON sent without `data:` (one value over one or several lines) until it is
/// complete. Lines outside a JSON value that do not start one are ignored.
#[derive(Debug, Default)]
struct RawJson {
    buf: String,
    depth: usize,
    in_string: bool,
    escaped: bool,
}

impl RawJson {
    /// Adds a line; returns the JSON text once its brackets close.
    fn push(&mut self, line: &str) -> Result<Option<String>, LlmError> {
        if self.buf.is_empty() {
            let start = line.trim_start();
            if !(start.starts_with('{') || start.starts_with('[')) {
                tracing::debug!(line = %line.chars().take(80).collect::<String>(), "Ignoring a stray line in a Gemini stream");
                return Ok(None);
            }
        }
        if self.buf.len() + line.len() > MAX_RAW_JSON {
            return Err(LlmError::Malformed {
                detail: format!("JSON outside of events larger than {MAX_RAW_JSON} bytes"),
            });
        }
        self.buf.push_str(line);
        self.buf.push('\n');
        for c in line.chars() {
            if self.in_string {
                match (self.escaped, c) {
                    (true, _) => self.escaped = false,
                    (false, '\\') => self.escaped = true,
                    (false, '"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            match c {
                '"' => self.in_string = true,
                '{' | '[' => self.depth += 1,
                '}' | ']' => self.depth = self.depth.saturating_sub(1),
                _ => {}
            }
        }
        if self.depth == 0 && !self.in_string {
            return Ok(Some(std::mem::take(&mut self.buf)));
        }
        Ok(None)
    }
}

/// The generic body pump drives this decoder, with bare JSON lines (an error sent without
/// `data:`) handed over as foreign lines.
impl crate::pump::Decode for Decoder {
    const FOREIGN_LINES: bool = true;

    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        match event.event.as_deref() {
            None | Some("message" | "error") => self.on_data(&event.data, out),
            Some(_) => Ok(()),
        }
    }

    fn on_foreign(
        &mut self,
        line: &str,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        match self.raw.push(line)? {
            Some(json) => self.on_data(&json, out),
            None => Ok(()),
        }
    }

    fn on_end(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        Decoder::on_end(self, out)
    }

    /// Gemini's stream has no end marker: the answer ends with the body.
    fn is_done(&self) -> bool {
        false
    }

    fn has_finished(&self) -> bool {
        Decoder::has_finished(self)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use serde_json::json;

    use super::*;
    use crate::gemini::callid::CallOrigin;
    use crate::sse::SseEvent;

    #[test]
    fn raw_json_completes_on_balanced_brackets_ignoring_those_in_strings() {
        let mut raw = RawJson::default();
        assert_eq!(raw.push("[{").unwrap(), None);
        assert_eq!(
            raw.push(r#"  "error": {"message": "a } in ] text \" {","#)
                .unwrap(),
            None
        );
        assert_eq!(raw.push(r#"    "code": 503 }"#).unwrap(), None);
        let text = raw.push("}]").unwrap().unwrap();
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value[0]["error"]["code"], 503);
        assert_eq!(raw.push("id: 4").unwrap(), None);
        assert_eq!(raw.push("{}").unwrap().as_deref(), Some("{}\n"));
    }

    #[test]
    fn raw_json_is_bounded() {
        let mut raw = RawJson::default();
        raw.push("{").unwrap();
        let line = format!("\"{}\",", "a".repeat(1000));
        let err = (0..100).find_map(|_| raw.push(&line).err());
        assert!(matches!(err, Some(LlmError::Malformed { .. })));
    }

    fn decode(items: &[&str]) -> (Vec<CompletionChunk>, Result<(), LlmError>) {
        let mut decoder = Decoder::new("gemini-x");
        let mut out = VecDeque::new();
        for item in items {
            let decoded = match item.strip_prefix("data: ") {
                Some(data) => crate::pump::Decode::on_event(
                    &mut decoder,
                    &SseEvent {
                        event: None,
                        data: data.to_owned(),
                    },
                    &mut out,
                ),
                None => crate::pump::Decode::on_foreign(&mut decoder, item, &mut out),
            };
            if let Err(err) = decoded {
                return (out.into(), Err(err));
            }
        }
        let end = crate::pump::Decode::on_end(&mut decoder, &mut out);
        (out.into(), end)
    }

    fn text_chunk(text: &str) -> String {
        format!(
            r#"data: {{"candidates":[{{"content":{{"parts":[{{"text":"{text}"}}],"role":"model"}},"index":0}}]}}"#
        )
    }

    #[test]
    fn calls_ending_with_stop_are_tool_use_and_thoughts_are_not_shown() {
        let (chunks, end) = decode(&[
            r#"data: {"candidates":[{"content":{"parts":[{"text":"pondering","thought":true},{"text":"Let me check. "}],"role":"model"},"index":0}]}"#,
            r#"data: {"candidates":[{"content":{"parts":[{"functionCall":{"name":"f","args":{"a":1}},"thoughtSignature":"c2ln"},{"functionCall":{"id":"gx1","name":"g"}}],"role":"model"},"finishReason":"STOP","index":0}],"responseId":"r1"}"#,
        ]);
        end.unwrap();
        assert_eq!(
            chunks[0],
            CompletionChunk::TextDelta {
                text: "Let me check. ".into()
            }
        );
        let uses: Vec<(&str, &str, &Value)> = chunks
            .iter()
            .filter_map(|c| match c {
                CompletionChunk::ToolUse { id, name, input } => {
                    Some((id.as_str(), name.as_str(), input))
                }
                _ => None,
            })
            .collect();
        assert_eq!(uses.len(), 2);
        assert_eq!((uses[0].1, uses[0].2), ("f", &json!({"a": 1})));
        assert_eq!(
            callid::origin(uses[0].0),
            CallOrigin::Gemini {
                signature: Some("c2ln".into())
            }
        );
        assert_eq!(
            (uses[1].0, uses[1].1, uses[1].2),
            ("gem_gx1", "g", &json!({}))
        );
        assert_eq!(
            chunks.last(),
            Some(&CompletionChunk::Done {
                stop_reason: StopReason::ToolUse
            })
        );
    }

    #[test]
    fn usage_is_the_latest_report_and_comes_just_before_done() {
        let (chunks, end) = decode(&[
            r#"data: {"candidates":[{"content":{"parts":[{"text":"a"}]}}],"usageMetadata":{"promptTokenCount":9}}"#,
            r#"data: {"candidates":[{"content":{"parts":[{"text":"b"}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":9,"candidatesTokenCount":2,"toolUsePromptTokenCount":4,"thoughtsTokenCount":5}}"#,
        ]);
        end.unwrap();
        assert_eq!(
            chunks[2..],
            [
                CompletionChunk::Usage {
                    usage: Usage {
                        input_tokens: 13,
                        output_tokens: 7,
                        cache_read_tokens: 0,
                        cache_write_tokens: 0
                    }
                },
                CompletionChunk::Done {
                    stop_reason: StopReason::EndTurn
                }
            ]
        );
    }

    #[test]
    fn error_objects_in_data_events_are_classified_first_and_in_stream_later() {
        let error = r#"data: {"error":{"code":429,"message":"slow down","status":"RESOURCE_EXHAUSTED","details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"3s"}]}}"#;
        let (chunks, end) = decode(&[error]);
        assert!(chunks.is_empty());
        assert_eq!(
            end,
            Err(LlmError::RateLimited {
                retry_after: Some(Duration::from_secs(3))
            })
        );
        let (chunks, end) = decode(&[&text_chunk("hi"), error]);
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            end,
            Err(LlmError::InStream {
                message: "slow down".into()
            })
        );
    }

    #[test]
    fn pretty_printed_error_lines_without_data_prefix_are_understood() {
        let (_, end) = decode(&[
            "[{",
            r#"  "error": {"#,
            r#"    "code": 400,"#,
            r#"    "message": "API key not valid. Please pass a valid API key.","#,
            r#"    "status": "INVALID_ARGUMENT","#,
            r#"    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]"#,
            "  }",
            "}]",
        ]);
        assert!(matches!(end, Err(LlmError::Auth { .. })), "{end:?}");
    }

    #[test]
    fn a_whole_json_array_response_is_decoded() {
        let (chunks, end) = decode(&[
            r#"[{"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]},"#,
            r#"{"candidates":[{"content":{"parts":[{"text":"lo"}]},"finishReason":"STOP"}]}]"#,
        ]);
        end.unwrap();
        assert_eq!(chunks.len(), 3);
    }

    #[test]
    fn unusable_finishes_are_errors_and_unknown_ones_end_the_turn() {
        let (_, end) = decode(&[
            r#"data: {"candidates":[{"content":{"parts":[]},"finishReason":"MALFORMED_FUNCTION_CALL"}]}"#,
        ]);
        assert!(matches!(end, Err(LlmError::InStream { .. })), "{end:?}");
        let (chunks, end) = decode(&[
            r#"data: {"candidates":[{"content":{"parts":[{"text":"x"}]},"finishReason":"SOMETHING_NEW"}]}"#,
        ]);
        end.unwrap();
        assert_eq!(
            chunks.last(),
            Some(&CompletionChunk::Done {
                stop_reason: StopReason::EndTurn
            })
        );
    }

    #[test]
    fn a_call_without_a_name_is_malformed_and_an_end_without_finish_is_interrupted() {
        let (_, end) = decode(&[
            r#"data: {"candidates":[{"content":{"parts":[{"functionCall":{"args":{}}}]},"finishReason":"STOP"}]}"#,
        ]);
        assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
        let (_, end) = decode(&[&text_chunk("half")]);
        assert_eq!(end, Err(LlmError::StreamInterrupted));
        let (_, end) = decode(&["data: {not json"]);
        assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
    }
}
