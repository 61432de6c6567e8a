//! An incremental Server-Sent Events parser over a byte stream.
//!
//! Bytes are fed as they arrive from the network ([`SseParser::feed`]) and complete events are
//! taken out ([`SseParser::next_event`]). It follows the WHATWG event-stream rules that matter
//! to model APIs: `data:` lines (several join with `\n`), `event:` names, comment lines
//! starting with `:`, `\n`, `\r\n` and lone `\r` line ends, an optional space after the colon,
//! and a leading byte-order mark. `id:` and `retry:` are ignored.
//!
//! A hostile or broken server cannot make us buffer without bound: one frame (the pending
//! line plus the data of the event being built) is capped at [`SseParser::max_frame`] bytes.
//!
//! This module knows nothing of any provider's JSON.

/// The default cap of one frame: 1 MiB.
pub const DEFAULT_MAX_FRAME: usize = 1 << 20;

/// One dispatched event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` name, when the frame had one.
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
}

/// Why a stream could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SseError {
    /// One frame grew past the cap.
    #[error("server-sent event larger than {limit} bytes")]
    FrameTooLarge {
        /// The cap, in bytes.
        limit: usize,
    },
    /// A line was not UTF-8.
    #[error("server-sent event line is not valid UTF-8")]
    InvalidUtf8,
}

/// The parser state: bytes not yet split into lines and the event being built.
#[derive(Debug)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Start of the unconsumed bytes in `buf`.
    pos: usize,
    data: String,
    has_data: bool,
    event: Option<String>,
    max_frame: usize,
    /// Whether the leading byte-order mark has been checked.
    bom_checked: bool,
}

impl Default for SseParser {
    fn default() -> Self {
        SseParser::new(DEFAULT_MAX_FRAME)
    }
}

impl SseParser {
    /// A parser refusing frames larger than `max_frame` bytes.
    pub fn new(max_frame: usize) -> SseParser {
        SseParser {
            buf: Vec::new(),
            pos: 0,
            data: String::new(),
            has_data: false,
            event: None,
            max_frame,
            bom_checked: false,
        }
    }

