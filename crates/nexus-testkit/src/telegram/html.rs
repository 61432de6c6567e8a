//! Telegram's `parse_mode: HTML`, parsed the way the Bot API does: the text after entity
//! parsing (tags removed, character references decoded) and its entities with UTF-16 offsets,
//! or the `can't parse entities` reason.
//!
//! Stricter than the real server in one place, on purpose: an unknown named reference such as
//! `&nbsp;` is an error here (Telegram shows it literally), so a renderer that emits one is
//! caught. A bare `&` not starting a reference stays text, as on Telegram.

use serde_json::{Value, json};

/// A text after entity parsing.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Parsed {
    /// The text users see.
    pub(crate) text: String,
    /// `MessageEntity` objects.
    pub(crate) entities: Vec<Value>,
}

/// The length Telegram counts: UTF-16 code units.
pub(crate) fn utf16_len(text: &str) -> usize {
    text.encode_utf16().count()
}

/// Tags the Bot API accepts.
const TAGS: &[&str] = &[
    "b",
    "strong",
    "i",
    "em",
    "u",
    "ins",
    "s",
    "strike",
    "del",
    "span",
    "tg-spoiler",
    "a",
    "code",
    "pre",
    "blockquote",
    "tg-emoji",
];

struct Open {
    name: String,
    attrs: Vec<(String, String)>,
    start: usize,
}

/// Parses `html`; the error is the part after `can't parse entities: `.
pub(crate) fn parse(html: &str) -> Result<Parsed, String> {
    let mut text = String::with_capacity(html.len());
    let mut utf16 = 0usize;
    let mut stack: Vec<Open> = Vec::new();
    let mut entities = Vec::new();
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        let at = html.len() - rest.len();
        match c {
            '&' => {
                let (decoded, used) = reference(rest, at)?;
                utf16 += decoded.len_utf16();
                text.push(decoded);
                rest = &rest[used..];
            }
            '<' => {
                let end = rest
                    .find('>')
                    .ok_or_else(|| format!("Unclosed start tag at byte offset {at}"))?;
                let inner = &rest[1..end];
                rest = &rest[end + 1..];
                if let Some(name) = inner.strip_prefix('/') {
                    let name = name.trim().to_ascii_lowercase();
                    let open = stack
                        .pop()
                        .ok_or_else(|| format!("Unexpected end tag at byte offset {at}"))?;
                    if open.name != name {
                        return Err(format!(
                            "Unmatched end tag at byte offset {at}, expected \"</{}>\", found \"</{name}>\"",
                            open.name
                        ));
                    }
                    if let Some(entity) = entity(&open, utf16, &stack) {
                        entities.push(entity);
                    }
                } else {
                    stack.push(start_tag(inner, at, utf16)?);
                }
            }
            c => {
                utf16 += c.len_utf16();
                text.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    if let Some(open) = stack.pop() {
        return Err(format!(
            "Can't find end tag corresponding to start tag \"{}\"",
            open.name
        ));
    }
    entities.sort_by_key(|e| e["offset"].as_u64());
    Ok(Parsed { text, entities })
}

/// Decodes the reference at the start of `rest` (which starts with `&`): the character and
/// the bytes used. A `&` that starts no reference is itself.
fn reference(rest: &str, at: usize) -> Result<(char, usize), String> {
    let body = &rest[1..];
    let Some(semi) = body.find(';').filter(|&i| i <= 32) else {
        return Ok(('&', 1));
    };
    let name = &body[..semi];
    if !name.starts_with('#') && !name.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Ok(('&', 1));
    }
    let decoded = match name {
        "lt" => Some('<'),
        "gt" => Some('>'),
        "amp" => Some('&'),
        "quot" => Some('"'),
        _ => match name.strip_prefix('#') {
            Some(num) => {
                let code = match num.strip_prefix(['x', 'X']) {
                    Some(hex) => u32::from_str_radix(hex, 16).ok(),
                    None => num.parse::<u32>().ok(),
                };
                code.and_then(char::from_u32).filter(|c| *c != '\0')
            }
            None => None,
        },
    };
    match decoded {
        Some(c) => Ok((c, semi + 2)),
        None => Err(format!(
            "Unsupported HTML entity \"&{name};\" at byte offset {at}"
        )),
    }
}

fn start_tag(inner: &str, at: usize, start: usize) -> Result<Open, String> {
    let inner = inner.trim_end_matches('/').trim();
    let name_len = inner
        .find(|c: char| c.is_whitespace())
        .unwrap_or(inner.len());
    let name = inner[..name_len].to_ascii_lowercase();
    if !TAGS.contains(&name.as_str()) {
        return Err(format!(
            "Unsupported start tag \"{name}\" at byte offset {at}"
        ));
    }
    let attrs = attributes(&inner[name_len..], at)?;
    let attr = |key: &str| {
        attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if name == "span" && attr("class") != Some("tg-spoiler") {
        return Err(format!(
            "Tag \"span\" must have class \"tg-spoiler\" at byte offset {at}"
        ));
    }
    if name == "tg-emoji" && attr("emoji-id").is_none() {
        return Err(format!(
            "Custom emoji entity must contain a valid custom emoji identifier at byte offset {at}"
        ));
    }
    Ok(Open { name, attrs, start })
}

fn attributes(mut s: &str, at: usize) -> Result<Vec<(String, String)>, String> {
    let mut attrs = Vec::new();
    loop {
        s = s.trim_start();
        if s.is_empty() {
            return Ok(attrs);
        }
        let key_len = s
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(s.len());
        let key = s[..key_len].to_ascii_lowercase();
        s = s[key_len..].trim_start();
        let Some(after_eq) = s.strip_prefix('=') else {
            attrs.push((key, String::new()));
            continue;
        };
        let after_eq = after_eq.trim_start();
        let (raw, used) = match after_eq.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let close = after_eq[1..].find(q).ok_or_else(|| {
                    format!("Unclosed end of attribute value at byte offset {at}")
                })?;
                (&after_eq[1..=close], close + 2)
            }
            _ => {
                let len = after_eq.find(char::is_whitespace).unwrap_or(after_eq.len());
                (&after_eq[..len], len)
            }
        };
        let mut value = String::new();
        let mut r = raw;
        while let Some(c) = r.chars().next() {
            if c == '&' {
                let (d, used) = reference(r, at)?;
                value.push(d);
                r = &r[used..];
            } else {
                value.push(c);
                r = &r[c.len_utf8()..];
            }
        }
        attrs.push((key, value));
        s = &after_eq[used..];
    }
}

