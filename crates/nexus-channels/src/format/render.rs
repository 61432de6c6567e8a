//! Markdown from the model, rendered for each platform from one parse (pulldown-cmark events):
//!
//! - **Telegram HTML** (`parse_mode: HTML`): `<b> <i> <s> <code> <pre><code class="language-x">
//!   <a href> <blockquote>`; `&`, `<`, `>` escaped everywhere outside tags and `"` inside
//!   attributes; headings bold; lists as `•` / `1.` lines; tables as preformatted text.
//! - **Slack mrkdwn**: `*bold*`, `_italic_`, `~strike~`, `` `code` ``, fenced blocks, `<url|label>`
//!   links, `>` quotes; `&`, `<`, `>` escaped in text (Slack has no escape for `*` or `_`).
//! - **Plain text**: the words without markup (Telegram's fallback when it refuses the
//!   entities; also what Telegram's length limit counts).
//!
//! Raw HTML in the model's answer is shown as text, never passed through.

use pulldown_cmark::{CodeBlockKind, Event, Options, Parser, Tag, TagEnd};

/// The output dialect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    TelegramHtml,
    SlackMrkdwn,
    Plain,
}

fn options() -> Options {
    Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS
}

/// `&`, `<`, `>` as entities (both Telegram HTML text and Slack mrkdwn need exactly these).
pub(crate) fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// [`escape_text`] plus `"`, for an attribute value.
fn escape_attribute(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '"' => out.push_str("&quot;"),
            c => escape_text(c.encode_utf8(&mut [0; 4]), out),
        }
    }
}

/// A list being rendered: its next number, or `None` for bullets.
struct List {
    next: Option<u64>,
}

/// Renders Markdown in `dialect`.
pub(crate) fn render(markdown: &str, dialect: Dialect) -> String {
    let mut r = Renderer {
        dialect,
        out: String::with_capacity(markdown.len() + markdown.len() / 8),
        lists: Vec::new(),
        link: Vec::new(),
        in_code_block: false,
        quote_depth: 0,
        table: None,
    };
    for event in Parser::new_ext(markdown, options()) {
        r.event(event);
    }
    let trimmed = r.out.trim_end().len();
    r.out.truncate(trimmed);
    r.out
}

/// A table collected cell by cell, printed as aligned preformatted text at its end.
#[derive(Default)]
struct Table {
    rows: Vec<Vec<String>>,
    cell: String,
}

struct Renderer {
    dialect: Dialect,
    out: String,
    lists: Vec<List>,
    /// Destinations of the links being rendered (Slack writes the URL before the label).
    link: Vec<(String, usize)>,
    in_code_block: bool,
    quote_depth: usize,
    table: Option<Table>,
}

impl Renderer {
    /// Text as it appears in the output: escaped for the markup dialects.
    fn text(&mut self, text: &str) {
        if let Some(table) = &mut self.table {
            table.cell.push_str(text);
            return;
        }
        match self.dialect {
            Dialect::TelegramHtml | Dialect::SlackMrkdwn => escape_text(text, &mut self.out),
            Dialect::Plain => self.out.push_str(text),
        }
    }

    fn raw(&mut self, s: &str) {
        if let Some(table) = &mut self.table {
            table.cell.push_str(s);
        } else {
            self.out.push_str(s);
        }
    }

    /// Ends the current block with a blank line (one newline inside lists).
    fn end_block(&mut self) {
        if self.lists.is_empty() {
            self.raw("\n\n");
        } else {
            self.raw("\n");
        }
    }

    /// Starts a line inside a Slack quote.
    fn quote_prefix(&mut self) {
        if self.dialect == Dialect::SlackMrkdwn && self.quote_depth > 0 {
            let at_line_start = self.out.is_empty() || self.out.ends_with('\n');
            if at_line_start {
                self.out.push_str(&"> ".repeat(self.quote_depth));
            }
        }
    }

