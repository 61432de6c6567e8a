//! Assembly of streamed tool calls from their fragments.
//!
//! OpenAI-style streams send each call in pieces keyed by `index`: the first piece carries the
//! `id` and `name`, later pieces carry more of the `arguments` JSON text. The assembler keeps
//! one partial call per index, reports when a call starts, and at the end parses every call's
//! arguments, in index order ([`ToolCallAssembler::finish`]). Streams that close each call on
//! its own (Anthropic's `content_block_stop`) take one call out as it ends
//! ([`ToolCallAssembler::finish_one`]). Broken input becomes [`LlmError::Malformed`], never a
//! panic.
//!
//! Bounded: at most [`MAX_CALLS`] calls and [`MAX_ARGUMENT_BYTES`] bytes of arguments in all.
//! This module knows no wire format beyond "index, id, name, argument text".

use std::collections::BTreeMap;

use nexus_core::llm::{CompletionChunk, LlmError};

/// Most tool calls accepted in one answer.
pub(crate) const MAX_CALLS: usize = 128;
/// Most bytes of argument text accepted in one answer, all calls together (4 MiB).
pub(crate) const MAX_ARGUMENT_BYTES: usize = 4 << 20;

#[derive(Debug, Default)]
struct PartialCall {
    id: Option<String>,
    name: Option<String>,
    arguments: String,
    started: bool,
}

/// One fragment of a streamed tool call.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Fragment<'a> {
    pub(crate) index: u32,
    pub(crate) id: Option<&'a str>,
    pub(crate) name: Option<&'a str>,
    pub(crate) arguments: Option<&'a str>,
}

/// Partial tool calls of one answer, by index.
#[derive(Debug, Default)]
pub(crate) struct ToolCallAssembler {
    calls: BTreeMap<u32, PartialCall>,
    /// Calls seen since the last [`finish`](Self::finish), including those already taken out
    /// by [`finish_one`](Self::finish_one).
    seen: usize,
    argument_bytes: usize,
}

impl ToolCallAssembler {
    /// Whether no call is pending (none seen since the last `finish`, or all taken out).
    pub(crate) fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// Adds a fragment. Returns [`CompletionChunk::ToolUseStart`] the first time a call's id
    /// and name are both known.
    pub(crate) fn push(
        &mut self,
        fragment: Fragment<'_>,
    ) -> Result<Option<CompletionChunk>, LlmError> {
        if !self.calls.contains_key(&fragment.index) {
            if self.seen >= MAX_CALLS {
                return Err(LlmError::Malformed {
                    detail: format!("more than {MAX_CALLS} tool calls in one answer"),
                });
            }
            self.seen += 1;
        }
        let call = self.calls.entry(fragment.index).or_default();
        if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
            match &call.id {
                None => call.id = Some(id.to_owned()),
                Some(known) if known == id => {}
                Some(known) => {
                    return Err(LlmError::Malformed {
                        detail: format!(
                            "tool call {} changed id from `{known}` to `{id}`",
                            fragment.index
                        ),
                    });
                }
            }
        }
        if let Some(name) = fragment.name.filter(|n| !n.is_empty())
            && call.name.is_none()
        {
            call.name = Some(name.to_owned());
        }
        if let Some(args) = fragment.arguments {
            self.argument_bytes += args.len();
            if self.argument_bytes > MAX_ARGUMENT_BYTES {
                return Err(LlmError::Malformed {
                    detail: format!("tool call arguments larger than {MAX_ARGUMENT_BYTES} bytes"),
                });
            }
            call.arguments.push_str(args);
        }
        if call.started {
            return Ok(None);
        }
        match (&call.id, &call.name) {
            (Some(id), Some(name)) => {
                call.started = true;
                Ok(Some(CompletionChunk::ToolUseStart {
                    index: fragment.index,
                    id: id.clone(),
                    name: name.clone(),
                }))
            }
            _ => Ok(None),
        }
    }

    /// The complete calls, in index order, their arguments parsed. Empty arguments count as
    /// `{}` (a call of a tool without parameters).
    pub(crate) fn finish(&mut self) -> Result<Vec<CompletionChunk>, LlmError> {
        let calls = std::mem::take(&mut self.calls);
        self.seen = 0;
        self.argument_bytes = 0;
        calls
            .into_iter()
            .map(|(index, call)| complete(index, call))
            .collect()
    }

    /// Takes the call at `index` out, complete, its arguments parsed (empty arguments count as
    /// `{}`); `None` when no fragment of it was seen. The bounds keep counting the calls and
    /// argument bytes already taken out, so one answer stays bounded as a whole.
    pub(crate) fn finish_one(&mut self, index: u32) -> Result<Option<CompletionChunk>, LlmError> {
        self.calls
            .remove(&index)
            .map(|call| complete(index, call))
            .transpose()
    }
}