/// The entity a closed tag makes (none for an empty range or an `<a>` without `href`).
fn entity(open: &Open, end: usize, outer: &[Open]) -> Option<Value> {
    let length = end - open.start;
    if length == 0 {
        return None;
    }
    let attr = |key: &str| {
        open.attrs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    };
    let mut e = json!({"offset": open.start, "length": length});
    let kind = match open.name.as_str() {
        "b" | "strong" => "bold",
        "i" | "em" => "italic",
        "u" | "ins" => "underline",
        "s" | "strike" | "del" => "strikethrough",
        "span" | "tg-spoiler" => "spoiler",
        "a" => {
            e["url"] = Value::String(attr("href")?);
            "text_link"
        }
        "code" => {
            if outer.last().is_some_and(|o| o.name == "pre") {
                // `<pre><code class="language-x">`: the language goes to the `pre` entity,
                // which Telegram reports alone.
                return None;
            }
            "code"
        }
        "pre" => "pre",
        "blockquote" => {
            if attr("expandable").is_some() {
                "expandable_blockquote"
            } else {
                "blockquote"
            }
        }
        "tg-emoji" => {
            e["custom_emoji_id"] = Value::String(attr("emoji-id")?);
            "custom_emoji"
        }
        _ => return None,
    };
    e["type"] = Value::String(kind.to_owned());
    Some(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_become_entities_with_utf16_offsets() {
        let p =
            parse("😀 <b>bold</b> &amp; <a href=\"https://x.y/?a=1&amp;b=2\">link</a>").unwrap();
        assert_eq!(p.text, "😀 bold & link");
        assert_eq!(p.entities[0]["type"], "bold");
        assert_eq!(
            p.entities[0]["offset"], 3,
            "the emoji counts two UTF-16 units"
        );
        assert_eq!(p.entities[1]["url"], "https://x.y/?a=1&b=2");
    }

    #[test]
    fn unknown_and_unbalanced_tags_and_bad_references_are_refused() {
        assert!(
            parse("<p>x</p>")
                .unwrap_err()
                .contains("Unsupported start tag \"p\"")
        );
        assert!(parse("<b>x").unwrap_err().contains("Can't find end tag"));
        assert!(parse("<b>x</i>").unwrap_err().contains("Unmatched end tag"));
        assert!(
            parse("a&nbsp;b")
                .unwrap_err()
                .contains("Unsupported HTML entity")
        );
        assert!(parse("<span>x</span>").is_err());
        assert_eq!(parse("a & b &#33; &#x21;").unwrap().text, "a & b ! !");
    }
}