    fn event(&mut self, event: Event<'_>) {
        use Dialect::{Plain, SlackMrkdwn, TelegramHtml};
        match event {
            Event::Start(tag) => self.start(tag),
            Event::End(tag) => self.end(tag),
            Event::Text(text) => {
                if self.in_code_block && self.dialect == SlackMrkdwn && self.quote_depth > 0 {
                    // Slack quotes are per line.
                    for (i, line) in text.split('\n').enumerate() {
                        if i > 0 {
                            self.out.push('\n');
                        }
                        self.quote_prefix();
                        escape_text(line, &mut self.out);
                    }
                } else {
                    self.quote_prefix();
                    self.text(&text);
                }
            }
            Event::Code(code) => {
                self.quote_prefix();
                match self.dialect {
                    TelegramHtml => {
                        self.raw("<code>");
                        self.text(&code);
                        self.raw("</code>");
                    }
                    SlackMrkdwn => {
                        self.raw("`");
                        self.text(&code);
                        self.raw("`");
                    }
                    Plain => self.text(&code),
                }
            }
            // The model's raw HTML is shown, not interpreted.
            Event::Html(html) | Event::InlineHtml(html) => self.text(&html),
            Event::SoftBreak | Event::HardBreak => {
                self.raw("\n");
            }
            Event::Rule => {
                self.raw("──────────");
                self.end_block();
            }
            Event::TaskListMarker(done) => self.raw(if done { "☑ " } else { "☐ " }),
            Event::FootnoteReference(name) => {
                self.raw("[");
                self.text(&name);
                self.raw("]");
            }
            Event::InlineMath(math) | Event::DisplayMath(math) => self.text(&math),
        }
    }

    fn start(&mut self, tag: Tag<'_>) {
        use Dialect::{Plain, SlackMrkdwn, TelegramHtml};
        match tag {
            Tag::Paragraph => self.quote_prefix(),
            Tag::Heading { .. } => match self.dialect {
                TelegramHtml => self.raw("<b>"),
                SlackMrkdwn => {
                    self.quote_prefix();
                    self.raw("*");
                }
                Plain => {}
            },
            Tag::BlockQuote(_) => {
                self.quote_depth += 1;
                if self.dialect == TelegramHtml {
                    self.raw("<blockquote>");
                }
            }
            Tag::CodeBlock(kind) => {
                self.in_code_block = true;
                match self.dialect {
                    TelegramHtml => match kind {
                        CodeBlockKind::Fenced(lang) if !lang.trim().is_empty() => {
                            let lang = lang.split_whitespace().next().unwrap_or_default();
                            self.raw("<pre><code class=\"language-");
                            escape_attribute(lang, &mut self.out);
                            self.raw("\">");
                        }
                        _ => self.raw("<pre><code>"),
                    },
                    SlackMrkdwn => {
                        self.quote_prefix();
                        self.raw("```\n");
                    }
                    Plain => {}
                }
            }
            Tag::List(start) => {
                if !self.lists.is_empty() {
                    self.raw("\n");
                }
                self.lists.push(List { next: start });
            }
            Tag::Item => {
                self.quote_prefix();
                let depth = self.lists.len().saturating_sub(1);
                self.raw(&"  ".repeat(depth));
                let marker = match self.lists.last_mut() {
                    Some(List { next: Some(n) }) => {
                        let marker = format!("{n}. ");
                        *n += 1;
                        marker
                    }
                    _ => "• ".to_owned(),
                };
                self.raw(&marker);
            }
            Tag::Emphasis => match self.dialect {
                TelegramHtml => self.raw("<i>"),
                SlackMrkdwn => self.raw("_"),
                Plain => {}
            },
            Tag::Strong => match self.dialect {
                TelegramHtml => self.raw("<b>"),
                SlackMrkdwn => self.raw("*"),
                Plain => {}
            },
            Tag::Strikethrough => match self.dialect {
                TelegramHtml => self.raw("<s>"),
                SlackMrkdwn => self.raw("~"),
                Plain => {}
            },
            Tag::Link { dest_url, .. } | Tag::Image { dest_url, .. } => {
                match self.dialect {
                    TelegramHtml => {
                        self.raw("<a href=\"");
                        let mut href = String::new();
                        escape_attribute(&dest_url, &mut href);
                        self.raw(&href);
                        self.raw("\">");
                    }
                    SlackMrkdwn => {}
                    Plain => {}
                }
                let at = self.out.len();
                self.link.push((dest_url.to_string(), at));
            }
            Tag::Table(_) => self.table = Some(Table::default()),
            Tag::TableHead | Tag::TableRow => {
                if let Some(t) = &mut self.table {
                    t.rows.push(Vec::new());
                }
            }
            Tag::TableCell => {
                if let Some(t) = &mut self.table {
                    t.cell.clear();
                }
            }
            Tag::HtmlBlock
            | Tag::FootnoteDefinition(_)
            | Tag::DefinitionList
            | Tag::DefinitionListTitle
            | Tag::DefinitionListDefinition
            | Tag::Superscript
            | Tag::Subscript
            | Tag::MetadataBlock(_) => {}
        }
    }

