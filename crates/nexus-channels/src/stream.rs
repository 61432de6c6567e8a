//! A streamed reply on a platform whose messages can be edited: the first tokens create a
//! message, later tokens edit it in place no more often than the platform allows, text past
//! the platform's limit continues in a new message, and the final text replaces everything.
//!
//! [`StreamingReply`] only decides; the adapter carries out its [`Action`]s (and honours the
//! platform's rate-limit answers). The answer so far is re-rendered only when an edit is due,
//! so a long answer of many small deltas costs one render per interval, not one per delta.

use tokio::time::{Duration, Instant};

use crate::format::Platform;

/// What the adapter should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send message number `index` of the reply (0 first) with `text`.
    Send {
        /// Its position in the reply.
        index: usize,
        /// Its text, in the platform's markup.
        text: String,
    },
    /// Replace the text of message `index`, sent before.
    Edit {
        /// Its position in the reply.
        index: usize,
        /// Its new text, in the platform's markup.
        text: String,
    },
}

/// The state of one streamed reply.
#[derive(Debug)]
pub struct StreamingReply {
    platform: Platform,
    min_interval: Duration,
    /// The Markdown received so far.
    text: String,
    /// What each sent message shows now.
    shown: Vec<String>,
    /// When the last send or edit went out.
    last: Option<Instant>,
    /// Text arrived that no message shows yet.
    dirty: bool,
}

impl StreamingReply {
    /// A reply on `platform`, editing at most once per `min_interval`.
    pub fn new(platform: Platform, min_interval: Duration) -> Self {
        StreamingReply {
            platform,
            min_interval,
            text: String::new(),
            shown: Vec::new(),
            last: None,
            dirty: false,
        }
    }

    /// Appends `delta`; the actions due at `now` (the first message at once, then edits no
    /// more often than the interval allows).
    pub fn push(&mut self, delta: &str, now: Instant) -> Vec<Action> {
        if delta.is_empty() {
            return Vec::new();
        }
        self.text.push_str(delta);
        self.dirty = true;
        self.flush(now)
    }

    /// When pending text is due to be shown, if any is pending (for the adapter's timer).
    pub fn next_due(&self) -> Option<Instant> {
        if !self.dirty {
            return None;
        }
        Some(
            self.last
                .map_or_else(Instant::now, |l| l + self.min_interval),
        )
    }

    /// The actions due at `now` for text not shown yet.
    pub fn flush(&mut self, now: Instant) -> Vec<Action> {
        if !self.dirty {
            return Vec::new();
        }
        let due = self.last.is_none_or(|l| now >= l + self.min_interval);
        if !due {
            return Vec::new();
        }
        let messages = self.platform.messages(&self.text);
        let actions = self.sync(&messages);
        if !actions.is_empty() {
            self.last = Some(now);
        }
        self.dirty = false;
        actions
    }

    /// The turn finished with `text` (the stored answer, which may differ from the deltas):
    /// the actions that make the messages show it, due at once.
    pub fn finish(&mut self, text: &str) -> Vec<Action> {
        text.clone_into(&mut self.text);
        self.dirty = false;
        let messages = self.platform.messages(text);
        self.sync(&messages)
    }

    /// How many messages the reply has sent.
    pub fn sent(&self) -> usize {
        self.shown.len()
    }

    /// Sends and edits that make the shown messages equal to `messages`.
    fn sync(&mut self, messages: &[String]) -> Vec<Action> {
        let mut actions = Vec::new();
        for (index, text) in messages.iter().enumerate() {
            match self.shown.get(index) {
                Some(shown) if shown == text => {}
                Some(_) => {
                    actions.push(Action::Edit {
                        index,
                        text: text.clone(),
                    });
                    self.shown[index].clone_from(text);
                }
                None => {
                    actions.push(Action::Send {
                        index,
                        text: text.clone(),
                    });
                    self.shown.push(text.clone());
                }
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn first_tokens_send_then_edits_are_throttled_and_the_final_text_wins() {
        let t0 = Instant::now();
        let mut reply = StreamingReply::new(Platform::Discord, SECOND);
        assert_eq!(
            reply.push("Hel", t0),
            vec![Action::Send {
                index: 0,
                text: "Hel".into()
            }]
        );
        // Within the interval: nothing goes out, but an edit is pending.
        assert!(reply.push("lo", t0 + Duration::from_millis(300)).is_empty());
        assert_eq!(reply.next_due(), Some(t0 + SECOND));
        assert!(reply.flush(t0 + Duration::from_millis(900)).is_empty());
        assert_eq!(
            reply.flush(t0 + SECOND),
            vec![Action::Edit {
                index: 0,
                text: "Hello".into()
            }]
        );
        assert_eq!(reply.next_due(), None);
        // The stored answer replaces what streamed.
        assert_eq!(
            reply.finish("Hello, **world**"),
            vec![Action::Edit {
                index: 0,
                text: "Hello, **world**".into()
            }]
        );
        // Nothing changed: nothing to do.
        assert!(reply.finish("Hello, **world**").is_empty());
    }

    /// A platform's view of the reply: the actions applied in order.
    fn apply(chat: &mut Vec<String>, actions: Vec<Action>) {
        for action in actions {
            match action {
                Action::Send { index, text } => {
                    assert_eq!(index, chat.len(), "messages are sent in order");
                    assert!(text.chars().count() <= 2000);
                    chat.push(text);
                }
                Action::Edit { index, text } => {
                    assert!(text.chars().count() <= 2000);
                    chat[index] = text;
                }
            }
        }
    }

    #[test]
    fn text_past_the_limit_continues_in_new_messages() {
        let t0 = Instant::now();
        let mut reply = StreamingReply::new(Platform::Discord, SECOND);
        let paragraph = format!("{}\n\n", "word ".repeat(100).trim_end());
        let mut chat = Vec::new();
        apply(&mut chat, reply.push(&paragraph, t0));
        let mut now = t0;
        for _ in 0..10 {
            now += SECOND;
            apply(&mut chat, reply.push(&paragraph, now));
        }
        assert!(chat.len() >= 3, "{}", chat.len());
        assert_eq!(reply.sent(), chat.len());
        // After the final text the chat shows exactly the answer's messages.
        let full = paragraph.repeat(11);
        apply(&mut chat, reply.finish(&full));
        assert_eq!(chat, Platform::Discord.messages(&full));
    }

    #[test]
    fn telegram_messages_are_rendered_as_html() {
        let mut reply = StreamingReply::new(Platform::Telegram, SECOND);
        let actions = reply.push("a < b and **bold**", Instant::now());
        assert_eq!(
            actions,
            vec![Action::Send {
                index: 0,
                text: "a &lt; b and <b>bold</b>".into()
            }]
        );
    }
}
