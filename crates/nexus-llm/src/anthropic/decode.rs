//! Decoding of a Messages API stream: SSE events in, neutral [`CompletionChunk`]s out.
//!
//! The event sequence (PROTOCOLS.md §4): `message_start` (usage so far) → per content block
//! `content_block_start`, `content_block_delta`s, `content_block_stop` → `message_delta`
//! (stop reason, **cumulative** usage) → `message_stop`; `ping`s anywhere.
//!
//! - `text_delta` → `TextDelta`;
//! - a `tool_use` block → `ToolUseStart` at its start (its `index` is the call's position among
//!   the answer's calls, not the block index), then its `input_json_delta` fragments are
//!   concatenated and parsed at its `content_block_stop` into one `ToolUse` (empty means `{}`);
//! - `thinking`, `redacted_thinking` and other block types, their deltas (`thinking_delta`,
//!   `signature_delta`, `citations_delta`, …), `ping` and unknown events are ignored;
//! - usage: `message_start` gives the first counts, each `message_delta` replaces the counts it
//!   carries (they are cumulative, never added); one `Usage` is emitted before `Done`, with
//!   `input_tokens` = `input_tokens + cache_creation_input_tokens + cache_read_input_tokens`
//!   (Anthropic's `input_tokens` counts only the uncached rest);
//! - `Done` at `message_stop`, or at the end of a body whose `message_delta` carried a stop
//!   reason; an end before that is [`LlmError::StreamInterrupted`];
//! - an `error` event → [`classify_anthropic_event`](crate::classify::classify_anthropic_event);
//!   data that is not JSON → [`LlmError::Malformed`].
//!
//! Stop reasons: `end_turn` → `EndTurn`, `tool_use` → `ToolUse`, `max_tokens` and
//! `model_context_window_exceeded` → `MaxTokens`, `stop_sequence` → `StopSequence`, `refusal`
//! → `ContentFilter`; `pause_turn` (only with server tools, which this provider never sends)
//! and unknown reasons → `ToolUse` when the answer has tool calls, else `EndTurn`.
//!
//! This module does no I/O.

use std::collections::{BTreeMap, VecDeque};

use nexus_core::llm::{CompletionChunk, LlmError, StopReason, Usage};
use serde::Deserialize;
use serde_json::Value;

use crate::assemble::{Fragment, ToolCallAssembler};
use crate::classify;
use crate::pump::Decode;
use crate::sse::SseEvent;