    fn end(&mut self, tag: TagEnd) {
        use Dialect::{Plain, SlackMrkdwn, TelegramHtml};
        match tag {
            TagEnd::Paragraph => self.end_block(),
            TagEnd::Heading(_) => {
                match self.dialect {
                    TelegramHtml => self.raw("</b>"),
                    SlackMrkdwn => self.raw("*"),
                    Plain => {}
                }
                self.end_block();
            }
            TagEnd::BlockQuote(_) => {
                self.quote_depth = self.quote_depth.saturating_sub(1);
                if self.dialect == TelegramHtml {
                    let trimmed = self.out.trim_end().len();
                    self.out.truncate(trimmed);
                    self.raw("</blockquote>");
                    self.end_block();
                }
            }
            TagEnd::CodeBlock => {
                self.in_code_block = false;
                match self.dialect {
                    TelegramHtml => {
                        if self.out.ends_with('\n') {
                            self.out.pop();
                        }
                        self.raw("</code></pre>");
                    }
                    SlackMrkdwn => {
                        if !self.out.ends_with('\n') {
                            self.raw("\n");
                        }
                        self.quote_prefix();
                        self.raw("```");
                    }
                    Plain => {
                        if self.out.ends_with('\n') {
                            self.out.pop();
                        }
                    }
                }
                self.end_block();
            }
            TagEnd::List(_) => {
                self.lists.pop();
                if self.lists.is_empty() {
                    self.raw("\n");
                }
            }
            TagEnd::Item => {
                if !self.out.ends_with('\n') {
                    self.raw("\n");
                }
            }
            TagEnd::Emphasis => match self.dialect {
                TelegramHtml => self.raw("</i>"),
                SlackMrkdwn => self.raw("_"),
                Plain => {}
            },
            TagEnd::Strong => match self.dialect {
                TelegramHtml => self.raw("</b>"),
                SlackMrkdwn => self.raw("*"),
                Plain => {}
            },
            TagEnd::Strikethrough => match self.dialect {
                TelegramHtml => self.raw("</s>"),
                SlackMrkdwn => self.raw("~"),
                Plain => {}
            },
            TagEnd::Link | TagEnd::Image => {
                let Some((url, at)) = self.link.pop() else {
                    return;
                };
                match self.dialect {
                    TelegramHtml => self.raw("</a>"),
                    SlackMrkdwn => {
                        // <url|label>: the label was written as escaped text; `|` would end
                        // the URL part early, so it is replaced in both.
                        let label = self.out.split_off(at.min(self.out.len()));
                        self.out.push('<');
                        escape_text(&url.replace('|', "%7C"), &mut self.out);
                        if !label.is_empty() && label != url {
                            self.out.push('|');
                            self.out.push_str(&label.replace('|', "¦"));
                        }
                        self.out.push('>');
                    }
                    Plain => {
                        let label_is_url = self.out.get(at..).is_some_and(|l| l == url);
                        if !label_is_url {
                            self.out.push_str(" (");
                            self.out.push_str(&url);
                            self.out.push(')');
                        }
                    }
                }
            }
            TagEnd::TableCell => {
                if let Some(t) = &mut self.table {
                    let cell = std::mem::take(&mut t.cell);
                    if let Some(row) = t.rows.last_mut() {
                        row.push(cell.trim().to_owned());
                    }
                }
            }
            TagEnd::Table => {
                if let Some(table) = self.table.take() {
                    self.table_text(&table);
                }
            }
            TagEnd::TableHead
            | TagEnd::TableRow
            | TagEnd::HtmlBlock
            | TagEnd::FootnoteDefinition
            | TagEnd::DefinitionList
            | TagEnd::DefinitionListTitle
            | TagEnd::DefinitionListDefinition
            | TagEnd::Superscript
            | TagEnd::Subscript
            | TagEnd::MetadataBlock(_) => {}
        }
    }

    /// A table as aligned columns in a preformatted block.
    fn table_text(&mut self, table: &Table) {
        let columns = table.rows.iter().map(Vec::len).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for row in &table.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut text = String::new();
        for row in &table.rows {
            let line: Vec<String> = row
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let pad = widths[i].saturating_sub(cell.chars().count());
                    format!("{cell}{}", " ".repeat(pad))
                })
                .collect();
            text.push_str(line.join(" | ").trim_end());
            text.push('\n');
        }
        let text = text.trim_end();
        match self.dialect {
            Dialect::TelegramHtml => {
                self.out.push_str("<pre>");
                escape_text(text, &mut self.out);
                self.out.push_str("</pre>");
            }
            Dialect::SlackMrkdwn => {
                self.out.push_str("```\n");
                escape_text(text, &mut self.out);
                self.out.push_str("\n```");
            }
            Dialect::Plain => self.out.push_str(text),
        }
        self.end_block();
    }
}
