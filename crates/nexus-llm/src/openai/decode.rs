//! Decoding of a Chat Completions stream: SSE events in, neutral [`CompletionChunk`]s out.
//!
//! - `delta.content` (and `delta.refusal`, which the user must see too) → `TextDelta`;
//! - tool-call fragments → `ToolUseStart` on a call's first fragment, then one complete
//!   `ToolUse` per call, in index order, when `finish_reason` arrives;
//! - the usage chunk (`choices: []`, `usage` filled) → `Usage`, cached tokens included;
//! - `Done` at `data: [DONE]` (or at the end of a body that had a `finish_reason`), so it
//!   comes after a usage chunk sent after the finish;
//! - a `data` object with an `error` key → [`LlmError::InStream`]; invalid JSON →
//!   [`LlmError::Malformed`]; an end before any finish → [`LlmError::StreamInterrupted`].
//!
//! Unknown fields, unknown chunk shapes and named events other than `error` are ignored.
//! This module does no I/O.

use std::collections::VecDeque;

use nexus_core::llm::{CompletionChunk, LlmError, StopReason, Usage};
use serde::Deserialize;

use crate::assemble::{Fragment, ToolCallAssembler};
use crate::sse::SseEvent;

#[derive(Debug, Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Option<Vec<WireChoice>>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    refusal: Option<String>,
    #[serde(default)]
    tool_calls: Option<Vec<WireToolCall>>,
}

#[derive(Debug, Deserialize)]
struct WireToolCall {
    #[serde(default)]
    index: Option<u32>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunction>,
}

#[derive(Debug, Deserialize)]
struct WireFunction {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: u64,
    #[serde(default)]
    completion_tokens: u64,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    /// What the call cost in US dollars (OpenRouter credits).
    #[serde(default)]
    cost: Option<f64>,
}

#[derive(Debug, Deserialize)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
    /// Sent by OpenRouter.
    #[serde(default)]
    cache_write_tokens: Option<u64>,
}

/// The decoding state of one answer.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    tools: ToolCallAssembler,
    /// Why the model stopped, once a `finish_reason` arrived.
    stop: Option<StopReason>,
    /// `[DONE]` seen: the answer is complete, nothing more is read.
    done: bool,
    /// Index and id of the latest tool call, for servers that omit `index`.
    last_call: Option<(u32, Option<String>)>,
}

impl Decoder {
    /// Whether the answer is complete (`[DONE]` seen).
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Whether a `finish_reason` arrived (the answer is complete, usage may still follow).
    pub(crate) fn has_finished(&self) -> bool {
        self.stop.is_some()
    }

