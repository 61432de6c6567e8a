//! The body pump of a streaming model answer: bytes in, neutral chunks out, under deadlines.
//!
//! Once a provider's client has an HTTP 200 with an event stream, [`stream`] reads the first
//! body bytes before the first-byte deadline, then yields chunks on demand: bytes go through
//! the [`SseParser`], events through the provider's [`Decode`] implementation. Each body read
//! is bounded by the idle deadline. A body that breaks before the decoder saw the answer finish
//! is [`LlmError::StreamInterrupted`]; once the answer is complete, what is left of the body is
//! drained in the background so the connection returns to the pool.
//!
//! Text deltas that arrived together (decoded from bytes already read) come out as one delta:
//! a model that streams faster than its answer is consumed, or a proxy that buffers its
//! stream, costs one event downstream per read, not one per token (each event is published to
//! every subscriber, framed for the client, decoded by it). Nothing waits for more text: a
//! delta goes out with what was there when it was asked for.
//!
//! Also here, for the same clients: [`read_capped`] (error bodies), [`send_error`] (failures
//! before any answer) and [`error_chain`].
//!
//! This module knows no vendor's JSON; decoders know no I/O.

use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt};
use nexus_core::llm::{ChunkStream, CompletionChunk, LlmError};
use tokio::time::{Instant, timeout, timeout_at};

use crate::sse::{DEFAULT_MAX_FRAME, SseEvent, SseItem, SseParser};

/// The most bytes of an error answer read (the rest is ignored), and of a finished body
/// drained.
pub(crate) const MAX_ERROR_BODY: usize = 64 * 1024;
/// How long the rest of a finished body is drained so its connection returns to the pool.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

type BodyStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A vendor's stream decoder: SSE events in, neutral chunks out, no I/O.
pub(crate) trait Decode: Send + 'static {
    /// Decodes one event, appending chunks to `out`.
    fn on_event(
        &mut self,
        event: &SseEvent,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError>;

    /// The body ended: conclude (a last `Done`), or say the answer was cut short.
    fn on_end(&mut self, out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError>;

    /// Whether the answer is complete and nothing more is to be read.
    fn is_done(&self) -> bool;

    /// Whether the answer finished (a broken connection after this point loses nothing).
    fn has_finished(&self) -> bool;

    /// Whether lines that are no SSE field reach [`Decode::on_foreign`] (Gemini can send an
    /// error as bare JSON lines); otherwise they are skipped.
    const FOREIGN_LINES: bool = false;

    /// Decodes a line that is no SSE field (only with [`Decode::FOREIGN_LINES`]).
    fn on_foreign(
        &mut self,
        line: &str,
        out: &mut VecDeque<CompletionChunk>,
    ) -> Result<(), LlmError> {
        let _ = (line, out);
        Ok(())
    }
}

/// Turns the body of a successful streaming answer into chunks. The first read must arrive
/// before `deadline` (else [`LlmError::Timeout`] `first_byte`); each later one within `idle`
/// (else `idle`).
pub(crate) async fn stream<D: Decode>(
    response: reqwest::Response,
    deadline: Instant,
    idle: Duration,
    decoder: D,
) -> Result<ChunkStream, LlmError> {
    let mut body: BodyStream = Box::pin(response.bytes_stream());
    let mut pump = Pump::new(idle, decoder);
    match timeout_at(deadline, body.next()).await {
        Err(_) => {
            return Err(LlmError::Timeout {
                stage: "first_byte",
            });
        }
        Ok(Some(Ok(bytes))) => {
            pump.sse.feed(&bytes);
            pump.body = Some(body);
        }
        // An empty body or one that broke at once: let the pump report it.
        Ok(Some(Err(err))) => pump.broken = Some(error_chain(&err)),
        Ok(None) => {}
    }
    let stream = futures::stream::unfold(pump, |mut pump| async move {
        let item = pump.next().await?;
        Some((item, pump))
    });
    Ok(Box::pin(stream))
}

/// Reads at most [`MAX_ERROR_BODY`] bytes of a body, each read bounded by `idle`.
pub(crate) async fn read_capped(
    body: impl Stream<Item = reqwest::Result<Bytes>>,
    idle: Duration,
) -> Vec<u8> {
    let mut body = std::pin::pin!(body);
    let mut out = Vec::new();
    while out.len() < MAX_ERROR_BODY {
        match timeout(idle, body.next()).await {
            Ok(Some(Ok(bytes))) => {
                let room = MAX_ERROR_BODY - out.len();
                out.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            _ => break,
        }
    }
    out
}

/// The most bytes of a JSON answer read (a batch of embedding vectors).
const MAX_JSON_BODY: usize = 64 * 1024 * 1024;

/// Sends `request` and reads its whole answer before `deadline`: the status, the headers and
/// the body (at most [`MAX_JSON_BODY`] bytes; an error body is cut to [`MAX_ERROR_BODY`]).
pub(crate) async fn send_and_read(
    request: reqwest::RequestBuilder,
    deadline: Instant,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>), LlmError> {
    let response = match timeout_at(deadline, request.send()).await {
        Err(_) => {
            return Err(LlmError::Timeout {
                stage: "first_byte",
            });
        }
        Ok(Err(err)) => return Err(send_error(&err)),
        Ok(Ok(response)) => response,
    };
    let status = response.status();
    let headers = response.headers().clone();
    let mut stream = std::pin::pin!(response.bytes_stream());
    let mut body = Vec::new();
    loop {
        match timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(LlmError::Timeout { stage: "idle" }),
            Ok(None) => break,
            Ok(Some(Err(err))) => {
                return Err(LlmError::Transport {
                    message: error_chain(&err),
                });
            }
            Ok(Some(Ok(bytes))) => {
                if body.len() + bytes.len() > MAX_JSON_BODY {
                    return Err(LlmError::Malformed {
                        detail: format!("answer larger than {MAX_JSON_BODY} bytes"),
                    });
                }
                body.extend_from_slice(&bytes);
            }
        }
    }
    if !status.is_success() {
        body.truncate(MAX_ERROR_BODY);
    }
    Ok((status, headers, body))
}

/// Maps a failure to send the request (before any answer).
pub(crate) fn send_error(err: &reqwest::Error) -> LlmError {
    if err.is_connect() && err.is_timeout() {
        LlmError::Timeout { stage: "connect" }
    } else if err.is_timeout() {
        LlmError::Timeout {
            stage: "first_byte",
        }
    } else {
        LlmError::Transport {
            message: error_chain(err),
        }
    }
}

/// An error and its causes, `a: b: c`.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// The most bytes of text merged into one delta (a bigger delta is passed on as it is).
const MAX_MERGED_TEXT: usize = 64 * 1024;

/// One read of the body.
enum Read {
    Bytes(Bytes),
    /// The connection broke (the cause, for the log).
    Broken(String),
    End,
}

/// Reads the body and yields decoded chunks, one at a time.
struct Pump<D> {
    body: Option<BodyStream>,
    sse: SseParser,
    decoder: D,
    out: VecDeque<CompletionChunk>,
    idle: Duration,
    /// The body broke on its first read (the cause, for the log).
    broken: Option<String>,
    /// An error found while looking ahead for text to merge, reported after that text.
    deferred: Option<LlmError>,
    finished: bool,
}

impl<D: Decode> Pump<D> {
    fn new(idle: Duration, decoder: D) -> Pump<D> {
        Pump {
            body: None,
            sse: if D::FOREIGN_LINES {
                SseParser::new(DEFAULT_MAX_FRAME).keep_foreign_lines()
            } else {
                SseParser::new(DEFAULT_MAX_FRAME)
            },
            decoder,
            out: VecDeque::new(),
            idle,
            broken: None,
            deferred: None,
            finished: false,
        }
    }

    /// The next chunk. Text deltas decoded from bytes already read come out as one delta:
    /// what arrived together is passed on together (never waiting for more).
    async fn next(&mut self) -> Option<Result<CompletionChunk, LlmError>> {
        match self.next_decoded().await? {
            Ok(CompletionChunk::TextDelta { mut text }) => {
                self.absorb_buffered_text(&mut text);
                Some(Ok(CompletionChunk::TextDelta { text }))
            }
            other => Some(other),
        }
    }

    /// Appends to `text` the text deltas that follow it in what has been read, up to the first
    /// other chunk, the end of the bytes read or [`MAX_MERGED_TEXT`]. An event that fails to
    /// decode is kept for the next call, after the text before it.
    fn absorb_buffered_text(&mut self, text: &mut String) {
        loop {
            match self.out.front() {
                Some(CompletionChunk::TextDelta { text: more })
                    if text.len() + more.len() <= MAX_MERGED_TEXT =>
                {
                    text.push_str(more);
                    self.out.pop_front();
                    continue;
                }
                Some(_) => return,
                None => {}
            }
            if self.finished || self.deferred.is_some() {
                return;
            }
            match self.decode_buffered() {
                Ok(true) => {}
                Ok(false) => return,
                Err(err) => {
                    // The error comes after the text.
                    self.deferred = Some(err);
                    return;
                }
            }
        }
    }

    /// Decodes the next complete item of what has been read, if there is one; whether there
    /// was. A failing item's chunks are dropped. Once the answer is complete, reading stops.
    fn decode_buffered(&mut self) -> Result<bool, LlmError> {
        let item = match self.sse.next_item() {
            Ok(Some(item)) => item,
            Ok(None) => return Ok(false),
            Err(err) => {
                return Err(LlmError::Malformed {
                    detail: err.to_string(),
                });
            }
        };
        let before = self.out.len();
        if let Err(err) = self.decode(&item) {
            self.out.truncate(before);
            return Err(err);
        }
        if self.decoder.is_done() {
            self.close();
        }
        Ok(true)
    }

    /// Decodes one item into the chunks waiting to go out.
    fn decode(&mut self, item: &SseItem) -> Result<(), LlmError> {
        match item {
            SseItem::Event(event) => self.decoder.on_event(event, &mut self.out),
            SseItem::Foreign(line) => self.decoder.on_foreign(line, &mut self.out),
        }
    }

    /// The next chunk as decoded, reading the body when nothing read is left to decode.
    async fn next_decoded(&mut self) -> Option<Result<CompletionChunk, LlmError>> {
        loop {
            if let Some(chunk) = self.out.pop_front() {
                return Some(Ok(chunk));
            }
            if let Some(err) = self.deferred.take() {
                return self.fail(err);
            }
            if self.finished {
                return None;
            }
            match self.decode_buffered() {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => return self.fail(err),
            }
            let read = match self.body.as_mut() {
                Some(body) => match timeout(self.idle, body.next()).await {
                    Err(_) => return self.fail(LlmError::Timeout { stage: "idle" }),
                    Ok(Some(Ok(bytes))) => Read::Bytes(bytes),
                    Ok(Some(Err(err))) => Read::Broken(error_chain(&err)),
                    Ok(None) => Read::End,
                },
                None => self.broken.take().map_or(Read::End, Read::Broken),
            };
            match read {
                Read::Bytes(bytes) => self.sse.feed(&bytes),
                Read::Broken(cause) => {
                    tracing::debug!(error = %cause, "Model stream broke");
                    if !self.decoder.has_finished() {
                        return self.fail(LlmError::StreamInterrupted);
                    }
                    self.body = None;
                    if let Err(err) = self.end() {
                        return self.fail(err);
                    }
                }
                Read::End => {
                    self.body = None;
                    if let Err(err) = self.end() {
                        return self.fail(err);
                    }
                }
            }
        }
    }

    /// The body ended: decode a last unterminated event, then let the decoder conclude.
    fn end(&mut self) -> Result<(), LlmError> {
        let items = self.sse.finish_items().map_err(|err| LlmError::Malformed {
            detail: err.to_string(),
        })?;
        for item in &items {
            self.decode(item)?;
        }
        self.decoder.on_end(&mut self.out)?;
        self.finished = true;
        Ok(())
    }

    /// Ends the stream with `err`; chunks of the failing event are dropped.
    fn fail(&mut self, err: LlmError) -> Option<Result<CompletionChunk, LlmError>> {
        self.finished = true;
        self.out.clear();
        self.body = None;
        Some(Err(err))
    }

    /// The answer is complete: drain what is left of the body in the background, so the
    /// connection goes back to the pool, and stop reading.
    fn close(&mut self) {
        self.finished = true;
        if let Some(mut body) = self.body.take() {
            tokio::spawn(async move {
                let mut left = MAX_ERROR_BODY;
                while let Ok(Some(Ok(bytes))) = timeout(DRAIN_TIMEOUT, body.next()).await {
                    left = left.saturating_sub(bytes.len());
                    if left == 0 {
                        break;
                    }
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One chunk per event: `data` is a text delta, except `tool` events and `[DONE]`.
    struct Plain {
        done: bool,
    }

    impl Decode for Plain {
        fn on_event(
            &mut self,
            event: &SseEvent,
            out: &mut VecDeque<CompletionChunk>,
        ) -> Result<(), LlmError> {
            match (event.event.as_deref(), event.data.as_str()) {
                (_, "[DONE]") => {
                    self.done = true;
                    out.push_back(CompletionChunk::Done {
                        stop_reason: nexus_core::llm::StopReason::EndTurn,
                    });
                }
                (_, "bad") => {
                    return Err(LlmError::Malformed {
                        detail: "bad event".into(),
                    });
                }
                (Some("tool"), name) => out.push_back(CompletionChunk::ToolUseStart {
                    index: 0,
                    id: "call_1".into(),
                    name: name.into(),
                }),
                (_, text) => out.push_back(CompletionChunk::TextDelta { text: text.into() }),
            }
            Ok(())
        }

        fn on_end(&mut self, _out: &mut VecDeque<CompletionChunk>) -> Result<(), LlmError> {
            if self.done {
                Ok(())
            } else {
                Err(LlmError::StreamInterrupted)
            }
        }

        fn is_done(&self) -> bool {
            self.done
        }

        fn has_finished(&self) -> bool {
            self.done
        }
    }

    /// A pump over a body that arrives in these reads.
    fn pump(reads: &[&str]) -> Pump<Plain> {
        let reads: Vec<reqwest::Result<Bytes>> = reads
            .iter()
            .map(|r| Ok(Bytes::copy_from_slice(r.as_bytes())))
            .collect();
        let mut pump = Pump::new(Duration::from_secs(5), Plain { done: false });
        pump.body = Some(Box::pin(futures::stream::iter(reads)));
        pump
    }

    async fn drain(mut pump: Pump<Plain>) -> Vec<Result<CompletionChunk, LlmError>> {
        let mut items = Vec::new();
        while let Some(item) = pump.next().await {
            items.push(item);
        }
        items
    }

    fn text(t: &str) -> Result<CompletionChunk, LlmError> {
        Ok(CompletionChunk::TextDelta { text: t.into() })
    }

    fn done() -> Result<CompletionChunk, LlmError> {
        Ok(CompletionChunk::Done {
            stop_reason: nexus_core::llm::StopReason::EndTurn,
        })
    }

    #[tokio::test]
    async fn text_read_together_is_one_delta_and_later_reads_are_not_awaited() {
        let items = drain(pump(&[
            "data: Hel\n\ndata: lo\n\ndata: , wor",
            "ld\n\ndata: !\n\n",
            "data: [DONE]\n\n",
        ]))
        .await;
        // The first read holds two whole events (the third is cut): one delta. The second read
        // completes two more.
        assert_eq!(items, vec![text("Hello"), text(", world!"), done()]);
    }

    #[tokio::test]
    async fn other_chunks_end_a_merged_delta_in_order() {
        let items = drain(pump(&[
            "data: a\n\ndata: b\n\nevent: tool\ndata: search\n\ndata: c\n\ndata: d\n\n\
             data: [DONE]\n\n",
        ]))
        .await;
        assert_eq!(
            items,
            vec![
                text("ab"),
                Ok(CompletionChunk::ToolUseStart {
                    index: 0,
                    id: "call_1".into(),
                    name: "search".into(),
                }),
                text("cd"),
                done(),
            ]
        );
    }

    #[tokio::test]
    async fn an_event_that_fails_comes_after_the_text_before_it() {
        let items = drain(pump(&[
            "data: one\n\ndata: two\n\ndata: bad\n\ndata: three\n\n",
        ]))
        .await;
        assert_eq!(
            items,
            vec![
                text("onetwo"),
                Err(LlmError::Malformed {
                    detail: "bad event".into()
                }),
            ]
        );
    }

    #[tokio::test]
    async fn a_merged_delta_stays_under_its_cap() {
        let big = "x".repeat(MAX_MERGED_TEXT / 2 + 1);
        let body = format!("data: {big}\n\ndata: {big}\n\ndata: y\n\ndata: [DONE]\n\n");
        let items = drain(pump(&[&body])).await;
        let mut more = big.clone();
        more.push('y');
        assert_eq!(items, vec![text(&big), text(&more), done()]);
    }

    #[tokio::test]
    async fn a_body_cut_after_text_gives_the_text_then_the_interruption() {
        let items = drain(pump(&["data: par\n\ndata: tial\n\n"])).await;
        assert_eq!(
            items,
            vec![text("partial"), Err(LlmError::StreamInterrupted)]
        );
    }
}
