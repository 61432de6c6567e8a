//! The runtime's public face: submit an inbound message, follow its turn, recover on start,
//! shut down gracefully.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use nexus_core::cache::TtlCache;
use nexus_core::{
    Agent, AgentId, Attachment, ChatMessage, Direction, LlmProvider, Message, MessageId, Metadata,
    Role, Session, SessionId, ToolSpec, TurnErrorKind, TurnEvent, TurnId, Usage,
};
use nexus_store::{
    DedupeKey, EnqueueOutcome, InboxItem, InboxStatus, NewInbound, Store, StoreError,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

use crate::config::RuntimeConfig;
use crate::error::RuntimeError;
use crate::history::HistoryCache;
use crate::hub::{EventHub, EventReceiver};
use crate::metrics::Metrics;
use crate::worker::{self, Fresh, Grace, Workers, kick};
use nexus_tools::ToolRegistry;

/// Sessions whose history is kept in memory at most.
const HISTORY_SESSIONS: usize = 512;
/// How long an agent read from storage is reused.
const AGENT_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(2);

/// Finds the models an agent talks to.
pub trait ModelResolver: Send + Sync + fmt::Debug {
    /// A provider for the model chain `addresses` (`provider/model`: the agent's model, then
    /// its fallbacks). It fails over between them before the answer's first chunk, announcing
    /// a switch with `CompletionChunk::Failover`; a model that cannot be used (its provider not
    /// configured) fails its turn in the chain with an error naming what to set.
    fn chain(&self, addresses: &[String]) -> Arc<dyn LlmProvider>;

    /// Whether a request of `system`, `messages` and `tools` fits the context window of the
    /// model at `address` with room for `max_output` tokens of answer; `None` when the window
    /// is unknown.
    fn fits(&self, address: &str, request: &RequestParts<'_>) -> Option<bool> {
        let _ = (address, request);
        None
    }

    /// The cost of `usage` on the model at `address` in micro-dollars, when its prices are
    /// known.
    fn cost_micros(&self, address: &str, usage: &Usage) -> Option<i64> {
        let _ = (address, usage);
        None
    }
}

/// The parts of a model request that take room in the context window.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// The system prompt.
    pub system: Option<&'a str>,
    /// The conversation.
    pub messages: &'a [ChatMessage],
    /// The tool definitions.
    pub tools: &'a [ToolSpec],
    /// Room kept for the answer, when the agent sets it.
    pub max_output: Option<u32>,
}

/// An inbound message for a session.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The session (already resolved and authorized by the caller).
    pub session: Session,
    /// The text.
    pub text: String,
    /// Attachments, already in object storage.
    pub attachments: Vec<Attachment>,
    /// Platform ids and other metadata.
    pub metadata: Metadata,
    /// Deduplication key (platform event id, client idempotency key).
    pub dedupe: Option<DedupeKey>,
}

/// A submitted message and the live events of its turn.
#[derive(Debug)]
pub struct TurnHandle {
    /// The turn.
    pub turn_id: TurnId,
    /// The session.
    pub session_id: SessionId,
    /// The stored user message.
    pub message_id: MessageId,
    /// Its position in the session (the turn's answer comes after it).
    pub message_seq: i64,
    /// Whether the message had been submitted before (same deduplication key).
    pub duplicate: bool,
    /// The turn's events, ending with `Done` or `Error`.
    pub events: EventReceiver,
}

/// What the workers share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) models: Arc<dyn ModelResolver>,
    pub(crate) tools: ToolRegistry,
    pub(crate) config: RuntimeConfig,
    pub(crate) metrics: Metrics,
    pub(crate) hub: EventHub,
    pub(crate) workers: Workers,
    /// Recent history of active sessions.
    pub(crate) history: HistoryCache,
    /// Agents read recently (an agent's changes reach running sessions within its lifetime).
    pub(crate) agents: TtlCache<AgentId, Agent>,
    /// Fired when running turns must stop (after the shutdown grace period).
    pub(crate) cancel: CancellationToken,
    /// The turn running for each session here, with what cancels it.
    pub(crate) running: Running,
    pub(crate) tracker: TaskTracker,
    /// Turns begun since start (see [`Runtime::turns_begun`]).
    pub(crate) turns_begun: AtomicU64,
}

