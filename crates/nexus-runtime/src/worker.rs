//! Session workers: turns of one session run one after another, different sessions run
//! concurrently.
//!
//! Work reaches a session's worker two ways: a message submitted through this process is handed
//! over directly (no database round trip), and a *rescan* (start-up recovery, the periodic
//! sweep, a duplicate submission) makes the worker read the session's pending inbox items. A
//! worker takes the session's lease first (when leases are on), works until nothing is left,
//! then exits. When the lease is held by another replica, turns that local clients wait for
//! are followed in the database instead, and the session is kicked again until answered.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_core::{Message, Session, SessionId, TurnEvent, TurnId};
use nexus_store::{InboxItem, InboxStatus, StoreError};
use tracing::{Instrument, error, info_span, warn};

use crate::metrics::Metrics;
use crate::runtime::Shared;
use crate::turn::{TurnEnd, TurnInput, run_turn};

/// A message submitted through this process, handed to its session's worker as stored.
#[derive(Debug)]
pub(crate) struct Fresh {
    pub(crate) item: InboxItem,
    pub(crate) session: Session,
    pub(crate) message: Message,
}

#[derive(Debug, Default)]
struct WorkerState {
    /// Read the pending inbox before anything else, taking items at least this old.
    rescan: Option<Grace>,
    /// Submitted items, in submission order.
    fresh: VecDeque<Fresh>,
}

/// Which pending items a rescan may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Grace {
    /// Every pending item: nothing can be on its way from `submit` (start-up recovery).
    None,
    /// Items older than [`FRESH_GRACE`]: younger ones may be on their way from `submit`.
    Fresh,
}

enum Next {
    Fresh(Box<Fresh>),
    Rescan {
        queued: HashSet<TurnId>,
        grace: Grace,
    },
    Exit,
}

/// The sessions that have a worker, and what their workers have to do.
#[derive(Debug, Default)]
pub(crate) struct Workers {
    running: Mutex<HashMap<SessionId, WorkerState>>,
}

impl Workers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, WorkerState>> {
        // Each operation is a single map update, so a poisoned lock holds consistent data.
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds work for a session; returns true if the caller must start its worker.
    fn add(&self, session: SessionId, work: Work) -> bool {
        let mut running = self.lock();
        let start = !running.contains_key(&session);
        let state = running.entry(session).or_default();
        match work {
            Work::Fresh(f) => state.fresh.push_back(*f),
            Work::Rescan(grace) => {
                state.rescan = Some(state.rescan.map_or(grace, |g| g.min(grace)));
            }
        }
        start
    }

    /// What the session's worker does next; `Exit` removes the worker atomically, so work
    /// added afterwards starts a new one.
    fn next(&self, session: SessionId) -> Next {
        let mut running = self.lock();
        let Some(state) = running.get_mut(&session) else {
            return Next::Exit;
        };
        if let Some(grace) = state.rescan.take() {
            let queued = state.fresh.iter().map(|f| f.item.turn_id).collect();
            return Next::Rescan { queued, grace };
        }
        match state.fresh.pop_front() {
            Some(f) => Next::Fresh(Box::new(f)),
            None => {
                running.remove(&session);
                Next::Exit
            }
        }
    }

    /// Drops the session's worker and its queue (the items stay pending in the database).
    fn abandon(&self, session: SessionId) {
        self.lock().remove(&session);
    }

    /// How many sessions have a worker.
    pub(crate) fn active(&self) -> usize {
        self.lock().len()
    }
}

enum Work {
    Fresh(Box<Fresh>),
    Rescan(Grace),
}

/// Hands a submitted item to its session's worker.
pub(crate) fn submit(rt: &Arc<Shared>, fresh: Fresh) {
    let session = fresh.session.id;
    if rt.workers.add(session, Work::Fresh(Box::new(fresh))) {
        spawn(rt, session);
    }
}

/// Makes the session's worker read its pending inbox items.
pub(crate) fn kick(rt: &Arc<Shared>, session: SessionId, grace: Grace) {
    if rt.workers.add(session, Work::Rescan(grace)) {
        spawn(rt, session);
    }
}

