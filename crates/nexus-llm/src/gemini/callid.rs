//! Tool call ids that carry Gemini's thought signatures through the neutral types.
//!
//! Thinking models attach an opaque `thoughtSignature` to a `functionCall` part (the first call
//! of each step) and reject the next request when it does not come back on that same part.
//! The neutral [`ContentBlock::ToolUse`](nexus_core::llm::ContentBlock::ToolUse) has no field
//! for it, and what Nexus stores of a tool call is its id, name and arguments; so the signature
//! travels inside the id, the one value every layer keeps and hands back unchanged:
//!
//! ```text
//! gem_<nonce>                      a call Gemini made, without a signature
//! gem_<nonce>_b<base64url>         with a signature in canonical base64 (made URL-safe, unpadded)
//! gem_<nonce>_x<hex>               with a signature of any other text (its UTF-8 bytes in hex)
//! ```
//!
//! `<nonce>` is Gemini's own call id when it sent one (letters, digits, `-`), else a stable
//! hash of the response id and the call's position. Ids use only `[A-Za-z0-9_-]`, so other
//! vendors accept them as tool call ids too. Gemini's call ids are never sent back (the API
//! refuses `functionCall.id` in some versions, and pairs results by name and order anyway).
//!
//! An id without the `gem_` prefix belongs to a call another provider made (a conversation
//! that failed over); see [`FOREIGN_SIGNATURE`].

/// The prefix of ids minted here.
const PREFIX: &str = "gem_";
/// Longest Gemini call id used as a nonce as it is (longer ones are hashed).
const MAX_NONCE: usize = 64;
/// The FNV-1a offset basis.
const FNV_BASIS: u64 = 0xcbf2_9ce4_8422_2325;

/// The signature Google documents for function calls the model did not make itself (history
/// from another model); Gemini 3 refuses such a call in the current turn without any
/// signature. Sent on the first call of a model turn whose calls are all foreign.
pub(crate) const FOREIGN_SIGNATURE: &str = "skip_thought_signature_validator";

/// What an id says about its call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallOrigin {
    /// Gemini made the call; its thought signature, when it had one.
    Gemini { signature: Option<String> },
    /// Another provider made the call (or the id is not one of ours).
    Foreign,
}

/// The id of the call at `index` of a response: Gemini's `wire_id` when usable, else a hash of
/// `response_id` (or of `salt`, unique per stream, when the response had no id) and `index`.
pub(crate) fn mint(
    wire_id: Option<&str>,
    response_id: Option<&str>,
    salt: u64,
    index: u32,
    signature: Option<&str>,
) -> String {
    let nonce = match wire_id.filter(|id| is_nonce(id)) {
        Some(id) => id.to_owned(),
        None => {
            let seed = match response_id {
                Some(response) => fnv1a(FNV_BASIS, response.as_bytes()),
                None => fnv1a(FNV_BASIS, &salt.to_le_bytes()),
            };
            format!("{:016x}", fnv1a(seed, &index.to_le_bytes()))
        }
    };
    let mut id = format!("{PREFIX}{nonce}");
    if let Some(signature) = signature.filter(|s| !s.is_empty()) {
        id.push('_');
        match base64_to_url(signature) {
            Some(url) => {
                id.push('b');
                id.push_str(&url);
            }
            None => {
                id.push('x');
                for byte in signature.bytes() {
                    id.push_str(&format!("{byte:02x}"));
                }
            }
        }
    }
    id
}

/// Reads an id minted by [`mint`]; anything else is [`CallOrigin::Foreign`].
pub(crate) fn origin(id: &str) -> CallOrigin {
    let Some(rest) = id.strip_prefix(PREFIX) else {
        return CallOrigin::Foreign;
    };
    let (nonce, payload) = match rest.split_once('_') {
        Some((nonce, payload)) => (nonce, Some(payload)),
        None => (rest, None),
    };
    if !is_nonce(nonce) {
        return CallOrigin::Foreign;
    }
    let signature = match payload {
        None => None,
        Some(payload) => {
            let decoded = if let Some(url) = payload.strip_prefix('b') {
                url_to_base64(url)
            } else if let Some(hex) = payload.strip_prefix('x') {
                hex_to_text(hex)
            } else {
                None
            };
            match decoded {
                Some(signature) => Some(signature),
                None => return CallOrigin::Foreign,
            }
        }
    };
    CallOrigin::Gemini { signature }
}