/// A call whose fragments are all in: checked and parsed.
fn complete(index: u32, call: PartialCall) -> Result<CompletionChunk, LlmError> {
    let Some(id) = call.id else {
        return Err(LlmError::Malformed {
            detail: format!("tool call {index} has no id"),
        });
    };
    let Some(name) = call.name else {
        return Err(LlmError::Malformed {
            detail: format!("tool call {index} (`{id}`) has no name"),
        });
    };
    let input = if call.arguments.trim().is_empty() {
        serde_json::Value::Object(serde_json::Map::new())
    } else {
        serde_json::from_str(&call.arguments).map_err(|err| LlmError::Malformed {
            detail: format!("arguments of tool call `{name}` are not valid JSON: {err}"),
        })?
    };
    Ok(CompletionChunk::ToolUse { id, name, input })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn frag<'a>(
        index: u32,
        id: Option<&'a str>,
        name: Option<&'a str>,
        arguments: Option<&'a str>,
    ) -> Fragment<'a> {
        Fragment {
            index,
            id,
            name,
            arguments,
        }
    }

    #[test]
    fn arguments_split_across_fragments_are_concatenated_and_parsed() {
        let mut a = ToolCallAssembler::default();
        let start = a
            .push(frag(0, Some("call_1"), Some("get_weather"), Some("")))
            .unwrap();
        assert_eq!(
            start,
            Some(CompletionChunk::ToolUseStart {
                index: 0,
                id: "call_1".into(),
                name: "get_weather".into()
            })
        );
        for piece in ["{\"ci", "ty\":", "\"Par", "is\"}"] {
            assert_eq!(a.push(frag(0, None, None, Some(piece))).unwrap(), None);
        }
        assert_eq!(
            a.finish().unwrap(),
            vec![CompletionChunk::ToolUse {
                id: "call_1".into(),
                name: "get_weather".into(),
                input: json!({"city": "Paris"})
            }]
        );
    }

    #[test]
    fn interleaved_parallel_calls_come_out_in_index_order() {
        let mut a = ToolCallAssembler::default();
        a.push(frag(1, Some("call_b"), Some("b"), Some("{\"x\"")))
            .unwrap();
        a.push(frag(0, Some("call_a"), Some("a"), Some("{")))
            .unwrap();
        a.push(frag(1, None, None, Some(":2}"))).unwrap();
        a.push(frag(0, None, None, Some("}"))).unwrap();
        let calls = a.finish().unwrap();
        let names: Vec<_> = calls
            .iter()
            .map(|c| match c {
                CompletionChunk::ToolUse { name, input, .. } => (name.as_str(), input.clone()),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(names, vec![("a", json!({})), ("b", json!({"x": 2}))]);
    }

    #[test]
    fn empty_arguments_mean_an_empty_object() {
        let mut a = ToolCallAssembler::default();
        a.push(frag(0, Some("c"), Some("now"), None)).unwrap();
        assert_eq!(
            a.finish().unwrap(),
            vec![CompletionChunk::ToolUse {
                id: "c".into(),
                name: "now".into(),
                input: json!({})
            }]
        );
    }

    #[test]
    fn invalid_json_arguments_are_malformed_not_a_panic() {
        let mut a = ToolCallAssembler::default();
        a.push(frag(0, Some("c"), Some("f"), Some("{\"a\": tru")))
            .unwrap();
        assert!(matches!(a.finish(), Err(LlmError::Malformed { .. })));
    }

    #[test]
    fn call_without_id_or_name_is_malformed() {
        let mut a = ToolCallAssembler::default();
        assert_eq!(a.push(frag(0, None, Some("f"), Some("{}"))).unwrap(), None);
        assert!(matches!(a.finish(), Err(LlmError::Malformed { .. })));
    }

    #[test]
    fn repeated_id_is_accepted_but_a_changed_id_is_malformed() {
        let mut a = ToolCallAssembler::default();
        a.push(frag(0, Some("c"), Some("f"), None)).unwrap();
        assert_eq!(
            a.push(frag(0, Some("c"), Some("f"), Some("{}"))).unwrap(),
            None
        );
        assert!(matches!(
            a.push(frag(0, Some("other"), None, None)),
            Err(LlmError::Malformed { .. })
        ));
    }

    #[test]
    fn too_many_calls_are_refused() {
        let mut a = ToolCallAssembler::default();
        for i in 0..MAX_CALLS as u32 {
            a.push(frag(i, Some("c"), Some("f"), None)).unwrap();
        }
        assert!(matches!(
            a.push(frag(MAX_CALLS as u32, Some("c"), Some("f"), None)),
            Err(LlmError::Malformed { .. })
        ));
    }

    #[test]
    fn finish_one_takes_out_one_call_and_keeps_the_others() {
        let mut a = ToolCallAssembler::default();
        a.push(frag(0, Some("a"), Some("f"), Some("{\"x\":")))
            .unwrap();
        a.push(frag(1, Some("b"), Some("g"), None)).unwrap();
        a.push(frag(0, None, None, Some("1}"))).unwrap();
        assert_eq!(
            a.finish_one(0).unwrap(),
            Some(CompletionChunk::ToolUse {
                id: "a".into(),
                name: "f".into(),
                input: json!({"x": 1})
            })
        );
        assert_eq!(a.finish_one(0).unwrap(), None);
        assert_eq!(
            a.finish().unwrap(),
            vec![CompletionChunk::ToolUse {
                id: "b".into(),
                name: "g".into(),
                input: json!({})
            }]
        );
    }

    #[test]
    fn calls_taken_out_one_by_one_still_count_toward_the_bound() {
        let mut a = ToolCallAssembler::default();
        for i in 0..MAX_CALLS as u32 {
            a.push(frag(i, Some("c"), Some("f"), None)).unwrap();
            a.finish_one(i).unwrap();
        }
        assert!(matches!(
            a.push(frag(MAX_CALLS as u32, Some("c"), Some("f"), None)),
            Err(LlmError::Malformed { .. })
        ));
    }
}
