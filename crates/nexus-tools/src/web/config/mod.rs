//! Configuration of the web tools (`[tools.web_fetch]` in `fetch`, `[tools.web_search]` in
//! `search`): serde structs with documented defaults, validated into the settings the tools run
//! with, and the error naming the key to fix. Every field is user documentation
//! (docs/tools/web.md repeats it).

mod fetch;
mod search;

pub(crate) use fetch::FetchSettings;
pub use fetch::{DEFAULT_FETCH_PORTS, WebFetchConfig};
pub(crate) use search::{MAX_RESULTS, SearchSettings};
pub use search::{TimeRange, WebSearchConfig};

use std::time::Duration;

/// The User-Agent of a web tool: `Nexus/<version> (+<tool>)`.
pub fn user_agent(tool: &str) -> String {
    format!("Nexus/{} (+{tool})", env!("CARGO_PKG_VERSION"))
}

/// A configuration the web tools cannot run with, naming the key and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebConfigError {
    /// A required key is missing.
    #[error("{key} is required: {hint}")]
    Missing {
        /// The key, e.g. `tools.web_search.searxng_url`.
        key: &'static str,
        /// What to put there.
        hint: &'static str,
    },
    /// A value is out of its range.
    #[error("{key} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// The accepted range.
        expected: &'static str,
    },
    /// A value is malformed.
    #[error("{key}: `{value}` is not valid: {message}")]
    Invalid {
        /// The key.
        key: &'static str,
        /// The value given.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// The network guard given to `WebFetch::new` refuses a range the configuration allows.
    #[error(
        "tools.web_fetch.allow lists {range} but the network guard given refuses it; build the \
         guard with WebFetchConfig::network_guard()"
    )]
    GuardMismatch {
        /// The allowlisted range.
        range: String,
    },
}

pub(super) fn positive_secs(key: &'static str, secs: u64) -> Result<Duration, WebConfigError> {
    if secs == 0 {
        return Err(WebConfigError::OutOfRange {
            key,
            value: "0".to_owned(),
            expected: "at least 1 second",
        });
    }
    Ok(Duration::from_secs(secs))
}

pub(super) fn at_least(
    key: &'static str,
    value: usize,
    min: usize,
    expected: &'static str,
) -> Result<usize, WebConfigError> {
    if value < min {
        return Err(WebConfigError::OutOfRange {
            key,
            value: value.to_string(),
            expected,
        });
    }
    Ok(value)
}
