//! `[tools.browser]`: the configuration as written, and the validated settings the tool runs on.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default seconds a session's browser context may stay unused before it is closed.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 300;
/// Default seconds one action may take.
pub const DEFAULT_ACTION_TIMEOUT_SECS: u64 = 20;
/// Default bytes of page text given back.
pub const DEFAULT_MAX_TEXT_BYTES: usize = 16 * 1024;
/// Default viewport width, in CSS pixels.
pub const DEFAULT_VIEWPORT_WIDTH: u32 = 1280;
/// Default viewport height, in CSS pixels.
pub const DEFAULT_VIEWPORT_HEIGHT: u32 = 800;
/// Default number of sessions with an open browser context.
pub const DEFAULT_MAX_CONTEXTS: usize = 8;

/// The browser tool's configuration (`[tools.browser]`). Every field has a default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BrowserConfig {
    /// Chromium executable: a path, or a name looked up on PATH. Default: the first of
    /// `chromium`, `chromium-browser`, `google-chrome`, `google-chrome-stable` on PATH.
    pub executable: Option<PathBuf>,
    /// Run Chromium with `--no-sandbox`. Default: only when the server runs as root (Chromium
    /// refuses to start as root with its sandbox on).
    pub no_sandbox: Option<bool>,
    /// Seconds a session's browser context (its page, cookies and storage) may stay unused
    /// before it is closed; once no context is left, Chromium itself is stopped. Default 300.
    pub idle_timeout_secs: u64,
    /// Seconds one action (navigate, click, type, extract, screenshot) may take, including
    /// starting the browser; never more than the tool call's own deadline. Default 20.
    pub action_timeout_secs: u64,
    /// Bytes of page text returned by `navigate` and `extract` (cut on a character boundary).
    /// Default 16384.
    pub max_text_bytes: usize,
    /// Viewport width in CSS pixels. Default 1280.
    pub viewport_width: u32,
    /// Viewport height in CSS pixels. Default 800.
    pub viewport_height: u32,
    /// Sessions with an open browser context at once; opening one more closes the least
    /// recently used idle one. Default 8.
    pub max_contexts: usize,
}

impl Default for BrowserConfig {
    fn default() -> Self {
        BrowserConfig {
            executable: None,
            no_sandbox: None,
            idle_timeout_secs: DEFAULT_IDLE_TIMEOUT_SECS,
            action_timeout_secs: DEFAULT_ACTION_TIMEOUT_SECS,
            max_text_bytes: DEFAULT_MAX_TEXT_BYTES,
            viewport_width: DEFAULT_VIEWPORT_WIDTH,
            viewport_height: DEFAULT_VIEWPORT_HEIGHT,
            max_contexts: DEFAULT_MAX_CONTEXTS,
        }
    }
}

/// A configuration value out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("[tools.browser] {key}: {problem}")]
pub struct BrowserConfigError {
    /// The key.
    pub key: &'static str,
    /// What is wrong and the accepted range.
    pub problem: String,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BrowserSettings {
    pub(crate) executable: Option<PathBuf>,
    pub(crate) no_sandbox: bool,
    pub(crate) idle_timeout: Duration,
    pub(crate) action_timeout: Duration,
    pub(crate) max_text_bytes: usize,
    pub(crate) viewport_width: u32,
    pub(crate) viewport_height: u32,
    pub(crate) max_contexts: usize,
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    key: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<T, BrowserConfigError> {
    if value < min || value > max {
        return Err(BrowserConfigError {
            key,
            problem: format!("{value} is outside {min}..={max}"),
        });
    }
    Ok(value)
}

impl TryFrom<BrowserConfig> for BrowserSettings {
    type Error = BrowserConfigError;

    fn try_from(c: BrowserConfig) -> Result<Self, Self::Error> {
        if c.executable
            .as_ref()
            .is_some_and(|p| p.as_os_str().is_empty())
        {
            return Err(BrowserConfigError {
                key: "executable",
                problem: "empty; leave it out to search PATH".to_owned(),
            });
        }
        let idle = in_range("idle_timeout_secs", c.idle_timeout_secs, 1, 86_400)?;
        let action = in_range("action_timeout_secs", c.action_timeout_secs, 1, 600)?;
        Ok(BrowserSettings {
            no_sandbox: c.no_sandbox.unwrap_or_else(running_as_root),
            executable: c.executable,
            idle_timeout: Duration::from_secs(idle),
            action_timeout: Duration::from_secs(action),
            max_text_bytes: in_range("max_text_bytes", c.max_text_bytes, 256, 4 << 20)?,
            viewport_width: in_range("viewport_width", c.viewport_width, 200, 4096)?,
            viewport_height: in_range("viewport_height", c.viewport_height, 200, 4096)?,
            max_contexts: in_range("max_contexts", c.max_contexts, 1, 256)?,
        })
    }
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_configuration_takes_the_documented_defaults() {
        let config: BrowserConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(config, BrowserConfig::default());
        let settings = BrowserSettings::try_from(config).unwrap();
        assert_eq!(settings.idle_timeout, Duration::from_secs(300));
        assert_eq!(settings.action_timeout, Duration::from_secs(20));
        assert_eq!(settings.max_text_bytes, 16384);
        assert_eq!(
            (settings.viewport_width, settings.viewport_height),
            (1280, 800)
        );
        assert_eq!(settings.max_contexts, 8);
        assert_eq!(settings.no_sandbox, running_as_root());
    }

    #[test]
    fn out_of_range_values_name_their_key() {
        let err = BrowserSettings::try_from(BrowserConfig {
            action_timeout_secs: 0,
            ..BrowserConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.key, "action_timeout_secs");
        assert!(err.to_string().contains("1..=600"), "{err}");
        let err = BrowserSettings::try_from(BrowserConfig {
            max_contexts: 0,
            ..BrowserConfig::default()
        })
        .unwrap_err();
        assert_eq!(err.key, "max_contexts");
        assert!(serde_json::from_str::<BrowserConfig>(r#"{"idle_timeout": 3}"#).is_err());
    }
}
