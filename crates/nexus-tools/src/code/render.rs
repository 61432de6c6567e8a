//! The text the model reads after a run: status first (exit code, limits hit, files), then
//! stdout and stderr, so the status survives when the executor cuts a long result.

use std::fmt::Write as _;

use nexus_core::{ExecLimits, ExecResult};

use super::files::human_bytes;

/// A file returned to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Returned {
    /// Path under `/work/out`.
    pub(crate) path: String,
    pub(crate) content_type: &'static str,
    pub(crate) size: u64,
}

/// Whether the run counts as a failure for the model: a non-zero exit, a kill, a limit hit.
pub(crate) fn is_error(result: &ExecResult) -> bool {
    result.timed_out || result.oom_killed || result.exit_code != Some(0)
}

/// The result text. `notes` are extra lines (skipped input files, files that could not be
/// stored).
pub(crate) fn render(
    result: &ExecResult,
    limits: &ExecLimits,
    returned: &[Returned],
    notes: &[String],
) -> String {
    let mut out = String::new();
    let status = match result.exit_code {
        Some(code) => format!("exit code: {code}"),
        None => "exit code: none (the process was killed)".to_owned(),
    };
    let _ = writeln!(out, "{status}; ran {:.2} s", result.duration.as_secs_f64());
    if result.timed_out {
        let _ = writeln!(
            out,
            "note: timed out: killed at the time limit of {} s",
            limits.wall_time.as_secs_f64()
        );
    }
    if result.oom_killed {
        let _ = writeln!(
            out,
            "note: killed for using too much memory (limit {})",
            human_bytes(limits.memory_bytes)
        );
    }
    if result.truncated {
        let _ = writeln!(
            out,
            "note: output truncated: at most {} of stdout and of stderr are kept, and at most {} of files returned",
            human_bytes(limits.output_bytes as u64),
            human_bytes(limits.files_bytes)
        );
    }
    for note in notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !returned.is_empty() {
        let _ = writeln!(out, "files returned to the user:");
        for f in returned {
            let _ = writeln!(
                out,
                "- /work/out/{} ({}, {})",
                f.path,
                f.content_type,
                human_bytes(f.size)
            );
        }
    }
    section(&mut out, "stdout", &result.stdout);
    section(&mut out, "stderr", &result.stderr);
    out
}

fn section(out: &mut String, name: &str, text: &str) {
    if text.is_empty() {
        let _ = writeln!(out, "--- {name}: (empty)");
        return;
    }
    let _ = writeln!(out, "--- {name}:");
    out.push_str(text);
    if !text.ends_with('\n') {
        out.push('\n');
    }
}
