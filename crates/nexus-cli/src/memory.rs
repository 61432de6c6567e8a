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
    let mut seen = runtime.turns_begun();
    let mut quiet_since = Instant::now();
    // What the start allocated and freed (migrations, bootstrap) goes back too.
    let mut given_back = false;
    loop {
        ticks.tick().await;
        let begun = runtime.turns_begun();
        if begun != seen || runtime.active_sessions() > 0 {
            seen = begun;
            quiet_since = Instant::now();
            given_back = false;
        } else if !given_back && quiet_since.elapsed() >= IDLE_FOR {
            given_back = true;
            if let Err(err) = tokio::task::spawn_blocking(give_back).await {
                debug!(error = %err, "Giving back freed memory did not run");
            }
        }
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
