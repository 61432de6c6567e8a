//! Restart backoff: the wait before each restart of a failed server doubles from a minimum
//! to a maximum, and starts over once a connection has stayed up for as long as the maximum.

use std::time::Duration;

/// The waits between restarts of one server.
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// Waits from `min` doubling up to `max`.
    pub(crate) fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            min,
            max,
            next: min,
        }
    }

    /// The wait before the next attempt; the one after is twice as long (at most `max`).
    pub(crate) fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        delay
    }

    /// Notes that a connection stayed up for `uptime`: a stable one resets the waits.
    pub(crate) fn connection_lasted(&mut self, uptime: Duration) {
        if uptime >= self.max {
            self.next = self.min;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_maximum_and_reset_after_a_stable_connection() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let waits: Vec<u64> = (0..5).map(|_| b.next_delay().as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 5, 5]);
        b.connection_lasted(Duration::from_secs(2));
        assert_eq!(b.next_delay().as_secs(), 5);
        b.connection_lasted(Duration::from_secs(5));
        assert_eq!(b.next_delay().as_secs(), 1);
    }
}
