//! What every fake keeps and how every fake serves: the queue of scripted replies, the requests
//! received (the newest, up to a cap), counters of requests and connections, a source of ids,
//! and an HTTP server on a loopback listener with TCP_NODELAY that stops when its handle goes.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

/// Locks `mutex`, ignoring poisoning (a panicking test must not wedge the fake).
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Scripted replies of type `R` and recorded requests of type `Q`.
#[derive(Debug)]
pub(crate) struct Journal<R, Q> {
    script: Mutex<VecDeque<R>>,
    recorded: Mutex<VecDeque<Q>>,
    /// Requests kept at most (`0` keeps none, only the count).
    max_recorded: usize,
    count: AtomicU64,
    connections: Arc<AtomicU64>,
    seq: AtomicU64,
}

impl<R, Q: Clone> Journal<R, Q> {
    pub(crate) fn new(max_recorded: usize) -> Self {
        Journal {
            script: Mutex::new(VecDeque::new()),
            recorded: Mutex::new(VecDeque::new()),
            max_recorded,
            count: AtomicU64::new(0),
            connections: Arc::new(AtomicU64::new(0)),
            seq: AtomicU64::new(1),
        }
    }

    /// Queues a reply (first in, first out).
    pub(crate) fn push(&self, reply: R) {
        lock(&self.script).push_back(reply);
    }

    /// The next scripted reply, if any.
    pub(crate) fn next_scripted(&self) -> Option<R> {
        lock(&self.script).pop_front()
    }

    /// Scripted replies not yet consumed.
    pub(crate) fn pending(&self) -> usize {
        lock(&self.script).len()
    }

    /// Whether recorded requests are kept (else only counted).
    pub(crate) fn keeps_requests(&self) -> bool {
        self.max_recorded > 0
    }

    /// Counts a request and keeps it (dropping the oldest past the cap).
    pub(crate) fn record(&self, request: Q) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if self.max_recorded == 0 {
            return;
        }
        let mut recorded = lock(&self.recorded);
        while recorded.len() >= self.max_recorded {
            recorded.pop_front();
        }
        recorded.push_back(request);
    }

    /// The kept requests, oldest first.
    pub(crate) fn requests(&self) -> Vec<Q> {
        lock(&self.recorded).iter().cloned().collect()
    }

    /// The newest kept request.
    pub(crate) fn last(&self) -> Option<Q> {
        lock(&self.recorded).back().cloned()
    }

    /// Requests received, kept or not.
    pub(crate) fn request_count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// TCP connections accepted.
    pub(crate) fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }

    /// A fresh number for ids.
    pub(crate) fn next_id(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Serves `app` on `listener`, counting connections in this journal, until the returned
    /// handle is dropped.
    pub(crate) fn serve(
        &self,
        listener: tokio::net::TcpListener,
        app: Router,
        name: &'static str,
    ) -> Stop {
        let (stop, stopped) = oneshot::channel::<()>();
        let connections = Arc::clone(&self.connections);
        let listener = listener.tap_io(move |tcp| {
            connections.fetch_add(1, Ordering::Relaxed);
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, fake = name, "Cannot set TCP_NODELAY");
            }
        });
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::warn!(error = %err, fake = name, "Fake server stopped");
            }
        });
        Stop(Some(stop))
    }
}

/// Stops a fake's server when dropped.
#[derive(Debug)]
pub(crate) struct Stop(Option<oneshot::Sender<()>>);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            // The server may already be gone; nothing to do then.
            let _ = tx.send(());
        }
    }
}