/// Most content blocks open at once in one answer.
const MAX_OPEN_BLOCKS: usize = 1024;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: MessageStart,
    },
    ContentBlockStart {
        index: u32,
        content_block: BlockStart,
    },
    ContentBlockDelta {
        index: u32,
        delta: Delta,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        #[serde(default)]
        delta: Option<MessageDelta>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error,
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageStart {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum BlockStart {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        #[serde(default)]
        id: String,
        #[serde(default)]
        name: String,
        #[serde(default)]
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Delta {
    #[serde(rename = "text_delta")]
    Text { text: String },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: String },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct MessageDelta {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// Usage counts as sent; absent or `null` fields are `None`.
#[derive(Debug, Default, Deserialize)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
}

/// The counts known so far (each the latest cumulative value).
#[derive(Debug, Default, Clone, Copy)]
struct Counts {
    input: u64,
    output: u64,
    cache_creation: u64,
    cache_read: u64,
}

impl Counts {
    /// Overlays the fields `usage` carries.
    fn update(&mut self, usage: &WireUsage) {
        let fields = [
            (&mut self.input, usage.input_tokens),
            (&mut self.output, usage.output_tokens),
            (&mut self.cache_creation, usage.cache_creation_input_tokens),
            (&mut self.cache_read, usage.cache_read_input_tokens),
        ];
        for (field, value) in fields {
            if let Some(value) = value {
                *field = value;
            }
        }
    }

    fn neutral(self) -> Usage {
        Usage {
            input_tokens: self
                .input
                .saturating_add(self.cache_creation)
                .saturating_add(self.cache_read),
            output_tokens: self.output,
            cache_read_tokens: self.cache_read,
            cache_write_tokens: self.cache_creation,
        }
    }
}

/// An open content block.
#[derive(Debug)]
enum Block {
    Text,
    Tool {
        /// The call's position among the answer's calls.
        ordinal: u32,
        /// A non-empty `input` given whole at the start, used if no fragment follows.
        start_input: Option<String>,
    },
    Other,
}

/// The decoding state of one answer.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    blocks: BTreeMap<u32, Block>,
    tools: ToolCallAssembler,
    calls: u32,
    usage: Option<Counts>,
    /// The stop reason, once a `message_delta` carried one.
    stop: Option<StopReason>,
    /// `message_stop` seen (or the body ended after a stop reason): nothing more is read.
    done: bool,
}

impl Decode for Decoder {
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if event.event.as_deref() == Some("error") {
            return Err(classify::classify_anthropic_event(&event.data));
        }
        let parsed: Event =
            serde_json::from_str(&event.data).map_err(|err| LlmError::Malformed {
                detail: format!("stream event is not valid JSON of its type: {err}"),
            })?;
        match parsed {
            Event::MessageStart { message } => {
                if let Some(usage) = message.usage {
                    self.usage.get_or_insert_default().update(&usage);
                }
                Ok(())
            }
            Event::ContentBlockStart {
                index,
                content_block,
            } => self.on_block_start(index, content_block, out),
            Event::ContentBlockDelta { index, delta } => self.on_delta(index, delta, out),
            Event::ContentBlockStop { index } => self.on_block_stop(index, out),
            Event::MessageDelta { delta, usage } => {
                if let Some(usage) = usage {
                    self.usage.get_or_insert_default().update(&usage);
                }
                if let Some(reason) = delta.and_then(|d| d.stop_reason) {
                    self.stop = Some(stop_reason(&reason, self.calls > 0));
                }
                Ok(())
            }
            Event::MessageStop => self.complete(out),
            Event::Error => Err(classify::classify_anthropic_event(&event.data)),
            Event::Other => Ok(()),
        }
    }

    fn on_end(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        if self.done {
            return Ok(());
        }
        if self.stop.is_some() {
            return self.complete(out);
        }
        Err(LlmError::StreamInterrupted)
    }

    fn is_done(&self) -> bool {
        self.done
    }

    fn has_finished(&self) -> bool {
        self.stop.is_some()
    }
}

impl Decoder {
    fn on_block_start(
        &mut self,
        index: u32,
        start: BlockStart,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if self.blocks.len() >= MAX_OPEN_BLOCKS && !self.blocks.contains_key(&index) {
            return Err(LlmError::Malformed {
                detail: format!("more than {MAX_OPEN_BLOCKS} open content blocks"),
            });
        }
        let block = match start {
            BlockStart::Text { text } => {
                if !text.is_empty() {
                    out.push_back(CompletionChunk::TextDelta { text });
                }
                Block::Text
            }
            BlockStart::ToolUse { id, name, input } => {
                let ordinal = self.calls;
                self.calls += 1;
                let fragment = Fragment {
                    index: ordinal,
                    id: Some(&id),
                    name: Some(&name),
                    arguments: None,
                };
                if let Some(start) = self.tools.push(fragment)? {
                    out.push_back(start);
                }
                let start_input = input
                    .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                    .map(|v| v.to_string());
                Block::Tool {
                    ordinal,
                    start_input,
                }
            }
            BlockStart::Other => Block::Other,
        };
        self.blocks.insert(index, block);
        Ok(())
    }

    fn on_delta(
        &mut self,
        index: u32,
        delta: Delta,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        match delta {
            Delta::Text { text } => {
                if !text.is_empty() {
                    out.push_back(CompletionChunk::TextDelta { text });
                }
                Ok(())
            }
            Delta::InputJson { partial_json } => {
                let Some(Block::Tool {
                    ordinal,
                    start_input,
                }) = self.blocks.get_mut(&index)
                else {
                    return Err(LlmError::Malformed {
                        detail: format!("input_json_delta for block {index}, not a tool_use"),
                    });
                };
                // Fragments supersede an input given at the start.
                *start_input = None;
                let fragment = Fragment {
                    index: *ordinal,
                    arguments: Some(&partial_json),
                    ..Fragment::default()
                };
                self.tools.push(fragment)?;
                Ok(())
            }
            Delta::Other => Ok(()),
        }
    }

    fn on_block_stop(
        &mut self,
        index: u32,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        if let Some(Block::Tool {
            ordinal,
            start_input,
        }) = self.blocks.remove(&index)
        {
            if let Some(input) = start_input {
                let fragment = Fragment {
                    index: ordinal,
                    arguments: Some(&input),
                    ..Fragment::default()
                };
                self.tools.push(fragment)?;
            }
            if let Some(call) = self.tools.finish_one(ordinal)? {
                out.push_back(call);
            }
        }
        Ok(())
    }

    /// `message_stop` (or a clean end after a stop reason): calls whose block never stopped,
    /// then the usage, then `Done`.
    fn complete(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
        self.blocks.clear();
        out.extend(self.tools.finish()?);
        let stop = self.stop.unwrap_or(if self.calls > 0 {
            StopReason::ToolUse
        } else {
            StopReason::EndTurn
        });
        if let Some(usage) = self.usage {
            out.push_back(CompletionChunk::Usage {
                usage: usage.neutral(),
            });
        }
        out.push_back(CompletionChunk::Done { stop_reason: stop });
        self.done = true;
        Ok(())
    }
}

/// The neutral stop reason of a wire `stop_reason` (see the module doc).
fn stop_reason(reason: &str, had_tools: bool) -> StopReason {
    match reason {
        "tool_use" => StopReason::ToolUse,
        "max_tokens" | "model_context_window_exceeded" => StopReason::MaxTokens,
        "stop_sequence" => StopReason::StopSequence,
        "refusal" => StopReason::ContentFilter,
        _ if had_tools => StopReason::ToolUse,
        _ => StopReason::EndTurn,
    }
}
