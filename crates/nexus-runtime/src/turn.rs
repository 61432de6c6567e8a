//! One turn: the agent loop for one inbound message.
//!
//! model → tool calls → tool results → model … until a final answer or the step limit. Text
//! deltas and tool events are published live; the turn's messages, usage and delivery record
//! are committed together at the end, and only then is `Done` published. A turn interrupted by
//! a crash or shutdown commits nothing and is run again later.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use chrono::Utc;
use futures::StreamExt;
use futures::future::join_all;
use nexus_core::{
    Agent, Attachment, ChannelKind, ChatMessage, CompletionChunk, CompletionRequest, DeliveryId,
    Direction, LlmError, LlmProvider, Message, MessageId, Role, Session, StopReason, ToolCall,
    ToolContext, ToolSpec, TurnErrorKind, TurnEvent, Usage,
};
use nexus_store::{
    CommitOutcome, DeliveryStatus, InboxItem, NewDelivery, StoreError, TurnCommit, UsageRecord,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::context::{order_for_turn, to_chat, trim_to_fit};
use crate::metrics::{Metrics, ToolLabels};
use crate::runtime::{RequestParts, Shared};
use crate::worker::Fresh;

/// How a turn ended, for the worker.
#[derive(Debug)]
pub(crate) enum TurnEnd {
    /// Committed or failed for good.
    Finished,
    /// Interrupted by shutdown: nothing committed, the item stays pending.
    Abandoned,
}

struct Failure {
    kind: TurnErrorKind,
    message: String,
}

impl Failure {
    fn from_llm(err: &LlmError) -> Self {
        let kind = match err {
            LlmError::NotConfigured { .. } => TurnErrorKind::ProviderNotConfigured,
            _ => TurnErrorKind::Provider,
        };
        Failure {
            kind,
            message: err.to_string(),
        }
    }
}

enum StepError {
    Failed(Failure),
    Cancelled,
}

/// What a turn starts from.
#[derive(Debug)]
pub(crate) struct TurnInput {
    pub(crate) item: InboxItem,
    /// The session and the user message, when the submitter handed them over.
    known: Option<(Session, Message)>,
    /// Found pending in storage (after a crash, a shutdown, or on another replica's behalf):
    /// counts an attempt and reads the history from storage.
    recovered: bool,
}

impl TurnInput {
    /// A message submitted through this process.
    pub(crate) fn submitted(fresh: Fresh) -> Self {
        TurnInput {
            item: fresh.item,
            known: Some((fresh.session, fresh.message)),
            recovered: false,
        }
    }

    /// A pending item read from storage.
    pub(crate) fn recovered(item: InboxItem) -> Self {
        TurnInput {
            item,
            known: None,
            recovered: true,
        }
    }
}

/// Runs one turn. Errors are storage failures; the item then stays pending.
pub(crate) async fn run_turn(rt: &Shared, input: TurnInput) -> Result<TurnEnd, StoreError> {
    let started = Instant::now();
    rt.turns_begun.fetch_add(1, Ordering::Relaxed);
    let item = &input.item;
    let turn_id = item.turn_id;
    if input.recovered {
        let attempts = rt.store.begin_attempt(turn_id).await?;
        if attempts > rt.config.max_attempts {
            let message = format!(
                "gave up on this message after {} attempts; send it again",
                rt.config.max_attempts
            );
            warn!(%turn_id, attempts, "Turn given up after repeated attempts");
            fail(rt, item, TurnErrorKind::Internal, &message).await?;
            return Ok(TurnEnd::Finished);
        }
    }

    let (session, current) = match input.known {
        Some(known) => known,
        None => {
            let Some(session) = rt.store.get_session(item.session_id).await? else {
                fail(
                    rt,
                    item,
                    TurnErrorKind::Internal,
                    "session no longer exists",
                )
                .await?;
                return Ok(TurnEnd::Finished);
            };
            let found = rt
                .store
                .list_messages(session.id, item.message_seq - 1, 1)
                .await?
                .into_iter()
                .find(|m| m.id == item.message_id);
            let Some(message) = found else {
                fail(
                    rt,
                    item,
                    TurnErrorKind::Internal,
                    "message no longer exists",
                )
                .await?;
                return Ok(TurnEnd::Finished);
            };
            (session, message)
        }
    };
    let Some(agent) = agent(rt, session.agent_id).await? else {
        fail(rt, item, TurnErrorKind::Internal, "agent no longer exists").await?;
        return Ok(TurnEnd::Finished);
    };

    // The conversation before this message, oldest first.
    let earlier = match rt.history.get(session.id) {
        Some(cached) => cached,
        None => {
            let stored = rt
                .store
                .recent_messages(session.id, rt.config.history_limit)
                .await?;
            let mut ordered = order_for_turn(stored, &current);
            ordered.pop();
            let ordered: Vec<Arc<Message>> = ordered.into_iter().map(Arc::new).collect();
            rt.history.set(session.id, ordered.clone());
            ordered
        }
    };
    let current = Arc::new(current);
    rt.hub.publish(
        turn_id,
        TurnEvent::Started {
            turn_id,
            session_id: session.id,
            message_id: current.id,
        },
    );

    let chain: Vec<String> = std::iter::once(agent.model.clone())
        .chain(agent.fallback_models.iter().cloned())
        .collect();
    let provider = rt.models.chain(&chain);

    let cancel = rt.cancel.child_token();
    let _running = rt.running.enter(session.id, turn_id, cancel.clone());
    let mut state = LoopState {
        rt,
        cancel,
        session: &session,
        agent: &agent,
        provider,
        serving: agent.model.clone(),
        item,
        started,
        first_token: None,
        new_messages: Default::default(),
        usage: Vec::new(),
        inbound_attachments: current.attachments.clone(),
        allowed_tools: allowed_tools(&agent, &current),
    };
    let mut context = earlier;
    context.push(Arc::clone(&current));
    match state.run(&context).await {
        Ok(final_id) => {
            let (end, committed) = state.commit(final_id).await?;
            match committed {
                Some(messages) => rt.history.append(
                    session.id,
                    std::iter::once(current).chain(messages.into_iter().map(Arc::new)),
                ),
                None => rt.history.invalidate(session.id),
            }
            rt.metrics
                .turn_duration
                .observe(started.elapsed().as_secs_f64());
            Ok(end)
        }
        Err(StepError::Cancelled) if !rt.cancel.is_cancelled() => {
            // Cancelled on request: the message is not answered and not retried.
            fail(
                rt,
                item,
                TurnErrorKind::Cancelled,
                "the turn was cancelled before it finished; send the message again to retry",
            )
            .await?;
            rt.history.append(session.id, [current]);
            Ok(TurnEnd::Finished)
        }
        Err(StepError::Cancelled) => {
            info!(%turn_id, "Turn abandoned by shutdown; it stays in the inbox");
            rt.history.invalidate(session.id);
            rt.hub.publish(
                turn_id,
                TurnEvent::Error {
                    kind: TurnErrorKind::Cancelled,
                    message: "the server is shutting down; the message will be answered after \
                              it restarts"
                        .to_owned(),
                },
            );
            Ok(TurnEnd::Abandoned)
        }
        Err(StepError::Failed(failure)) => {
            fail(rt, item, failure.kind, &failure.message).await?;
            rt.history.append(session.id, [current]);
            Ok(TurnEnd::Finished)
        }
    }
}

/// The agent, from the short-lived cache or storage.
async fn agent(rt: &Shared, id: nexus_core::AgentId) -> Result<Option<Agent>, StoreError> {
    if let Some(agent) = rt.agents.get(&id) {
        return Ok(Some(agent));
    }
    let agent = rt.store.get_agent(id).await?;
    if let Some(a) = &agent {
        rt.agents.insert(id, a.clone());
    }
    Ok(agent)
}

/// Marks the item failed and tells the subscribers.
async fn fail(
    rt: &Shared,
    item: &InboxItem,
    kind: TurnErrorKind,
    message: &str,
) -> Result<(), StoreError> {
    warn!(turn_id = %item.turn_id, kind = kind.as_str(), %message, "Turn failed");
    rt.store.fail_turn(item.turn_id, message).await?;
    Metrics::count(&rt.metrics.turns, kind.as_str(), 1);
    rt.hub.publish(
        item.turn_id,
        TurnEvent::Error {
            kind,
            message: message.to_owned(),
        },
    );
    Ok(())
}

/// Metadata key of a tool result message: the call's wall time in milliseconds.
const TOOL_DURATION_KEY: &str = "nexus_duration_ms";

/// The agent's tool entries, narrowed by the list the inbound message carries, if any.
fn allowed_tools(agent: &Agent, inbound: &Message) -> Vec<String> {
    match inbound.metadata.get(crate::TOOLS_METADATA_KEY) {
        Some(serde_json::Value::Array(limit)) => {
            let limit: Vec<String> = limit
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            nexus_tools::narrow(&agent.tools, &limit)
        }
        _ => agent.tools.clone(),
    }
}

struct LoopState<'a> {
    rt: &'a Shared,
    /// Fired by shutdown (after its grace) or by a request to cancel this turn.
    cancel: CancellationToken,
    session: &'a Session,
    agent: &'a Agent,
    /// The agent's model chain.
    provider: Arc<dyn LlmProvider>,
    /// The model of the chain that answers (the agent's model until a failover).
    serving: String,
    item: &'a InboxItem,
    started: Instant,
    first_token: Option<Instant>,
    new_messages: Vec<Message>,
    usage: Vec<UsageRecord>,
    /// Files of the message being answered, given to tools.
    inbound_attachments: Vec<Attachment>,
    /// The agent's tool entries this turn may use (narrowed by the inbound message's channel).
    allowed_tools: Vec<String>,
}

