//! The crate's error type: one enum, each variant named for what the caller can do about it.
//!
//! Messages never contain key material or plaintext.

use std::path::PathBuf;

use nexus_core::UserId;

/// The accepted master key formats and how to make one, repeated in every format error so the
/// fix is on screen.
pub const MASTER_KEY_FORMAT_HELP: &str = "expected 32 random bytes encoded as base64 \
     (standard or URL-safe, padding optional) or as 64 hex characters; generate one with \
     `openssl rand -base64 32`";

/// A failed security operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecurityError {
    /// A configured master key (environment variable or key file) does not decode to 32 bytes.
    /// The operator must fix the value; the message says the expected format.
    #[error("{origin} is not a valid master key ({detail}); {help}", help = MASTER_KEY_FORMAT_HELP)]
    InvalidMasterKey {
        /// Where the value came from (`NEXUS_MASTER_KEY`, `master key file /path`).
        origin: String,
        /// What was wrong, without the value itself.
        detail: String,
    },
    /// A master key file can be read or written by group or others. The operator must restrict
    /// it (`chmod 600`).
    #[error(
        "master key file {} is accessible by group or others (mode {mode:o}); restrict it with \
         `chmod 600 {}` (on Kubernetes, mount the secret with defaultMode 0400)",
        path.display(),
        path.display()
    )]
    InsecureKeyFile {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The master key file could not be read, created or written.
    #[error("cannot access master key file {}: {source}", path.display())]
    KeyFileIo {
        /// The key file.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Sealed data did not authenticate: wrong key, wrong associated data (record or user id),
    /// or altered bytes. Retrying does not help; the record is unusable with this key.
    #[error("decryption failed: wrong key, wrong associated data, or altered ciphertext")]
    DecryptionFailed,
    /// Sealed data is not in the envelope format (empty, truncated, wrong length).
    #[error("sealed data is malformed: {detail}")]
    Malformed {
        /// What was wrong.
        detail: &'static str,
    },
    /// Sealed data uses a format version this build does not know (written by a newer release).
    #[error("sealed data has unsupported format version {version}")]
    UnsupportedVersion {
        /// The version byte found.
        version: u8,
    },
    /// The user has no data key, so nothing sealed for them can exist.
    #[error("no data key stored for user {user}")]
    DataKeyMissing {
        /// The user.
        user: UserId,
    },
    /// The wrapped-key store failed; the operation may be retried.
    #[error("key storage failed: {0}")]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl SecurityError {
    /// Wraps a failure of a [`crate::vault::WrappedKeyStore`] implementation.
    pub fn storage(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Storage(Box::new(source))
    }
}
