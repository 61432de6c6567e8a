//! The text being written: whitespace collapsed outside `<pre>`, paragraph and line breaks that
//! never pile up, `> ` before lines inside block quotes, and table cells kept on one line.

/// Markdown-like text under construction.
#[derive(Debug, Default)]
pub(super) struct Writer {
    out: String,
    /// Whitespace seen since the last character written (written as one space, if needed).
    pending_space: bool,
    /// Open `<blockquote>`s.
    pub(super) quote: usize,
    /// Inside a table cell: breaks become spaces so a row stays on one line.
    pub(super) in_cell: bool,
}

impl Writer {
    pub(super) fn len(&self) -> usize {
        self.out.len()
    }

    fn at_line_start(&self) -> bool {
        self.out.is_empty() || self.out.ends_with('\n')
    }

    fn prefix(&mut self) {
        if self.quote > 0 && self.at_line_start() {
            for _ in 0..self.quote {
                self.out.push_str("> ");
            }
        }
    }

    /// Text whose whitespace collapses.
    pub(super) fn text(&mut self, text: &str) {
        for c in text.chars() {
            if c.is_whitespace() {
                self.pending_space = true;
                continue;
            }
            self.flush_space();
            self.prefix();
            self.out.push(c);
        }
    }

    /// Text kept as is (`<pre>`).
    pub(super) fn verbatim(&mut self, text: &str) {
        for c in text.chars() {
            if c == '\r' {
                continue;
            }
            if c != '\n' {
                self.prefix();
            }
            self.out.push(c);
        }
        self.pending_space = false;
    }

    /// Writes a space if whitespace is pending and the line already has text.
    fn flush_space(&mut self) {
        if self.pending_space && !self.at_line_start() && !self.out.ends_with([' ', '[']) {
            self.out.push(' ');
        }
        self.pending_space = false;
    }

    /// Markup that opens something inline (`[`, `` ` ``, `| `): pending space goes before it.
    pub(super) fn open(&mut self, markup: &str) {
        self.flush_space();
        self.prefix();
        self.out.push_str(markup);
    }

    /// Markup that closes something inline (`](url)`, `` ` ``): pending space goes after it.
    pub(super) fn close(&mut self, markup: &str) {
        self.trim_spaces();
        self.out.push_str(markup);
    }

    fn trim_spaces(&mut self) {
        let kept = self.out.trim_end_matches([' ', '\t']).len();
        self.out.truncate(kept);
    }

    /// Ends the current line and ensures `lines - 1` blank lines follow (1: a new line, 2: a
    /// new paragraph). Inside a table cell, a space.
    pub(super) fn breaks(&mut self, lines: usize) {
        if lines == 0 {
            return;
        }
        if self.in_cell {
            self.pending_space = true;
            return;
        }
        self.trim_spaces();
        self.pending_space = false;
        if self.out.is_empty() {
            return;
        }
        let have = self.out.len() - self.out.trim_end_matches('\n').len();
        for _ in have..lines {
            self.out.push('\n');
        }
    }

    /// A `<br>`: a new line, at most one blank line in a row.
    pub(super) fn line_break(&mut self) {
        self.trim_spaces();
        self.pending_space = false;
        let have = self.out.len() - self.out.trim_end_matches('\n').len();
        if !self.out.is_empty() && have < 2 {
            self.out.push('\n');
        }
    }

    /// What was written since byte `start`.
    pub(super) fn since(&self, start: usize) -> &str {
        self.out.get(start..).unwrap_or_default()
    }

    /// Removes the byte-`at` character (an unused `[`).
    pub(super) fn remove(&mut self, at: usize) {
        if self.out.is_char_boundary(at) && at < self.out.len() {
            self.out.remove(at);
        }
    }

    /// The text, lines right-trimmed, at most one blank line in a row.
    pub(super) fn finish(self) -> String {
        let mut text = String::with_capacity(self.out.len());
        let mut blank = 0;
        for line in self.out.lines() {
            let line = line.trim_end();
            if line.is_empty() || line.chars().all(|c| c == '>' || c == ' ') {
                blank += 1;
                if blank > 1 {
                    continue;
                }
            } else {
                blank = 0;
            }
            text.push_str(line);
            text.push('\n');
        }
        text.trim().to_owned()
    }
}
