//! The API error: what a caller is told, mapped to gRPC status codes in exactly one place.
//! Causes of internal errors are logged, never sent.

use nexus_runtime::RuntimeError;
use nexus_store::StoreError;
use tracing::error;

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No, a malformed, an unknown or a revoked API key.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller's role does not allow the call.
    #[error("{0}")]
    PermissionDenied(String),
    /// The record does not exist or belongs to someone else.
    #[error("{0}")]
    NotFound(String),
    /// The request is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// A name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// A failure inside the server; the cause is logged.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// A `NotFound` for a kind of record and the reference the caller gave.
    pub(crate) fn not_found(what: &str, reference: &str) -> Self {
        ApiError::NotFound(format!("{what} `{reference}` not found"))
    }

    /// An `InvalidArgument` from a message.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ApiError::InvalidArgument(message.into())
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::NotFound { what } => ApiError::NotFound(format!("{what} not found")),
            StoreError::Conflict { what } => {
                ApiError::AlreadyExists(format!("{what} already exists"))
            }
            StoreError::TooLarge { size, limit } => ApiError::InvalidArgument(format!(
                "object of {size} bytes exceeds the limit of {limit} bytes"
            )),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<RuntimeError> for ApiError {
    fn from(err: RuntimeError) -> Self {
        match err {
            RuntimeError::NotFound { what } => ApiError::NotFound(format!("{what} not found")),
            RuntimeError::InvalidInput { message } => ApiError::InvalidArgument(message),
            RuntimeError::ShuttingDown => {
                ApiError::Unavailable("the server is shutting down; retry shortly".to_owned())
            }
            RuntimeError::Store(err) => err.into(),
            other => ApiError::Internal(Box::new(other)),
        }
    }
}

impl From<ApiError> for tonic::Status {
    fn from(err: ApiError) -> Self {
        match err {
            ApiError::Unauthenticated(m) => tonic::Status::unauthenticated(m),
            ApiError::PermissionDenied(m) => tonic::Status::permission_denied(m),
            ApiError::NotFound(m) => tonic::Status::not_found(m),
            ApiError::InvalidArgument(m) => tonic::Status::invalid_argument(m),
            ApiError::AlreadyExists(m) => tonic::Status::already_exists(m),
            ApiError::Unavailable(m) => tonic::Status::unavailable(m),
            ApiError::Internal(cause) => {
                error!(error = %cause, "Internal error in an API call");
                tonic::Status::internal("internal error; see the server log")
            }
        }
    }
}
