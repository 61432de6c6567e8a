//! Time-limited download links for blobs.
//!
//! A link is the blob key, an expiry (unix seconds) and an HMAC-SHA256 over `"{key}\n{expires}"`
//! under a 32-byte secret shared by every replica (derive it from the master key). The gateway
//! serves `GET /v1/blobs/{*key}?expires=…&sig=…`: deserialize the query into [`LinkQuery`]
//! and call [`LinkSigner::verify_query`] before reading the blob. Must never contain HTTP
//! handling or authorization beyond the signature.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a link was refused. Both map to 403; `Expired` may say so to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The link was genuine but its time is up.
    #[error("the link has expired")]
    Expired,
    /// The signature does not match the key and expiry (tampered or forged).
    #[error("the link signature is invalid")]
    BadSignature,
}

/// A signed download link.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignedLink {
    /// The blob key (already URL-path safe: blob keys use `A–Z a–z 0–9 . _ - /` only).
    pub key: String,
    /// Expiry, unix seconds; the link is valid while `now < expires`.
    pub expires: i64,
    /// Lowercase hex HMAC-SHA256 over `"{key}\n{expires}"`.
    pub signature: String,
}

impl SignedLink {
    /// `expires=…&sig=…`, URL-safe as is (digits and hex).
    pub fn query_string(&self) -> String {
        format!("expires={}&sig={}", self.expires, self.signature)
    }

    /// `/v1/blobs/{key}?expires=…&sig=…`, to append to the public base URL.
    pub fn path_and_query(&self) -> String {
        format!("/v1/blobs/{}?{}", self.key, self.query_string())
    }
}

/// The query of a download request, as sent by [`SignedLink::query_string`]
/// (e.g. with axum's `Query<LinkQuery>`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct LinkQuery {
    /// Expiry, unix seconds.
    pub expires: i64,
    /// Hex signature.
    pub sig: String,
}

/// Signs and verifies download links.
#[derive(Clone)]
pub struct LinkSigner {
    mac: HmacSha256,
}

impl fmt::Debug for LinkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LinkSigner([REDACTED])")
    }
}

impl LinkSigner {
    /// A signer with `secret`; every replica must use the same one.
    pub fn new(secret: [u8; 32]) -> Self {
        let mac = <HmacSha256 as Mac>::new_from_slice(&secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        Self { mac }
    }

    /// A link to `key` valid until `expires_at` (rounded down to the second).
    pub fn sign(&self, key: &str, expires_at: DateTime<Utc>) -> SignedLink {
        let expires = expires_at.timestamp();
        SignedLink {
            key: key.to_owned(),
            expires,
            signature: hex::encode(self.mac_for(key, expires).finalize().into_bytes()),
        }
    }

    /// A link to `key` valid for `ttl` from now.
    pub fn sign_for(&self, key: &str, ttl: Duration) -> SignedLink {
        self.sign(key, Utc::now() + ttl)
    }

    /// Checks a link at time `now`: the signature first (compared in constant time), then the
    /// expiry, so only genuine links learn they expired.
    pub fn verify(
        &self,
        key: &str,
        expires: i64,
        signature: &str,
        now: DateTime<Utc>,
    ) -> Result<(), LinkError> {
        let signature = hex::decode(signature).map_err(|_| LinkError::BadSignature)?;
        self.mac_for(key, expires)
            .verify_slice(&signature)
            .map_err(|_| LinkError::BadSignature)?;
        if now.timestamp() >= expires {
            return Err(LinkError::Expired);
        }
        Ok(())
    }

    /// [`LinkSigner::verify`] with a deserialized query.
    pub fn verify_query(
        &self,
        key: &str,
        query: &LinkQuery,
        now: DateTime<Utc>,
    ) -> Result<(), LinkError> {
        self.verify(key, query.expires, &query.sig, now)
    }

    fn mac_for(&self, key: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(key.as_bytes());
        mac.update(b"\n");
        mac.update(expires.to_string().as_bytes());
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_key_newline_expires() {
        let signer = LinkSigner::new([7; 32]);
        let link = signer.sign("a/b", DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&[7; 32]).unwrap();
        mac.update(b"a/b\n1700000000");
        assert_eq!(link.signature, hex::encode(mac.finalize().into_bytes()));
        assert_eq!(
            link.query_string(),
            format!("expires=1700000000&sig={}", link.signature)
        );
        assert_eq!(
            link.path_and_query(),
            format!("/v1/blobs/a/b?{}", link.query_string())
        );
        assert_eq!(format!("{signer:?}"), "LinkSigner([REDACTED])");
    }

    #[test]
    fn boundary_second_is_expired() {
        let signer = LinkSigner::new([1; 32]);
        let at = DateTime::from_timestamp(1_000, 0).unwrap();
        let link = signer.sign("k", at);
        let before = DateTime::from_timestamp(999, 999_000_000).unwrap();
        assert_eq!(
            signer.verify("k", link.expires, &link.signature, before),
            Ok(())
        );
        assert_eq!(
            signer.verify("k", link.expires, &link.signature, at),
            Err(LinkError::Expired)
        );
    }
}
