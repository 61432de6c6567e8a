//! Everything a caller hands the blob store, checked at the edge: keys, content types and
//! file names, and the layout of generated keys.
//!
//! Keys use a strict alphabet (`A–Z a–z 0–9 . _ -` and `/` between segments), so a key can
//! never climb out of the store's root, name a sidecar, or need escaping in a URL path.

use chrono::{DateTime, Utc};
use object_store::path::Path;
use uuid::Uuid;

use crate::error::StoreError;

/// Suffix of the metadata sidecar written next to each object on backends without attributes.
pub(crate) const SIDECAR_SUFFIX: &str = ".meta";
/// Longest accepted key, in bytes.
const MAX_KEY_BYTES: usize = 512;
/// Longest accepted content type, in bytes.
const MAX_CONTENT_TYPE_BYTES: usize = 255;
/// Longest stored file name, in bytes (longer names are shortened).
const MAX_FILENAME_BYTES: usize = 255;

/// What a blob is for; decides the key prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BlobKind {
    /// A file attached to a message (`attachments/…`).
    Attachment,
    /// A data export (`exports/…`).
    Export,
    /// A file produced by a tool (`artifacts/…`).
    Artifact,
}

impl BlobKind {
    /// The key prefix for this kind.
    pub const fn prefix(self) -> &'static str {
        match self {
            BlobKind::Attachment => "attachments",
            BlobKind::Export => "exports",
            BlobKind::Artifact => "artifacts",
        }
    }

    /// A new key: `<prefix>/<yyyy>/<mm>/<dd>/<uuid>` (UTC date of `now`).
    pub(crate) fn key(self, id: Uuid, now: DateTime<Utc>) -> String {
        format!("{}/{}/{}", self.prefix(), now.format("%Y/%m/%d"), id)
    }
}

/// A key, content type or file name the blob store refuses. The gateway answers these with
/// 400; find one inside a [`StoreError`] with [`BlobInputError::from_store_error`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BlobInputError {
    /// The key is not a valid blob key (traversal, absolute path, bad characters…).
    #[error("invalid blob key: {reason}")]
    InvalidKey {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The content type is not a well-formed MIME type.
    #[error("invalid content type {content_type:?}: {reason}")]
    InvalidContentType {
        /// The value offered (shortened).
        content_type: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The content type is well formed but not in the configured allow list.
    #[error("content type {content_type} is not allowed")]
    ContentTypeNotAllowed {
        /// The normalized type.
        content_type: String,
    },
}

impl BlobInputError {
    /// The input error carried by `err`, if it is one (the other store errors are not the
    /// caller's fault).
    pub fn from_store_error(err: &StoreError) -> Option<&BlobInputError> {
        match err {
            StoreError::Blob(object_store::Error::Generic { source, .. }) => {
                source.downcast_ref::<BlobInputError>()
            }
            _ => None,
        }
    }
}

impl From<BlobInputError> for StoreError {
    fn from(err: BlobInputError) -> Self {
        StoreError::Blob(object_store::Error::Generic {
            store: "blob",
            source: Box::new(err),
        })
    }
}

/// Checks a caller-supplied key; on success it is safe to use on every backend.
pub fn validate_key(key: &str) -> Result<(), BlobInputError> {
    parse_key(key).map(|_| ())
}

/// Checks `key` and turns it into an object store path.
pub(crate) fn parse_key(key: &str) -> Result<Path, BlobInputError> {
    let invalid = |reason| Err(BlobInputError::InvalidKey { reason });
    if key.is_empty() {
        return invalid("empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return invalid("too long");
    }
    if key.starts_with('/') {
        return invalid("absolute path");
    }
    if !key
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'-'))
    {
        return invalid("only letters, digits, '.', '_', '-' and '/' are allowed");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return invalid("empty path segment");
        }
        if segment.starts_with('.') {
            return invalid("path segment starts with '.'");
        }
    }
    if key.ends_with(SIDECAR_SUFFIX) {
        return invalid("reserved suffix");
    }
    Path::parse(key).map_err(|_| BlobInputError::InvalidKey {
        reason: "not a valid object path",
    })
}

