//! The router of one channel: every inbound message is checked against the channel's policy
//! (bots, group mention gating, direct-message access and pairing), answers the built-in
//! commands (`/new`, `/help`), resolves its session (user + agent + channel + chat + thread +
//! sender) and is committed to the inbox, deduplicated on the platform's id, before the
//! adapter may acknowledge the platform. What must reach the platform afterwards (the streamed
//! reply, a pairing code, help) runs after the acknowledgement, off the inbound path.

use std::sync::Arc;

use chrono::Utc;
use nexus_channels::{ChannelSettings, DmPolicy, GroupPolicy};
use nexus_core::{
    AckOutcome, ChannelCredential, ChatRef, Conversation, InboundEnvelope, InboundMessage, Session,
    SessionId,
};
use nexus_runtime::{Runtime, RuntimeError, Submission, TurnHandle};
use nexus_store::{DedupeKey, Store, StoreError};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::pairing;
use super::reply::{Replier, ReplyTarget};

/// Metadata keys the router adds to a stored inbound message: where its answer goes, also
/// after a restart (the outbox reads them back).
pub(crate) mod keys {
    /// The channel (credential) id.
    pub(crate) const CHANNEL_ID: &str = "nexus_channel_id";
    /// The chat id.
    pub(crate) const CHAT_ID: &str = "nexus_chat_id";
    /// The thread or topic id.
    pub(crate) const THREAD_ID: &str = "nexus_thread_id";
    /// The platform message to answer (groups only; a reply quotes it).
    pub(crate) const REPLY_TO: &str = "nexus_reply_to";
}

/// The help text of `/help` and `/start`.
const HELP: &str = "I'm an AI assistant. Write to me and I'll answer.\n\n\
    Commands:\n\
    `/new` — start a new conversation (I forget this one)\n\
    `/stop` — stop the answer I'm working on\n\
    `/help` — show this help";

/// A built-in command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    New,
    Stop,
    Help,
}

/// The command a message is, if any: `/new`, `/reset`, `!new`; `/stop`, `!stop`; `/help`,
/// `/start`, `!help`.
/// Slack reserves `/` for its own slash commands, hence the `!` forms.
fn command(text: &str) -> Option<Command> {
    let word = text.split_whitespace().next()?;
    let word = word.split('@').next().unwrap_or(word).to_ascii_lowercase();
    match word.as_str() {
        "/new" | "/reset" | "!new" | "!reset" => Some(Command::New),
        "/stop" | "!stop" => Some(Command::Stop),
        "/help" | "/start" | "!help" => Some(Command::Help),
        _ => None,
    }
}

/// The session scope of a message: the channel, the chat (+ thread or topic) and the sender.
pub(crate) fn scope(channel: &ChannelCredential, message: &InboundMessage) -> String {
    format!(
        "{}:{}:{}",
        channel.id,
        message.chat.scope(),
        message.sender.external_id
    )
}

/// What must happen after the acknowledgement.
enum FollowUp {
    None,
    /// Stream the reply of a committed turn.
    Reply(Box<(TurnHandle, ReplyTarget)>),
    /// Tell the sender something (pairing code, help, new session).
    Notice {
        chat: ChatRef,
        text: String,
    },
}

/// The router of one channel.
#[derive(Debug, Clone)]
pub(crate) struct ChannelRouter {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) runtime: Runtime,
    pub(crate) channel: ChannelCredential,
    pub(crate) settings: Arc<ChannelSettings>,
    pub(crate) replier: Replier,
    pub(crate) pairing_ttl: chrono::Duration,
    pub(crate) max_message_bytes: usize,
}

impl ChannelRouter {
    /// Routes the channel's inbound stream until it ends or `cancel` fires.
    pub(crate) async fn run(
        self,
        mut inbound: mpsc::Receiver<InboundEnvelope>,
        cancel: CancellationToken,
    ) {
        loop {
            let envelope = tokio::select! {
                e = inbound.recv() => e,
                () = cancel.cancelled() => None,
            };
            let Some(envelope) = envelope else { return };
            let (outcome, follow_up) = self.route(envelope.message).await;
            if let AckOutcome::Failed { reason } = &outcome {
                warn!(channel_id = %self.channel.id, reason = %reason, "Inbound message not stored; the platform will deliver it again");
            }
            // The adapter may have given up waiting; the outcome is then moot.
            let _ = envelope.ack.send(outcome);
            self.follow_up(follow_up);
        }
    }

