//! The master key: the one secret that wraps every user's data key.
//!
//! Owns loading it — from `NEXUS_MASTER_KEY`, else a configured key file, else
//! `<data_dir>/master.key`, generated on first start — and its in-memory form (zeroized on
//! drop, redacted in `Debug`). Must never log, print or format key bytes.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::SecurityError;

/// The environment variable holding the master key.
pub const MASTER_KEY_ENV: &str = "NEXUS_MASTER_KEY";

/// The key file's name inside the data directory when nothing else is configured.
pub const DEFAULT_KEY_FILE_NAME: &str = "master.key";

/// Length of the master key in bytes.
pub(crate) const KEY_LEN: usize = 32;

/// Largest key file we read; a real one is 45 bytes (base64 and a newline).
const MAX_KEY_FILE_BYTES: u64 = 4096;

/// How long to wait for a key file another process is writing at the same moment.
const CONCURRENT_WRITER_WAIT: Duration = Duration::from_secs(2);

/// Where to look for the master key. The gateway fills it from its configuration; the first
/// source that is set wins (see [`MasterKey::load`]).
#[derive(Debug, Clone, Default)]
pub struct MasterKeySource {
    /// The value of `NEXUS_MASTER_KEY`, if set (even if empty: an empty value is an error, not
    /// "unset", so a broken deployment template never silently generates a fresh key).
    pub env_value: Option<SecretString>,
    /// A key file configured by the operator.
    pub key_file: Option<PathBuf>,
}

impl MasterKeySource {
    /// Reads `NEXUS_MASTER_KEY` from the process environment, with an optional key file.
    pub fn from_env(key_file: Option<PathBuf>) -> Self {
        let env_value = std::env::var_os(MASTER_KEY_ENV)
            .map(|value| SecretString::from(value.to_string_lossy().into_owned()));
        Self {
            env_value,
            key_file,
        }
    }
}

/// Where the loaded master key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyOrigin {
    /// The `NEXUS_MASTER_KEY` environment variable.
    Environment,
    /// The configured key file.
    KeyFile {
        /// The file.
        path: PathBuf,
    },
    /// The existing `<data_dir>/master.key`.
    DataDir {
        /// The file.
        path: PathBuf,
    },
    /// A new key, just generated and written to `path`. The caller must warn loudly: the file
    /// has to be backed up, because losing it loses every stored credential.
    Generated {
        /// The file written.
        path: PathBuf,
    },
}

/// The 32-byte master key. Zeroized on drop; `Debug` shows no key bytes.
pub struct MasterKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey([REDACTED])")
    }
}

impl MasterKey {
    /// A master key from raw bytes (tests, or a key obtained from a KMS).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self {
            bytes: Zeroizing::new(bytes),
        }
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        Self { bytes }
    }

    /// Loads the master key: `source.env_value` if set, else `source.key_file` if set, else
    /// `<data_dir>/master.key`, which is generated (mode 0600) when absent.
    ///
    /// Key files must not be accessible by group or others (unix). When two processes start
    /// at once on an empty data directory, exactly one writes the file and the other reads it.
    pub fn load(
        source: &MasterKeySource,
        data_dir: &Path,
    ) -> Result<(MasterKey, KeyOrigin), SecurityError> {
        if let Some(value) = &source.env_value {
            let key = decode_key(value.expose_secret(), MASTER_KEY_ENV)?;
            return Ok((key, KeyOrigin::Environment));
        }
        if let Some(path) = &source.key_file {
            let key = read_key_file(path)?;
            return Ok((key, KeyOrigin::KeyFile { path: path.clone() }));
        }
        load_or_generate(&data_dir.join(DEFAULT_KEY_FILE_NAME))
    }

    /// A 32-byte key for another purpose (for example signing download links), derived as
    /// HMAC-SHA256(master key, "nexus-subkey:" + purpose). Stable across restarts and replicas.
    pub fn derive_subkey(&self, purpose: &str) -> Zeroizing<[u8; KEY_LEN]> {
        // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.bytes.as_ref())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(b"nexus-subkey:");
        mac.update(purpose.as_bytes());
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }

    /// The raw key bytes, for the envelope module only.
    pub(crate) fn expose(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }
}

