//! Circuit breakers per model (`provider/model`): after repeated failures that say something
//! about the provider (see `LlmError::counts_against_provider`) a model is skipped for a while,
//! so a chain goes straight to its next candidate instead of waiting on a dead one; then a
//! single call probes it (half-open) and its outcome closes or reopens the breaker.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{info, warn};

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failures that open the breaker.
    pub failures_to_open: u32,
    /// How long an open breaker rejects calls before letting one probe through.
    pub open_for: Duration,
}

impl Default for BreakerPolicy {
    fn default() -> Self {
        BreakerPolicy {
            failures_to_open: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// One probe is out since `since`; a probe that never reports (its caller went away)
    /// lets another through after `open_for`.
    HalfOpen {
        since: Instant,
    },
}

/// Whether a call may go to a model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed.
    Allowed,
    /// The breaker was open long enough: this call probes the model.
    Probe,
    /// The breaker is open for this much longer.
    Rejected {
        /// Time until the next probe.
        retry_in: Duration,
    },
}

/// The breakers of every model, shared by all chains of a process.
#[derive(Debug, Default)]
pub struct Breakers {
    policy: BreakerPolicy,
    states: Mutex<HashMap<String, State>>,
}

impl Breakers {
    /// Breakers that open by `policy`.
    pub fn new(policy: BreakerPolicy) -> Self {
        Breakers {
            policy,
            states: Mutex::new(HashMap::new()),
        }
    }

    fn states(&self) -> std::sync::MutexGuard<'_, HashMap<String, State>> {
        // Each update leaves the map consistent: a poisoned lock is still usable.
        self.states
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether a call to `model` may go out now.
    pub fn admit(&self, model: &str) -> Admission {
        let now = Instant::now();
        let mut states = self.states();
        let Some(state) = states.get_mut(model) else {
            return Admission::Allowed;
        };
        match *state {
            State::Closed { .. } => Admission::Allowed,
            State::Open { until } if now < until => Admission::Rejected {
                retry_in: until - now,
            },
            State::HalfOpen { since } if now < since + self.policy.open_for => {
                Admission::Rejected {
                    retry_in: since + self.policy.open_for - now,
                }
            }
            State::Open { .. } | State::HalfOpen { .. } => {
                *state = State::HalfOpen { since: now };
                info!(model, "Circuit half-open: probing the model");
                Admission::Probe
            }
        }
    }

    /// A call to `model` got an answer.
    pub fn success(&self, model: &str) {
        let mut states = self.states();
        if let Some(state) = states.get_mut(model)
            && !matches!(state, State::Closed { failures: 0 })
        {
            if matches!(state, State::HalfOpen { .. } | State::Open { .. }) {
                info!(model, "Circuit closed: the model answers again");
            }
            *state = State::Closed { failures: 0 };
        }
    }

    /// A call to `model` failed in a way that counts against it.
    pub fn failure(&self, model: &str) {
        let now = Instant::now();
        let mut states = self.states();
        let state = states
            .entry(model.to_owned())
            .or_insert(State::Closed { failures: 0 });
        match *state {
            State::Closed { failures } if failures + 1 < self.policy.failures_to_open => {
                *state = State::Closed {
                    failures: failures + 1,
                };
            }
            State::Closed { .. } | State::HalfOpen { .. } => {
                warn!(
                    model,
                    open_for = ?self.policy.open_for,
                    "Circuit open: the model is skipped after repeated failures"
                );
                *state = State::Open {
                    until: now + self.policy.open_for,
                };
            }
            State::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breakers() -> Breakers {
        Breakers::new(BreakerPolicy {
            failures_to_open: 3,
            open_for: Duration::from_secs(10),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn opens_after_consecutive_failures_and_probes_after_the_pause() {
        let b = breakers();
        b.failure("m");
        b.failure("m");
        assert_eq!(b.admit("m"), Admission::Allowed);
        b.failure("m");
        assert!(matches!(b.admit("m"), Admission::Rejected { .. }));
        assert_eq!(b.admit("other"), Admission::Allowed);

        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit("m"), Admission::Probe);
        // One probe at a time.
        assert!(matches!(b.admit("m"), Admission::Rejected { .. }));
        b.success("m");
        assert_eq!(b.admit("m"), Admission::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failed_probe_reopens_and_a_success_resets_the_count() {
        let b = breakers();
        for _ in 0..3 {
            b.failure("m");
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit("m"), Admission::Probe);
        b.failure("m");
        match b.admit("m") {
            Admission::Rejected { retry_in } => assert_eq!(retry_in, Duration::from_secs(10)),
            other => panic!("expected open, got {other:?}"),
        }

        let b = breakers();
        b.failure("m");
        b.failure("m");
        b.success("m");
        b.failure("m");
        b.failure("m");
        assert_eq!(b.admit("m"), Admission::Allowed);
    }

    #[tokio::test(start_paused = true)]
    async fn a_probe_that_never_reports_does_not_close_the_model_for_good() {
        let b = breakers();
        for _ in 0..3 {
            b.failure("m");
        }
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit("m"), Admission::Probe);
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(b.admit("m"), Admission::Probe);
    }
}