/// The turns running on this replica, by session, with their cancellation tokens.
#[derive(Debug, Default)]
pub(crate) struct Running {
    turns: std::sync::Mutex<std::collections::HashMap<SessionId, (TurnId, CancellationToken)>>,
}

impl Running {
    /// Registers the turn of `session` until the returned guard drops.
    pub(crate) fn enter(
        &self,
        session: SessionId,
        turn: TurnId,
        token: CancellationToken,
    ) -> RunningGuard<'_> {
        self.lock().insert(session, (turn, token));
        RunningGuard {
            running: self,
            session,
            turn,
        }
    }

    fn get(&self, session: SessionId) -> Option<(TurnId, CancellationToken)> {
        self.lock().get(&session).cloned()
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<SessionId, (TurnId, CancellationToken)>>
    {
        self.turns
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Removes a turn from [`Running`] when it ends.
#[derive(Debug)]
pub(crate) struct RunningGuard<'a> {
    running: &'a Running,
    session: SessionId,
    turn: TurnId,
}

impl Drop for RunningGuard<'_> {
    fn drop(&mut self) {
        let mut turns = self.running.lock();
        if turns
            .get(&self.session)
            .is_some_and(|(t, _)| *t == self.turn)
        {
            turns.remove(&self.session);
        }
    }
}

/// The agent runtime: session workers, the agent loop, recovery.
#[derive(Debug, Clone)]
pub struct Runtime {
    shared: Arc<Shared>,
    accepting: Arc<AtomicBool>,
    sweeper: CancellationToken,
}

impl Runtime {
    /// A runtime over a store, a model resolver and tools. Call [`Runtime::start`] to recover
    /// pending work and start the sweeper.
    pub fn new(
        store: Arc<dyn Store>,
        models: Arc<dyn ModelResolver>,
        tools: ToolRegistry,
        config: RuntimeConfig,
        metrics: Metrics,
    ) -> Self {
        let history_limit = usize::try_from(config.history_limit).unwrap_or(usize::MAX);
        Runtime {
            shared: Arc::new(Shared {
                history: HistoryCache::new(history_limit, HISTORY_SESSIONS),
                agents: TtlCache::new(AGENT_CACHE_TTL, HISTORY_SESSIONS),
                store,
                models,
                tools,
                config,
                metrics,
                hub: EventHub::default(),
                workers: Workers::default(),
                cancel: CancellationToken::new(),
                running: Running::default(),
                tracker: TaskTracker::new(),
                turns_begun: AtomicU64::new(0),
            }),
            accepting: Arc::new(AtomicBool::new(true)),
            sweeper: CancellationToken::new(),
        }
    }

    /// The tools this runtime offers.
    pub fn tools(&self) -> &ToolRegistry {
        &self.shared.tools
    }

    /// Cancels the turn running for `session` on this replica, if any: its model call and
    /// tools stop, and the message is marked failed (cancelled) instead of being answered or
    /// retried. Returns the cancelled turn.
    pub fn cancel_turn(&self, session: SessionId) -> Option<TurnId> {
        let (turn, token) = self.shared.running.get(session)?;
        info!(%session, turn_id = %turn, "Turn cancelled on request");
        token.cancel();
        Some(turn)
    }

