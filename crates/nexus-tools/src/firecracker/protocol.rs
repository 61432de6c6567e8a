//! The job and result the host and the guest agent (`firecracker/guest-agent.py`) exchange as
//! JSON frames, and the host's checks on both ends: request file paths and sizes before the
//! VM starts, every limit again on what the guest answers (the guest is not trusted to keep
//! them).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use nexus_core::{ExecLimits, ExecRequest, ExecResult, SandboxError, SandboxFile};
use serde::{Deserialize, Serialize};

/// Version of the frames; the agent refuses others.
pub(crate) const PROTOCOL: u32 = 1;
/// Room for JSON keys, paths and numbers in a result frame.
const FRAME_OVERHEAD: u64 = 1024 * 1024;

/// A file in a frame: relative path and base64 content.
#[derive(Debug, Serialize, Deserialize)]
struct WireFile {
    path: String,
    data: String,
}

#[derive(Debug, Serialize)]
struct WireLimits {
    wall_time_ms: u64,
    memory_bytes: u64,
    pids: u32,
    output_bytes: usize,
    disk_bytes: u64,
    files_bytes: u64,
}

/// What the host sends.
#[derive(Debug, Serialize)]
pub(crate) struct Job {
    protocol: u32,
    language: &'static str,
    code: String,
    files: Vec<WireFile>,
    limits: WireLimits,
}

/// What the agent answers.
#[derive(Debug, Deserialize)]
pub(crate) struct GuestResult {
    #[allow(dead_code)]
    protocol: Option<u32>,
    error: Option<String>,
    exit_code: Option<i64>,
    #[serde(default)]
    stdout: String,
    #[serde(default)]
    stderr: String,
    #[serde(default)]
    truncated: bool,
    #[serde(default)]
    timed_out: bool,
    #[serde(default)]
    oom_killed: bool,
    #[serde(default)]
    files: Vec<WireFile>,
}

/// Checks a path going into or coming out of the sandbox: relative, no `..`, `.` or empty
/// parts, no NUL.
pub(crate) fn check_path(path: &str) -> Result<(), String> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path
            .split('/')
            .any(|p| p.is_empty() || p == "." || p == "..");
    if bad {
        Err(format!("file path {path:?} must be relative, without `..`"))
    } else {
        Ok(())
    }
}

impl Job {
    /// The job for `request`, refused when a file path is unsafe or the files do not fit the
    /// working directory.
    pub(crate) fn from_request(request: &ExecRequest) -> Result<Job, SandboxError> {
        let invalid = |message: String| SandboxError::Invalid { message };
        let mut total: u64 = 0;
        let mut files = Vec::with_capacity(request.files.len());
        for file in &request.files {
            check_path(&file.path).map_err(invalid)?;
            total = total.saturating_add(file.bytes.len() as u64);
            files.push(WireFile {
                path: file.path.clone(),
                data: STANDARD.encode(&file.bytes),
            });
        }
        let limits = &request.limits;
        if total > limits.disk_bytes {
            return Err(invalid(format!(
                "the files ({total} bytes) do not fit the working directory ({} bytes)",
                limits.disk_bytes
            )));
        }
        Ok(Job {
            protocol: PROTOCOL,
            language: request.language.as_str(),
            code: request.code.clone(),
            files,
            limits: WireLimits {
                wall_time_ms: u64::try_from(limits.wall_time.as_millis()).unwrap_or(u64::MAX),
                memory_bytes: limits.memory_bytes,
                pids: limits.pids,
                output_bytes: limits.output_bytes,
                disk_bytes: limits.disk_bytes,
                files_bytes: limits.files_bytes,
            },
        })
    }
}

/// The largest result frame the host reads for `limits`: both outputs and the files in
/// base64, plus overhead.
pub(crate) fn max_result_frame(limits: &ExecLimits) -> usize {
    let raw = (limits.output_bytes as u64)
        .saturating_mul(2)
        .saturating_add(limits.files_bytes);
    let encoded = raw.saturating_mul(4) / 3 + 4;
    usize::try_from(encoded.saturating_add(FRAME_OVERHEAD)).unwrap_or(usize::MAX)
}

