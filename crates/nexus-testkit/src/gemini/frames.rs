//! Response bodies: the `GenerateContentResponse` chunks of a stream (SSE events or JSON-array
//! elements) and the single response of `generateContent`.
//!
//! Chunks are built up front (a reply is small), then written at once or paced by the token
//! delay. Every chunk is a whole response: text parts are deltas, function calls arrive whole,
//! and the last chunk carries `finishReason` and the final `usageMetadata`.

use serde_json::{Value, json};

use super::Shared;
use super::SignedCall;
use super::errors::ApiError;
use super::script::{Body, Reply, UsageSpec};
use super::validate::GeneratePlan;

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
];

/// One piece of a streamed body.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Frame {
    /// A whole response chunk.
    Chunk(Value),
    /// Bytes written as they are (a comment, broken JSON, an error object without `data:`).
    Raw(String),
    /// The connection drops here.
    Cut,
}

/// What the model says, before framing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// Text deltas.
    Text(Vec<String>),
    /// Function calls `(name, args)`.
    Calls(Vec<(String, Value)>),
}

/// Ids shared by the chunks of one answer.
#[derive(Debug)]
pub(crate) struct Meta<'a> {
    pub(crate) response_id: String,
    pub(crate) model: &'a str,
    /// A seed for thought signatures.
    pub(crate) seq: u64,
}