impl LoopState<'_> {
    fn outbound(&self, role: Role, content: String) -> Message {
        Message::new(
            self.session.id,
            self.session.channel,
            Direction::Outbound,
            role,
            content,
        )
    }

    /// Runs model calls and tool calls until a final answer; returns its message id.
    async fn run(&mut self, context: &[Arc<Message>]) -> Result<MessageId, StepError> {
        let tools = self.rt.tools.specs(&self.allowed_tools);
        let max_steps = self.agent.max_steps.max(1);
        for step in 0..max_steps {
            // The request owns its conversation: built anew for each step (most turns have
            // one) rather than copied from a kept one.
            let mut conversation = if step == 0 {
                to_chat(context)
            } else {
                let all: Vec<&Message> = context
                    .iter()
                    .map(|m| &**m)
                    .chain(&self.new_messages)
                    .collect();
                to_chat(&all)
            };
            self.fit(&mut conversation, &tools);
            let request = CompletionRequest {
                model: self.agent.model.clone(),
                system: (!self.agent.system_prompt.is_empty())
                    .then(|| self.agent.system_prompt.clone()),
                messages: Arc::new(conversation),
                tools: tools.clone(),
                max_output_tokens: self.agent.max_output_tokens,
                temperature: self.agent.temperature,
                affinity: Some(self.session.id.to_string()),
            };
            let (text, calls) = self.call_model(request).await?;
            if calls.is_empty() {
                let mut msg = self.outbound(Role::Assistant, text);
                // Files the tools made this turn go out with the answer.
                msg.attachments = self
                    .new_messages
                    .iter()
                    .filter(|m| m.role == Role::Tool)
                    .flat_map(|m| m.attachments.iter().cloned())
                    .collect();
                let id = msg.id;
                self.new_messages.push(msg);
                return Ok(id);
            }
            let mut assistant = self.outbound(Role::Assistant, text);
            assistant.tool_calls = calls;
            let results = self.run_tools(&assistant.tool_calls).await?;
            self.new_messages.push(assistant);
            self.new_messages.extend(results);
        }
        Err(StepError::Failed(Failure {
            kind: TurnErrorKind::StepLimit,
            message: format!(
                "the agent used all {max_steps} steps without a final answer; raise the agent's \
                 max_steps or ask for less"
            ),
        }))
    }

    /// Drops the oldest exchanges of `conversation` that do not fit the agent's model.
    fn fit(&self, conversation: &mut Vec<ChatMessage>, tools: &[ToolSpec]) {
        let models = &self.rt.models;
        let address = &self.agent.model;
        let system = (!self.agent.system_prompt.is_empty()).then_some(&*self.agent.system_prompt);
        let dropped = trim_to_fit(conversation, |messages| {
            let parts = RequestParts {
                system,
                messages,
                tools,
                max_output: self.agent.max_output_tokens,
            };
            models.fits(address, &parts) != Some(false)
        });
        if dropped > 0 {
            info!(
                turn_id = %self.item.turn_id,
                model = %address,
                dropped,
                "Oldest messages left out to fit the model's context window"
            );
        }
    }

    /// One model call, streamed: returns the text and the tool calls it made.
    async fn call_model(
        &mut self,
        request: CompletionRequest,
    ) -> Result<(String, Vec<ToolCall>), StepError> {
        let cancel = self.cancel.clone();
        let mut stream = tokio::select! {
            r = self.provider.complete(request) => r.map_err(|e| StepError::Failed(Failure::from_llm(&e)))?,
            () = cancel.cancelled() => return Err(StepError::Cancelled),
        };
        let mut text = String::new();
        let mut calls = Vec::new();
        let mut usage = Usage::default();
        let mut saw_usage = false;
        let mut charged: Option<i64> = None;
        loop {
            let chunk = tokio::select! {
                c = stream.next() => c,
                () = cancel.cancelled() => return Err(StepError::Cancelled),
            };
            let Some(chunk) = chunk else { break };
            match chunk {
                Ok(CompletionChunk::TextDelta { text: delta }) => {
                    if delta.is_empty() {
                        continue;
                    }
                    if self.first_token.is_none() {
                        let now = Instant::now();
                        self.first_token = Some(now);
                        self.rt
                            .metrics
                            .first_token
                            .observe((now - self.started).as_secs_f64());
                    }
                    text.push_str(&delta);
                    self.rt
                        .hub
                        .publish(self.item.turn_id, TurnEvent::TextDelta { text: delta });
                }
                Ok(CompletionChunk::ToolUse { id, name, input }) => calls.push(ToolCall {
                    id,
                    name,
                    arguments: input,
                }),
                Ok(CompletionChunk::Usage { usage: u }) => {
                    usage.add(&u);
                    saw_usage = true;
                }
                Ok(CompletionChunk::Done { stop_reason }) => {
                    if stop_reason == StopReason::ContentFilter
                        && text.is_empty()
                        && calls.is_empty()
                    {
                        self.record_usage(usage, saw_usage, charged);
                        return Err(StepError::Failed(Failure {
                            kind: TurnErrorKind::Provider,
                            message: "the model's provider withheld the answer under its \
                                      content policy; rephrase the message or use another model"
                                .to_owned(),
                        }));
                    }
                    break;
                }
                Ok(CompletionChunk::Cost { micros }) => {
                    charged = Some(charged.unwrap_or(0).saturating_add(micros));
                }
                Ok(CompletionChunk::Failover { from, to, reason }) => {
                    self.serving.clone_from(&to);
                    self.rt
                        .hub
                        .publish(self.item.turn_id, TurnEvent::Failover { from, to, reason });
                }
                Ok(_) => {}
                Err(err) => {
                    self.record_usage(usage, saw_usage, charged);
                    return Err(StepError::Failed(Failure::from_llm(&err)));
                }
            }
        }
        self.record_usage(usage, saw_usage, charged);
        Ok((text, calls))
    }

    /// Records the usage of one model call; `charged` is what the provider said it cost,
    /// preferred over the price list.
    fn record_usage(&mut self, usage: Usage, saw_usage: bool, charged: Option<i64>) {
        if !saw_usage {
            return;
        }
        let metrics = &self.rt.metrics;
        for (kind, n) in [
            ("input", usage.input_tokens),
            ("output", usage.output_tokens),
            ("cache_read", usage.cache_read_tokens),
            ("cache_write", usage.cache_write_tokens),
        ] {
            Metrics::count(&metrics.tokens, kind, n);
        }
        self.rt.hub.publish(
            self.item.turn_id,
            TurnEvent::Usage {
                model: self.serving.clone(),
                usage,
            },
        );
        self.usage.push(UsageRecord {
            id: nexus_core::ids::new_uuid(),
            turn_id: self.item.turn_id,
            session_id: self.session.id,
            user_id: self.session.user_id,
            agent_id: self.agent.id,
            model: self.serving.clone(),
            usage,
            cost_micros: charged.or_else(|| self.rt.models.cost_micros(&self.serving, &usage)),
            created_at: Utc::now(),
        });
    }

    /// Runs the calls of one model answer concurrently; returns the tool messages in call order.
    async fn run_tools(&self, calls: &[ToolCall]) -> Result<Vec<Message>, StepError> {
        let rt = self.rt;
        let limits = rt.config.tool_limits;
        let allowed: &[String] = &self.allowed_tools;
        let runs = calls.iter().map(|call| {
            let ctx = ToolContext {
                session_id: self.session.id,
                agent_id: self.agent.id,
                user_id: self.session.user_id,
                turn_id: self.item.turn_id,
                cancel: self.cancel.child_token(),
                deadline: tokio::time::Instant::now() + limits.timeout,
                policy: self.agent.tool_policy.clone(),
                attachments: self.inbound_attachments.clone(),
                artifacts: rt.tools.artifacts().clone(),
            };
            rt.hub.publish(
                self.item.turn_id,
                TurnEvent::ToolCallStarted {
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    arguments: call.arguments.clone(),
                },
            );
            async move {
                let started = Instant::now();
                let out = nexus_tools::execute(
                    &rt.tools,
                    allowed,
                    &call.name,
                    call.arguments.clone(),
                    ctx,
                    limits,
                )
                .await;
                (call, out, started.elapsed())
            }
        });
        let finished = join_all(runs).await;
        if self.cancel.is_cancelled() {
            return Err(StepError::Cancelled);
        }
        let mut messages = Vec::with_capacity(finished.len());
        for (call, out, elapsed) in finished {
            rt.metrics
                .tool_calls
                .get_or_create(&ToolLabels {
                    tool: call.name.clone(),
                    outcome: if out.is_error { "error" } else { "ok" }.to_owned(),
                })
                .inc();
            rt.hub.publish(
                self.item.turn_id,
                TurnEvent::ToolCallFinished {
                    call_id: call.id.clone(),
                    name: call.name.clone(),
                    output: out.content.clone(),
                    is_error: out.is_error,
                    duration_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
                    attachments: out.attachments.clone(),
                },
            );
            let mut msg = self.outbound(Role::Tool, out.content);
            msg.tool_call_id = Some(call.id.clone());
            msg.metadata.insert(
                TOOL_DURATION_KEY.to_owned(),
                u64::try_from(elapsed.as_millis())
                    .unwrap_or(u64::MAX)
                    .into(),
            );
            msg.is_error = out.is_error;
            msg.attachments = out.attachments;
            messages.push(msg);
        }
        Ok(messages)
    }

    /// Commits the turn and publishes `Done`; returns the committed messages (`None` when
    /// another worker had completed the turn first).
    async fn commit(
        self,
        final_id: MessageId,
    ) -> Result<(TurnEnd, Option<Vec<Message>>), StoreError> {
        let rt = self.rt;
        let turn_id = self.item.turn_id;
        // Replies to API clients were streamed to them; platform replies go through the outbox.
        let status = match self.session.channel {
            ChannelKind::Grpc | ChannelKind::Http => DeliveryStatus::Delivered,
            _ => DeliveryStatus::Pending,
        };
        let commit = TurnCommit {
            turn_id,
            session_id: self.session.id,
            messages: self.new_messages,
            usage: self.usage,
            delivery: Some(NewDelivery {
                id: DeliveryId::new(),
                message_id: final_id,
                channel: self.session.channel,
                status,
            }),
        };
        let (message_id, committed) = match rt.store.complete_turn(&commit).await? {
            CommitOutcome::Committed => (final_id, Some(commit.messages)),
            CommitOutcome::AlreadyCompleted => {
                // Another worker answered first; report its answer, not ours.
                warn!(%turn_id, "Turn was already completed elsewhere; discarding this answer");
                let id = match rt.store.get_delivery_for_turn(turn_id).await? {
                    Some(d) => d.message_id,
                    None => final_id,
                };
                (id, None)
            }
        };
        Metrics::count(&rt.metrics.turns, "done", 1);
        rt.hub.publish(
            turn_id,
            TurnEvent::Done {
                turn_id,
                session_id: self.session.id,
                message_id,
            },
        );
        Ok((TurnEnd::Finished, committed))
    }
}
