//! What each HTML element means to the conversion: dropped with its content, raw text for the
//! tokenizer, or a line or paragraph break.

use html5ever::tokenizer::states::RawKind;
use html5ever::tokenizer::{Tag, TokenSinkResult};

/// Elements whose content is not text for a reader: code, styling, navigation, page chrome,
/// embedded media and form controls.
const DROPPED: &[&str] = &[
    "script", "style", "noscript", "template", "nav", "footer", "svg", "math", "iframe", "object",
    "canvas", "audio", "video", "select", "button", "textarea", "noembed", "noframes",
];

/// Whether the element is dropped with its content: by name, or hidden (`hidden`,
/// `aria-hidden="true"`, `role="navigation"`).
pub(super) fn is_dropped(name: &str, tag: &Tag) -> bool {
    DROPPED.contains(&name)
        || tag.attrs.iter().any(|a| match &*a.name.local {
            "hidden" => true,
            "aria-hidden" => a.value.trim().eq_ignore_ascii_case("true"),
            "role" => a.value.trim().eq_ignore_ascii_case("navigation"),
            _ => false,
        })
}

/// Elements that never have content (no end tag).
pub(super) fn is_void(name: &str) -> bool {
    matches!(
        name,
        "area"
            | "base"
            | "br"
            | "col"
            | "embed"
            | "hr"
            | "img"
            | "input"
            | "link"
            | "meta"
            | "source"
            | "track"
            | "wbr"
    )
}

/// The tokenizer state after a start tag, as the HTML tree builder would set it: `<script>`
/// content is script data, `<style>` raw text, `<title>` escapable raw text…
pub(super) fn raw_mode(name: &str) -> TokenSinkResult<()> {
    match name {
        "script" => TokenSinkResult::RawData(RawKind::ScriptData),
        "style" | "xmp" | "iframe" | "noembed" | "noframes" | "noscript" => {
            TokenSinkResult::RawData(RawKind::Rawtext)
        }
        "title" | "textarea" => TokenSinkResult::RawData(RawKind::Rcdata),
        "plaintext" => TokenSinkResult::Plaintext,
        _ => TokenSinkResult::Continue,
    }
}

/// Breaks around an element: 2 for blocks that are paragraphs, 1 for blocks that are lines,
/// 0 for inline elements.
pub(super) fn breaks(name: &str) -> usize {
    match name {
        "p" | "section" | "article" | "main" | "header" | "aside" | "figure" | "dl" | "details"
        | "address" | "fieldset" | "body" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" => 2,
        "div" | "dt" | "dd" | "caption" | "figcaption" | "summary" | "form" | "center"
        | "legend" | "li" | "option" | "tbody" | "thead" | "tfoot" => 1,
        _ => 0,
    }
}
