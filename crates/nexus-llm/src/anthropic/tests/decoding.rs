//! Decoding corner cases, event by event, without a server.

use std::collections::VecDeque;

use nexus_core::llm::{CompletionChunk, LlmError, StopReason, Usage};
use serde_json::{Value, json};

use super::usage_of;
use crate::anthropic::decode::Decoder;
use crate::pump::Decode;
use crate::sse::SseEvent;

/// Decodes `(event name, data)` pairs, then the end of the body.
fn decode(events: &[(&str, &str)]) -> (Vec<CompletionChunk>, Result<(), LlmError>) {
    let mut decoder = Decoder::default();
    let mut out = VecDeque::new();
    for (name, data) in events {
        let event = SseEvent {
            event: Some((*name).to_owned()),
            data: (*data).to_owned(),
        };
        if let Err(err) = decoder.on_event(&event, &mut out) {
            return (out.into(), Err(err));
        }
    }
    let end = decoder.on_end(&mut out);
    (out.into(), end)
}

const START: (&str, &str) = (
    "message_start",
    r#"{"type":"message_start","message":{"id":"msg_1","type":"message","role":"assistant","content":[],"model":"m","stop_reason":null,"stop_sequence":null,"usage":{"input_tokens":10,"cache_creation_input_tokens":100,"cache_read_input_tokens":1000,"output_tokens":1}}}"#,
);
const STOP: (&str, &str) = ("message_stop", r#"{"type":"message_stop"}"#);

fn message_delta(reason: &str, usage: &str) -> String {
    format!(
        r#"{{"type":"message_delta","delta":{{"stop_reason":"{reason}","stop_sequence":null}},"usage":{usage}}}"#
    )
}

#[test]
fn usage_input_includes_cache_creation_and_cache_read() {
    let delta = message_delta("end_turn", r#"{"output_tokens":50}"#);
    let (chunks, end) = decode(&[START, ("message_delta", &delta), STOP]);
    end.unwrap();
    assert_eq!(
        usage_of(&chunks),
        vec![Usage {
            input_tokens: 1110,
            output_tokens: 50,
            cache_read_tokens: 1000,
            cache_write_tokens: 100,
        }]
    );
    assert_eq!(
        chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::EndTurn
        })
    );
}

#[test]
fn message_delta_usage_is_cumulative_and_replaces_rather_than_adds() {
    let first = message_delta("end_turn", r#"{"output_tokens":20}"#);
    let second = message_delta(
        "end_turn",
        r#"{"output_tokens":50,"input_tokens":12,"cache_read_input_tokens":1000,"cache_creation_input_tokens":null}"#,
    );
    let (chunks, end) = decode(&[
        START,
        ("message_delta", &first),
        ("message_delta", &second),
        STOP,
    ]);
    end.unwrap();
    assert_eq!(
        usage_of(&chunks),
        vec![Usage {
            input_tokens: 1112,
            output_tokens: 50,
            cache_read_tokens: 1000,
            cache_write_tokens: 100,
        }]
    );
}

#[test]
fn tool_input_fragments_are_joined_per_block_and_empty_input_is_an_empty_object() {
    let events = [
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"toolu_1","name":"f","input":{}}}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_2","name":"now","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a\":"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"[1,2]}"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "message_delta",
            &message_delta("tool_use", r#"{"output_tokens":9}"#),
        ),
        STOP,
    ];
    let (chunks, end) = decode(&events);
    end.unwrap();
    let uses: Vec<(String, Value)> = chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::ToolUse { id, input, .. } => Some((id.clone(), input.clone())),
            _ => None,
        })
        .collect();
    // Each call completes at its own block stop.
    assert_eq!(
        uses,
        vec![
            ("toolu_2".to_owned(), json!({})),
            ("toolu_1".to_owned(), json!({"a": [1, 2]}))
        ]
    );
    assert_eq!(
        chunks.last(),
        Some(&CompletionChunk::Done {
            stop_reason: StopReason::ToolUse
        })
    );
}

