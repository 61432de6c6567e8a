//! API keys: generation, hashing, and a cheap format check.
//!
//! A key is `nxs_` followed by 40 random base62 characters (≈238 bits). Only its SHA-256 hash
//! is stored; with that much entropy a fast hash is safe and lets the gateway look keys up by
//! hash. The short prefix is stored in clear so people can tell keys apart in listings.

use rand::Rng;
use rand::distr::Alphanumeric;
use secrecy::SecretString;
use sha2::{Digest, Sha256};

/// Every API key starts with this.
pub const API_KEY_PREFIX: &str = "nxs_";
/// Random characters after the prefix.
const RANDOM_CHARS: usize = 40;
/// Total length of an API key.
pub const API_KEY_LEN: usize = API_KEY_PREFIX.len() + RANDOM_CHARS;
/// Length of the displayable prefix (`nxs_` and the first 8 random characters).
pub const DISPLAY_PREFIX_LEN: usize = 12;

/// A new API key. `plaintext` is shown to the user once and never stored.
#[derive(Debug)]
#[non_exhaustive]
pub struct GeneratedKey {
    /// The whole key, to show once.
    pub plaintext: SecretString,
    /// The first 12 characters, stored and shown in listings.
    pub prefix: String,
    /// Hex SHA-256 of the whole key, stored for lookup.
    pub hash: String,
}

/// Generates a new random API key.
pub fn generate_api_key() -> GeneratedKey {
    let mut key = String::with_capacity(API_KEY_LEN);
    key.push_str(API_KEY_PREFIX);
    key.extend(
        rand::rng()
            .sample_iter(Alphanumeric)
            .take(RANDOM_CHARS)
            .map(char::from),
    );
    let prefix = key.chars().take(DISPLAY_PREFIX_LEN).collect();
    let hash = hash_api_key(&key);
    GeneratedKey {
        plaintext: SecretString::from(key),
        prefix,
        hash,
    }
}

/// The lowercase hex SHA-256 of `key`, as stored.
pub fn hash_api_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Whether `candidate` has the shape of an API key; check before any database lookup.
pub fn looks_like_api_key(candidate: &str) -> bool {
    candidate.len() == API_KEY_LEN
        && candidate
            .strip_prefix(API_KEY_PREFIX)
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn generated_key_has_the_documented_shape() {
        let key = generate_api_key();
        let text = key.plaintext.expose_secret();
        assert_eq!(text.len(), 44);
        assert!(text.starts_with("nxs_"));
        assert!(looks_like_api_key(text));
        assert_eq!(key.prefix, &text[..12]);
        assert_eq!(key.hash, hash_api_key(text));
        assert_eq!(key.hash.len(), 64);
        assert!(!format!("{key:?}").contains(&text[4..]));
    }

    #[test]
    fn generated_keys_differ() {
        let a = generate_api_key();
        let b = generate_api_key();
        assert_ne!(a.plaintext.expose_secret(), b.plaintext.expose_secret());
        assert_ne!(a.hash, b.hash);
    }

    #[test]
    fn hash_is_hex_sha256() {
        assert_eq!(
            hash_api_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn malformed_candidates_are_rejected_before_lookup() {
        let good = format!("nxs_{}", "a1B2".repeat(10));
        assert!(looks_like_api_key(&good));
        for bad in [
            "",
            "nxs_",
            &good[..43],
            &format!("{good}x"),
            &format!("nxt_{}", &good[4..]),
            &format!("nxs_{}-", &good[4..43]),
            &format!("nxs_{}é", &good[4..42]),
            "Bearer nxs_abc",
        ] {
            assert!(!looks_like_api_key(bad), "{bad:?}");
        }
    }
}