    /// The frame cap in bytes.
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Appends bytes read from the network.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.pos > 0 && self.pos >= self.buf.len() / 2 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
        if !self.bom_checked && self.buf.len() - self.pos >= 3 {
            if self.buf[self.pos..].starts_with(b"\xEF\xBB\xBF") {
                self.pos += 3;
            }
            self.bom_checked = true;
        }
    }

    /// The next complete event, `Ok(None)` when more bytes are needed.
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        while let Some(line) = self.take_line() {
            let line = std::str::from_utf8(&line).map_err(|_| SseError::InvalidUtf8)?;
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            self.field(line)?;
        }
        if self.buf.len() - self.pos + self.data.len() > self.max_frame {
            return Err(SseError::FrameTooLarge {
                limit: self.max_frame,
            });
        }
        Ok(None)
    }

    /// Ends the stream: the event whose data lines were complete but whose blank line never
    /// came, if any. An unterminated last line is dropped (it may be cut short).
    pub fn finish(&mut self) -> Option<SseEvent> {
        self.buf.clear();
        self.pos = 0;
        self.dispatch()
    }

    /// Takes one line off the buffer, without its terminator. A trailing `\r` waits for the
    /// next bytes, which may start with the `\n` of the same `\r\n`.
    fn take_line(&mut self) -> Option<Vec<u8>> {
        let rest = &self.buf[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n' || b == b'\r')?;
        let terminator = if rest[end] == b'\r' {
            match rest.get(end + 1) {
                Some(b'\n') => 2,
                Some(_) => 1,
                None => return None,
            }
        } else {
            1
        };
        let line = rest[..end].to_vec();
        self.pos += end + terminator;
        Some(line)
    }

    fn field(&mut self, line: &str) -> Result<(), SseError> {
        if line.starts_with(':') {
            return Ok(());
        }
        let (name, value) = match line.split_once(':') {
            Some((name, value)) => (name, value.strip_prefix(' ').unwrap_or(value)),
            None => (line, ""),
        };
        match name {
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
                if self.data.len() > self.max_frame {
                    return Err(SseError::FrameTooLarge {
                        limit: self.max_frame,
                    });
                }
            }
            "event" => self.event = Some(value.to_owned()),
            _ => {}
        }
        Ok(())
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let event = self.event.take();
        if !self.has_data {
            return None;
        }
        self.has_data = false;
        Some(SseEvent {
            event,
            data: std::mem::take(&mut self.data),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(parser: &mut SseParser) -> Vec<SseEvent> {
        let mut out = Vec::new();
        while let Some(e) = parser.next_event().unwrap() {
            out.push(e);
        }
        out
    }

    fn data(d: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: d.to_owned(),
        }
    }

    #[test]
    fn frame_split_across_reads_is_reassembled() {
        let mut p = SseParser::default();
        let input = b"data: {\"a\":1}\n\ndata: {\"b\":2}\n\n";
        let mut events = Vec::new();
        for byte in input {
            p.feed(&[*byte]);
            events.extend(all(&mut p));
        }
        assert_eq!(events, vec![data("{\"a\":1}"), data("{\"b\":2}")]);
    }

    #[test]
    fn crlf_and_lone_cr_line_ends_are_accepted() {
        let mut p = SseParser::default();
        p.feed(b"data: one\r\n\r\ndata: two\r\rdata: three\n\n");
        assert_eq!(all(&mut p), vec![data("one"), data("two"), data("three")]);
    }

    #[test]
    fn crlf_split_between_reads_is_one_line_end() {
        let mut p = SseParser::default();
        p.feed(b"data: x\r");
        assert_eq!(all(&mut p), vec![]);
        p.feed(b"\n\r");
        assert_eq!(all(&mut p), vec![]);
        p.feed(b"\n");
        assert_eq!(all(&mut p), vec![data("x")]);
    }

    #[test]
    fn comments_and_unknown_fields_are_skipped() {
        let mut p = SseParser::default();
        p.feed(b": OPENROUTER PROCESSING\n\nid: 7\nretry: 10\nfoo: bar\ndata: x\n\n");
        assert_eq!(all(&mut p), vec![data("x")]);
    }

    #[test]
    fn multi_line_data_joins_with_newline_and_event_name_is_kept() {
        let mut p = SseParser::default();
        p.feed(b"event: error\ndata: a\ndata:b\ndata\n\n");
        assert_eq!(
            all(&mut p),
            vec![SseEvent {
                event: Some("error".into()),
                data: "a\nb\n".into()
            }]
        );
    }

    #[test]
    fn byte_order_mark_at_start_is_ignored() {
        let mut p = SseParser::default();
        p.feed(b"\xEF\xBB\xBFdata: x\n\n");
        assert_eq!(all(&mut p), vec![data("x")]);
    }

    #[test]
    fn oversized_frame_is_an_error_not_unbounded_buffering() {
        let mut p = SseParser::new(64);
        p.feed(b"data: ");
        p.feed(&[b'a'; 100]);
        assert_eq!(p.next_event(), Err(SseError::FrameTooLarge { limit: 64 }));
        let mut p = SseParser::new(64);
        for _ in 0..10 {
            p.feed(b"data: aaaaaaaaaa\n");
        }
        assert_eq!(p.next_event(), Err(SseError::FrameTooLarge { limit: 64 }));
    }

    #[test]
    fn many_small_frames_in_one_read_do_not_trip_the_cap() {
        let mut p = SseParser::new(64);
        let frames: Vec<u8> = b"data: 0123456789\n\n".repeat(50);
        p.feed(&frames);
        assert_eq!(all(&mut p).len(), 50);
    }

    #[test]
    fn finish_dispatches_complete_data_but_drops_an_unterminated_line() {
        let mut p = SseParser::default();
        p.feed(b"data: [DONE]\n");
        assert_eq!(all(&mut p), vec![]);
        assert_eq!(p.finish(), Some(data("[DONE]")));
        let mut p = SseParser::default();
        p.feed(b"data: {\"trunc");
        assert_eq!(all(&mut p), vec![]);
        assert_eq!(p.finish(), None);
    }
}
