//! A response body read up to a byte limit, and its text in the right charset: from the
//! `Content-Type` header, else a byte-order mark, else an HTML `<meta>` or XML declaration in
//! the first KiB, else UTF-8 (invalid bytes replaced).

use encoding_rs::{Encoding, UTF_8};

/// A body, possibly cut.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Body {
    pub(crate) bytes: Vec<u8>,
    /// The server had more than the limit (the rest was not read).
    pub(crate) truncated: bool,
}

/// Reads at most `max` bytes of `response`'s body, chunk by chunk (nothing past the limit is
/// buffered).
pub(crate) async fn read_capped(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Body, reqwest::Error> {
    let hint = response
        .content_length()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let mut bytes = Vec::with_capacity(hint.min(max).min(256 * 1024));
    while let Some(chunk) = response.chunk().await? {
        let room = max - bytes.len();
        if chunk.len() > room {
            bytes.extend_from_slice(&chunk[..room]);
            return Ok(Body {
                bytes,
                truncated: true,
            });
        }
        bytes.extend_from_slice(&chunk);
        if bytes.len() == max {
            // Exactly full: more is coming only if the body is longer.
            let more = response.chunk().await?.is_some_and(|c| !c.is_empty());
            return Ok(Body {
                bytes,
                truncated: more,
            });
        }
    }
    Ok(Body {
        bytes,
        truncated: false,
    })
}

/// A `Content-Type` split into its lowercase essence (`text/html`) and charset label.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct ContentType {
    pub(crate) essence: String,
    pub(crate) charset: Option<String>,
}

impl ContentType {
    pub(crate) fn parse(header: &str) -> Self {
        let mut parts = header.split(';');
        let essence = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        let charset = parts.find_map(|p| {
            let (name, value) = p.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("charset")
                .then(|| value.trim().trim_matches(['"', '\'']).to_owned())
        });
        ContentType { essence, charset }
    }
}

/// Decodes `bytes`: the header's charset, else a BOM, else a charset declared in the document
/// (`<meta charset>`, `<meta http-equiv … charset=…>`, `<?xml … encoding=…?>`), else UTF-8.
pub(crate) fn decode(bytes: &[u8], header_charset: Option<&str>, sniff_document: bool) -> String {
    let encoding = header_charset
        .and_then(|l| Encoding::for_label(l.as_bytes()))
        .or_else(|| Encoding::for_bom(bytes).map(|(e, _)| e))
        .or_else(|| {
            sniff_document
                .then(|| declared_charset(bytes))
                .flatten()
                .and_then(|l| Encoding::for_label(l.as_bytes()))
        })
        .unwrap_or(UTF_8);
    // A document cannot declare UTF-16 in ASCII; such a declaration means UTF-8 (HTML spec).
    let encoding = if encoding == encoding_rs::UTF_16LE || encoding == encoding_rs::UTF_16BE {
        Encoding::for_bom(bytes).map_or(UTF_8, |(e, _)| e)
    } else {
        encoding
    };
    let (text, _, _) = encoding.decode(bytes);
    text.into_owned()
}

/// A charset label declared in the first KiB: the value after the first `charset=` or
/// `encoding=` (quotes skipped).
fn declared_charset(bytes: &[u8]) -> Option<String> {
    let head = &bytes[..bytes.len().min(1024)];
    let lower: Vec<u8> = head.iter().map(u8::to_ascii_lowercase).collect();
    let at = find(&lower, b"charset=")
        .map(|i| i + b"charset=".len())
        .or_else(|| find(&lower, b"encoding=").map(|i| i + b"encoding=".len()))?;
    let value: String = lower[at..]
        .iter()
        .skip_while(|b| matches!(b, b'"' | b'\'' | b' '))
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.'))
        .map(|&b| char::from(b))
        .collect();
    (!value.is_empty()).then_some(value)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_is_split_into_essence_and_charset() {
        let ct = ContentType::parse("Text/HTML; Charset=\"ISO-8859-1\"");
        assert_eq!(ct.essence, "text/html");
        assert_eq!(ct.charset.as_deref(), Some("ISO-8859-1"));
        assert_eq!(ContentType::parse("application/json").charset, None);
    }

    #[test]
    fn charset_comes_from_the_header_then_the_document_then_utf8() {
        let latin1 = b"<p>caf\xe9</p>";
        assert_eq!(decode(latin1, Some("iso-8859-1"), true), "<p>café</p>");
        let meta = b"<meta charset='windows-1252'><p>caf\xe9 \x80</p>";
        assert!(decode(meta, None, true).ends_with("<p>café €</p>"));
        let http_equiv =
            b"<meta http-equiv=\"Content-Type\" content=\"text/html; charset=ISO-8859-1\">\xe9";
        assert!(decode(http_equiv, None, true).ends_with('é'));
        let xml = b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\xe9</a>";
        assert!(decode(xml, None, true).ends_with("<a>é</a>"));
        assert_eq!(decode("café".as_bytes(), None, true), "café");
        assert_eq!(decode(b"caf\xe9", None, false), "caf\u{fffd}");
    }
}
