//! Session workers: turns of one session run one after another, different sessions run
//! concurrently.
//!
//! A kick for a session starts its worker unless one runs, in which case the running worker is
//! told to look again before it exits. A worker takes the session's lease (when leases are on),
//! answers the session's pending inbox items oldest first, and exits when none remain. When the
//! lease is held by another replica, turns that local clients wait for are followed in the
//! database instead, and the session is kicked again until it is answered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{SessionId, TurnEvent, TurnId};
use nexus_store::InboxStatus;
use tracing::{Instrument, error, info_span, warn};

use crate::runtime::Shared;
use crate::turn::{TurnEnd, run_turn};

/// Whether a session's worker must look at the inbox again before exiting.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    running: Mutex<HashMap<SessionId, bool>>,
}

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, bool>> {
        // Each operation is a single map update, so a poisoned lock holds consistent data.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Marks the session as needing work; returns true if the caller must start a worker.
    fn claim(&self, session: SessionId) -> bool {
        let mut running = self.lock();
        match running.get_mut(&session) {
            Some(dirty) => {
                *dirty = true;
                false
            }
            None => {
                running.insert(session, false);
                true
            }
        }
    }

    /// Called by a worker that found nothing to do: exits (true) unless it was kicked meanwhile.
    fn release(&self, session: SessionId) -> bool {
        let mut running = self.lock();
        match running.get_mut(&session) {
            Some(dirty) if *dirty => {
                *dirty = false;
                false
            }
            _ => {
                running.remove(&session);
                true
            }
        }
    }

    /// How many sessions have a worker.
    pub(crate) fn active(&self) -> usize {
        self.lock().len()
    }
}

/// Makes sure the session's pending items get answered.
pub(crate) fn kick(rt: &Arc<Shared>, session: SessionId) {
    if rt.cancel.is_cancelled() || !rt.workers.claim(session) {
        return;
    }
    let worker_rt = Arc::clone(rt);
    rt.tracker.spawn(
        async move { work_session(worker_rt, session).await }
            .instrument(info_span!("session_worker", session_id = %session)),
    );
}

fn lease_name(session: SessionId) -> String {
    format!("session:{session}")
}

async fn work_session(rt: Arc<Shared>, session: SessionId) {
    let lease = lease_name(session);
    let holder = rt.config.replica_id.clone();
    loop {
        if rt.config.use_leases {
            match rt
                .store
                .try_acquire_lease(&lease, &holder, rt.config.lease_ttl)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // Another replica works on this session: follow our waiting turns there.
                    rt.workers.release(session);
                    follow_remote(&rt, session);
                    return;
                }
                Err(err) => {
                    warn!(error = %err, "Could not take the session lease; will retry");
                    rt.workers.release(session);
                    return;
                }
            }
        }
        let done = match process_pending(&rt, session, &lease, &holder).await {
            Ok(Some(())) => rt.workers.release(session),
            Ok(None) => {
                // Shutdown: leave the rest pending.
                rt.workers.release(session);
                true
            }
            Err(err) => {
                error!(error = %err, "Storage failed while answering the session; will retry");
                rt.workers.release(session);
                true
            }
        };
        if done {
            if rt.config.use_leases
                && let Err(err) = rt.store.release_lease(&lease, &holder).await
            {
                warn!(error = %err, "Could not release the session lease; it will expire");
            }
            return;
        }
    }
}

/// Answers the session's pending items; `Ok(None)` when interrupted by shutdown.
async fn process_pending(
    rt: &Arc<Shared>,
    session: SessionId,
    lease: &str,
    holder: &str,
) -> Result<Option<()>, nexus_store::StoreError> {
    loop {
        let pending = rt.store.pending_inbox(session).await?;
        if pending.is_empty() {
            return Ok(Some(()));
        }
        for item in pending {
            if rt.cancel.is_cancelled() {
                return Ok(None);
            }
            let span = info_span!("turn", turn_id = %item.turn_id, session_id = %session);
            let renew = rt.config.use_leases.then(|| renew_lease(rt, lease, holder));
            let end = run_turn(rt, &item).instrument(span).await;
            if let Some(renew) = renew {
                renew.abort();
            }
            match end? {
                TurnEnd::Finished => {}
                TurnEnd::Abandoned => return Ok(None),
            }
        }
    }
}

/// Keeps the lease alive while a long turn runs.
fn renew_lease(rt: &Arc<Shared>, lease: &str, holder: &str) -> tokio::task::JoinHandle<()> {
    let (rt, lease, holder) = (Arc::clone(rt), lease.to_owned(), holder.to_owned());
    tokio::spawn(async move {
        let every = rt.config.lease_ttl / 3;
        loop {
            tokio::time::sleep(every).await;
            match rt
                .store
                .try_acquire_lease(&lease, &holder, rt.config.lease_ttl)
                .await
            {
                Ok(true) => {}
                Ok(false) => warn!(%lease, "Session lease was taken over while a turn ran"),
                Err(err) => warn!(error = %err, "Could not renew the session lease"),
            }
        }
    })
}

/// Follows turns that local clients wait for while another replica holds the session: polls
/// their inbox items, reports the stored answer, and kicks the session again so a lease freed
/// meanwhile is taken.
fn follow_remote(rt: &Arc<Shared>, session: SessionId) {
    let waiting = rt.hub.waiting_turns(session);
    if waiting.is_empty() {
        return;
    }
    let rt = Arc::clone(rt);
    rt.tracker.clone().spawn(async move {
        let poll = Duration::from_millis(250);
        let mut open: Vec<TurnId> = waiting;
        while !open.is_empty() && !rt.cancel.is_cancelled() {
            tokio::time::sleep(poll).await;
            let mut still_open = Vec::new();
            for turn in open {
                match report_if_finished(&rt, turn).await {
                    Ok(true) => {}
                    Ok(false) => still_open.push(turn),
                    Err(err) => {
                        warn!(error = %err, %turn, "Could not follow a remote turn");
                        still_open.push(turn);
                    }
                }
            }
            open = still_open;
            if !open.is_empty() {
                kick(&rt, session);
                return;
            }
        }
    });
}

/// Publishes the stored outcome of a turn finished elsewhere; false if still pending.
async fn report_if_finished(rt: &Shared, turn: TurnId) -> Result<bool, nexus_store::StoreError> {
    let Some(item) = rt.store.get_inbox_item(turn).await? else {
        return Ok(true);
    };
    match item.status {
        InboxStatus::Pending => Ok(false),
        InboxStatus::Failed => {
            rt.hub.publish(
                turn,
                TurnEvent::Error {
                    kind: nexus_core::TurnErrorKind::Provider,
                    message: item.error.unwrap_or_else(|| "the turn failed".to_owned()),
                },
            );
            Ok(true)
        }
        InboxStatus::Done => {
            crate::runtime::publish_stored_answer(rt, &item).await?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kick_during_work_makes_the_worker_look_again() {
        let workers = Workers::default();
        let s = SessionId::new();
        assert!(workers.claim(s), "first kick starts a worker");
        assert!(!workers.claim(s), "second kick only marks the session");
        assert!(!workers.release(s), "marked: the worker looks again");
        assert!(workers.release(s), "unmarked: the worker exits");
        assert_eq!(workers.active(), 0);
        assert!(workers.claim(s), "a later kick starts a new worker");
    }
}
