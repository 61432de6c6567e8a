//! HTML (and XML) to markdown-like text for the model.
//!
//! Parsing is html5ever's tokenizer (the browser-grade HTML tokenizer: entities, raw text in
//! `<script>`/`<style>`, broken markup handled as browsers do) without its tree builder: the
//! conversion streams over start tags, end tags and text, which is all it needs and keeps
//! memory to the output. html5ever was chosen over `tl` (not spec-compliant, no entity
//! decoding) and `scraper` (the same parser plus a DOM and CSS selectors, unused here); it
//! builds quickly and sits behind the `web` feature.
//!
//! Output: the `<title>` apart; headings as `#`, paragraphs separated by a blank line, lists as
//! `-` / `1.`, links as `[text](url)` resolved against the page's URL (or its `<base>`),
//! `<pre>` as fenced code blocks, inline `<code>` in backticks, quotes with `> `, table rows as
//! `| a | b |`; scripts, styles, navigation, footers, `noscript`, forms' buttons and hidden
//! elements dropped; whitespace collapsed.

mod tags;
mod writer;

#[cfg(test)]
mod tests;

use std::cell::RefCell;

use html5ever::TokenizerResult;
use html5ever::tokenizer::{
    BufferQueue, Tag, TagKind, Token, TokenSink, TokenSinkResult, Tokenizer, TokenizerOpts,
};
use url::Url;

use writer::Writer;

/// A page as text.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PageText {
    /// The document's `<title>`, whitespace collapsed.
    pub title: Option<String>,
    /// The readable text.
    pub text: String,
}

/// Converts an HTML document to text; links are resolved against `base` (the page's URL).
pub fn html_to_text(html: &str, base: Option<&Url>) -> PageText {
    run(html, Converter::new(base.cloned(), false))
}

/// Converts an XML document (RSS, Atom, …) to its text, one element per line.
pub(crate) fn xml_to_text(xml: &str) -> String {
    run(xml, Converter::new(None, true)).text
}

fn run(input: &str, converter: Converter) -> PageText {
    let xml = converter.xml;
    let tokenizer = Tokenizer::new(
        Sink {
            converter: RefCell::new(converter),
            xml,
        },
        TokenizerOpts::default(),
    );
    let queue = BufferQueue::default();
    queue.push_back(input.into());
    // The sink never asks to pause for a script, so one feed consumes everything.
    while let TokenizerResult::Script(()) = tokenizer.feed(&queue) {}
    tokenizer.end();
    tokenizer.sink.converter.into_inner().finish()
}

struct Sink {
    converter: RefCell<Converter>,
    xml: bool,
}

impl TokenSink for Sink {
    type Handle = ();

    fn process_token(&self, token: Token, _line: u64) -> TokenSinkResult<()> {
        let mut converter = self.converter.borrow_mut();
        match token {
            Token::TagToken(tag) => return converter.tag(&tag),
            Token::CharacterTokens(text) => converter.text(&text),
            Token::DoctypeToken(_)
            | Token::CommentToken(_)
            | Token::NullCharacterToken
            | Token::EOFToken
            | Token::ParseError(_) => {}
        }
        TokenSinkResult::Continue
    }

    /// In XML, `<![CDATA[…]]>` is text (in HTML it is a bogus comment).
    fn adjusted_current_node_present_but_not_in_html_namespace(&self) -> bool {
        self.xml
    }
}

/// An open list.
#[derive(Debug)]
struct List {
    ordered: bool,
    next: u64,
}

/// An open link: where its text starts and where it points.
#[derive(Debug)]
struct Link {
    start: usize,
    href: Option<String>,
}

/// An open table row.
#[derive(Debug, Default)]
struct Row {
    cells: usize,
    header: bool,
}

