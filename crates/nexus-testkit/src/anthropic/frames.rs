//! Response bodies of messages: the SSE events of a stream and the non-stream object.
//!
//! Events are built as strings up front (a reply is small), then written at once or paced by
//! the token delay. Each is `event: <type>\ndata: <json with the same type>\n\n`. JSON is
//! produced with `serde_json` so escaping is always right.

use serde_json::{Value, json};

use super::WireUsage;
use super::script::{Body, Reply};
use super::validate::Plan;

/// Words of the deterministic reply when `reply_words > 0`.
const LOREM: &[&str] = &[
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
];

/// One piece of a streamed body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// An event (counted by `cut_after`).
    Event(String),
    /// Bytes that do not count as an event: a `ping`, a comment.
    Filler(String),
    /// The connection drops here.
    Cut,
}

/// What the model says, before framing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Text deltas.
    Text(Vec<String>),
    /// Tool calls `(id, name, input JSON)`, after an optional text preamble.
    Tools(Option<Vec<String>>, Vec<(String, String, String)>),
}

/// The answer of `reply` to `plan` (`seq` seeds the ids).
pub(crate) fn answer(reply: &Reply, plan: &Plan, reply_words: usize, seq: u64) -> Answer {
    match &reply.body {
        Body::Text(text) => Answer::Text(split_words(text)),
        Body::ToolUse(calls) => Answer::Tools(
            reply.preamble.as_deref().map(split_words),
            calls
                .iter()
                .enumerate()
                .map(|(i, (name, input))| (tool_id(seq, i), name.clone(), input.to_string()))
                .collect(),
        ),
        _ if reply_words > 0 => Answer::Text(
            (0..reply_words)
                .map(|i| {
                    let word = LOREM[i % LOREM.len()];
                    if i + 1 == reply_words {
                        format!("{word}.")
                    } else {
                        format!("{word} ")
                    }
                })
                .collect(),
        ),
        _ => Answer::Text(split_words(&format!("You said: {}", plan.last_user_text))),
    }
}

/// `"a b  c"` → `["a ", "b  ", "c"]`: deltas that concatenate back to the text.
fn split_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for piece in text.split_inclusive(' ') {
        match out.last_mut() {
            Some(last) if piece == " " => last.push(' '),
            _ => out.push(piece.to_owned()),
        }
    }
    out
}

/// A deterministic id with 24 characters after `prefix`, like the real ones.
pub(crate) fn id(prefix: &str, seq: u64, index: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_add(1);
    let mut out = String::from(prefix);
    for _ in 0..24 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push(char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize]));
    }
    out
}

fn tool_id(seq: u64, index: usize) -> String {
    id("toolu_", seq, index)
}

/// The output tokens of an answer (one per text delta, a quarter of the tool input bytes).
pub(crate) fn output_tokens(answer: &Answer) -> u64 {
    match answer {
        Answer::Text(words) => words.len() as u64,
        Answer::Tools(preamble, calls) => {
            preamble.as_ref().map_or(0, |w| w.len() as u64)
                + calls
                    .iter()
                    .map(|(_, _, input)| (input.len() as u64).div_ceil(4) + 1)
                    .sum::<u64>()
        }
    }
}

fn stop_reason<'r>(reply: &'r Reply, answer: &Answer) -> &'r str {
    match (&reply.stop_reason, answer) {
        (Some(reason), _) => reason,
        (None, Answer::Text(_)) => "end_turn",
        (None, Answer::Tools(..)) => "tool_use",
    }
}

fn usage_json(usage: WireUsage, output: u64) -> Value {
    json!({
        "input_tokens": usage.input_tokens,
        "cache_creation_input_tokens": usage.cache_creation_input_tokens,
        "cache_read_input_tokens": usage.cache_read_input_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_creation_input_tokens,
            "ephemeral_1h_input_tokens": 0
        },
        "output_tokens": output,
        "service_tier": "standard"
    })
}

/// `event: <type>\ndata: <value>\n\n`.
fn event(value: &Value) -> String {
    let kind = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("message");
    format!("event: {kind}\ndata: {value}\n\n")
}

const PING: &str = "event: ping\ndata: {\"type\": \"ping\"}\n\n";

/// Builds the events of one answer, noting where the first `ping` goes.
struct Writer {
    frames: Vec<Frame>,
    noisy: bool,
    pinged: bool,
}

impl Writer {
    fn push(&mut self, mut value: Value) {
        if self.noisy {
            value["x_nexus_unknown"] = json!({"nested": [1, 2, 3]});
        }
        self.frames.push(Frame::Event(event(&value)));
    }

