//! Live turn events: subscribers register for a turn before it starts and receive its events
//! until the terminal `Done` or `Error`. Publishing never blocks a turn; a subscriber that went
//! away is dropped.

use std::collections::HashMap;
use std::sync::Mutex;

use nexus_core::{SessionId, TurnEvent, TurnId};
use tokio::sync::mpsc;

/// The receiving side of a turn's events.
pub type EventReceiver = mpsc::UnboundedReceiver<TurnEvent>;

#[derive(Debug, Default)]
struct Entry {
    session_id: Option<SessionId>,
    senders: Vec<mpsc::UnboundedSender<TurnEvent>>,
}

/// Subscribers by turn.
#[derive(Debug, Default)]
pub(crate) struct EventHub {
    turns: Mutex<HashMap<TurnId, Entry>>,
}

impl EventHub {
    /// Registers a subscriber for `turn_id` of `session_id`.
    pub(crate) fn subscribe(&self, session_id: SessionId, turn_id: TurnId) -> EventReceiver {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut turns = self.lock();
        let entry = turns.entry(turn_id).or_default();
        entry.session_id = Some(session_id);
        entry.senders.push(tx);
        rx
    }

    /// Sends an event to the turn's subscribers; after a terminal event they are released.
    pub(crate) fn publish(&self, turn_id: TurnId, event: TurnEvent) {
        let mut turns = self.lock();
        let terminal = event.is_terminal();
        if let Some(entry) = turns.get_mut(&turn_id) {
            entry.senders.retain(|tx| tx.send(event.clone()).is_ok());
            if terminal || entry.senders.is_empty() {
                turns.remove(&turn_id);
            }
        }
    }

    /// Turns of a session that someone is waiting for.
    pub(crate) fn waiting_turns(&self, session_id: SessionId) -> Vec<TurnId> {
        self.lock()
            .iter()
            .filter(|(_, e)| e.session_id == Some(session_id))
            .map(|(id, _)| *id)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TurnId, Entry>> {
        // A panic while holding this lock cannot leave the map inconsistent (each operation is
        // a single insert/retain/remove), so a poisoned lock is safe to keep using.
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_core::MessageId;

    #[test]
    fn subscribers_get_events_until_the_terminal_one_then_are_released() {
        let hub = EventHub::default();
        let (s, t) = (SessionId::new(), TurnId::new());
        let mut rx = hub.subscribe(s, t);
        hub.publish(t, TurnEvent::TextDelta { text: "a".into() });
        hub.publish(
            t,
            TurnEvent::Done {
                turn_id: t,
                session_id: s,
                message_id: MessageId::new(),
            },
        );
        assert!(matches!(rx.try_recv(), Ok(TurnEvent::TextDelta { .. })));
        assert!(matches!(rx.try_recv(), Ok(TurnEvent::Done { .. })));
        assert!(hub.waiting_turns(s).is_empty());
    }

    #[test]
    fn a_gone_subscriber_does_not_block_publishing() {
        let hub = EventHub::default();
        let (s, t) = (SessionId::new(), TurnId::new());
        drop(hub.subscribe(s, t));
        hub.publish(t, TurnEvent::TextDelta { text: "a".into() });
        assert!(hub.waiting_turns(s).is_empty());
    }
}
