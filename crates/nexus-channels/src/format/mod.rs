//! A model's Markdown answer made ready for a platform: converted to its markup and split into
//! messages within its length limit.
//!
//! Splitting happens on the Markdown, between top-level blocks (paragraphs, lists, code
//! blocks, tables) when it can, so each piece renders on its own; a block longer than the limit
//! is cut between lines, then words, and a code block cut that way is closed and reopened with
//! its language in every piece. Each platform measures what its limit counts: Telegram the
//! UTF-16 length of the text after entity parsing, Discord the characters of the content,
//! Slack the characters of the mrkdwn text.

mod render;

use std::ops::Range;

use pulldown_cmark::{Event, Options, Parser, Tag};

use render::{Dialect, render};

/// A messaging platform's markup and limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Telegram Bot API, `parse_mode: HTML`.
    Telegram,
    /// Discord (its own Markdown).
    Discord,
    /// Slack (mrkdwn).
    Slack,
}

impl Platform {
    /// The longest message, in the unit the platform counts: Telegram 4096 (UTF-16 units of
    /// the text after entity parsing), Discord 2000 characters, Slack 4000 characters (Slack
    /// truncates only past 40,000 but asks for messages under 4,000).
    pub fn limit(self) -> usize {
        match self {
            Platform::Telegram => 4096,
            Platform::Discord => 2000,
            Platform::Slack => 4000,
        }
    }

    /// `markdown` in the platform's markup.
    pub fn render(self, markdown: &str) -> String {
        match self {
            Platform::Telegram => render(markdown, Dialect::TelegramHtml),
            Platform::Slack => render(markdown, Dialect::SlackMrkdwn),
            Platform::Discord => discord(markdown),
        }
    }

    /// How long the platform counts a piece of Markdown once rendered.
    fn measure(self, markdown: &str) -> usize {
        match self {
            Platform::Telegram => render(markdown, Dialect::Plain).encode_utf16().count(),
            Platform::Discord => discord(markdown).chars().count(),
            Platform::Slack => render(markdown, Dialect::SlackMrkdwn).chars().count(),
        }
    }

    /// `markdown` as messages for the platform: rendered, each within [`Platform::limit`].
    pub fn messages(self, markdown: &str) -> Vec<String> {
        split(markdown, self.limit(), |piece| self.measure(piece))
            .iter()
            .map(|piece| self.render(piece))
            .filter(|m| !m.trim().is_empty())
            .collect()
    }

    /// The same messages as plain text (Telegram's fallback when it refuses the entities).
    pub fn plain_messages(self, markdown: &str) -> Vec<String> {
        split(markdown, self.limit(), |piece| self.measure(piece))
            .iter()
            .map(|piece| render(piece, Dialect::Plain))
            .filter(|m| !m.trim().is_empty())
            .collect()
    }
}

/// Markdown as plain text (no markup).
pub fn plain_text(markdown: &str) -> String {
    render(markdown, Dialect::Plain)
}

/// Discord renders Markdown itself; only tables, which it lacks, become code blocks.
fn discord(markdown: &str) -> String {
    let tables = top_level_blocks(markdown)
        .into_iter()
        .filter(|b| b.table)
        .map(|b| b.range)
        .collect::<Vec<_>>();
    if tables.is_empty() {
        return markdown.trim_end().to_owned();
    }
    let mut out = String::with_capacity(markdown.len() + 16);
    let mut at = 0;
    for range in tables {
        out.push_str(&markdown[at..range.start]);
        out.push_str("```\n");
        out.push_str(&render(&markdown[range.clone()], Dialect::Plain));
        out.push_str("\n```");
        at = range.end;
    }
    out.push_str(&markdown[at..]);
    out.trim_end().to_owned()
}

/// A top-level block of a Markdown text.
struct Block {
    range: Range<usize>,
    /// A fenced or indented code block: `(opening fence line, body range)`.
    code: Option<(String, Range<usize>)>,
    table: bool,
}

