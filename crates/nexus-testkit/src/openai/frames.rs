//! Response bodies of chat completions: the SSE frames of a stream and the non-stream object.
//!
//! Frames are built as strings up front (a reply is small), then written at once or paced by
//! the token delay. JSON is produced with `serde_json` so escaping is always right.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use super::script::{Body, Reply, UsageSpec};
use super::validate::ChatPlan;

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
    /// Bytes written as they are (a `data:` frame, a comment).
    Bytes(String),
    /// The connection drops here.
    Cut,
}

/// What the model says, before framing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Text deltas.
    Text(Vec<String>),
    /// Tool calls: `(id, name, arguments JSON string)`.
    Tools(Vec<(String, String, String)>),
}

/// Ids and the clock shared by the frames of one answer.
#[derive(Debug)]
pub(crate) struct Meta<'a> {
    pub(crate) id: String,
    pub(crate) model: &'a str,
    pub(crate) created: u64,
}

impl<'a> Meta<'a> {
    pub(crate) fn new(seq: u64, model: &'a str) -> Meta<'a> {
        let created = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Meta {
            id: format!("chatcmpl-fake{seq:016x}"),
            model,
            created,
        }
    }
}

/// The answer of `reply` to the request `plan` (`seq` seeds the tool-call ids).
pub(crate) fn answer(reply: &Reply, plan: &ChatPlan, reply_words: usize, seq: u64) -> Answer {
    match &reply.body {
        Body::Text(text) => Answer::Text(split_words(text)),
        Body::ToolCalls(calls) => Answer::Tools(
            calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| (call_id(seq, i), name.clone(), args.to_string()))
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

/// A deterministic `call_…` id, 24 characters after the prefix like the real ones.
fn call_id(seq: u64, index: usize) -> String {
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64).wrapping_add(1);
    let mut id = String::from("call_");
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    for _ in 0..24 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        id.push(char::from(ALPHABET[(x % ALPHABET.len() as u64) as usize]));
    }
    id
}

/// `usage` with OpenRouter's `cost` (dollars) when scripted.
fn with_cost(mut usage: Value, cost: Option<f64>) -> Value {
    if let (Some(cost), Some(object)) = (cost, usage.as_object_mut()) {
        object.insert("cost".to_owned(), json!(cost));
        object.insert("is_byok".to_owned(), json!(false));
    }
    usage
}

fn usage_json(usage: UsageSpec) -> Value {
    json!({
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0
        }
    })
}

/// The usage a reply reports: scripted, or estimated (four characters a token).
pub(crate) fn usage_of(reply: &Reply, plan: &ChatPlan, answer: &Answer) -> UsageSpec {
    reply.usage.unwrap_or_else(|| {
        let completion = match answer {
            Answer::Text(words) => words.len() as u64,
            Answer::Tools(calls) => calls.iter().map(|(_, _, a)| a.len() as u64 / 4 + 1).sum(),
        };
        UsageSpec {
            prompt: (plan.prompt_chars as u64).div_ceil(4) + 3,
            completion,
            cached: 0,
        }
    })
}

fn finish_reason<'r>(reply: &'r Reply, answer: &Answer) -> &'r str {
    match (&reply.finish_reason, answer) {
        (Some(reason), _) => reason,
        (None, Answer::Text(_)) => "stop",
        (None, Answer::Tools(_)) => "tool_calls",
    }
}

/// Builds one `chat.completion.chunk` data frame.
struct ChunkWriter<'m, 'a> {
    meta: &'m Meta<'a>,
    include_usage: bool,
    noisy: bool,
    /// The bytes before a delta: `data: {"id":…,"choices":[{"index":0,"delta":`.
    head: String,
}

impl<'m, 'a> ChunkWriter<'m, 'a> {
    fn new(meta: &'m Meta<'a>, include_usage: bool, noisy: bool) -> Self {
        let head = format!(
            "data: {{\"id\":{},\"object\":\"chat.completion.chunk\",\"created\":{},\"model\":{},\
             \"service_tier\":\"default\",\"system_fingerprint\":\"fp_fake0001\",\
             \"choices\":[{{\"index\":0,\"delta\":",
            Value::from(meta.id.as_str()),
            meta.created,
            Value::from(meta.model),
        );
        ChunkWriter {
            meta,
            include_usage,
            noisy,
            head,
        }
    }

    /// A text delta, written without building a JSON tree (the hot path under load).
    fn text(&self, text: &str) -> String {
        if self.noisy {
            return self.chunk(json!({"content": text}), None);
        }
        let mut out = String::with_capacity(self.head.len() + text.len() + 96);
        out.push_str(&self.head);
        out.push_str("{\"content\":");
        out.push_str(&Value::from(text).to_string());
        out.push_str("},\"logprobs\":null,\"finish_reason\":null}]");
        if self.include_usage {
            out.push_str(",\"usage\":null");
        }
        out.push_str(",\"obfuscation\":\"aB3xZ\"}\n\n");
        out
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        let mut chunk = json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "obfuscation": "aB3xZ",
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        if self.noisy {
            chunk["x_nexus_unknown"] = json!({"nested": [1, 2, 3]});
            chunk["choices"][0]["delta"]["x_unknown_delta_field"] = json!("ignore me");
        }
        data(&chunk)
    }
}

fn data(value: &Value) -> String {
    format!("data: {value}\n\n")
}

