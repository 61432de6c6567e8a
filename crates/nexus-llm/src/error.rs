//! The configuration error of this crate: what can be wrong before any model is called.
//!
//! Errors of model calls are [`LlmError`](nexus_core::llm::LlmError), defined in `nexus-core`.

/// A provider could not be configured.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// An environment variable holds a value that cannot be used.
    #[error("environment variable {var} is invalid: {reason}")]
    InvalidEnv {
        /// The variable, e.g. `OPENAI_BASE_URL`.
        var: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// A configuration value cannot be used.
    #[error("invalid provider setting `{field}`: {reason}")]
    InvalidValue {
        /// The setting, e.g. `base_url`.
        field: &'static str,
        /// What is wrong and how to fix it.
        reason: String,
    },
}