    /// Decodes one SSE event, appending chunks to `out`.
    pub(crate) fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        match event.event.as_deref() {
            None | Some("message") => {}
            Some("error") => {
                return Err(LlmError::InStream {
                    message: error_message(
                        &serde_json::from_str(&event.data)
                            .unwrap_or_else(|_| serde_json::Value::String(event.data.clone())),
                    ),
                });
            }
            Some(_) => return Ok(()),
        }
        let data = event.data.trim();
        if data == "[DONE]" {
            return self.complete(out);
        }
        let chunk: WireChunk = serde_json::from_str(data).map_err(|err| LlmError::Malformed {
            detail: format!("stream chunk is not valid JSON: {err}"),
        })?;
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            return Err(LlmError::InStream {
                message: error_message(&error),
            });
        }
        for choice in chunk.choices.unwrap_or_default() {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.on_delta(delta, out)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.on_finish(&reason, out)?;
            }
        }
        if let Some(usage) = chunk.usage {
            if let Some(micros) = usage.cost.and_then(dollars_to_micros) {
                out.push_back(CompletionChunk::Cost { micros });
            }
            let details = usage.prompt_tokens_details;
            out.push_back(CompletionChunk::Usage {
                usage: Usage {
                    input_tokens: usage.prompt_tokens,
                    output_tokens: usage.completion_tokens,
                    cache_read_tokens: details.as_ref().and_then(|d| d.cached_tokens).unwrap_or(0),
                    cache_write_tokens: details.and_then(|d| d.cache_write_tokens).unwrap_or(0),
                },
            });
        }
        Ok(())
    }

    /// The body ended. A finished answer gets its `Done`; anything else was cut short.
    pub(crate) fn on_end(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if self.stop.is_some() {
            return self.complete(out);
        }
        Err(LlmError::StreamInterrupted)
    }

    fn on_delta(
        &mut self,
        delta: WireDelta,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        for text in [delta.content, delta.refusal].into_iter().flatten() {
            if !text.is_empty() {
                out.push_back(CompletionChunk::TextDelta { text });
            }
        }
        for call in delta.tool_calls.unwrap_or_default() {
            let index = self.call_index(&call);
            let function = call.function.as_ref();
            let fragment = Fragment {
                index,
                id: call.id.as_deref(),
                name: function.and_then(|f| f.name.as_deref()),
                arguments: function.and_then(|f| f.arguments.as_deref()),
            };
            if let Some(start) = self.tools.push(fragment)? {
                out.push_back(start);
            }
        }
        Ok(())
    }

    /// The call's index; when a server omits it, a new id means a new call.
    fn call_index(&mut self, call: &WireToolCall) -> u32 {
        let index = match (call.index, &self.last_call) {
            (Some(index), _) => index,
            (None, None) => 0,
            (None, Some((last, last_id))) => match (&call.id, last_id) {
                (Some(id), Some(last_id)) if id != last_id => last + 1,
                _ => *last,
            },
        };
        let id = call.id.clone().or_else(|| {
            self.last_call
                .as_ref()
                .filter(|(i, _)| *i == index)
                .and_then(|(_, id)| id.clone())
        });
        self.last_call = Some((index, id));
        index
    }

    fn on_finish(
        &mut self,
        reason: &str,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if self.stop.is_some() {
            return Ok(());
        }
        let had_tools = !self.tools.is_empty();
        out.extend(self.tools.finish()?);
        let stop = match reason {
            "length" => StopReason::MaxTokens,
            "tool_calls" | "function_call" => StopReason::ToolUse,
            "content_filter" => StopReason::ContentFilter,
            // Some OpenAI-compatible servers say `stop` after tool calls.
            _ if had_tools => StopReason::ToolUse,
            _ => StopReason::EndTurn,
        };
        self.stop = Some(stop);
        Ok(())
    }

    /// `[DONE]` (or a clean end after a finish): flush calls if no finish came, then `Done`.
    fn complete(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        if self.stop.is_none() {
            let had_tools = !self.tools.is_empty();
            out.extend(self.tools.finish()?);
            self.stop = Some(if had_tools {
                StopReason::ToolUse
            } else {
                StopReason::EndTurn
            });
        }
        self.done = true;
        out.push_back(CompletionChunk::Done {
            stop_reason: self.stop.unwrap_or(StopReason::EndTurn),
        });
        Ok(())
    }
}

/// A cost in dollars as micro-dollars; `None` for a value no bill can have (negative, not a
/// number, absurdly large).
fn dollars_to_micros(dollars: f64) -> Option<i64> {
    let micros = (dollars * 1_000_000.0).round();
    // 1e15 micro-dollars is a billion dollars for one call.
    #[allow(
        clippy::cast_possible_truncation,
        reason = "checked to be a finite value between 0 and 1e15"
    )]
    (micros.is_finite() && (0.0..1e15).contains(&micros)).then_some(micros as i64)
}

/// The readable message of an `error` object (`{"message": …}`), or its JSON.
fn error_message(error: &serde_json::Value) -> String {
    let inner = error.get("error").unwrap_or(error);
    match inner.get("message").and_then(serde_json::Value::as_str) {
        Some(message) => message.to_owned(),
        None => {
            let mut text = inner.to_string();
            if text.len() > 512 {
                let mut cut = 512;
                while !text.is_char_boundary(cut) {
                    cut -= 1;
                }
                text.truncate(cut);
            }
            text
        }
    }
}

/// The generic body pump drives this decoder (its methods, under the pump's names).
impl crate::pump::Decode for Decoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        Decoder::on_event(self, event, out)
    }

    fn on_end(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        Decoder::on_end(self, out)
    }

    fn is_done(&self) -> bool {
        Decoder::is_done(self)
    }

    fn has_finished(&self) -> bool {
        Decoder::has_finished(self)
    }
}
