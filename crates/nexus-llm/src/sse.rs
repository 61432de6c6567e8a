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
//! Some servers mix lines that are no SSE field at all into an event stream (Gemini sends an
//! error as plain, pretty-printed JSON lines). The standard ignores such lines; a parser made
//! with [`SseParser::keep_foreign_lines`] hands them out as [`SseItem::Foreign`] instead, in
//! order with the events, through [`SseParser::next_item`].
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

/// One item of a stream read with [`SseParser::next_item`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A dispatched event.
    Event(SseEvent),
    /// A line that is neither a field (`data`, `event`, `id`, `retry`), a comment nor blank,
    /// without its line end. Only produced by a parser made with
    /// [`SseParser::keep_foreign_lines`].
    Foreign(String),
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
    /// Whether lines that are no SSE field are handed out as [`SseItem::Foreign`].
    keep_foreign: bool,
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
            keep_foreign: false,
        }
    }

    /// Makes [`next_item`](Self::next_item) hand out lines that are no SSE field (see
    /// [`SseItem::Foreign`]) instead of ignoring them.
    #[must_use]
    pub fn keep_foreign_lines(mut self) -> SseParser {
        self.keep_foreign = true;
        self
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

    /// The next complete event, `Ok(None)` when more bytes are needed. Foreign lines are
    /// skipped, even with [`keep_foreign_lines`](Self::keep_foreign_lines).
    pub fn next_event(&mut self) -> Result<Option<SseEvent>, SseError> {
        loop {
            match self.next_item()? {
                Some(SseItem::Event(event)) => return Ok(Some(event)),
                Some(SseItem::Foreign(_)) => {}
                None => return Ok(None),
            }
        }
    }

    /// The next complete event or foreign line, `Ok(None)` when more bytes are needed.
    pub fn next_item(&mut self) -> Result<Option<SseItem>, SseError> {
        while let Some(line) = self.take_line() {
            let line = std::str::from_utf8(&line).map_err(|_| SseError::InvalidUtf8)?;
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(SseItem::Event(event)));
                }
                continue;
            }
            if !self.field(line)? && self.keep_foreign {
                return Ok(Some(SseItem::Foreign(line.to_owned())));
            }
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

    /// [`finish`](Self::finish) for a parser made with
    /// [`keep_foreign_lines`](Self::keep_foreign_lines): the pending event, then the
    /// unterminated last line when it is foreign (a JSON body without a final line end).
    pub fn finish_items(&mut self) -> Result<Vec<SseItem>, SseError> {
        let rest = self.buf.get(self.pos..).unwrap_or_default().to_vec();
        let mut items: Vec<SseItem> = self.finish().map(SseItem::Event).into_iter().collect();
        if !self.keep_foreign || rest.is_empty() {
            return Ok(items);
        }
        let line = std::str::from_utf8(&rest).map_err(|_| SseError::InvalidUtf8)?;
        let line = line.strip_suffix('\r').unwrap_or(line);
        let is_field = line.is_empty()
            || line.starts_with(':')
            || matches!(
                line.split_once(':').map_or(line, |(name, _)| name),
                "data" | "event" | "id" | "retry"
            );
        if !is_field {
            items.push(SseItem::Foreign(line.to_owned()));
        }
        Ok(items)
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

    /// Applies one non-blank line; `false` when it is no SSE field (nor a comment).
    fn field(&mut self, line: &str) -> Result<bool, SseError> {
        if line.starts_with(':') {
            return Ok(true);
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
            "id" | "retry" => {}
            _ => return Ok(false),
        }
        Ok(true)
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
    fn foreign_lines_are_skipped_by_default_and_kept_in_order_on_request() {
        let input = b"data: one\r\n\r\n{\r\n  \"error\": {}\r\n}\r\nid: 3\r\n: c\r\ndata: two\n\n";
        let mut p = SseParser::default();
        p.feed(input);
        assert_eq!(all(&mut p), vec![data("one"), data("two")]);
        let mut p = SseParser::default().keep_foreign_lines();
        p.feed(input);
        let mut items = Vec::new();
        while let Some(item) = p.next_item().unwrap() {
            items.push(item);
        }
        assert_eq!(
            items,
            vec![
                SseItem::Event(data("one")),
                SseItem::Foreign("{".into()),
                SseItem::Foreign("  \"error\": {}".into()),
                SseItem::Foreign("}".into()),
                SseItem::Event(data("two")),
            ]
        );
    }

    #[test]
    fn finish_items_keeps_an_unterminated_foreign_line_but_not_a_cut_data_line() {
        let mut p = SseParser::default().keep_foreign_lines();
        p.feed(b"data: a\n{\"error\":1}");
        assert_eq!(p.next_item().unwrap(), None);
        assert_eq!(
            p.finish_items().unwrap(),
            vec![
                SseItem::Event(data("a")),
                SseItem::Foreign("{\"error\":1}".into())
            ]
        );
        let mut p = SseParser::default().keep_foreign_lines();
        p.feed(b"data: {\"cut");
        assert_eq!(p.finish_items().unwrap(), vec![]);
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
