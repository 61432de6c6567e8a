//! Envelope encryption: the master key wraps one random data key per user, and data keys seal
//! the user's secrets.
//!
//! Both layers use XChaCha20-Poly1305 with a random 24-byte nonce and the same sealed format:
//! `version (1 byte) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)`. The version byte lets a
//! later release rotate algorithms while still opening old records. Wrapping binds the data key
//! to its user (the user id is the associated data); sealing binds a secret to its record (the
//! caller's associated data). Must never panic on outside input: every bad input is a typed
//! [`SecurityError`].

use std::fmt;

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use nexus_core::UserId;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::error::SecurityError;
use crate::master_key::{KEY_LEN, MasterKey};

/// The current sealed-format version: XChaCha20-Poly1305.
pub const FORMAT_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = 1 + NONCE_LEN + TAG_LEN;

/// A user's data key: 32 random bytes, zeroized on drop, redacted in `Debug`. Stored only
/// wrapped by the [`MasterKey`].
pub struct DataKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey([REDACTED])")
    }
}

impl DataKey {
    /// A fresh random data key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self { bytes }
    }

    /// Encrypts `plaintext`, bound to `aad` (for example the record id): opening needs the same
    /// `aad`.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        seal_with(&self.bytes, plaintext, aad)
    }

    /// Decrypts what [`DataKey::seal`] produced with the same `aad`.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecurityError> {
        open_with(&self.bytes, sealed, aad)
    }
}

impl MasterKey {
    /// Encrypts a user's data key for storage, bound to the user's id.
    pub fn wrap_data_key(&self, key: &DataKey, user: UserId) -> Vec<u8> {
        seal_with(self.expose(), key.bytes.as_ref(), user.as_uuid().as_bytes())
    }

    /// Decrypts a stored data key; fails if it was wrapped by another master key or for
    /// another user.
    pub fn unwrap_data_key(&self, wrapped: &[u8], user: UserId) -> Result<DataKey, SecurityError> {
        let plain = open_with(self.expose(), wrapped, user.as_uuid().as_bytes())?;
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        if plain.len() != KEY_LEN {
            return Err(SecurityError::Malformed {
                detail: "wrapped data key has the wrong length",
            });
        }
        bytes.copy_from_slice(&plain);
        Ok(DataKey { bytes })
    }
}

fn seal_with(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let cipher = XChaCha20Poly1305::new(Key::from_slice(key));
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let tag = cipher
        .encrypt_in_place_detached(XNonce::from_slice(&nonce), aad, &mut out[1 + NONCE_LEN..])
        // XChaCha20-Poly1305 only refuses plaintexts over 256 GiB, which no caller seals.
        .expect("XChaCha20-Poly1305 seals any plaintext under 256 GiB");
    out.extend_from_slice(&tag);
    out
}

fn open_with(
    key: &[u8; KEY_LEN],
    sealed: &[u8],
    aad: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SecurityError> {
    let Some((&version, rest)) = sealed.split_first() else {
        return Err(SecurityError::Malformed { detail: "empty" });
    };
    if version != FORMAT_VERSION {
        return Err(SecurityError::UnsupportedVersion { version });
    }
    if rest.len() < NONCE_LEN + TAG_LEN {
        return Err(SecurityError::Malformed {
            detail: "truncated",
        });
    }
    let (nonce, rest) = rest.split_at(NONCE_LEN);
    let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
    let mut buffer = Zeroizing::new(ciphertext.to_vec());
    XChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt_in_place_detached(
            XNonce::from_slice(nonce),
            aad,
            buffer.as_mut_slice(),
            Tag::from_slice(tag),
        )
        .map_err(|_| SecurityError::DecryptionFailed)?;
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_round_trip() {
        let key = DataKey::generate();
        for plaintext in [&b""[..], b"x", b"bot token 123:ABC", &[0u8; 10_000]] {
            let sealed = key.seal(plaintext, b"record-1");
            assert_eq!(sealed.len(), plaintext.len() + SEAL_OVERHEAD);
            assert_eq!(sealed[0], FORMAT_VERSION);
            assert_eq!(
                key.open(&sealed, b"record-1").unwrap().as_slice(),
                plaintext
            );
        }
    }

    #[test]
    fn sealing_twice_gives_different_ciphertexts() {
        let key = DataKey::generate();
        assert_ne!(key.seal(b"same", b"r"), key.seal(b"same", b"r"));
    }

    #[test]
    fn wrong_key_or_aad_fails_cleanly() {
        let key = DataKey::generate();
        let sealed = key.seal(b"secret", b"record-1");
        assert!(matches!(
            DataKey::generate().open(&sealed, b"record-1"),
            Err(SecurityError::DecryptionFailed)
        ));
        assert!(matches!(
            key.open(&sealed, b"record-2"),
            Err(SecurityError::DecryptionFailed)
        ));
    }

    #[test]
    fn every_single_bit_flip_is_detected() {
        let key = DataKey::generate();
        let sealed = key.seal(b"secret", b"r");
        for i in 1..sealed.len() {
            for bit in 0..8 {
                let mut tampered = sealed.clone();
                tampered[i] ^= 1 << bit;
                assert!(
                    matches!(
                        key.open(&tampered, b"r"),
                        Err(SecurityError::DecryptionFailed)
                    ),
                    "byte {i} bit {bit}"
                );
            }
        }
        let mut tampered = sealed;
        tampered[0] = 2;
        assert!(matches!(
            key.open(&tampered, b"r"),
            Err(SecurityError::UnsupportedVersion { version: 2 })
        ));
    }

    #[test]
    fn truncated_input_fails_cleanly() {
        let key = DataKey::generate();
        let sealed = key.seal(b"secret", b"r");
        assert!(matches!(
            key.open(&[], b"r"),
            Err(SecurityError::Malformed { .. })
        ));
        for len in 1..sealed.len() {
            let result = key.open(&sealed[..len], b"r");
            assert!(
                matches!(
                    result,
                    Err(SecurityError::Malformed { .. } | SecurityError::DecryptionFailed)
                ),
                "len {len}: {result:?}"
            );
        }
    }

    #[test]
    fn wrapped_data_key_round_trips_and_is_bound_to_user_and_master() {
        let master = MasterKey::generate();
        let user = UserId::new();
        let data_key = DataKey::generate();
        let wrapped = master.wrap_data_key(&data_key, user);
        let unwrapped = master.unwrap_data_key(&wrapped, user).unwrap();
        let sealed = data_key.seal(b"secret", b"r");
        assert_eq!(unwrapped.open(&sealed, b"r").unwrap().as_slice(), b"secret");

        assert!(matches!(
            master.unwrap_data_key(&wrapped, UserId::new()),
            Err(SecurityError::DecryptionFailed)
        ));
        assert!(matches!(
            MasterKey::generate().unwrap_data_key(&wrapped, user),
            Err(SecurityError::DecryptionFailed)
        ));
        assert!(matches!(
            master.unwrap_data_key(&wrapped[..10], user),
            Err(SecurityError::Malformed { .. })
        ));
        // A correctly sealed value of the wrong length is not a data key.
        let short = seal_with(master.expose(), b"short", user.as_uuid().as_bytes());
        assert!(matches!(
            master.unwrap_data_key(&short, user),
            Err(SecurityError::Malformed { .. })
        ));
    }

    #[test]
    fn debug_shows_no_data_key_bytes() {
        let key = DataKey {
            bytes: Zeroizing::new([0xCD; KEY_LEN]),
        };
        let shown = format!("{key:?}");
        assert_eq!(shown, "DataKey([REDACTED])");
    }
}