    /// Answers inbox items left pending by a previous run (a crash, a shutdown) and starts the
    /// periodic sweep for items whose worker died elsewhere. Call it before taking messages:
    /// the start-up recovery takes every pending item. Returns how many sessions had pending
    /// items.
    pub async fn start(&self) -> Result<usize, StoreError> {
        let recovered = self.sweep(Grace::None).await?;
        if recovered > 0 {
            info!(sessions = recovered, "Recovering unanswered messages");
        }
        let this = self.clone();
        let every = self.shared.config.sweep_interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(err) = this.sweep(Grace::Fresh).await {
                            warn!(error = %err, "Inbox sweep failed");
                            Metrics::count(&this.shared.metrics.errors, "storage", 1);
                        }
                    }
                    () = this.sweeper.cancelled() => return,
                }
            }
        });
        Ok(recovered)
    }

    async fn sweep(&self, grace: Grace) -> Result<usize, StoreError> {
        let sessions = self.shared.store.sessions_with_pending(1000).await?;
        for session in &sessions {
            kick(&self.shared, *session, grace);
        }
        Ok(sessions.len())
    }

    /// Commits an inbound message to its session's inbox and schedules its turn. When this
    /// returns, the message is durable: it will be answered even if the process dies.
    pub async fn submit(&self, submission: Submission) -> Result<TurnHandle, RuntimeError> {
        if !self.accepting.load(Ordering::Acquire) {
            return Err(RuntimeError::ShuttingDown);
        }
        let session = &submission.session;
        let mut message = Message::new(
            session.id,
            session.channel,
            Direction::Inbound,
            Role::User,
            submission.text,
        );
        message.attachments = submission.attachments;
        message.metadata = submission.metadata;
        let inbound = NewInbound {
            message,
            dedupe: submission.dedupe,
        };
        let outcome = self.shared.store.enqueue(&inbound).await?;
        if let EnqueueOutcome::Enqueued(item) = outcome {
            let events = self.shared.hub.subscribe(session.id, item.turn_id);
            let mut message = inbound.message;
            message.seq = item.message_seq;
            let handle = TurnHandle {
                turn_id: item.turn_id,
                session_id: session.id,
                message_id: item.message_id,
                message_seq: item.message_seq,
                duplicate: false,
                events,
            };
            worker::submit(
                &self.shared,
                Fresh {
                    item,
                    session: submission.session,
                    message,
                },
            );
            return Ok(handle);
        }
        // A duplicate: follow the original turn, or replay its outcome.
        let (EnqueueOutcome::Duplicate(item) | EnqueueOutcome::Enqueued(item)) = outcome;
        let events = self.shared.hub.subscribe(session.id, item.turn_id);
        match item.status {
            InboxStatus::Pending => kick(&self.shared, session.id, Grace::Fresh),
            InboxStatus::Done => publish_stored_answer(&self.shared, &item).await?,
            InboxStatus::Failed => self.shared.hub.publish(
                item.turn_id,
                TurnEvent::Error {
                    kind: TurnErrorKind::Provider,
                    message: item
                        .error
                        .clone()
                        .unwrap_or_else(|| "the turn failed".to_owned()),
                },
            ),
        }
        Ok(TurnHandle {
            turn_id: item.turn_id,
            session_id: session.id,
            message_id: item.message_id,
            message_seq: item.message_seq,
            duplicate: true,
            events,
        })
    }

    /// Turns begun on this replica since it started: while it stays the same and no session
    /// has a worker, the replica is idle.
    pub fn turns_begun(&self) -> u64 {
        self.shared.turns_begun.load(Ordering::Relaxed)
    }

    /// How many sessions have a worker right now.
    pub fn active_sessions(&self) -> usize {
        self.shared.workers.active()
    }

    /// Stops taking messages, lets running turns finish for the configured grace period, then
    /// abandons the rest (they stay pending and are answered after the next start).
    pub async fn shutdown(&self) {
        self.accepting.store(false, Ordering::Release);
        self.sweeper.cancel();
        let shared = &self.shared;
        shared.tracker.close();
        if tokio::time::timeout(shared.config.shutdown_grace, shared.tracker.wait())
            .await
            .is_err()
        {
            warn!(
                sessions = shared.workers.active(),
                "Abandoning running turns at shutdown; they will be answered after restart"
            );
            shared.cancel.cancel();
            shared.tracker.wait().await;
        }
    }
}

/// Publishes the stored answer of a completed turn as one text delta and `Done` (for a
/// duplicate submission, or a turn answered by another replica).
pub(crate) async fn publish_stored_answer(rt: &Shared, item: &InboxItem) -> Result<(), StoreError> {
    let delivery = rt.store.get_delivery_for_turn(item.turn_id).await?;
    let Some(delivery) = delivery else {
        rt.hub.publish(
            item.turn_id,
            TurnEvent::Error {
                kind: TurnErrorKind::Internal,
                message: "the answer to this message is missing".to_owned(),
            },
        );
        return Ok(());
    };
    let answer = rt
        .store
        .list_messages(item.session_id, item.message_seq, 0)
        .await?
        .into_iter()
        .find(|m| m.id == delivery.message_id);
    if let Some(answer) = answer
        && !answer.content.is_empty()
    {
        rt.hub.publish(
            item.turn_id,
            TurnEvent::TextDelta {
                text: answer.content,
            },
        );
    }
    rt.hub.publish(
        item.turn_id,
        TurnEvent::Done {
            turn_id: item.turn_id,
            session_id: item.session_id,
            message_id: delivery.message_id,
        },
    );
    Ok(())
}
