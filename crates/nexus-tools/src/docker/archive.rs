//! Files across the container boundary as tar streams: the request's files packed for `tar -x`
//! on the run's stdin, and the tar of `/work/out` read back with its size capped, regular
//! files only.

use std::io::Read as _;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use nexus_core::{SandboxError, SandboxFile};

/// Longest path accepted, in bytes.
const MAX_PATH_BYTES: usize = 1024;

fn invalid(message: String) -> SandboxError {
    SandboxError::Invalid { message }
}

/// Checks a relative path: not empty, not absolute, no `.`, `..` or empty component, no NUL
/// or backslash.
pub(crate) fn check_path(path: &str) -> Result<(), SandboxError> {
    if path.is_empty() || path.len() > MAX_PATH_BYTES {
        return Err(invalid(format!(
            "file path `{path}` must be 1 to {MAX_PATH_BYTES} bytes"
        )));
    }
    if path.starts_with('/') || path.contains(['\0', '\\']) {
        return Err(invalid(format!(
            "file path `{path}` must be relative, without NUL or backslash"
        )));
    }
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid(format!(
            "file path `{path}` must not contain empty, `.` or `..` components"
        )));
    }
    Ok(())
}

/// A tar of `files` (regular files, mode 0644, current time), after checking their paths (and
/// that none is `out`, the output directory) and that they fit in `max_bytes` in total.
pub(crate) fn pack(files: &[SandboxFile], max_bytes: u64) -> Result<Bytes, SandboxError> {
    let total: u64 = files.iter().map(|f| f.bytes.len() as u64).sum();
    if total > max_bytes {
        return Err(invalid(format!(
            "the files total {total} bytes, more than the {max_bytes} bytes of the working directory"
        )));
    }
    let mtime = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let mut builder = tar::Builder::new(Vec::with_capacity(
        usize::try_from(total).unwrap_or(0) + 1024 * (files.len() + 2),
    ));
    for file in files {
        check_path(&file.path)?;
        if file.path == "out" {
            return Err(invalid(
                "file path `out` is the output directory; name the file otherwise".to_owned(),
            ));
        }
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(file.bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        builder
            .append_data(&mut header, &file.path, file.bytes.as_ref())
            .map_err(|e| invalid(format!("file `{}` cannot be packed: {e}", file.path)))?;
    }
    let bytes = builder
        .into_inner()
        .map_err(|e| invalid(format!("the files cannot be packed: {e}")))?;
    Ok(Bytes::from(bytes))
}

/// Files read back from a tar of `/work/out`.
#[derive(Debug, Default)]
pub(crate) struct Unpacked {
    pub(crate) files: Vec<SandboxFile>,
    /// Some files were left out: over `max_bytes`, or the stream was cut.
    pub(crate) truncated: bool,
}

/// The regular files of `tar`, in order, while they fit in `max_bytes` in total. Other entries
/// (directories, symlinks, hard links, devices) are skipped; a cut or malformed stream ends the
/// list and counts as truncated.
pub(crate) fn unpack(tar: &[u8], max_bytes: u64) -> Unpacked {
    let mut out = Unpacked::default();
    let mut total: u64 = 0;
    let mut archive = tar::Archive::new(tar);
    let entries = match archive.entries() {
        Ok(entries) => entries,
        Err(_) => {
            out.truncated = true;
            return out;
        }
    };
    for entry in entries {
        let Ok(mut entry) = entry else {
            out.truncated = true;
            break;
        };
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            continue;
        }
        let Some(path) = entry
            .path()
            .ok()
            .and_then(|p| p.to_str().map(|s| s.trim_start_matches("./").to_owned()))
        else {
            continue;
        };
        if check_path(&path).is_err() {
            continue;
        }
        let size = entry.size();
        if total.saturating_add(size) > max_bytes {
            out.truncated = true;
            continue;
        }
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        if entry.read_to_end(&mut bytes).is_err() || bytes.len() as u64 != size {
            out.truncated = true;
            break;
        }
        total += size;
        out.files.push(SandboxFile {
            path,
            bytes: Bytes::from(bytes),
        });
    }
    out
}
