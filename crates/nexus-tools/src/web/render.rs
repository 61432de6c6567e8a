//! A response body as text for the model, by content type: HTML and XHTML through the HTML
//! converter, JSON pretty-printed, XML (RSS, Atom…) as its text, plain text, Markdown, CSV and
//! other text as is; images, PDFs, archives and other binary content refused by name. A
//! missing or generic (`application/octet-stream`) type is sniffed from the bytes.

use url::Url;

use super::body::{ContentType, decode};
use super::html::{html_to_text, xml_to_text};

/// What a body is, for rendering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Html,
    Json,
    Xml,
    Text,
    Binary,
}

/// A body rendered as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rendered {
    pub(crate) title: Option<String>,
    pub(crate) text: String,
    /// Something the model should know about the rendering (JSON that did not parse…).
    pub(crate) note: Option<String>,
}

/// Renders `bytes` served as `content_type` from `url`, or says why it is not text.
pub(crate) fn render(
    content_type: &ContentType,
    bytes: &[u8],
    url: &Url,
) -> Result<Rendered, String> {
    let kind = kind(&content_type.essence, bytes);
    let charset = content_type.charset.as_deref();
    let plain = |text: String| Rendered {
        title: None,
        text,
        note: None,
    };
    match kind {
        Kind::Binary => Err(binary_refusal(&content_type.essence)),
        Kind::Html => {
            let page = html_to_text(&decode(bytes, charset, true), Some(url));
            Ok(Rendered {
                title: page.title,
                text: page.text,
                note: None,
            })
        }
        Kind::Xml => Ok(plain(xml_to_text(&decode(bytes, charset, true)))),
        Kind::Text => Ok(plain(decode(bytes, charset, false))),
        Kind::Json => {
            let text = decode(bytes, charset, false);
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(value) => Ok(plain(serde_json::to_string_pretty(&value).unwrap_or(text))),
                Err(err) => Ok(Rendered {
                    title: None,
                    text,
                    note: Some(format!("not valid JSON ({err}); shown as sent")),
                }),
            }
        }
    }
}

fn kind(essence: &str, bytes: &[u8]) -> Kind {
    match essence {
        "text/html" | "application/xhtml+xml" => Kind::Html,
        "application/json" | "text/json" => Kind::Json,
        "application/xml" | "text/xml" => Kind::Xml,
        "application/javascript"
        | "application/ecmascript"
        | "application/x-javascript"
        | "application/yaml"
        | "application/x-yaml"
        | "application/toml"
        | "application/sql"
        | "application/x-sh"
        | "application/x-ndjson"
        | "application/csv" => Kind::Text,
        "" | "application/octet-stream" | "binary/octet-stream" | "unknown/unknown" => sniff(bytes),
        e if binary_type(e) => Kind::Binary,
        e if e.ends_with("+json") => Kind::Json,
        e if e.ends_with("+xml") => Kind::Xml,
        e if e.starts_with("text/") => Kind::Text,
        _ => {
            if looks_binary(bytes) {
                Kind::Binary
            } else {
                Kind::Text
            }
        }
    }
}

/// Whether a content type is binary by its name alone (the body need not be read).
pub(crate) fn binary_type(essence: &str) -> bool {
    if essence.ends_with("+json") || essence.ends_with("+xml") {
        return false;
    }
    ["image/", "audio/", "video/", "font/", "model/"]
        .iter()
        .any(|p| essence.starts_with(p))
        || essence.starts_with("application/vnd.ms-")
        || essence.starts_with("application/vnd.openxmlformats")
        || matches!(
            essence,
            "application/pdf"
                | "application/zip"
                | "application/gzip"
                | "application/x-gzip"
                | "application/x-tar"
                | "application/x-bzip2"
                | "application/x-xz"
                | "application/x-7z-compressed"
                | "application/vnd.rar"
                | "application/x-rar-compressed"
                | "application/wasm"
                | "application/java-archive"
                | "application/x-msdownload"
                | "application/msword"
                | "application/x-executable"
        )
}

