//! Nexus persistence.
//!
//! Owns the store contract ([`Store`] and its per-aggregate traits), its two backends —
//! embedded SQLite ([`sqlite`]) and PostgreSQL/CockroachDB ([`postgres`]) — with one migration
//! folder per dialect, and object storage for blobs ([`blob`]). [`open`] picks the backend from
//! a database URL.
//!
//! Must never contain business rules (who may see what, when a turn is retried): callers decide,
//! the store keeps records consistent and transactions atomic.

pub mod blob;
mod codec;
pub mod error;
pub mod postgres;
pub mod records;
mod retry;
mod sql;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod traits;

pub use error::{StoreError, StoreResult};
pub use records::*;
pub use traits::*;

use std::sync::Arc;

/// How [`open`] connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenOptions {
    /// Connections in the pool. Default 10. An in-memory SQLite database always uses one
    /// connection (each connection would otherwise see its own empty database).
    pub max_connections: u32,
    /// Whether to apply pending migrations on open. Default `true`; a deployment that runs
    /// `nexus migrate` as a separate step turns it off.
    pub migrate: bool,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            max_connections: 10,
            migrate: true,
        }
    }
}

/// Opens the store a database URL names: `sqlite://PATH`, `sqlite:PATH` or `sqlite::memory:`
/// for SQLite (the file is created if missing), `postgres://…` or `postgresql://…` for
/// PostgreSQL and CockroachDB.
pub async fn open(url: &str, options: &OpenOptions) -> StoreResult<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(sqlite::SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(
            postgres::PostgresStore::connect(url, options).await?,
        ))
    } else {
        Err(StoreError::Config(format!(
            "unsupported database URL `{}`: expected sqlite:PATH, sqlite::memory: or postgres://…",
            redact(url)
        )))
    }
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