    fn follow_up(&self, follow_up: FollowUp) {
        match follow_up {
            FollowUp::None => {}
            FollowUp::Reply(boxed) => {
                let (handle, target) = *boxed;
                self.replier.spawn_live(target, handle);
            }
            FollowUp::Notice { chat, text } => self.replier.spawn_notice(chat, text),
        }
    }

    async fn route(&self, message: InboundMessage) -> (AckOutcome, FollowUp) {
        let rejected = |reason: &str| {
            (
                AckOutcome::Rejected {
                    reason: reason.to_owned(),
                },
                FollowUp::None,
            )
        };
        if message.sender.is_bot {
            return rejected("the sender is a bot");
        }
        if message.text.len() > self.max_message_bytes {
            return (
                AckOutcome::Rejected {
                    reason: "message too long".to_owned(),
                },
                FollowUp::Notice {
                    chat: message.chat.clone(),
                    text: format!(
                        "Your message is too long ({} bytes); the limit is {} bytes.",
                        message.text.len(),
                        self.max_message_bytes
                    ),
                },
            );
        }
        let access = &self.settings.access;
        match message.conversation {
            Conversation::Group => match access.groups {
                GroupPolicy::Off => return rejected("groups are off on this channel"),
                GroupPolicy::Mention if !message.addressed => {
                    return rejected("not addressed to the bot");
                }
                GroupPolicy::Mention | GroupPolicy::All => {}
            },
            Conversation::Direct => {
                let sender = message.sender.external_id.as_str();
                let listed = access.allow.iter().any(|a| a == sender);
                match access.dm {
                    DmPolicy::Open => {}
                    DmPolicy::Allowlist if listed => {}
                    DmPolicy::Allowlist => return rejected("the sender is not on the allowlist"),
                    DmPolicy::Pairing if listed => {}
                    DmPolicy::Pairing => {
                        match self.store.is_paired(self.channel.id, sender).await {
                            Ok(true) => {}
                            Ok(false) => return self.offer_pairing(&message).await,
                            Err(err) => return failed(&err),
                        }
                    }
                }
            }
        }
        match command(&message.text) {
            Some(Command::Help) => {
                return (
                    AckOutcome::Rejected {
                        reason: "help shown".to_owned(),
                    },
                    FollowUp::Notice {
                        chat: message.chat.clone(),
                        text: HELP.to_owned(),
                    },
                );
            }
            Some(Command::New) => return self.new_session(&message).await,
            Some(Command::Stop) => return self.stop(&message).await,
            None => {}
        }
        if message.text.trim().is_empty() && message.attachments.is_empty() {
            return rejected("empty message");
        }
        self.submit(message).await
    }

    async fn offer_pairing(&self, message: &InboundMessage) -> (AckOutcome, FollowUp) {
        let sender = &message.sender;
        match pairing::offer(
            self.store.as_ref(),
            self.channel.id,
            &sender.external_id,
            sender.display_name.as_deref(),
            Utc::now(),
            self.pairing_ttl,
        )
        .await
        {
            Ok(pairing) => {
                info!(channel_id = %self.channel.id, sender = %sender.external_id, "Unknown sender; pairing code offered");
                (
                    AckOutcome::Rejected {
                        reason: "unpaired sender; pairing code sent".to_owned(),
                    },
                    FollowUp::Notice {
                        chat: message.chat.clone(),
                        text: pairing::message(&pairing),
                    },
                )
            }
            Err(err) => failed(&err),
        }
    }

    /// The sender's session in this chat, if it exists.
    async fn existing_session(
        &self,
        message: &InboundMessage,
    ) -> Result<Option<Session>, StoreError> {
        let scope = scope(&self.channel, message);
        self.store
            .find_session(
                self.channel.user_id,
                self.channel.agent_id,
                self.channel.kind,
                &scope,
            )
            .await
    }

    async fn stop(&self, message: &InboundMessage) -> (AckOutcome, FollowUp) {
        let session = match self.existing_session(message).await {
            Ok(s) => s,
            Err(err) => return failed(&err),
        };
        let stopped = session.and_then(|s| self.runtime.cancel_turn(s.id));
        (
            AckOutcome::Rejected {
                reason: "stop handled".to_owned(),
            },
            FollowUp::Notice {
                chat: message.chat.clone(),
                text: if stopped.is_some() {
                    "Stopped.".to_owned()
                } else {
                    "Nothing to stop.".to_owned()
                },
            },
        )
    }