/// Decodes base64 (standard or URL-safe, padded or not) or 64 hex characters into a key.
fn decode_key(text: &str, origin: &str) -> Result<MasterKey, SecurityError> {
    let invalid = |detail: String| SecurityError::InvalidMasterKey {
        origin: origin.to_owned(),
        detail,
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    // Capacity fixed up front so decoding never reallocates and leaves unzeroized copies.
    let mut decoded = Zeroizing::new(Vec::with_capacity(text.len()));
    if text.len() == 2 * KEY_LEN && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        decoded.resize(KEY_LEN, 0);
        hex::decode_to_slice(text, decoded.as_mut_slice())
            .map_err(|_| invalid("it is not valid hex".to_owned()))?;
    } else {
        let ok = [&STANDARD, &URL_SAFE, &STANDARD_NO_PAD, &URL_SAFE_NO_PAD]
            .into_iter()
            .any(|engine| {
                decoded.clear();
                engine.decode_vec(text, &mut decoded).is_ok()
            });
        if !ok {
            return Err(invalid(
                "it is neither base64 nor 64 hex characters".to_owned(),
            ));
        }
    }
    let bytes: [u8; KEY_LEN] = decoded.as_slice().try_into().map_err(|_| {
        invalid(format!(
            "it decodes to {} bytes, not {KEY_LEN}",
            decoded.len()
        ))
    })?;
    Ok(MasterKey::from_bytes(bytes))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> SecurityError + '_ {
    move |source| SecurityError::KeyFileIo {
        path: path.to_owned(),
        source,
    }
}

