//! The store's error type.

/// A failed store operation.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for ("agent", "session", …).
        what: &'static str,
    },
    /// A unique constraint refused the write (a name taken, a duplicate key).
    #[error("{what} already exists")]
    Conflict {
        /// What collided ("agent name", "user name", …).
        what: &'static str,
    },
    /// A stored value could not be read back into its type.
    #[error("corrupt {what} in storage: {detail}")]
    Corrupt {
        /// Which record or column.
        what: &'static str,
        /// What was wrong.
        detail: String,
    },
    /// The database URL, object storage settings or other options are invalid.
    #[error("invalid storage configuration: {0}")]
    Config(String),
    /// The database failed or is unreachable.
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration failed: {0}")]
    Migration(#[source] sqlx::migrate::MigrateError),
    /// Object storage failed.
    #[error("object storage error: {0}")]
    Blob(#[source] object_store::Error),
    /// A blob is larger than the configured limit.
    #[error("object of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The size offered.
        size: u64,
        /// The limit.
        limit: u64,
    },
}

/// Shorthand for store results.
pub type StoreResult<T> = Result<T, StoreError>;