/// The conversion state.
#[derive(Debug)]
struct Converter {
    w: Writer,
    xml: bool,
    base: Option<Url>,
    base_set: bool,
    title: Option<String>,
    in_title: bool,
    /// Open elements whose content is dropped, innermost last.
    dropped: Vec<String>,
    pre: usize,
    /// Right after `<pre>`: its first newline is not content.
    pre_start: bool,
    lists: Vec<List>,
    link: Option<Link>,
    row: Option<Row>,
    header_rule_done: bool,
}

impl Converter {
    fn new(base: Option<Url>, xml: bool) -> Self {
        Converter {
            w: Writer::default(),
            xml,
            base,
            base_set: false,
            title: None,
            in_title: false,
            dropped: Vec::new(),
            pre: 0,
            pre_start: false,
            lists: Vec::new(),
            link: None,
            row: None,
            header_rule_done: false,
        }
    }

    fn finish(self) -> PageText {
        PageText {
            title: self
                .title
                .map(|t| t.split_whitespace().collect::<Vec<_>>().join(" "))
                .filter(|t| !t.is_empty()),
            text: self.w.finish(),
        }
    }

    fn text(&mut self, text: &str) {
        if !self.dropped.is_empty() {
            return;
        }
        if self.in_title {
            self.title.get_or_insert_with(String::new).push_str(text);
            return;
        }
        if self.pre > 0 {
            let text = if std::mem::take(&mut self.pre_start) {
                text.strip_prefix('\n').unwrap_or(text)
            } else {
                text
            };
            self.w.verbatim(text);
        } else {
            self.w.text(text);
        }
    }

    fn tag(&mut self, tag: &Tag) -> TokenSinkResult<()> {
        let name: &str = &tag.name;
        if self.xml {
            let lines = if matches!(name, "item" | "entry") {
                2
            } else {
                1
            };
            self.w.breaks(lines);
            return TokenSinkResult::Continue;
        }
        match tag.kind {
            TagKind::StartTag => {
                let mode = tags::raw_mode(name);
                if tags::is_dropped(name, tag) && !tags::is_void(name) && !tag.self_closing {
                    self.dropped.push(name.to_owned());
                } else if self.dropped.is_empty() {
                    self.start(name, tag);
                }
                mode
            }
            TagKind::EndTag => {
                if let Some(at) = self.dropped.iter().rposition(|d| d == name) {
                    self.dropped.truncate(at);
                } else if matches!(name, "body" | "html") {
                    self.dropped.clear();
                } else if self.dropped.is_empty() {
                    self.end(name);
                }
                TokenSinkResult::Continue
            }
        }
    }

