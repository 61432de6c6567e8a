//! Nexus security primitives.
//!
//! Owns the master key ([`master_key`]), envelope encryption of secrets with one data key per
//! user ([`envelope`], composed for callers by [`vault::Vault`]), API key generation and hashing
//! ([`api_key`]), and the authenticated caller with its role checks ([`principal`]).
//!
//! Must never contain storage code (the gateway adapts the store to
//! [`vault::WrappedKeyStore`]), configuration-file parsing, or HTTP/gRPC handling. Key material
//! never reaches `Debug`, `Display` or logs.

pub mod api_key;
pub mod envelope;
pub mod error;
pub mod master_key;
pub mod principal;
pub mod vault;

pub use api_key::{GeneratedKey, generate_api_key, hash_api_key, looks_like_api_key};
pub use envelope::DataKey;
pub use error::SecurityError;
pub use master_key::{KeyOrigin, MasterKey, MasterKeySource};
pub use principal::Principal;
pub use vault::{Vault, WrappedKeyStore};