/// Why binary content is not returned.
pub(crate) fn binary_refusal(essence: &str) -> String {
    let what = if essence.is_empty() {
        "binary content without a content type".to_owned()
    } else {
        format!("{essence} (binary content)")
    };
    format!(
        "not fetched as text: the URL serves {what}; web_fetch returns HTML, plain text, JSON \
         and XML only"
    )
}

/// The kind of an unlabelled body.
fn sniff(bytes: &[u8]) -> Kind {
    if looks_binary(bytes) {
        return Kind::Binary;
    }
    let head: Vec<u8> = bytes
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take(64)
        .map(u8::to_ascii_lowercase)
        .collect();
    if head.starts_with(b"<!doctype html") || head.starts_with(b"<html") {
        Kind::Html
    } else if head.starts_with(b"<?xml") {
        Kind::Xml
    } else if head.starts_with(b"{") || head.starts_with(b"[") {
        Kind::Json
    } else {
        Kind::Text
    }
}

/// Binary: known signatures (PDF, images, archives), a NUL byte, or many control characters in
/// the first KiB.
fn looks_binary(bytes: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        b"%PDF-",
        b"\x89PNG",
        b"GIF8",
        b"\xff\xd8\xff",
        b"PK\x03\x04",
        b"\x1f\x8b",
        b"RIFF",
    ];
    if MAGIC.iter().any(|m| bytes.starts_with(m)) {
        return true;
    }
    let head = &bytes[..bytes.len().min(1024)];
    let control = head
        .iter()
        .filter(|&&b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r' | 0x0c | 0x1b))
        .count();
    head.contains(&0) || control * 10 > head.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url() -> Url {
        Url::parse("https://example.com/").unwrap()
    }

    fn ct(s: &str) -> ContentType {
        ContentType::parse(s)
    }

    #[test]
    fn json_is_pretty_printed_and_broken_json_shown_with_a_note() {
        let out = render(&ct("application/json"), br#"{"a":[1,2]}"#, &url()).unwrap();
        assert_eq!(out.text, "{\n  \"a\": [\n    1,\n    2\n  ]\n}");
        let out = render(&ct("application/problem+json"), br#"{"a":"#, &url()).unwrap();
        assert!(out.note.unwrap().contains("not valid JSON"));
        assert_eq!(out.text, r#"{"a":"#);
    }

    #[test]
    fn binary_types_are_refused_by_name() {
        for (t, bytes) in [
            ("image/png", &b"\x89PNG\r\n"[..]),
            ("application/pdf", b"%PDF-1.7"),
            ("application/zip", b"PK\x03\x04"),
            ("", b"%PDF-1.4"),
            ("application/octet-stream", b"\x00\x01\x02"),
        ] {
            let err = render(&ct(t), bytes, &url()).unwrap_err();
            assert!(err.contains("binary"), "{t}: {err}");
            if !t.is_empty() {
                assert!(err.contains(t), "{err}");
            }
        }
    }

    #[test]
    fn text_types_are_kept_and_unlabelled_bodies_sniffed() {
        let csv = render(&ct("text/csv"), b"a,b\n1,2\n", &url()).unwrap();
        assert_eq!(csv.text, "a,b\n1,2\n");
        let md = render(&ct("text/markdown; charset=utf-8"), b"# Hi", &url()).unwrap();
        assert_eq!(md.text, "# Hi");
        let html = render(&ct(""), b"<!DOCTYPE html><title>T</title><p>x", &url()).unwrap();
        assert_eq!(
            (html.title.as_deref(), html.text.as_str()),
            (Some("T"), "x")
        );
        let rss = render(
            &ct("application/rss+xml"),
            b"<rss><title>t</title></rss>",
            &url(),
        );
        assert_eq!(rss.unwrap().text, "t");
    }
}
