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
pub mod error;
pub mod postgres;
pub mod records;
mod retry;
pub mod sqlite;
#[cfg(feature = "test-support")]
pub mod testing;
pub mod traits;

pub use error::{StoreError, StoreResult};
pub use records::*;
pub use traits::*;