fn top_level_blocks(markdown: &str) -> Vec<Block> {
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let mut blocks = Vec::new();
    let mut depth = 0usize;
    for (event, range) in Parser::new_ext(markdown, options).into_offset_iter() {
        match event {
            Event::Start(tag) => {
                if depth == 0 {
                    let code = match &tag {
                        Tag::CodeBlock(_) => {
                            let text = &markdown[range.clone()];
                            let fence = text.lines().next().unwrap_or_default();
                            let fenced = fence.trim_start().starts_with("```")
                                || fence.trim_start().starts_with("~~~");
                            fenced.then(|| (fence.trim().to_owned(), range.clone()))
                        }
                        _ => None,
                    };
                    blocks.push(Block {
                        range: range.clone(),
                        code,
                        table: matches!(tag, Tag::Table(_)),
                    });
                }
                depth += 1;
            }
            Event::End(_) => depth = depth.saturating_sub(1),
            _ if depth == 0 => blocks.push(Block {
                range,
                code: None,
                table: false,
            }),
            _ => {}
        }
    }
    blocks
}

/// Splits `markdown` into pieces each measuring at most `limit` by `measure`.
fn split(markdown: &str, limit: usize, measure: impl Fn(&str) -> usize) -> Vec<String> {
    let limit = limit.max(16);
    if measure(markdown) <= limit {
        return vec![markdown.trim_end().to_owned()];
    }
    let mut pieces: Vec<String> = Vec::new();
    let mut current: Option<Range<usize>> = None;
    for block in top_level_blocks(markdown) {
        let joined = current
            .as_ref()
            .map_or(block.range.clone(), |c| c.start..block.range.end);
        if measure(&markdown[joined.clone()]) <= limit {
            current = Some(joined);
            continue;
        }
        if let Some(c) = current.take() {
            pieces.push(markdown[c].trim_end().to_owned());
        }
        if measure(&markdown[block.range.clone()]) <= limit {
            current = Some(block.range);
        } else {
            pieces.extend(split_block(markdown, &block, limit, &measure));
        }
    }
    if let Some(c) = current {
        pieces.push(markdown[c].trim_end().to_owned());
    }
    pieces.retain(|p| !p.trim().is_empty());
    pieces
}

/// Splits one block longer than `limit`: between lines, then words, then characters; a fenced
/// code block keeps its fence in every piece.
fn split_block(
    markdown: &str,
    block: &Block,
    limit: usize,
    measure: &impl Fn(&str) -> usize,
) -> Vec<String> {
    let text = &markdown[block.range.clone()];
    let (open, close, body) = match &block.code {
        Some((fence, _)) => {
            let marker: String = fence
                .chars()
                .take_while(|c| *c == '`' || *c == '~')
                .collect();
            let after_fence = text
                .split_once('\n')
                .map_or("", |(_, rest)| rest)
                .trim_end();
            // An unterminated block (the model stopped mid-way) has no closing fence.
            let body = after_fence
                .strip_suffix(marker.as_str())
                .unwrap_or(after_fence)
                .trim_end_matches('\n');
            (format!("{fence}\n"), format!("\n{marker}"), body)
        }
        None => (String::new(), String::new(), text),
    };
    let wrap = |inner: &str| format!("{open}{inner}{close}");
    let fits = |inner: &str| measure(&wrap(inner)) <= limit;
    let mut pieces = Vec::new();
    let mut current = String::new();
    for unit in units(body, &fits) {
        let candidate = if current.is_empty() {
            unit.clone()
        } else {
            format!("{current}{unit}")
        };
        if fits(&candidate) {
            current = candidate;
        } else {
            if !current.trim().is_empty() {
                pieces.push(wrap(current.trim_end()));
            }
            current = unit;
        }
    }
    if !current.trim().is_empty() {
        pieces.push(wrap(current.trim_end()));
    }
    pieces
}

/// `body` cut into lines (keeping their newline); a line that does not fit alone is cut into
/// words, and a word that does not fit into characters.
fn units(body: &str, fits: &impl Fn(&str) -> bool) -> Vec<String> {
    let mut out = Vec::new();
    for line in body.split_inclusive('\n') {
        if fits(line) {
            out.push(line.to_owned());
            continue;
        }
        for word in line.split_inclusive(' ') {
            if fits(word) {
                out.push(word.to_owned());
                continue;
            }
            // The longest prefix that fits, found by halving (a render per probe).
            let chars: Vec<char> = word.chars().collect();
            let mut start = 0;
            while start < chars.len() {
                let (mut lo, mut hi) = (1, chars.len() - start);
                while lo < hi {
                    let mid = (lo + hi).div_ceil(2);
                    let probe: String = chars[start..start + mid].iter().collect();
                    if fits(&probe) {
                        lo = mid;
                    } else {
                        hi = mid - 1;
                    }
                }
                out.push(chars[start..start + lo].iter().collect());
                start += lo;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