fn is_nonce(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_NONCE
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

fn fnv1a(mut hash: u64, bytes: &[u8]) -> u64 {
    for byte in bytes {
        hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Canonical standard base64 (length a multiple of 4, padding only at the end) made URL-safe
/// and unpadded; `None` for any other text.
fn base64_to_url(text: &str) -> Option<String> {
    if text.is_empty() || !text.len().is_multiple_of(4) {
        return None;
    }
    let body = text.trim_end_matches('=');
    if text.len() - body.len() > 2 {
        return None;
    }
    body.chars()
        .map(|c| match c {
            '+' => Some('-'),
            '/' => Some('_'),
            c if c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        })
        .collect()
}

/// The inverse of [`base64_to_url`].
fn url_to_base64(text: &str) -> Option<String> {
    if text.is_empty() || text.len() % 4 == 1 {
        return None;
    }
    let mut out: String = text
        .chars()
        .map(|c| match c {
            '-' => Some('+'),
            '_' => Some('/'),
            c if c.is_ascii_alphanumeric() => Some(c),
            _ => None,
        })
        .collect::<Option<String>>()?;
    while !out.len().is_multiple_of(4) {
        out.push('=');
    }
    Some(out)
}

fn hex_to_text(hex: &str) -> Option<String> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) {
        return None;
    }
    let bytes = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vendor_safe(id: &str) -> bool {
        id.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    }

    #[test]
    fn base64_signatures_round_trip_exactly_with_any_padding() {
        for signature in [
            "CiQB0e2Kb+/x==",
            "CiQB0e2Kb+/xY=",
            "CiQB0e2Kb+/xYz12",
            "Q0FGRQ==",
        ] {
            let id = mint(None, Some("resp-1"), 0, 0, Some(signature));
            assert!(vendor_safe(&id), "{id}");
            assert_eq!(
                origin(&id),
                CallOrigin::Gemini {
                    signature: Some(signature.to_owned())
                },
                "{id}"
            );
        }
    }

    #[test]
    fn non_base64_signatures_round_trip_through_hex() {
        for signature in [
            "not base64!",
            "abc",
            "skip_thought_signature_validator",
            "é~",
        ] {
            let id = mint(Some("abc-1"), None, 7, 2, Some(signature));
            assert!(vendor_safe(&id), "{id}");
            assert_eq!(
                origin(&id),
                CallOrigin::Gemini {
                    signature: Some(signature.to_owned())
                }
            );
        }
    }

    #[test]
    fn ids_are_stable_per_response_and_distinct_per_position() {
        let a = mint(None, Some("resp-1"), 1, 0, None);
        assert_eq!(a, mint(None, Some("resp-1"), 2, 0, None));
        assert_ne!(a, mint(None, Some("resp-1"), 1, 1, None));
        assert_ne!(a, mint(None, Some("resp-2"), 1, 0, None));
        assert_ne!(mint(None, None, 1, 0, None), mint(None, None, 2, 0, None));
        assert_eq!(origin(&a), CallOrigin::Gemini { signature: None });
    }

    #[test]
    fn gemini_call_ids_are_kept_when_usable() {
        assert_eq!(mint(Some("x7-b"), None, 0, 0, None), "gem_x7-b");
        let odd = mint(Some("has space/slash"), Some("r"), 0, 0, None);
        assert!(vendor_safe(&odd) && odd.len() == 4 + 16, "{odd}");
    }

    #[test]
    fn other_ids_are_foreign() {
        for id in [
            "call_abc123",
            "toolu_01",
            "gem_",
            "gem_x_q",
            "gem_x_b!",
            "gem_x_xzz",
            "gem_a b",
        ] {
            assert_eq!(origin(id), CallOrigin::Foreign, "{id}");
        }
    }
}
