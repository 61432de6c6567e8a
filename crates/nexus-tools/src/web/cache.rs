//! A small cache of recent answers: entries live for a fixed time, and past the entry limit
//! the oldest goes first. Time is tokio's, so tests can pause it.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Answers by key, for `ttl`, at most `capacity` of them. A zero `ttl` or `capacity` keeps
/// nothing.
#[derive(Debug)]
pub(crate) struct TtlCache<K, V> {
    ttl: Duration,
    capacity: usize,
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K: Eq + Hash + Clone, V: Clone> TtlCache<K, V> {
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        TtlCache {
            ttl,
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The live answer for `key`, if any.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(key) {
            Some((at, value)) if at.elapsed() < self.ttl => Some(value.clone()),
            Some(_) => {
                entries.remove(key);
                None
            }
            None => None,
        }
    }

    /// Keeps `value` for `key`, dropping expired entries, then the oldest when full.
    pub(crate) fn insert(&self, key: K, value: V) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if entries.len() >= self.capacity && !entries.contains_key(&key) {
            entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            let oldest = (entries.len() >= self.capacity)
                .then(|| entries.iter().min_by_key(|(_, (at, _))| *at))
                .flatten()
                .map(|(k, _)| k.clone());
            if let Some(oldest) = oldest {
                entries.remove(&oldest);
            }
        }
        entries.insert(key, (now, value));
    }

    /// Entries kept (live or not yet dropped).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn answers_expire_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(300), 8);
        cache.insert("rust", 1);
        tokio::time::advance(Duration::from_secs(299)).await;
        assert_eq!(cache.get(&"rust"), Some(1));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(cache.get(&"rust"), None);
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_oldest_answer_goes_when_full() {
        let cache = TtlCache::new(Duration::from_secs(300), 2);
        cache.insert("a", 1);
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.insert("b", 2);
        tokio::time::advance(Duration::from_secs(1)).await;
        cache.insert("c", 3);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&"a"), None);
        assert_eq!((cache.get(&"b"), cache.get(&"c")), (Some(2), Some(3)));
        cache.insert("c", 4);
        assert_eq!(cache.get(&"c"), Some(4));
    }

    #[test]
    fn a_zero_ttl_or_capacity_keeps_nothing() {
        let cache = TtlCache::new(Duration::ZERO, 8);
        cache.insert("a", 1);
        assert_eq!(cache.get(&"a"), None);
        let cache = TtlCache::new(Duration::from_secs(1), 0);
        cache.insert("a", 1);
        assert_eq!(cache.len(), 0);
    }
}