/// The answer of `reply` to `plan`.
pub(crate) fn answer(reply: &Reply, plan: &GeneratePlan, reply_words: usize) -> Answer {
    match &reply.body {
        Body::Text(text) => Answer::Text(split_words(text)),
        Body::FunctionCalls(calls) => Answer::Calls(calls.clone()),
        Body::StreamError { words, .. } => Answer::Text(
            split_words("Partial answer before the failure that follows")
                .into_iter()
                .take(*words)
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

/// The usage a reply reports: scripted, or estimated (four characters a token).
fn usage_of(reply: &Reply, plan: &GeneratePlan, answer: &Answer) -> UsageSpec {
    reply.usage.unwrap_or_else(|| UsageSpec {
        prompt: (plan.prompt_chars as u64).div_ceil(4) + 3,
        candidates: match answer {
            Answer::Text(words) => words.len() as u64,
            Answer::Calls(calls) => calls
                .iter()
                .map(|(_, a)| a.to_string().len() as u64 / 4 + 1)
                .sum(),
        },
        cached: 0,
        thoughts: 0,
    })
}

fn usage_json(usage: UsageSpec, last: bool) -> Value {
    let mut value = json!({
        "promptTokenCount": usage.prompt,
        "totalTokenCount": usage.prompt,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": usage.prompt}],
    });
    if last {
        value["candidatesTokenCount"] = json!(usage.candidates);
        value["totalTokenCount"] = json!(usage.prompt + usage.candidates + usage.thoughts);
        if usage.thoughts > 0 {
            value["thoughtsTokenCount"] = json!(usage.thoughts);
        }
        if usage.cached > 0 {
            value["cachedContentTokenCount"] = json!(usage.cached);
            value["cacheTokensDetails"] = json!([{"modality": "TEXT", "tokenCount": usage.cached}]);
        }
    }
    value
}

/// A deterministic, base64 thought signature (50 bytes, so it ends in `==` padding).
fn signature(seq: u64, index: usize) -> String {
    use base64::Engine;
    let mut x = seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (index as u64 + 1);
    let bytes: Vec<u8> = (0..50)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x & 0xff) as u8
        })
        .collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Builds the chunks of one answer.
struct Writer<'m, 'a> {
    meta: &'m Meta<'a>,
    noisy: bool,
}

impl Writer<'_, '_> {
    /// A response chunk with `parts` for candidate 0.
    fn chunk(&self, parts: Vec<Value>, finish: Option<&str>, usage: Value) -> Value {
        let mut candidate = json!({
            "content": {"parts": parts, "role": "model"},
            "index": 0,
        });
        if let Some(reason) = finish {
            candidate["finishReason"] = json!(reason);
        }
        let mut chunk = json!({
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": self.meta.model,
            "responseId": self.meta.response_id,
        });
        if self.noisy {
            chunk["candidates"][0]["safetyRatings"] = json!([
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"}
            ]);
            chunk["candidates"][0]["citationMetadata"] = json!({"citationSources": [{"startIndex": 0, "endIndex": 3, "uri": "https://example.com"}]});
            chunk["candidates"][0]["avgLogprobs"] = json!(-0.25);
            chunk["candidates"][0]["content"]["x_unknown"] = json!({"nested": [1, 2]});
            chunk["x_nexus_unknown_field"] = json!(true);
        }
        chunk
    }
}

/// The chunks of a streamed answer (or the error frames of a failing stream). Issues and
/// records thought signatures when asked.
pub(crate) fn stream_frames(
    reply: &Reply,
    plan: &GeneratePlan,
    answer: &Answer,
    meta: &Meta<'_>,
    shared: &Shared,
) -> Vec<Frame> {
    let writer = Writer {
        meta,
        noisy: reply.noisy,
    };
    let usage = usage_of(reply, plan, answer);
    let mut frames: Vec<Frame> = Vec::new();
    if reply.noisy {
        frames.push(Frame::Raw(": keep-alive".to_owned()));
    }
    match &reply.body {
        Body::Malformed => {
            frames.push(Frame::Chunk(writer.chunk(
                vec![json!({"text": "Partial "})],
                None,
                usage_json(usage, false),
            )));
            frames.push(Frame::Raw(
                "data: {\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"oops\"".to_owned(),
            ));
            return frames;
        }
        Body::BlockedPrompt(reason) => {
            frames.push(Frame::Chunk(json!({
                "promptFeedback": {
                    "blockReason": reason,
                    "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}]
                },
                "usageMetadata": usage_json(usage, false),
                "modelVersion": meta.model,
                "responseId": meta.response_id,
            })));
            return frames;
        }
        _ => {}
    }
    let signed = reply.thought_signature || shared.config.thought_signatures;
    let finish = reply.finish_reason.as_deref().unwrap_or("STOP");
    match answer {
        Answer::Text(words) => {
            let last = words.len().saturating_sub(1);
            let failing = matches!(reply.body, Body::StreamError { .. });
            for (i, word) in words.iter().enumerate() {
                if reply.noisy && i == 1 {
                    frames.push(Frame::Chunk(json!({
                        "usageMetadata": usage_json(usage, false),
                        "modelVersion": meta.model,
                        "responseId": meta.response_id,
                        "x_unknown_chunk": "no candidates here",
                    })));
                }
                let is_last = i == last && !failing;
                let mut part = json!({ "text": word });
                if is_last && signed {
                    part["thoughtSignature"] = json!(signature(meta.seq, 0));
                }
                frames.push(Frame::Chunk(writer.chunk(
                    vec![part],
                    is_last.then_some(finish),
                    usage_json(usage, is_last),
                )));
            }
            if words.is_empty() && !failing {
                frames.push(Frame::Chunk(writer.chunk(
                    vec![json!({"text": ""})],
                    Some(finish),
                    usage_json(usage, true),
                )));
            }
        }
        Answer::Calls(calls) => {
            let parts = calls
                .iter()
                .enumerate()
                .map(|(i, (name, args))| {
                    let mut part = json!({"functionCall": {"name": name, "args": args}});
                    if i == 0 && signed {
                        let sig = signature(meta.seq, i);
                        shared.issue_signature(
                            &sig,
                            SignedCall {
                                name: name.clone(),
                                args: args.clone(),
                            },
                        );
                        part["thoughtSignature"] = json!(sig);
                    }
                    part
                })
                .collect();
            frames.push(Frame::Chunk(writer.chunk(
                parts,
                Some(finish),
                usage_json(usage, true),
            )));
        }
    }
    if let Body::StreamError { code, status, .. } = &reply.body {
        let message = ApiError::default_message(*code, status, meta.model);
        frames.push(Frame::Raw(ApiError::new(*code, status, message).pretty()));
        return frames;
    }
    if let Some(n) = reply.cut_after {
        let mut seen = 0usize;
        let keep = frames
            .iter()
            .position(|f| {
                let is_chunk = matches!(f, Frame::Chunk(_));
                if is_chunk {
                    seen += 1;
                }
                is_chunk && seen > n
            })
            .unwrap_or(frames.len());
        frames.truncate(keep);
        frames.push(Frame::Cut);
    }
    frames
}

/// The single `generateContent` response: the stream's chunks merged.
pub(crate) fn merged(frames: &[Frame]) -> Value {
    let mut text = String::new();
    let mut parts: Vec<Value> = Vec::new();
    let mut last: Option<&Value> = None;
    let mut blocked: Option<&Value> = None;
    for frame in frames {
        let Frame::Chunk(chunk) = frame else { continue };
        if chunk.get("promptFeedback").is_some() {
            blocked = Some(chunk);
        }
        if chunk.get("candidates").is_none() {
            continue;
        }
        for part in chunk["candidates"][0]["content"]["parts"]
            .as_array()
            .into_iter()
            .flatten()
        {
            match part.get("text").and_then(Value::as_str) {
                Some(t) if part.get("thoughtSignature").is_none() => text.push_str(t),
                _ => {
                    if !text.is_empty() {
                        parts.push(json!({ "text": std::mem::take(&mut text) }));
                    }
                    parts.push(part.clone());
                }
            }
        }
        last = Some(chunk);
    }
    if let Some(blocked) = blocked {
        return blocked.clone();
    }
    if !text.is_empty() {
        parts.push(json!({ "text": text }));
    }
    let Some(last) = last else {
        return json!({ "candidates": [] });
    };
    let mut response = last.clone();
    if let Some(content) = response.pointer_mut("/candidates/0/content") {
        content["parts"] = Value::Array(parts);
    }
    response
}