/// Refuses key files that group or others can read or write.
#[cfg(unix)]
fn check_permissions(path: &Path) -> Result<(), SecurityError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = fs::metadata(path)
        .map_err(io_error(path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecurityError::InsecureKeyFile {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_permissions(_path: &Path) -> Result<(), SecurityError> {
    Ok(())
}

/// Reads and decodes a key file after checking its permissions.
fn read_key_file(path: &Path) -> Result<MasterKey, SecurityError> {
    check_permissions(path)?;
    let file = File::open(path).map_err(io_error(path))?;
    let mut raw = Zeroizing::new(Vec::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(io_error(path))?;
    let origin = format!("master key file {}", path.display());
    if raw.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(SecurityError::InvalidMasterKey {
            origin,
            detail: format!("it is larger than {MAX_KEY_FILE_BYTES} bytes"),
        });
    }
    let text = std::str::from_utf8(&raw).map_err(|_| SecurityError::InvalidMasterKey {
        origin: origin.clone(),
        detail: "it is not text".to_owned(),
    })?;
    decode_key(text, &origin)
}

/// Reads `path` if it exists; otherwise generates a key and writes it there (mode 0600).
fn load_or_generate(path: &Path) -> Result<(MasterKey, KeyOrigin), SecurityError> {
    let origin = KeyOrigin::DataDir {
        path: path.to_owned(),
    };
    match fs::metadata(path) {
        Ok(_) => return Ok((read_key_file(path)?, origin)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error(path)(e)),
    }
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(io_error(dir))?;
    }
    let key = MasterKey::generate();
    match write_new_key_file(path, &key) {
        Ok(()) => Ok((
            key,
            KeyOrigin::Generated {
                path: path.to_owned(),
            },
        )),
        // Another process created it between our check and our write: use theirs.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            Ok((read_key_file_being_written(path)?, origin))
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

/// Reads a key file another process may still be writing, waiting briefly while it is
/// incomplete.
fn read_key_file_being_written(path: &Path) -> Result<MasterKey, SecurityError> {
    let deadline = Instant::now() + CONCURRENT_WRITER_WAIT;
    loop {
        match read_key_file(path) {
            Err(SecurityError::InvalidMasterKey { .. }) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Creates `path` exclusively (mode 0600) and writes the key as base64. On failure the
/// partial file is removed so the next start does not find a broken key.
fn write_new_key_file(path: &Path, key: &MasterKey) -> io::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    let mut encoded = Zeroizing::new(String::with_capacity(64));
    STANDARD.encode_string(key.expose(), &mut encoded);
    encoded.push('\n');
    let written = file
        .write_all(encoded.as_bytes())
        .and_then(|()| file.sync_all());
    if let Err(e) = written {
        drop(file);
        // Best effort: the write error is the one worth reporting.
        let _ = fs::remove_file(path);
        return Err(e);
    }
    sync_parent_dir(path);
    Ok(())
}

/// Makes the new directory entry durable (unix); failure only weakens crash safety.
fn sync_parent_dir(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = path.parent()
        && let Err(e) = File::open(dir).and_then(|d| d.sync_all())
    {
        tracing::warn!(
            dir = %dir.display(),
            error = %e,
            "Could not sync the data directory after writing the master key"
        );
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source_env(value: &str) -> MasterKeySource {
        MasterKeySource {
            env_value: Some(SecretString::from(value)),
            key_file: None,
        }
    }

    #[test]
    fn env_key_is_accepted_as_base64_url_safe_and_hex() {
        let bytes: [u8; 32] = std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(250));
        let dir = tempfile::tempdir().unwrap();
        for text in [
            STANDARD.encode(bytes),
            STANDARD_NO_PAD.encode(bytes),
            URL_SAFE.encode(bytes),
            URL_SAFE_NO_PAD.encode(bytes),
            hex::encode(bytes),
            hex::encode_upper(bytes),
            format!("  {}\n", STANDARD.encode(bytes)),
        ] {
            let (key, origin) = MasterKey::load(&source_env(&text), dir.path()).unwrap();
            assert_eq!(origin, KeyOrigin::Environment);
            assert_eq!(key.expose(), &bytes, "format {text:?}");
        }
        assert!(!dir.path().join(DEFAULT_KEY_FILE_NAME).exists());
    }

    #[test]
    fn malformed_env_key_error_names_the_expected_format() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            "",
            "not a key!",
            "c2hvcnQ=",
            &hex::encode([1u8; 31]),
            &"A".repeat(100),
        ] {
            let err = MasterKey::load(&source_env(bad), dir.path()).unwrap_err();
            assert!(
                matches!(err, SecurityError::InvalidMasterKey { .. }),
                "{err:?}"
            );
            let message = err.to_string();
            assert!(message.contains(MASTER_KEY_ENV), "{message}");
            assert!(message.contains("64 hex characters"), "{message}");
            assert!(message.contains("openssl rand -base64 32"), "{message}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn generated_key_file_has_mode_0600_and_is_reused_on_the_next_load() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("nexus-data");
        let (first, origin) = MasterKey::load(&MasterKeySource::default(), &data_dir).unwrap();
        let path = data_dir.join(DEFAULT_KEY_FILE_NAME);
        assert_eq!(origin, KeyOrigin::Generated { path: path.clone() });
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let (second, origin) = MasterKey::load(&MasterKeySource::default(), &data_dir).unwrap();
        assert_eq!(origin, KeyOrigin::DataDir { path });
        assert_eq!(first.expose(), second.expose());
    }

    #[test]
    fn concurrent_first_starts_agree_on_one_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| MasterKey::load(&MasterKeySource::default(), dir.path())))
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap().unwrap())
                .collect()
        });
        let generated = keys
            .iter()
            .filter(|(_, origin)| matches!(origin, KeyOrigin::Generated { .. }))
            .count();
        assert_eq!(generated, 1);
        assert!(keys.iter().all(|(k, _)| k.expose() == keys[0].0.expose()));
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_key_file_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        fs::write(&path, STANDARD.encode([7u8; 32])).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let source = MasterKeySource {
            env_value: None,
            key_file: Some(path.clone()),
        };
        let err = MasterKey::load(&source, dir.path()).unwrap_err();
        assert!(
            matches!(err, SecurityError::InsecureKeyFile { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"));

        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        let (key, origin) = MasterKey::load(&source, dir.path()).unwrap();
        assert_eq!(origin, KeyOrigin::KeyFile { path });
        assert_eq!(key.expose(), &[7u8; 32]);
    }

    #[test]
    fn env_value_wins_over_key_file() {
        let dir = tempfile::tempdir().unwrap();
        let source = MasterKeySource {
            env_value: Some(SecretString::from(hex::encode([3u8; 32]))),
            key_file: Some(dir.path().join("missing")),
        };
        let (key, origin) = MasterKey::load(&source, dir.path()).unwrap();
        assert_eq!(origin, KeyOrigin::Environment);
        assert_eq!(key.expose(), &[3u8; 32]);
    }

    #[test]
    fn debug_shows_no_key_bytes() {
        let key = MasterKey::from_bytes([0xAB; 32]);
        let shown = format!("{key:?} {key:#?}");
        assert!(shown.contains("REDACTED"));
        assert!(!shown.to_lowercase().contains("ab"), "{shown}");
        assert!(!shown.contains("171"), "{shown}");
        assert!(!shown.contains(&STANDARD.encode([0xAB; 32])[..8]));
    }

    #[test]
    fn subkeys_are_stable_and_separated_by_purpose() {
        let key = MasterKey::from_bytes([9; 32]);
        assert_eq!(*key.derive_subkey("links"), *key.derive_subkey("links"));
        assert_ne!(*key.derive_subkey("links"), *key.derive_subkey("other"));
        assert_ne!(*key.derive_subkey("links"), [9; 32]);
    }
}
