//! `CodeConfig`: the limits of the `code` tool, as the operator writes them, and their
//! validation into [`ExecLimits`].

use std::time::Duration;

use nexus_core::ExecLimits;
use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Settings of the `code` tool (the sandbox backend is chosen elsewhere). Every field has a
/// default; a value out of range is refused by [`CodeTool::new`](super::CodeTool::new) with
/// the key named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CodeConfig {
    /// Longest a run may take, in seconds, from start to kill; the model may ask for less
    /// (`timeout_secs`) but never more. 1 to 3600. Default 30.
    pub timeout_secs: u64,
    /// Memory of a run (RAM, no swap), in MiB. At least 16. Default 256.
    pub memory_mib: u64,
    /// CPU share in cores (0.5 = half a core). More than 0, at most 64. Default 1.0.
    pub cpus: f64,
    /// Most processes and threads at once. 8 to 4096. Default 64.
    pub pids: u32,
    /// Bytes of stdout and of stderr kept each; the rest is dropped with a note. 1 KiB to
    /// 1 MiB. Default 12288 (12 KiB), so both streams fit in the default 32 KiB the executor
    /// gives the model.
    pub output_bytes: usize,
    /// Size of the writable working directory `/work`, in MiB (held in memory). 1 to 4096.
    /// Default 64.
    pub disk_mib: u64,
    /// Most MiB of files returned from `/work/out` in total. At most `disk_mib`. Default 16.
    pub output_files_mib: u64,
    /// Most MiB of the user's files copied into `/work` in total; a file that would pass it
    /// is skipped with a note. At most `disk_mib`. Default 16.
    pub input_files_mib: u64,
    /// Most bytes of program text. 1 to 120000 (a program is passed as one argument, which
    /// Linux caps at 128 KiB). Default 100000.
    pub max_code_bytes: usize,
    /// Whether a session's sandbox is kept warm between its runs (reset in between: the
    /// working directory is emptied and leftover processes are killed). Default true.
    pub warm: bool,
}

impl Default for CodeConfig {
    fn default() -> Self {
        CodeConfig {
            timeout_secs: 30,
            memory_mib: 256,
            cpus: 1.0,
            pids: 64,
            output_bytes: 12 * 1024,
            disk_mib: 64,
            output_files_mib: 16,
            input_files_mib: 16,
            max_code_bytes: 100_000,
            warm: true,
        }
    }
}

/// A setting of [`CodeConfig`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("code tool setting `{key}`: {reason}")]
pub struct CodeConfigError {
    /// The key, as written in the configuration.
    pub key: &'static str,
    /// What is wrong and what is accepted.
    pub reason: String,
}

fn check(ok: bool, key: &'static str, reason: &str) -> Result<(), CodeConfigError> {
    if ok {
        Ok(())
    } else {
        Err(CodeConfigError {
            key,
            reason: reason.to_owned(),
        })
    }
}

/// [`CodeConfig`] once validated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CodeSettings {
    /// The limits of a run asking for no shorter timeout.
    pub(crate) limits: ExecLimits,
    pub(crate) input_files_bytes: u64,
    pub(crate) max_code_bytes: usize,
    pub(crate) warm: bool,
}

impl TryFrom<&CodeConfig> for CodeSettings {
    type Error = CodeConfigError;

    fn try_from(c: &CodeConfig) -> Result<Self, Self::Error> {
        check(
            (1..=3600).contains(&c.timeout_secs),
            "timeout_secs",
            "must be 1 to 3600 seconds",
        )?;
        check(
            (16..=1024 * 1024).contains(&c.memory_mib),
            "memory_mib",
            "must be 16 to 1048576 MiB",
        )?;
        check(
            c.cpus.is_finite() && c.cpus > 0.0 && c.cpus <= 64.0,
            "cpus",
            "must be more than 0 and at most 64 cores",
        )?;
        check((8..=4096).contains(&c.pids), "pids", "must be 8 to 4096")?;
        check(
            (1024..=1024 * 1024).contains(&c.output_bytes),
            "output_bytes",
            "must be 1024 to 1048576 bytes",
        )?;
        check(
            (1..=4096).contains(&c.disk_mib),
            "disk_mib",
            "must be 1 to 4096 MiB",
        )?;
        check(
            c.output_files_mib <= c.disk_mib,
            "output_files_mib",
            "must be at most disk_mib",
        )?;
        check(
            c.input_files_mib <= c.disk_mib,
            "input_files_mib",
            "must be at most disk_mib",
        )?;
        check(
            (1..=120_000).contains(&c.max_code_bytes),
            "max_code_bytes",
            "must be 1 to 120000 bytes",
        )?;
        Ok(CodeSettings {
            limits: ExecLimits {
                wall_time: Duration::from_secs(c.timeout_secs),
                memory_bytes: c.memory_mib * MIB,
                cpus: c.cpus,
                pids: c.pids,
                output_bytes: c.output_bytes,
                disk_bytes: c.disk_mib * MIB,
                files_bytes: c.output_files_mib * MIB,
            },
            input_files_bytes: c.input_files_mib * MIB,
            max_code_bytes: c.max_code_bytes,
            warm: c.warm,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_match_the_documented_limits() {
        let s = CodeSettings::try_from(&CodeConfig::default()).unwrap();
        assert_eq!(s.limits.wall_time, Duration::from_secs(30));
        assert_eq!(s.limits.memory_bytes, 256 * MIB);
        assert_eq!(s.limits.files_bytes, 16 * MIB);
        assert!(s.warm);
    }

    #[test]
    fn an_out_of_range_setting_is_refused_with_its_key() {
        let bad = CodeConfig {
            cpus: f64::NAN,
            ..CodeConfig::default()
        };
        assert_eq!(CodeSettings::try_from(&bad).unwrap_err().key, "cpus");
        let bad = CodeConfig {
            input_files_mib: 100,
            ..CodeConfig::default()
        };
        assert_eq!(
            CodeSettings::try_from(&bad).unwrap_err().key,
            "input_files_mib"
        );
    }

    #[test]
    fn unknown_keys_are_refused_and_missing_ones_take_defaults() {
        let c: CodeConfig = serde_json::from_str(r#"{"timeout_secs": 5}"#).unwrap();
        assert_eq!(c.timeout_secs, 5);
        assert_eq!(c.memory_mib, 256);
        assert!(serde_json::from_str::<CodeConfig>(r#"{"timeout": 5}"#).is_err());
    }
}
