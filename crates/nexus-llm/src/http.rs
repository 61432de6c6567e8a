//! The providers' HTTP clients, built on their first call.
//!
//! Building a client loads the system's root certificates: a few milliseconds of a server's
//! start, for a provider that may not be called for a while. The settings are checked when the
//! provider is configured; the client is built when the first call needs it.

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use reqwest::header::HeaderMap;

use crate::LlmError;
use crate::pump::error_chain;

/// How long an idle connection to a provider is kept.
const POOL_IDLE: Duration = Duration::from_secs(90);

/// A provider's HTTP client, built on first use and shared by the provider's clones.
#[derive(Clone)]
pub(crate) struct LazyClient {
    inner: Arc<Inner>,
}

struct Inner {
    client: OnceLock<reqwest::Client>,
    /// Sent with every request (the API key among them).
    headers: HeaderMap,
    connect_timeout: Duration,
}

impl fmt::Debug for LazyClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the headers: they hold the API key.
        f.debug_struct("LazyClient")
            .field("built", &self.inner.client.get().is_some())
            .field("connect_timeout", &self.inner.connect_timeout)
            .finish_non_exhaustive()
    }
}

impl LazyClient {
    pub(crate) fn new(headers: HeaderMap, connect_timeout: Duration) -> Self {
        LazyClient {
            inner: Arc::new(Inner {
                client: OnceLock::new(),
                headers,
                connect_timeout,
            }),
        }
    }

    /// The client, built now if it was not yet.
    pub(crate) fn get(&self) -> Result<&reqwest::Client, LlmError> {
        if let Some(client) = self.inner.client.get() {
            return Ok(client);
        }
        let client = reqwest::Client::builder()
            .default_headers(self.inner.headers.clone())
            .connect_timeout(self.inner.connect_timeout)
            .tcp_nodelay(true)
            .pool_idle_timeout(POOL_IDLE)
            .user_agent(concat!("nexus/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| LlmError::Transport {
                message: format!("cannot build the HTTP client: {}", error_chain(&err)),
            })?;
        // Two first calls at once build two clients; one is kept, both work.
        Ok(self.inner.client.get_or_init(|| client))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn the_client_is_built_once_and_shared_by_clones_without_showing_the_key() {
        let mut headers = HeaderMap::new();
        let mut key = HeaderValue::from_static("Bearer sk-secret");
        key.set_sensitive(true);
        headers.insert("authorization", key);
        let lazy = LazyClient::new(headers, Duration::from_secs(1));
        let clone = lazy.clone();
        assert!(lazy.inner.client.get().is_none());
        lazy.get().unwrap();
        assert!(clone.inner.client.get().is_some());
        assert!(!format!("{lazy:?}").contains("secret"));
    }
}
