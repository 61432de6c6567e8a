//! The runtime's error type.

use nexus_store::StoreError;

/// A request the runtime could not accept.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// A referenced record does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was missing.
        what: &'static str,
    },
    /// The request is malformed.
    #[error("invalid input: {message}")]
    InvalidInput {
        /// What is wrong.
        message: String,
    },
    /// The runtime is shutting down and takes no new turns.
    #[error("shutting down")]
    ShuttingDown,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}