/// The sidecar path of an object.
pub(crate) fn sidecar_path(path: &Path) -> Path {
    Path::from(format!("{path}{SIDECAR_SUFFIX}"))
}

/// Checks a MIME type and returns it normalized: type and subtype lowercased, parameters kept
/// (`text/plain; charset=utf-8`).
pub(crate) fn normalize_content_type(
    raw: &str,
    allowed: &[String],
) -> Result<String, BlobInputError> {
    let invalid = |reason| BlobInputError::InvalidContentType {
        content_type: raw.chars().take(100).collect(),
        reason,
    };
    let trimmed = raw.trim();
    if trimmed.is_empty() {
        return Err(invalid("empty"));
    }
    if trimmed.len() > MAX_CONTENT_TYPE_BYTES {
        return Err(invalid("too long"));
    }
    if !trimmed.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(invalid("only printable ASCII is allowed"));
    }
    let mut parts = trimmed.split(';');
    let essence = parts.next().unwrap_or_default().trim();
    let essence = parse_essence(essence).ok_or_else(|| invalid("expected type/subtype"))?;
    let mut normalized = essence.clone();
    for parameter in parts {
        let parameter = parameter.trim();
        let Some((name, value)) = parameter.split_once('=') else {
            return Err(invalid("parameter without '='"));
        };
        if !is_token(name) || !(is_token(value) || is_quoted(value)) {
            return Err(invalid("malformed parameter"));
        }
        normalized.push_str("; ");
        normalized.push_str(&name.to_ascii_lowercase());
        normalized.push('=');
        normalized.push_str(value);
    }
    if !allowed.is_empty()
        && !allowed
            .iter()
            .any(|pattern| matches_pattern(pattern, &essence))
    {
        return Err(BlobInputError::ContentTypeNotAllowed {
            content_type: essence,
        });
    }
    Ok(normalized)
}

/// Checks an allow-list entry: `type/subtype` or `type/*`.
pub(crate) fn valid_pattern(pattern: &str) -> bool {
    match pattern.split_once('/') {
        Some((top, "*")) => is_restricted_name(top),
        _ => parse_essence(pattern).is_some_and(|e| e == pattern.to_ascii_lowercase()),
    }
}

fn matches_pattern(pattern: &str, essence: &str) -> bool {
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_suffix("/*") {
        Some(top) => essence.split_once('/').is_some_and(|(t, _)| t == top),
        None => pattern == essence,
    }
}

/// `type/subtype` with RFC 6838 restricted names, lowercased.
fn parse_essence(essence: &str) -> Option<String> {
    let (top, sub) = essence.split_once('/')?;
    (is_restricted_name(top) && is_restricted_name(sub))
        .then(|| format!("{top}/{sub}").to_ascii_lowercase())
}

/// RFC 6838 `restricted-name`.
fn is_restricted_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    name.len() <= 127
        && bytes.next().is_some_and(|b| b.is_ascii_alphanumeric())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
}