    async fn new_session(&self, message: &InboundMessage) -> (AckOutcome, FollowUp) {
        let found = self.existing_session(message).await;
        match found {
            Ok(Some(session)) => {
                if let Err(err) = self.store.retire_session(session.id).await {
                    return failed(&err);
                }
                debug!(session_id = %session.id, "Session retired by /new");
            }
            Ok(None) => {}
            Err(err) => return failed(&err),
        }
        (
            AckOutcome::Rejected {
                reason: "new session started".to_owned(),
            },
            FollowUp::Notice {
                chat: message.chat.clone(),
                text: "Started a new conversation.".to_owned(),
            },
        )
    }

    async fn session(&self, message: &InboundMessage) -> Result<Session, StoreError> {
        let scope = scope(&self.channel, message);
        let (user, agent, kind) = (
            self.channel.user_id,
            self.channel.agent_id,
            self.channel.kind,
        );
        if let Some(session) = self.store.find_session(user, agent, kind, &scope).await? {
            return Ok(session);
        }
        let now = Utc::now();
        let session = Session {
            id: SessionId::new(),
            user_id: user,
            agent_id: agent,
            channel: kind,
            scope: scope.clone(),
            title: title(message),
            created_at: now,
            updated_at: now,
        };
        match self.store.create_session(&session).await {
            Ok(()) => Ok(session),
            // Another replica created it first.
            Err(StoreError::Conflict { .. }) => self
                .store
                .find_session(user, agent, kind, &scope)
                .await?
                .ok_or(StoreError::NotFound { what: "session" }),
            Err(err) => Err(err),
        }
    }

    async fn submit(&self, message: InboundMessage) -> (AckOutcome, FollowUp) {
        let session = match self.session(&message).await {
            Ok(s) => s,
            Err(err) => return failed(&err),
        };
        let reply_to = match message.conversation {
            Conversation::Group => Some(message.message_id.clone()),
            Conversation::Direct => None,
        };
        let target = ReplyTarget {
            channel_id: self.channel.id,
            chat: message.chat.clone(),
            reply_to: reply_to.clone(),
        };
        let mut metadata = message.metadata;
        let mut put = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                metadata.insert(k.to_owned(), serde_json::Value::String(v));
            }
        };
        put(keys::CHANNEL_ID, Some(self.channel.id.to_string()));
        put(keys::CHAT_ID, Some(message.chat.chat_id.clone()));
        put(keys::THREAD_ID, message.chat.thread_id.clone());
        put(keys::REPLY_TO, reply_to);
        if let Some(tools) = &self.settings.access.tools {
            metadata.insert(
                nexus_runtime::TOOLS_METADATA_KEY.to_owned(),
                tools.clone().into(),
            );
        }
        let submission = Submission {
            session,
            text: message.text,
            attachments: message.attachments,
            metadata,
            dedupe: Some(DedupeKey {
                channel: self.channel.kind,
                account: self.channel.id.to_string(),
                external_id: message.external_id,
            }),
        };
        match self.runtime.submit(submission).await {
            Ok(handle) if handle.duplicate => (AckOutcome::Duplicate, FollowUp::None),
            Ok(handle) => (
                AckOutcome::Committed,
                FollowUp::Reply(Box::new((handle, target))),
            ),
            Err(RuntimeError::ShuttingDown) => (
                AckOutcome::Failed {
                    reason: "the server is shutting down".to_owned(),
                },
                FollowUp::None,
            ),
            Err(err) => (
                AckOutcome::Failed {
                    reason: err.to_string(),
                },
                FollowUp::None,
            ),
        }
    }
}

fn failed(err: &StoreError) -> (AckOutcome, FollowUp) {
    (
        AckOutcome::Failed {
            reason: format!("storage: {err}"),
        },
        FollowUp::None,
    )
}

/// A session title: the start of the first message.
fn title(message: &InboundMessage) -> String {
    const MAX: usize = 60;
    let text = message.text.trim();
    if text.chars().count() <= MAX {
        return text.to_owned();
    }
    let mut t: String = text.chars().take(MAX - 1).collect();
    t.push('…');
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_recognized_with_bot_suffixes_and_bang_forms() {
        assert_eq!(command("/new"), Some(Command::New));
        assert_eq!(command("/new@nexus_bot please"), Some(Command::New));
        assert_eq!(command("!reset"), Some(Command::New));
        assert_eq!(command("/START"), Some(Command::Help));
        assert_eq!(command("/stop@nexus_bot"), Some(Command::Stop));
        assert_eq!(command("!stop"), Some(Command::Stop));
        assert_eq!(command("new"), None);
        assert_eq!(command("tell me about /new"), None);
        assert_eq!(command(""), None);
    }
}