impl GuestResult {
    /// Decodes a frame.
    pub(crate) fn decode(frame: &[u8]) -> Result<GuestResult, SandboxError> {
        serde_json::from_slice(frame).map_err(|e| SandboxError::Failed {
            message: format!("the guest agent answered an unreadable result: {e}"),
        })
    }

    /// The run's result with every limit enforced again on the host.
    pub(crate) fn into_result(
        self,
        limits: &ExecLimits,
        duration: Duration,
    ) -> Result<ExecResult, SandboxError> {
        if let Some(message) = self.error {
            return Err(SandboxError::Failed {
                message: format!("the guest agent could not run the job: {message}"),
            });
        }
        let failed = |message: String| SandboxError::Failed { message };
        let (stdout, cut_out) = decode_output(&self.stdout, limits.output_bytes).map_err(failed)?;
        let (stderr, cut_err) = decode_output(&self.stderr, limits.output_bytes).map_err(failed)?;
        let mut truncated = self.truncated || cut_out || cut_err;
        let mut files = Vec::new();
        let mut total: u64 = 0;
        for file in self.files {
            check_path(&file.path).map_err(|e| failed(format!("the guest agent returned {e}")))?;
            let bytes = STANDARD
                .decode(file.data.as_bytes())
                .map_err(|e| failed(format!("the guest agent returned bad base64: {e}")))?;
            total = total.saturating_add(bytes.len() as u64);
            if total > limits.files_bytes {
                truncated = true;
                break;
            }
            files.push(SandboxFile {
                path: file.path,
                bytes: Bytes::from(bytes),
            });
        }
        Ok(ExecResult {
            exit_code: self.exit_code,
            stdout,
            stderr,
            truncated,
            timed_out: self.timed_out,
            oom_killed: self.oom_killed,
            duration,
            files,
        })
    }
}

/// Base64 output cut at `cap` bytes, as text (invalid UTF-8 replaced); whether it was cut.
fn decode_output(encoded: &str, cap: usize) -> Result<(String, bool), String> {
    let mut bytes = STANDARD
        .decode(encoded.as_bytes())
        .map_err(|e| format!("the guest agent returned bad base64 output: {e}"))?;
    let cut = bytes.len() > cap;
    bytes.truncate(cap);
    Ok((String::from_utf8_lossy(&bytes).into_owned(), cut))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn unsafe_paths_are_refused() {
        for bad in ["", "/etc/passwd", "../x", "a/../b", "a//b", "./a", "a\0b"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert!(check_path("data/in.csv").is_ok());
    }

    #[test]
    fn guest_answers_are_capped_on_the_host() {
        let limits = ExecLimits {
            output_bytes: 4,
            files_bytes: 5,
            ..ExecLimits::default()
        };
        let answer = serde_json::json!({
            "protocol": 1, "exit_code": 0,
            "stdout": STANDARD.encode("hello world"), "stderr": "",
            "truncated": false, "timed_out": false, "oom_killed": false,
            "files": [
                { "path": "a.txt", "data": STANDARD.encode("abc") },
                { "path": "b.txt", "data": STANDARD.encode("defg") },
            ],
        });
        let result = GuestResult::decode(answer.to_string().as_bytes())
            .unwrap()
            .into_result(&limits, Duration::ZERO)
            .unwrap();
        assert_eq!(result.stdout, "hell");
        assert!(result.truncated);
        assert_eq!(result.files.len(), 1);

        let escape = serde_json::json!({ "files": [{ "path": "../../etc/x", "data": "" }] });
        let err = GuestResult::decode(escape.to_string().as_bytes())
            .unwrap()
            .into_result(&limits, Duration::ZERO)
            .unwrap_err();
        assert!(matches!(err, SandboxError::Failed { .. }));
    }
}
