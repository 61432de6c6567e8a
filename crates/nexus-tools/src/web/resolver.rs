//! The DNS resolver of the guarded client: it resolves a name through
//! [`NetworkGuard::resolve`] and hands reqwest only the checked addresses, so a connection can
//! only go to an address that passed the guard (no second lookup, no rebinding window). A
//! refusal travels back inside reqwest's error as the [`GuardError`] itself, found again by
//! [`FetchError::from_reqwest`](super::refusal::FetchError).
//!
//! hyper does not call the resolver for IP-literal hosts: the client checks those itself.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::net::NetworkGuard;

/// Resolves through the guard.
#[derive(Debug, Clone)]
pub(crate) struct GuardedResolver {
    guard: NetworkGuard,
}

impl GuardedResolver {
    pub(crate) fn new(guard: NetworkGuard) -> Self {
        GuardedResolver { guard }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest puts the URL's port on the addresses it gets back.
            match guard.resolve(&host, 0).await {
                Ok(addrs) => {
                    tracing::debug!(%host, ?addrs, "Resolved through the network guard");
                    Ok(Box::new(addrs.into_iter()) as Addrs)
                }
                Err(err) => {
                    tracing::info!(%host, error = %err, "Network guard refused a connection");
                    Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>)
                }
            }
        })
    }
}