    fn attr<'t>(tag: &'t Tag, name: &str) -> Option<&'t str> {
        tag.attrs
            .iter()
            .find(|a| &*a.name.local == name)
            .map(|a| &*a.value)
    }

    fn start(&mut self, name: &str, tag: &Tag) {
        match name {
            "title" if self.title.is_none() => self.in_title = true,
            "base" if !self.base_set => {
                if let Some(href) = Self::attr(tag, "href") {
                    self.base = self.resolve(href).or(self.base.take());
                    self.base_set = true;
                }
            }
            "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => {
                self.w.breaks(2);
                let level = name[1..].parse::<usize>().unwrap_or(1);
                self.w.open(&format!("{} ", "#".repeat(level)));
            }
            "ul" | "ol" => {
                self.w.breaks(if self.lists.is_empty() { 2 } else { 1 });
                let next = Self::attr(tag, "start")
                    .and_then(|s| s.trim().parse().ok())
                    .unwrap_or(1);
                self.lists.push(List {
                    ordered: name == "ol",
                    next,
                });
            }
            "li" => self.list_item(),
            "pre" => {
                self.w.breaks(2);
                self.w.open("```");
                self.w.breaks(1);
                self.pre += 1;
                self.pre_start = true;
            }
            "code" | "kbd" | "samp" if self.pre == 0 => self.w.open("`"),
            "a" if self.pre == 0 => {
                self.close_link();
                let href = Self::attr(tag, "href").and_then(|h| self.resolve(h));
                self.w.open("[");
                self.link = Some(Link {
                    start: self.w.len(),
                    href: href.map(String::from),
                });
            }
            "img" => {
                if let Some(alt) = Self::attr(tag, "alt").filter(|a| !a.trim().is_empty()) {
                    self.w.text(alt);
                }
            }
            "br" => self.w.line_break(),
            "hr" => {
                self.w.breaks(2);
                self.w.open("---");
                self.w.breaks(2);
            }
            "blockquote" => {
                self.w.breaks(2);
                self.w.quote += 1;
            }
            "tr" => {
                self.end_row();
                self.w.breaks(1);
                self.row = Some(Row::default());
            }
            "td" | "th" => self.cell(name == "th"),
            "table" => {
                self.w.breaks(2);
                self.header_rule_done = false;
            }
            _ => self.w.breaks(tags::breaks(name)),
        }
    }

    fn end(&mut self, name: &str) {
        match name {
            "title" => self.in_title = false,
            "ul" | "ol" => {
                self.lists.pop();
                self.w.breaks(if self.lists.is_empty() { 2 } else { 1 });
            }
            "pre" if self.pre > 0 => {
                self.pre -= 1;
                self.w.breaks(1);
                self.w.open("```");
                self.w.breaks(2);
            }
            "code" | "kbd" | "samp" if self.pre == 0 => self.w.close("`"),
            "a" => self.close_link(),
            "blockquote" => {
                self.w.breaks(2);
                self.w.quote = self.w.quote.saturating_sub(1);
            }
            "td" | "th" => self.w.in_cell = false,
            "tr" => self.end_row(),
            "table" => {
                self.end_row();
                self.w.breaks(2);
            }
            _ => self.w.breaks(tags::breaks(name)),
        }
    }

    fn list_item(&mut self) {
        self.w.breaks(1);
        let depth = self.lists.len().saturating_sub(1);
        let marker = match self.lists.last_mut() {
            Some(list) if list.ordered => {
                let n = list.next;
                list.next += 1;
                format!("{n}. ")
            }
            _ => "- ".to_owned(),
        };
        self.w.open(&format!("{}{marker}", "  ".repeat(depth)));
    }

    fn close_link(&mut self) {
        let Some(link) = self.link.take() else {
            return;
        };
        let text_empty = self.w.since(link.start).trim().is_empty();
        match link.href {
            Some(href) if !text_empty => self.w.close(&format!("]({href})")),
            // No text, or nowhere to go: keep the text without the bracket.
            _ => self.w.remove(link.start - 1),
        }
    }

    fn cell(&mut self, header: bool) {
        let row = self.row.get_or_insert_with(Row::default);
        let first = row.cells == 0;
        row.cells += 1;
        row.header |= header;
        self.w.in_cell = false;
        if first {
            self.w.breaks(1);
            self.w.open("| ");
        } else {
            self.w.close(" | ");
        }
        self.w.in_cell = true;
    }

    fn end_row(&mut self) {
        self.w.in_cell = false;
        let Some(row) = self.row.take() else {
            return;
        };
        if row.cells == 0 {
            return;
        }
        self.w.close(" |");
        if row.header && !self.header_rule_done {
            self.header_rule_done = true;
            self.w.breaks(1);
            self.w.open(&format!("|{}", " --- |".repeat(row.cells)));
        }
        self.w.breaks(1);
    }

    /// A link target as an absolute URL, or `None` for script, data and in-page links.
    fn resolve(&self, href: &str) -> Option<Url> {
        let href = href.trim();
        if href.is_empty() || href.starts_with('#') {
            return None;
        }
        let url = match &self.base {
            Some(base) => base.join(href).ok()?,
            None => Url::parse(href).ok()?,
        };
        matches!(url.scheme(), "http" | "https" | "mailto" | "ftp").then_some(url)
    }
}