    fn block(&mut self, index: usize, start: Value, deltas: Vec<Value>) {
        self.push(json!({"type": "content_block_start", "index": index, "content_block": start}));
        if !self.pinged {
            self.frames.push(Frame::Filler(PING.to_owned()));
            self.pinged = true;
        }
        for (i, delta) in deltas.into_iter().enumerate() {
            if self.noisy && i == 1 {
                self.frames.push(Frame::Filler(format!(
                    ": keep-alive comment\nid: {index}\n\n{PING}{}",
                    event(&json!({"type": "content_block_annotation", "index": index, "whatever": true}))
                )));
            }
            self.push(json!({"type": "content_block_delta", "index": index, "delta": delta}));
        }
        self.push(json!({"type": "content_block_stop", "index": index}));
    }
}

fn text_deltas(words: &[String]) -> Vec<Value> {
    words
        .iter()
        .map(|w| json!({"type": "text_delta", "text": w}))
        .collect()
}

/// Splits a JSON string into fragments of about seven characters, on char boundaries, after
/// an empty first fragment (as the real service sends).
fn fragments(input: &str) -> Vec<String> {
    let chars: Vec<char> = input.chars().collect();
    std::iter::once(String::new())
        .chain(chars.chunks(7).map(|c| c.iter().collect()))
        .collect()
}

/// The events of a streamed answer, ending with `message_stop` (or a cut).
pub(crate) fn stream_frames(
    reply: &Reply,
    answer: &Answer,
    message_id: &str,
    model: &str,
    usage: WireUsage,
) -> Vec<Frame> {
    let mut w = Writer {
        frames: Vec::new(),
        noisy: reply.noisy,
        pinged: false,
    };
    if reply.noisy {
        w.frames
            .push(Frame::Filler(": stream opened\n\n".to_owned()));
    }
    w.push(json!({"type": "message_start", "message": {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": null,
        "stop_sequence": null,
        "usage": usage_json(usage, 1),
    }}));
    match &reply.body {
        Body::Malformed => {
            w.frames.push(Frame::Event(
                "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"\n\n"
                    .to_owned(),
            ));
            return w.frames;
        }
        Body::InStreamError { kind } => {
            w.block(
                0,
                json!({"type": "text", "text": ""}),
                text_deltas(&split_words("Partial answer ")),
            );
            let message = if kind == "overloaded_error" {
                "Overloaded"
            } else {
                "Internal server error"
            };
            w.push(json!({"type": "error", "error": {"type": kind, "message": message}}));
            return w.frames;
        }
        _ => {}
    }
    let mut index = 0;
    if let Some(thinking) = &reply.thinking {
        w.block(
            index,
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            vec![
                json!({"type": "thinking_delta", "thinking": thinking}),
                json!({"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds"}),
            ],
        );
        index += 1;
    }
    match answer {
        Answer::Text(words) => {
            w.block(
                index,
                json!({"type": "text", "text": ""}),
                text_deltas(words),
            );
        }
        Answer::Tools(preamble, calls) => {
            if let Some(words) = preamble {
                w.block(
                    index,
                    json!({"type": "text", "text": ""}),
                    text_deltas(words),
                );
                index += 1;
            }
            for (id, name, input) in calls {
                let deltas = fragments(input)
                    .into_iter()
                    .map(|piece| json!({"type": "input_json_delta", "partial_json": piece}))
                    .collect();
                w.block(
                    index,
                    json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                    deltas,
                );
                index += 1;
            }
        }
    }
    let output = usage.output_tokens;
    w.push(json!({
        "type": "message_delta",
        "delta": {"stop_reason": stop_reason(reply, answer), "stop_sequence": null},
        "usage": {
            "input_tokens": usage.input_tokens,
            "cache_creation_input_tokens": usage.cache_creation_input_tokens,
            "cache_read_input_tokens": usage.cache_read_input_tokens,
            "output_tokens": output,
        },
    }));
    w.push(json!({"type": "message_stop"}));
    let mut frames = w.frames;
    if let Some(n) = reply.cut_after {
        let mut seen = 0usize;
        let keep = frames
            .iter()
            .position(|f| {
                if matches!(f, Frame::Event(_)) {
                    seen += 1;
                }
                seen > n
            })
            .unwrap_or(frames.len());
        frames.truncate(keep);
        frames.push(Frame::Cut);
    }
    frames
}

/// The non-stream `message` object.
pub(crate) fn message_object(
    reply: &Reply,
    answer: &Answer,
    message_id: &str,
    model: &str,
    usage: WireUsage,
) -> Value {
    let mut content = Vec::new();
    if let Some(thinking) = &reply.thinking {
        content
            .push(json!({"type": "thinking", "thinking": thinking, "signature": "EqQBCgIYAhIM"}));
    }
    match answer {
        Answer::Text(words) => content.push(json!({"type": "text", "text": words.concat()})),
        Answer::Tools(preamble, calls) => {
            if let Some(words) = preamble {
                content.push(json!({"type": "text", "text": words.concat()}));
            }
            for (id, name, input) in calls {
                let input: Value = serde_json::from_str(input).unwrap_or(Value::Null);
                content.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
            }
        }
    }
    json!({
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(reply, answer),
        "stop_sequence": null,
        "usage": usage_json(usage, usage.output_tokens),
    })
}
