//! The threads the bot posted in, so that a reply there counts as addressed to it: a bounded
//! set that forgets the oldest first.

use std::collections::{HashSet, VecDeque};
use std::sync::Mutex;

/// How many threads are remembered.
pub(crate) const REMEMBERED_THREADS: usize = 2048;

/// Recent `(channel, thread ts)` pairs the bot posted in.
#[derive(Debug)]
pub(crate) struct BotThreads {
    inner: Mutex<(VecDeque<String>, HashSet<String>)>,
    cap: usize,
}

fn key(channel: &str, ts: &str) -> String {
    format!("{channel}:{ts}")
}

impl BotThreads {
    /// An empty memory of at most `cap` threads.
    pub(crate) fn new(cap: usize) -> Self {
        BotThreads {
            inner: Mutex::new((VecDeque::new(), HashSet::new())),
            cap,
        }
    }

    /// Remembers that the bot posted in the thread under `ts` of `channel`.
    pub(crate) fn remember(&self, channel: &str, ts: &str) {
        let key = key(channel, ts);
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (order, set) = &mut *guard;
        if set.contains(&key) {
            order.retain(|k| k != &key);
        } else {
            set.insert(key.clone());
        }
        order.push_back(key);
        while order.len() > self.cap {
            if let Some(old) = order.pop_front() {
                set.remove(&old);
            }
        }
    }

    /// Whether the bot posted in the thread under `ts` of `channel` recently.
    pub(crate) fn contains(&self, channel: &str, ts: &str) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .1
            .contains(&key(channel, ts))
    }
}
