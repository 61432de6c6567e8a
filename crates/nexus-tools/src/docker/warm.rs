//! Warm containers: one per session, kept between its runs, at most `max_warm` at once.
//!
//! A session's runs take turns on its slot's lock. A slot leaves the pool when it is
//! released, evicted, reaped or at shutdown: it is then marked retired, and a run waiting on
//! it takes a fresh slot instead, while a run holding it removes its container at the end
//! rather than keeping it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use nexus_core::SessionId;
use tokio::time::Instant;

use super::client::Container;

/// A session's place in the pool.
#[derive(Debug)]
pub(crate) struct Slot {
    retired: AtomicBool,
    /// The container and when it was last used; held for the whole of a run and its reset.
    pub(crate) state: Arc<tokio::sync::Mutex<SlotState>>,
}

impl Slot {
    /// Whether the slot left the pool.
    pub(crate) fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    fn retire(&self) {
        self.retired.store(true, Ordering::Release);
    }
}

/// What a slot holds between runs.
#[derive(Debug, Default)]
pub(crate) struct SlotState {
    pub(crate) container: Option<Container>,
    pub(crate) last_used: Option<Instant>,
}

/// The slots by session.
#[derive(Debug)]
pub(crate) struct Pool {
    slots: Mutex<HashMap<SessionId, Arc<Slot>>>,
    max: usize,
}

impl Pool {
    pub(crate) fn new(max: usize) -> Self {
        Pool {
            slots: Mutex::new(HashMap::new()),
            max,
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Slot>>> {
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session's slot, made when missing. When the pool is full the least recently used
    /// idle slot is evicted (its container returned, to be removed); `None` when every slot is
    /// busy (the run goes cold).
    pub(crate) fn slot(&self, session: SessionId) -> (Option<Arc<Slot>>, Option<Container>) {
        let mut slots = self.slots();
        if let Some(slot) = slots.get(&session) {
            return (Some(Arc::clone(slot)), None);
        }
        if self.max == 0 {
            return (None, None);
        }
        let mut evicted = None;
        if slots.len() >= self.max {
            let mut oldest: Option<(SessionId, Option<Instant>)> = None;
            for (id, slot) in slots.iter() {
                let Ok(state) = slot.state.try_lock() else {
                    continue;
                };
                if oldest.is_none_or(|(_, at)| state.last_used < at) {
                    oldest = Some((*id, state.last_used));
                }
            }
            let Some((id, _)) = oldest else {
                return (None, None);
            };
            if let Some(slot) = slots.remove(&id) {
                slot.retire();
                if let Ok(mut state) = slot.state.try_lock() {
                    evicted = state.container.take();
                }
            }
        }
        let slot = Arc::new(Slot {
            retired: AtomicBool::new(false),
            state: Arc::new(tokio::sync::Mutex::new(SlotState {
                container: None,
                last_used: Some(Instant::now()),
            })),
        });
        slots.insert(session, Arc::clone(&slot));
        (Some(slot), evicted)
    }

    /// Takes the session's slot out of the pool and retires it (a run holding it removes its
    /// container itself).
    pub(crate) fn release(&self, session: SessionId) -> Option<Arc<Slot>> {
        let slot = self.slots().remove(&session)?;
        slot.retire();
        Some(slot)
    }

    /// Takes out the slots idle for `idle` or longer, returning their containers.
    pub(crate) fn reap(&self, idle: Duration) -> Vec<Container> {
        let now = Instant::now();
        let mut out = Vec::new();
        self.slots().retain(|_, slot| {
            let Ok(mut state) = slot.state.try_lock() else {
                return true;
            };
            let expired = state
                .last_used
                .is_none_or(|at| now.saturating_duration_since(at) >= idle);
            if expired {
                slot.retire();
                out.extend(state.container.take());
            }
            !expired
        });
        out
    }

    /// Takes every slot out, returning the idle ones' containers.
    pub(crate) fn drain(&self) -> Vec<Container> {
        let slots: Vec<Arc<Slot>> = self.slots().drain().map(|(_, s)| s).collect();
        slots
            .iter()
            .filter_map(|slot| {
                slot.retire();
                slot.state.try_lock().ok()?.container.take()
            })
            .collect()
    }

    /// How many sessions hold a slot.
    pub(crate) fn len(&self) -> usize {
        self.slots().len()
    }
}
