//! Giving freed memory back to the system once a burst of turns is over.
//!
//! glibc's malloc keeps what threads free in their arenas, and can shrink an arena only from
//! its top: after a load, the server stays at its peak resident size although what is live is
//! back near idle (after 16 sessions: 10.4 MB held by the arenas, 3.3 MB of it in use).
//! `malloc_trim(0)` gives back every free page, holes in the middle of an arena included (4 to
//! 5 MB after that load). It walks each arena under the arena's lock, so it runs only when the
//! replica has been idle for a moment, once per idle period, on a blocking thread.

use std::time::{Duration, Instant};

use nexus_runtime::Runtime;
use tokio::time::MissedTickBehavior;
use tracing::debug;

/// How long no turn must have begun, and none run, before memory is given back: longer than
/// the SQLite store waits before it gives back its page caches (one second), so that their
/// memory is freed by then.
const IDLE_FOR: Duration = Duration::from_millis(1500);

/// How often the runtime's activity is looked at.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// Gives freed memory back after each burst of turns, for as long as the server runs.
pub(crate) async fn give_back_when_idle(runtime: Runtime) {
    let mut ticks = tokio::time::interval(CHECK_EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut idle = Idle::new(runtime.turns_begun(), Instant::now());
    loop {
        ticks.tick().await;
        let busy = runtime.active_sessions() > 0;
        if idle.observe(runtime.turns_begun(), busy, Instant::now())
            && let Err(err) = tokio::task::spawn_blocking(give_back).await
        {
            debug!(error = %err, "Giving back freed memory did not run");
        }
    }
}

/// When memory is to be given back: once per idle period, [`IDLE_FOR`] after its start.
#[derive(Debug)]
struct Idle {
    /// The runtime's count of turns begun, as last seen.
    seen: u64,
    /// When the last turn was seen beginning or running.
    quiet_since: Instant,
    /// Whether memory was given back since then.
    given_back: bool,
}

impl Idle {
    /// What the start allocated and freed (migrations, bootstrap) goes back too: the first
    /// idle period begins at once.
    fn new(begun: u64, now: Instant) -> Self {
        Idle {
            seen: begun,
            quiet_since: now,
            given_back: false,
        }
    }

    /// Takes in the count of turns begun and whether any runs at `now`; whether to give memory
    /// back now.
    fn observe(&mut self, begun: u64, busy: bool, now: Instant) -> bool {
        if begun != self.seen || busy {
            self.seen = begun;
            self.quiet_since = now;
            self.given_back = false;
            return false;
        }
        if self.given_back || now.duration_since(self.quiet_since) < IDLE_FOR {
            return false;
        }
        self.given_back = true;
        true
    }
}

/// glibc's `malloc_trim(0)`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[expect(
    unsafe_code,
    reason = "glibc's malloc_trim has no safe wrapper; the one exception to the workspace's \
              unsafe_code lint"
)]
fn give_back() {
    // SAFETY: `malloc_trim` takes no pointer and has no precondition; glibc documents it as
    // MT-Safe, so other threads may allocate and free while it runs.
    let released = unsafe { libc::malloc_trim(0) } != 0;
    debug!(released, "Gave freed memory back to the system");
}

/// Other C libraries give memory back by themselves, or offer no call for it.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn give_back() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_is_given_back_once_per_idle_period() {
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        let mut idle = Idle::new(7, start);
        // Right after the start: not yet.
        assert!(!idle.observe(7, false, at(1_000)));
        assert!(idle.observe(7, false, at(1_500)));
        // Once per idle period.
        assert!(!idle.observe(7, false, at(5_000)));
        // A turn begins: a new period starts at the next look, not before.
        assert!(!idle.observe(8, false, at(6_000)));
        assert!(!idle.observe(8, false, at(7_000)));
        assert!(idle.observe(8, false, at(7_500)));
        // A long turn keeps the replica busy without beginning new turns.
        assert!(!idle.observe(9, true, at(8_000)));
        assert!(!idle.observe(9, true, at(20_000)));
        assert!(!idle.observe(9, false, at(21_000)));
        assert!(idle.observe(9, false, at(21_500)));
        assert!(!idle.observe(9, false, at(60_000)));
    }
}
