//! HTTP clients built on their first request.
//!
//! Building a client loads the system's root certificates: milliseconds of a server's start for
//! a tool that may not be called for a while. The settings are checked when the tool is
//! configured; the client is built when the first request needs it.

use std::fmt;
use std::sync::{Arc, OnceLock};

type Build = dyn Fn() -> reqwest::Result<reqwest::Client> + Send + Sync;

/// A client built on first use and shared by clones.
#[derive(Clone)]
pub(crate) struct LazyHttp {
    client: Arc<OnceLock<reqwest::Client>>,
    build: Arc<Build>,
}

impl fmt::Debug for LazyHttp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LazyHttp")
            .field("built", &self.client.get().is_some())
            .finish_non_exhaustive()
    }
}

impl LazyHttp {
    /// A client that `build` makes when it is first needed.
    pub(crate) fn new(
        build: impl Fn() -> reqwest::Result<reqwest::Client> + Send + Sync + 'static,
    ) -> Self {
        LazyHttp {
            client: Arc::default(),
            build: Arc::new(build),
        }
    }

    /// The client, built now if it was not yet.
    pub(crate) fn client(&self) -> reqwest::Result<&reqwest::Client> {
        if let Some(client) = self.client.get() {
            return Ok(client);
        }
        let client = (self.build)()?;
        // Two first requests at once build two clients; one is kept, both work.
        Ok(self.client.get_or_init(|| client))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn the_client_is_built_on_first_use_once_for_all_clones() {
        let builds = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&builds);
        let lazy = LazyHttp::new(move || {
            counted.fetch_add(1, Ordering::Relaxed);
            reqwest::Client::builder().build()
        });
        let clone = lazy.clone();
        assert_eq!(builds.load(Ordering::Relaxed), 0);
        lazy.client().unwrap();
        clone.client().unwrap();
        assert_eq!(builds.load(Ordering::Relaxed), 1);
    }
}