/// RFC 9110 `token`.
fn is_token(value: &str) -> bool {
    !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

fn is_quoted(value: &str) -> bool {
    value.len() >= 2
        && value.starts_with('"')
        && value.ends_with('"')
        && !value[1..value.len() - 1].contains('"')
}

/// A file name made safe to store and later put in a header: the last path component, without
/// control characters, at most 255 bytes. `None` when nothing usable remains.
pub(crate) fn sanitize_filename(filename: Option<&str>) -> Option<String> {
    let name = filename?.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean = String::with_capacity(name.len().min(MAX_FILENAME_BYTES));
    for c in name.chars().filter(|c| !c.is_control()) {
        if clean.len() + c.len_utf8() > MAX_FILENAME_BYTES {
            break;
        }
        clean.push(c);
    }
    let clean = clean.trim();
    (!clean.is_empty() && clean != "." && clean != "..").then(|| clean.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_follow_the_layout_and_validate() {
        let now = DateTime::parse_from_rfc3339("2026-11-24T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let id = Uuid::new_v4();
        let key = BlobKind::Export.key(id, now);
        assert_eq!(key, format!("exports/2026/11/24/{id}"));
        validate_key(&key).unwrap();
    }

    #[test]
    fn keys_that_could_escape_or_confuse_are_refused() {
        for key in [
            "",
            "/etc/passwd",
            "../etc/passwd",
            "a/../../b",
            "a/./b",
            "a//b",
            "a/",
            "a\\..\\b",
            "C:/x",
            "a/b%2F..",
            "a/.hidden",
            "a/b c",
            "a/b\n",
            "a/\u{e9}",
            "attachments/x.meta",
        ] {
            assert!(validate_key(key).is_err(), "{key:?}");
        }
        validate_key("attachments/2026/01/02/file-1_a.b").unwrap();
    }

    #[test]
    fn content_types_are_normalized_or_refused() {
        let ok = |raw: &str| normalize_content_type(raw, &[]).unwrap();
        assert_eq!(ok("image/PNG"), "image/png");
        assert_eq!(
            ok(" text/plain ;charset=UTF-8"),
            "text/plain; charset=UTF-8"
        );
        assert_eq!(
            ok("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        );
        assert_eq!(
            ok("multipart/form-data; boundary=\"a b\""),
            "multipart/form-data; boundary=\"a b\""
        );
        for bad in [
            "",
            "  ",
            "image",
            "/png",
            "image/",
            "image/png/x",
            "ima ge/png",
            "text/html\r\nx-evil: 1",
            "text/plain; charset",
            "text/plain; =x",
            "image/pngé",
            "*/*",
        ] {
            assert!(
                matches!(
                    normalize_content_type(bad, &[]),
                    Err(BlobInputError::InvalidContentType { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn allow_list_accepts_exact_types_and_wildcards() {
        let allowed = vec!["image/*".to_owned(), "application/pdf".to_owned()];
        assert!(normalize_content_type("image/webp", &allowed).is_ok());
        assert!(normalize_content_type("Application/PDF", &allowed).is_ok());
        assert!(matches!(
            normalize_content_type("text/html", &allowed),
            Err(BlobInputError::ContentTypeNotAllowed { .. })
        ));
        assert!(valid_pattern("image/*") && valid_pattern("application/pdf"));
        assert!(!valid_pattern("image") && !valid_pattern("*/*") && !valid_pattern("a/b c"));
    }

    #[test]
    fn filenames_are_cleaned_not_refused() {
        assert_eq!(
            sanitize_filename(Some("report.pdf")).as_deref(),
            Some("report.pdf")
        );
        assert_eq!(
            sanitize_filename(Some("../../etc/passwd")).as_deref(),
            Some("passwd")
        );
        assert_eq!(
            sanitize_filename(Some("C:\\x\\résumé.pdf")).as_deref(),
            Some("résumé.pdf")
        );
        assert_eq!(
            sanitize_filename(Some("a\r\nb.txt")).as_deref(),
            Some("ab.txt")
        );
        assert_eq!(sanitize_filename(Some("dir/")), None);
        assert_eq!(sanitize_filename(Some("..")), None);
        assert_eq!(sanitize_filename(None), None);
        let long = "é".repeat(200);
        let cut = sanitize_filename(Some(&long)).unwrap();
        assert!(cut.len() <= MAX_FILENAME_BYTES && cut.chars().all(|c| c == 'é'));
    }

    #[test]
    fn input_errors_are_found_inside_store_errors() {
        let err: StoreError = BlobInputError::InvalidKey { reason: "x" }.into();
        assert_eq!(
            BlobInputError::from_store_error(&err),
            Some(&BlobInputError::InvalidKey { reason: "x" })
        );
        assert_eq!(
            BlobInputError::from_store_error(&StoreError::NotFound { what: "blob" }),
            None
        );
    }
}
