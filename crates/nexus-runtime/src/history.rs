//! The recent history of active sessions, kept in memory so a turn does not read it back from
//! the database. Valid only while this process is the session's only writer: always with a
//! single process, and while the session's lease is held otherwise (the worker drops the entry
//! whenever it takes the lease anew or anything unusual happens).
//!
//! Messages are shared (`Arc`): a turn takes the history by bumping reference counts, without
//! copying a message while the cache is locked.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use nexus_core::{Message, SessionId};

/// Recent messages of sessions, in conversation order.
#[derive(Debug)]
pub(crate) struct HistoryCache {
    /// Messages kept per session (the runtime's history limit).
    limit: usize,
    /// Sessions kept at most; beyond it the cache starts over (entries refill from storage).
    capacity: usize,
    sessions: Mutex<HashMap<SessionId, VecDeque<Arc<Message>>>>,
}

impl HistoryCache {
    pub(crate) fn new(limit: usize, capacity: usize) -> Self {
        HistoryCache {
            limit,
            capacity,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, VecDeque<Arc<Message>>>> {
        // Single map operations only: a poisoned map still holds consistent entries.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The cached history of a session, oldest first.
    pub(crate) fn get(&self, session: SessionId) -> Option<Vec<Arc<Message>>> {
        self.lock()
            .get(&session)
            .map(|h| h.iter().cloned().collect())
    }

    /// Replaces a session's history (after reading it from storage).
    pub(crate) fn set(&self, session: SessionId, history: Vec<Arc<Message>>) {
        let mut sessions = self.lock();
        if sessions.len() >= self.capacity && !sessions.contains_key(&session) {
            sessions.clear();
        }
        let skip = history.len().saturating_sub(self.limit);
        sessions.insert(session, history.into_iter().skip(skip).collect());
    }

    /// Appends messages to a cached session (nothing when the session is not cached).
    pub(crate) fn append(
        &self,
        session: SessionId,
        messages: impl IntoIterator<Item = Arc<Message>>,
    ) {
        let mut sessions = self.lock();
        if let Some(history) = sessions.get_mut(&session) {
            history.extend(messages);
            while history.len() > self.limit {
                history.pop_front();
            }
        }
    }

    /// Forgets a session.
    pub(crate) fn invalidate(&self, session: SessionId) {
        self.lock().remove(&session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_core::{ChannelKind, Direction, Role};

    fn msg(session: SessionId, text: &str) -> Message {
        Message::new(
            session,
            ChannelKind::Grpc,
            Direction::Inbound,
            Role::User,
            text,
        )
    }

    #[test]
    fn appends_only_to_known_sessions_and_keeps_the_latest_messages() {
        let cache = HistoryCache::new(2, 10);
        let s = SessionId::new();
        cache.append(s, [Arc::new(msg(s, "lost"))]);
        assert!(
            cache.get(s).is_none(),
            "an unknown session is not started from a fragment"
        );
        cache.set(s, ["a", "b", "c"].map(|t| Arc::new(msg(s, t))).into());
        cache.append(s, [Arc::new(msg(s, "d"))]);
        let texts: Vec<String> = cache
            .get(s)
            .unwrap()
            .into_iter()
            .map(|m| m.content.clone())
            .collect();
        assert_eq!(texts, ["c", "d"]);
        cache.invalidate(s);
        assert!(cache.get(s).is_none());
    }
}