/// The frames of a streamed answer, ending with `data: [DONE]` (or a cut).
pub(crate) fn stream_frames(
    reply: &Reply,
    plan: &ChatPlan,
    answer: &Answer,
    meta: &Meta<'_>,
) -> Vec<Frame> {
    let writer = ChunkWriter::new(meta, plan.include_usage, reply.noisy);
    let mut frames: Vec<Frame> = Vec::new();
    if reply.noisy {
        frames.push(Frame::Bytes(": keep-alive\n\n".to_owned()));
    }
    if reply.openrouter {
        frames.push(Frame::Bytes(": OPENROUTER PROCESSING\n\n".to_owned()));
    }
    match &reply.body {
        Body::Malformed => {
            frames.push(Frame::Bytes(
                writer.chunk(json!({"role": "assistant", "content": ""}), None),
            ));
            frames.push(Frame::Bytes(format!(
                "data: {{\"id\":\"{}\",\"object\":\"chat.completion.chunk\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"oops\"\n\n",
                meta.id
            )));
            frames.push(Frame::Bytes("data: [DONE]\n\n".to_owned()));
            return frames;
        }
        Body::InStreamError => {
            frames.push(Frame::Bytes(
                writer.chunk(json!({"role": "assistant", "content": ""}), None),
            ));
            frames.push(Frame::Bytes(
                writer.chunk(json!({"content": "Partial "}), None),
            ));
            if reply.openrouter {
                // After the 200, OpenRouter reports a failure as a chunk with a top-level
                // error and a choice that finishes with "error".
                frames.push(Frame::Bytes(data(&json!({
                    "id": meta.id,
                    "object": "chat.completion.chunk",
                    "created": meta.created,
                    "model": meta.model,
                    "provider": "FakeUpstream",
                    "error": {"code": 502, "message": "Upstream provider returned an invalid response"},
                    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]
                }))));
            } else {
                frames.push(Frame::Bytes(data(&json!({"error": {
                    "message": "The server had an error while processing your request. Sorry about that!",
                    "type": "server_error",
                    "param": null,
                    "code": null
                }}))));
            }
            return frames;
        }
        _ => {}
    }
    match answer {
        Answer::Text(words) => {
            frames.push(Frame::Bytes(writer.chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            )));
            for (i, word) in words.iter().enumerate() {
                if reply.openrouter && i == 1 {
                    frames.push(Frame::Bytes(": OPENROUTER PROCESSING\n\n".to_owned()));
                }
                if reply.noisy && i == 1 {
                    frames.push(Frame::Bytes(format!(
                        ": comment between chunks\nid: {i}\ndata: {}\n\n",
                        json!({"object": "x.unknown.event", "whatever": true})
                    )));
                }
                frames.push(Frame::Bytes(writer.text(word)));
            }
        }
        Answer::Tools(calls) => {
            frames.push(Frame::Bytes(writer.chunk(
                json!({"role": "assistant", "content": null, "refusal": null}),
                None,
            )));
            for (index, (id, name, args)) in calls.iter().enumerate() {
                frames.push(Frame::Bytes(writer.chunk(
                    json!({"tool_calls": [{"index": index, "id": id, "type": "function",
                        "function": {"name": name, "arguments": ""}}]}),
                    None,
                )));
                for piece in fragments(args) {
                    frames.push(Frame::Bytes(writer.chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}),
                        None,
                    )));
                }
            }
        }
    }
    frames.push(Frame::Bytes(
        writer.chunk(json!({}), Some(finish_reason(reply, answer))),
    ));
    if plan.include_usage {
        let usage = usage_of(reply, plan, answer);
        frames.push(Frame::Bytes(data(&json!({
            "id": meta.id,
            "object": "chat.completion.chunk",
            "created": meta.created,
            "model": meta.model,
            "service_tier": "default",
            "system_fingerprint": "fp_fake0001",
            "choices": [],
            "usage": with_cost(usage_json(usage), reply.cost),
            "obfuscation": "Qx",
        }))));
    }
    frames.push(Frame::Bytes("data: [DONE]\n\n".to_owned()));
    if let Some(n) = reply.cut_after {
        // Keep the first `n` data frames (comments do not count), then drop the connection.
        let mut seen = 0usize;
        let keep = frames
            .iter()
            .position(|f| {
                let is_data = matches!(f, Frame::Bytes(b) if b.starts_with("data:"));
                if is_data {
                    seen += 1;
                }
                is_data && seen > n
            })
            .unwrap_or(frames.len());
        frames.truncate(keep);
        frames.push(Frame::Cut);
    }
    frames
}

/// Splits a JSON string into fragments of about seven characters, on char boundaries.
fn fragments(args: &str) -> Vec<String> {
    let chars: Vec<char> = args.chars().collect();
    chars.chunks(7).map(|c| c.iter().collect()).collect()
}

/// The non-stream `chat.completion` object.
pub(crate) fn completion_object(
    reply: &Reply,
    plan: &ChatPlan,
    answer: &Answer,
    meta: &Meta<'_>,
) -> Value {
    let message = match answer {
        Answer::Text(words) => {
            json!({"role": "assistant", "content": words.concat(), "refusal": null, "annotations": []})
        }
        Answer::Tools(calls) => json!({
            "role": "assistant",
            "content": null,
            "refusal": null,
            "tool_calls": calls.iter().map(|(id, name, args)| json!({
                "id": id, "type": "function", "function": {"name": name, "arguments": args}
            })).collect::<Vec<_>>(),
        }),
    };
    json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(reply, answer)}],
        "usage": usage_json(usage_of(reply, plan, answer)),
        "service_tier": "default",
        "system_fingerprint": "fp_fake0001",
    })
}