fn spawn(rt: &Arc<Shared>, session: SessionId) {
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
    let mut renew = None;
    if rt.config.use_leases {
        match rt
            .store
            .try_acquire_lease(&lease, &holder, rt.config.lease_ttl)
            .await
        {
            Ok(true) => {
                // Another replica may have written to the session since we last held it.
                rt.history.invalidate(session);
                renew = Some(renew_lease(&rt, &lease, &holder));
            }
            Ok(false) => {
                // Another replica works on this session: follow our waiting turns there.
                rt.workers.abandon(session);
                follow_remote(&rt, session);
                return;
            }
            Err(err) => {
                warn!(error = %err, "Could not take the session lease; the sweep retries");
                Metrics::count(&rt.metrics.errors, "lease", 1);
                rt.workers.abandon(session);
                return;
            }
        }
    }
    loop {
        if rt.cancel.is_cancelled() {
            rt.workers.abandon(session);
            break;
        }
        let outcome = match rt.workers.next(session) {
            Next::Exit => break,
            Next::Fresh(f) => run(&rt, TurnInput::submitted(*f)).await,
            Next::Rescan { queued, grace } => rescan(&rt, session, &queued, grace).await,
        };
        match outcome {
            Ok(TurnEnd::Finished) => {}
            Ok(TurnEnd::Abandoned) => {
                rt.workers.abandon(session);
                break;
            }
            Err(err) => {
                // The item stays pending; the periodic sweep picks it up again.
                error!(error = %err, "Storage failed while answering the session");
                Metrics::count(&rt.metrics.errors, "storage", 1);
                rt.history.invalidate(session);
            }
        }
    }
    if let Some(renew) = renew {
        renew.abort();
        if let Err(err) = rt.store.release_lease(&lease, &holder).await {
            warn!(error = %err, "Could not release the session lease; it will expire");
            Metrics::count(&rt.metrics.errors, "lease", 1);
        }
    }
}

async fn run(rt: &Shared, input: TurnInput) -> Result<TurnEnd, StoreError> {
    let span =
        info_span!("turn", turn_id = %input.item.turn_id, session_id = %input.item.session_id);
    run_turn(rt, input).instrument(span).await
}

/// How old a pending item must be before a rescan takes it. A younger one may be on its way
/// from `submit` to this worker's queue; a later sweep catches it if it stays pending.
const FRESH_GRACE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

/// Answers the session's pending items found in the database, except those queued here or
/// just submitted.
async fn rescan(
    rt: &Shared,
    session: SessionId,
    queued: &HashSet<TurnId>,
    grace: Grace,
) -> Result<TurnEnd, StoreError> {
    rt.history.invalidate(session);
    let pending = rt.store.pending_inbox(session).await?;
    let now = chrono::Utc::now();
    for item in pending {
        let too_young = grace == Grace::Fresh && now - item.created_at < FRESH_GRACE;
        if queued.contains(&item.turn_id) || too_young {
            continue;
        }
        if rt.cancel.is_cancelled() {
            return Ok(TurnEnd::Abandoned);
        }
        if let TurnEnd::Abandoned = run(rt, TurnInput::recovered(item)).await? {
            return Ok(TurnEnd::Abandoned);
        }
    }
    Ok(TurnEnd::Finished)
}

/// Keeps the lease alive while the worker runs.
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
                Err(err) => {
                    warn!(error = %err, "Could not renew the session lease");
                    Metrics::count(&rt.metrics.errors, "lease", 1);
                }
            }
        }
    })
}

/// Follows turns that local clients wait for while another replica holds the session: after a
/// short wait, reports those answered meanwhile and kicks the session again for the rest (a
/// lease freed meanwhile is then taken here).
fn follow_remote(rt: &Arc<Shared>, session: SessionId) {
    let waiting = rt.hub.waiting_turns(session);
    if waiting.is_empty() {
        return;
    }
    let rt = Arc::clone(rt);
    rt.tracker.clone().spawn(async move {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut open = false;
        for turn in waiting {
            match report_if_finished(&rt, turn).await {
                Ok(true) => {}
                Ok(false) => open = true,
                Err(err) => {
                    warn!(error = %err, %turn, "Could not follow a remote turn");
                    Metrics::count(&rt.metrics.errors, "storage", 1);
                    open = true;
                }
            }
        }
        if open && !rt.cancel.is_cancelled() {
            kick(&rt, session, Grace::Fresh);
        }
    });
}

/// Publishes the stored outcome of a turn finished elsewhere; false if still pending.
async fn report_if_finished(rt: &Shared, turn: TurnId) -> Result<bool, StoreError> {
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
    fn work_added_while_a_worker_runs_is_done_by_that_worker() {
        let workers = Workers::default();
        let s = SessionId::new();
        assert!(
            workers.add(s, Work::Rescan(Grace::Fresh)),
            "first work starts a worker"
        );
        assert!(
            !workers.add(s, Work::Rescan(Grace::None)),
            "more work only marks the session"
        );
        assert!(
            matches!(
                workers.next(s),
                Next::Rescan {
                    grace: Grace::None,
                    ..
                }
            ),
            "the widest rescan asked for wins"
        );
        assert!(
            matches!(workers.next(s), Next::Exit),
            "nothing left: the worker exits"
        );
        assert_eq!(workers.active(), 0);
        assert!(
            workers.add(s, Work::Rescan(Grace::Fresh)),
            "later work starts a new worker"
        );
    }
}