#[test]
fn input_given_whole_at_the_start_is_used_when_no_fragment_follows() {
    let (chunks, end) = decode(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{"x":1}}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        STOP,
    ]);
    end.unwrap();
    assert!(chunks.contains(&CompletionChunk::ToolUse {
        id: "t".into(),
        name: "f".into(),
        input: json!({"x": 1})
    }));
}

#[test]
fn invalid_tool_input_is_malformed() {
    let (_, end) = decode(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"tool_use","id":"t","name":"f","input":{}}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{oops"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
    ]);
    assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
}

#[test]
fn thinking_signature_ping_and_unknown_events_are_ignored() {
    let (chunks, end) = decode(&[
        START,
        ("ping", r#"{"type":"ping"}"#),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"thinking","thinking":"","signature":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"thinking_delta","thinking":"hmm"}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":0}"#,
        ),
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"text","text":""}}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"text_delta","text":"hi"}}"#,
        ),
        (
            "brand_new_event",
            r#"{"type":"brand_new_event","payload":[1,2,3]}"#,
        ),
        (
            "content_block_delta",
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"citations_delta","citation":{}}}"#,
        ),
        (
            "content_block_stop",
            r#"{"type":"content_block_stop","index":1}"#,
        ),
        (
            "message_delta",
            &message_delta("end_turn", r#"{"output_tokens":3}"#),
        ),
        STOP,
    ]);
    end.unwrap();
    let texts: Vec<&str> = chunks
        .iter()
        .filter_map(|c| match c {
            CompletionChunk::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["hi"]);
}

#[test]
fn stop_reasons_map_to_neutral_ones() {
    for (wire, want) in [
        ("end_turn", StopReason::EndTurn),
        ("max_tokens", StopReason::MaxTokens),
        ("model_context_window_exceeded", StopReason::MaxTokens),
        ("stop_sequence", StopReason::StopSequence),
        ("refusal", StopReason::ContentFilter),
        ("pause_turn", StopReason::EndTurn),
        ("a_reason_from_the_future", StopReason::EndTurn),
    ] {
        let delta = message_delta(wire, r#"{"output_tokens":1}"#);
        let (chunks, end) = decode(&[START, ("message_delta", &delta), STOP]);
        end.unwrap();
        assert_eq!(
            chunks.last(),
            Some(&CompletionChunk::Done { stop_reason: want }),
            "{wire}"
        );
    }
}

#[test]
fn end_after_the_stop_reason_completes_but_earlier_is_interrupted() {
    let delta = message_delta("end_turn", r#"{"output_tokens":1}"#);
    let (chunks, end) = decode(&[START, ("message_delta", &delta)]);
    end.unwrap();
    assert!(matches!(chunks.last(), Some(CompletionChunk::Done { .. })));
    let (_, end) = decode(&[
        START,
        (
            "content_block_start",
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
        ),
    ]);
    assert_eq!(end, Err(LlmError::StreamInterrupted));
}

#[test]
fn error_events_are_typed_and_invalid_json_is_malformed() {
    let (_, end) = decode(&[
        START,
        (
            "error",
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ),
    ]);
    assert_eq!(end, Err(LlmError::Overloaded { retry_after: None }));
    let (_, end) = decode(&[
        START,
        (
            "error",
            r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
        ),
    ]);
    assert_eq!(
        end,
        Err(LlmError::InStream {
            message: "Internal server error".into()
        })
    );
    // An error object under another event name is still an error.
    let (_, end) = decode(&[
        START,
        (
            "message",
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#,
        ),
    ]);
    assert_eq!(end, Err(LlmError::RateLimited { retry_after: None }));
    let (_, end) = decode(&[START, ("content_block_delta", "{\"type\":\"content_")]);
    assert!(matches!(end, Err(LlmError::Malformed { .. })), "{end:?}");
}
