//! Conformance: the inbox and turn commits, the outbox, usage, leases, and the store itself
//! (migrations, health, corrupt data).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{ChannelKind, DeliveryId, SessionId, TurnId, Usage};

use super::{Harness, World, inbound, new_session, now, reply, world};
use crate::StoreError;
use crate::records::{
    CommitOutcome, DeliveryStatus, EnqueueOutcome, InboxItem, InboxStatus, NewDelivery, TurnCommit,
    UsageFilter, UsageGrouping, UsageRecord,
};
use crate::{Backend, Store};

async fn enqueue(store: &dyn Store, w: &World, text: &str) -> InboxItem {
    match store
        .enqueue(&inbound(&w.session, text, None))
        .await
        .unwrap()
    {
        EnqueueOutcome::Enqueued(item) => item,
        other => panic!("expected Enqueued, got {other:?}"),
    }
}

fn usage(w: &World, turn: TurnId, model: &str, input: u64) -> UsageRecord {
    UsageRecord {
        id: uuid::Uuid::new_v4(),
        turn_id: turn,
        session_id: w.session.id,
        user_id: w.user.id,
        agent_id: w.agent.id,
        model: model.to_owned(),
        usage: Usage {
            input_tokens: input,
            output_tokens: 20,
            cache_read_tokens: 5,
            cache_write_tokens: 7,
        },
        cost_micros: Some(1_234),
        created_at: now(),
    }
}

/// A turn commit with one reply, one usage record and a pending delivery.
fn commit_for(w: &World, item: &InboxItem, text: &str) -> TurnCommit {
    let answer = reply(&w.session, text);
    TurnCommit {
        turn_id: item.turn_id,
        session_id: w.session.id,
        delivery: Some(NewDelivery {
            id: DeliveryId::new(),
            message_id: answer.id,
            channel: w.session.channel,
            status: DeliveryStatus::Pending,
        }),
        usage: vec![usage(w, item.turn_id, "openai/gpt-4o-mini", 100)],
        messages: vec![answer],
    }
}

/// Messages get 1, 2, 3…; each enqueue creates a pending item and moves the session's
/// `updated_at`.
pub async fn enqueue_assigns_consecutive_seq_and_touches_session(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    tokio::time::sleep(Duration::from_millis(2)).await;
    let first = enqueue(s.as_ref(), &w, "one").await;
    let second = enqueue(s.as_ref(), &w, "two").await;
    assert_eq!((first.message_seq, second.message_seq), (1, 2));
    assert_eq!(first.status, InboxStatus::Pending);
    assert_eq!(first.attempts, 0);
    assert_ne!(first.turn_id, second.turn_id);
    assert_eq!(
        s.get_inbox_item(first.turn_id).await.unwrap(),
        Some(first.clone())
    );
    let session = s.get_session(w.session.id).await.unwrap().unwrap();
    assert!(session.updated_at > w.session.updated_at);
    let seqs: Vec<_> = s
        .list_messages(w.session.id, 0, 0)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(seqs, [1, 2]);
}

/// The same platform event enqueued twice yields the first item as `Duplicate` and adds no
/// message; the same external id on another account is a different event.
pub async fn enqueue_with_same_dedupe_key_is_duplicate_and_writes_nothing(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let original = inbound(&w.session, "hello", Some("update-42"));
    let first = s.enqueue(&original).await.unwrap();
    assert!(matches!(first, EnqueueOutcome::Enqueued(_)));
    // A redelivery: same event, even the same message id.
    let again = s.enqueue(&original).await.unwrap();
    assert_eq!(again, EnqueueOutcome::Duplicate(first.item().clone()));
    let mut retyped = inbound(&w.session, "hello (redelivered)", Some("update-42"));
    retyped.dedupe = original.dedupe.clone();
    assert!(matches!(
        s.enqueue(&retyped).await.unwrap(),
        EnqueueOutcome::Duplicate(_)
    ));
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 1);
    assert_eq!(s.pending_inbox(w.session.id).await.unwrap().len(), 1);

    let mut other_account = inbound(&w.session, "hello", Some("update-42"));
    if let Some(key) = other_account.dedupe.as_mut() {
        key.account = "bot-2".to_owned();
    }
    assert!(matches!(
        s.enqueue(&other_account).await.unwrap(),
        EnqueueOutcome::Enqueued(_)
    ));
    // Without a key nothing is ever a duplicate.
    for _ in 0..2 {
        assert!(matches!(
            s.enqueue(&inbound(&w.session, "same text", None))
                .await
                .unwrap(),
            EnqueueOutcome::Enqueued(_)
        ));
    }
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 4);
}

/// Enqueueing into a session that does not exist fails and leaves nothing behind.
pub async fn enqueue_into_missing_session_is_not_found_and_writes_nothing(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let mut ghost = w.session.clone();
    ghost.id = SessionId::new();
    let err = s
        .enqueue(&inbound(&ghost, "hi", Some("e-1")))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    // The dedupe key was not consumed.
    let ok = s
        .enqueue(&inbound(&w.session, "hi", Some("e-1")))
        .await
        .unwrap();
    assert!(matches!(ok, EnqueueOutcome::Enqueued(_)));
    assert!(s.list_messages(ghost.id, 0, 0).await.unwrap().is_empty());
}

/// Parallel enqueues into one session get distinct, gap-free seq numbers 1..=n.
pub async fn concurrent_enqueues_get_consecutive_seq_numbers(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let n = 24;
    let mut tasks = Vec::new();
    for i in 0..n {
        let store = Arc::clone(s);
        let session = w.session.clone();
        tasks.push(tokio::spawn(async move {
            store
                .enqueue(&inbound(&session, &format!("m{i}"), None))
                .await
        }));
    }
    let mut seqs = BTreeSet::new();
    for task in tasks {
        seqs.insert(task.await.unwrap().unwrap().item().message_seq);
    }
    assert_eq!(seqs, (1..=n).collect::<BTreeSet<i64>>());
    let stored: Vec<_> = s
        .list_messages(w.session.id, 0, 0)
        .await
        .unwrap()
        .iter()
        .map(|m| m.seq)
        .collect();
    assert_eq!(stored, (1..=n).collect::<Vec<i64>>());
}

/// The same event arriving on several replicas at once is committed exactly once.
pub async fn concurrent_duplicate_enqueues_commit_once(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(s);
        let msg = inbound(&w.session, "once", Some("evt-1"));
        tasks.push(tokio::spawn(async move { store.enqueue(&msg).await }));
    }
    let mut enqueued = 0;
    let mut turns = BTreeSet::new();
    for task in tasks {
        let outcome = task.await.unwrap().unwrap();
        if matches!(outcome, EnqueueOutcome::Enqueued(_)) {
            enqueued += 1;
        }
        turns.insert(outcome.item().turn_id);
    }
    assert_eq!(enqueued, 1);
    assert_eq!(turns.len(), 1, "every caller sees the one committed item");
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 1);
}

/// Pending items come back in message order; recovery finds the sessions that have some.
pub async fn pending_inbox_is_in_message_order_and_lists_sessions_with_pending(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let idle = new_session(&w.user, &w.agent, ChannelKind::Http, "idle");
    s.create_session(&idle).await.unwrap();
    assert!(s.sessions_with_pending(10).await.unwrap().is_empty());
    let a = enqueue(s.as_ref(), &w, "a").await;
    let b = enqueue(s.as_ref(), &w, "b").await;
    let c = enqueue(s.as_ref(), &w, "c").await;
    s.complete_turn(&commit_for(&w, &a, "done")).await.unwrap();
    let pending: Vec<_> = s
        .pending_inbox(w.session.id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.turn_id)
        .collect();
    assert_eq!(pending, [b.turn_id, c.turn_id]);
    assert_eq!(s.sessions_with_pending(10).await.unwrap(), [w.session.id]);
    assert!(s.pending_inbox(idle.id).await.unwrap().is_empty());
}

/// Each started attempt is counted and visible on the item; a missing item is `NotFound`.
pub async fn begin_attempt_counts_attempts(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "x").await;
    assert_eq!(s.begin_attempt(item.turn_id).await.unwrap(), 1);
    assert_eq!(s.begin_attempt(item.turn_id).await.unwrap(), 2);
    assert_eq!(
        s.get_inbox_item(item.turn_id)
            .await
            .unwrap()
            .unwrap()
            .attempts,
        2
    );
    let err = s.begin_attempt(TurnId::new()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// A completed turn's reply follows the user message, its usage and delivery are stored, and
/// the item is done.
pub async fn complete_turn_commits_messages_usage_and_delivery(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "question").await;
    let commit = commit_for(&w, &item, "answer");
    assert_eq!(
        s.complete_turn(&commit).await.unwrap(),
        CommitOutcome::Committed
    );

    let history = s.list_messages(w.session.id, 0, 0).await.unwrap();
    let texts: Vec<_> = history
        .iter()
        .map(|m| (m.seq, m.content.as_str()))
        .collect();
    assert_eq!(texts, [(1, "question"), (2, "answer")]);
    let done = s.get_inbox_item(item.turn_id).await.unwrap().unwrap();
    assert_eq!(done.status, InboxStatus::Done);
    assert!(done.completed_at.is_some());
    assert!(s.pending_inbox(w.session.id).await.unwrap().is_empty());

    let delivery = s
        .get_delivery_for_turn(item.turn_id)
        .await
        .unwrap()
        .unwrap();
    let planned = commit.delivery.as_ref().unwrap();
    assert_eq!(delivery.id, planned.id);
    assert_eq!(delivery.message_id, commit.messages[0].id);
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.session_id, w.session.id);
    assert_eq!(delivery.attempts, 0);
    assert_eq!(
        s.list_usage(&UsageFilter::default()).await.unwrap(),
        commit.usage
    );

    // The next user message continues the numbering.
    assert_eq!(enqueue(s.as_ref(), &w, "more").await.message_seq, 3);
}

/// Completing a turn a second time (a worker that lost its lease) writes nothing.
pub async fn complete_turn_twice_commits_once(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "q").await;
    let commit = commit_for(&w, &item, "a");
    assert_eq!(
        s.complete_turn(&commit).await.unwrap(),
        CommitOutcome::Committed
    );
    let second = commit_for(&w, &item, "a again");
    assert_eq!(
        s.complete_turn(&second).await.unwrap(),
        CommitOutcome::AlreadyCompleted
    );
    assert_eq!(
        s.complete_turn(&commit).await.unwrap(),
        CommitOutcome::AlreadyCompleted
    );
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 2);
    assert_eq!(
        s.list_usage(&UsageFilter::default()).await.unwrap().len(),
        1
    );
    let delivery = s
        .get_delivery_for_turn(item.turn_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(delivery.id, commit.delivery.unwrap().id);
}

/// Two workers finishing the same turn at once: exactly one commits.
pub async fn concurrent_complete_turns_commit_once(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "q").await;
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = Arc::clone(s);
        let commit = commit_for(&w, &item, &format!("answer {i}"));
        tasks.push(tokio::spawn(
            async move { store.complete_turn(&commit).await },
        ));
    }
    let mut committed = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() == CommitOutcome::Committed {
            committed += 1;
        }
    }
    assert_eq!(committed, 1);
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 2);
    assert_eq!(
        s.list_usage(&UsageFilter::default()).await.unwrap().len(),
        1
    );
}

/// A failed turn cannot be completed afterwards.
pub async fn complete_turn_after_fail_turn_writes_nothing(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "q").await;
    assert_eq!(
        s.fail_turn(item.turn_id, "boom").await.unwrap(),
        CommitOutcome::Committed
    );
    let outcome = s
        .complete_turn(&commit_for(&w, &item, "late"))
        .await
        .unwrap();
    assert_eq!(outcome, CommitOutcome::AlreadyCompleted);
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 1);
    assert_eq!(s.get_delivery_for_turn(item.turn_id).await.unwrap(), None);
    assert!(
        s.list_usage(&UsageFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    let failed = s.get_inbox_item(item.turn_id).await.unwrap().unwrap();
    assert_eq!(failed.status, InboxStatus::Failed);
}

/// Failing records the reason once; failing a finished turn reports `AlreadyCompleted`.
pub async fn fail_turn_records_the_error_once(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "q").await;
    assert_eq!(
        s.fail_turn(item.turn_id, "provider down").await.unwrap(),
        CommitOutcome::Committed
    );
    assert_eq!(
        s.fail_turn(item.turn_id, "again").await.unwrap(),
        CommitOutcome::AlreadyCompleted
    );
    let failed = s.get_inbox_item(item.turn_id).await.unwrap().unwrap();
    assert_eq!(failed.error.as_deref(), Some("provider down"));
    assert!(failed.completed_at.is_some());
    assert!(s.pending_inbox(w.session.id).await.unwrap().is_empty());

    let done = enqueue(s.as_ref(), &w, "q2").await;
    s.complete_turn(&commit_for(&w, &done, "a")).await.unwrap();
    assert_eq!(
        s.fail_turn(done.turn_id, "late").await.unwrap(),
        CommitOutcome::AlreadyCompleted
    );
    assert_eq!(
        s.get_inbox_item(done.turn_id)
            .await
            .unwrap()
            .unwrap()
            .status,
        InboxStatus::Done
    );
}

/// A turn id the inbox never had is `NotFound`, not "already completed".
pub async fn completing_an_unknown_turn_is_not_found(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let fake = InboxItem {
        turn_id: TurnId::new(),
        ..enqueue(s.as_ref(), &w, "q").await
    };
    let err = s
        .complete_turn(&commit_for(&w, &fake, "a"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let err = s.fail_turn(fake.turn_id, "x").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(s.list_messages(w.session.id, 0, 0).await.unwrap().len(), 1);
}

/// The outbox lists undelivered (pending or ambiguous) deliveries of one channel, oldest first.
pub async fn pending_deliveries_are_per_channel_oldest_first(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let mut ids = Vec::new();
    for text in ["a", "b", "c"] {
        let item = enqueue(s.as_ref(), &w, text).await;
        let commit = commit_for(&w, &item, text);
        ids.push(commit.delivery.as_ref().unwrap().id);
        s.complete_turn(&commit).await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    s.update_delivery(ids[0], DeliveryStatus::Ambiguous, None, Some("timeout"))
        .await
        .unwrap();
    s.update_delivery(ids[1], DeliveryStatus::Delivered, Some("777"), None)
        .await
        .unwrap();
    let pending: Vec<_> = s
        .pending_deliveries(ChannelKind::Telegram, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|d| d.id)
        .collect();
    assert_eq!(pending, [ids[0], ids[2]]);
    assert_eq!(
        s.pending_deliveries(ChannelKind::Telegram, 1)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        s.pending_deliveries(ChannelKind::Slack, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Updating a delivery counts the attempt, keeps a known platform id when none is given, and
/// replaces the last error; a missing delivery is `NotFound`.
pub async fn update_delivery_keeps_platform_id_and_counts_attempts(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "q").await;
    let commit = commit_for(&w, &item, "a");
    let id = commit.delivery.as_ref().unwrap().id;
    s.complete_turn(&commit).await.unwrap();
    s.update_delivery(
        id,
        DeliveryStatus::Ambiguous,
        Some("msg-1"),
        Some("connection reset"),
    )
    .await
    .unwrap();
    s.update_delivery(id, DeliveryStatus::Delivered, None, None)
        .await
        .unwrap();
    let d = s
        .get_delivery_for_turn(item.turn_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.status, DeliveryStatus::Delivered);
    assert_eq!(d.platform_message_id.as_deref(), Some("msg-1"));
    assert_eq!(d.last_error, None);
    assert_eq!(d.attempts, 2);
    assert!(d.updated_at >= d.created_at);
    let err = s
        .update_delivery(DeliveryId::new(), DeliveryStatus::Failed, None, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Usage is read back oldest first and filtered by user, agent, session and time.
pub async fn usage_is_filtered_by_user_agent_session_and_time(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let other = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "q").await;
    let mut commit = commit_for(&w, &item, "a");
    let mut old = usage(&w, item.turn_id, "openai/gpt-4o", 1);
    old.created_at = now() - chrono::Duration::hours(2);
    old.cost_micros = None;
    commit.usage.insert(0, old.clone());
    s.complete_turn(&commit).await.unwrap();
    let other_item = enqueue(s.as_ref(), &other, "q").await;
    s.complete_turn(&commit_for(&other, &other_item, "a"))
        .await
        .unwrap();

    let all = s.list_usage(&UsageFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0], old, "oldest first, unknown cost kept as None");
    let mine = UsageFilter {
        user_id: Some(w.user.id),
        ..UsageFilter::default()
    };
    assert_eq!(s.list_usage(&mine).await.unwrap(), commit.usage);
    let by_agent = UsageFilter {
        agent_id: Some(other.agent.id),
        ..UsageFilter::default()
    };
    assert_eq!(s.list_usage(&by_agent).await.unwrap().len(), 1);
    let by_session = UsageFilter {
        session_id: Some(w.session.id),
        since: Some(now() - chrono::Duration::hours(1)),
        ..UsageFilter::default()
    };
    assert_eq!(
        s.list_usage(&by_session).await.unwrap(),
        vec![commit.usage[1].clone()]
    );
}

/// Summaries add up tokens, calls, turns and cost per model, agent, user and UTC day; calls
/// without a price are counted apart.
pub async fn usage_is_summed_per_model_agent_user_and_day(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let other = world(s.as_ref()).await;
    let first = enqueue(s.as_ref(), &w, "q").await;
    let mut commit = commit_for(&w, &first, "a");
    let mut unpriced = usage(&w, first.turn_id, "anthropic/claude-x", 50);
    unpriced.cost_micros = None;
    unpriced.created_at = now() - chrono::Duration::days(2);
    commit.usage.push(unpriced.clone());
    s.complete_turn(&commit).await.unwrap();
    let second = enqueue(s.as_ref(), &w, "q").await;
    s.complete_turn(&commit_for(&w, &second, "b"))
        .await
        .unwrap();
    let theirs = enqueue(s.as_ref(), &other, "q").await;
    s.complete_turn(&commit_for(&other, &theirs, "c"))
        .await
        .unwrap();

    let all = UsageFilter::default();
    let by_model = s.usage_summary(&all, UsageGrouping::Model).await.unwrap();
    let keys: Vec<&str> = by_model.iter().map(|t| t.key.as_str()).collect();
    assert_eq!(keys, ["anthropic/claude-x", "openai/gpt-4o-mini"]);
    let claude = &by_model[0];
    assert_eq!(
        (claude.calls, claude.turns, claude.unpriced_calls),
        (1, 1, 1)
    );
    assert_eq!(claude.cost_micros, 0);
    assert_eq!(claude.usage.input_tokens, 50);
    let gpt = &by_model[1];
    assert_eq!((gpt.calls, gpt.turns, gpt.unpriced_calls), (3, 3, 0));
    assert_eq!(gpt.cost_micros, 3 * 1_234);
    assert_eq!(gpt.usage.input_tokens, 300);
    assert_eq!(gpt.usage.output_tokens, 60);
    assert_eq!(gpt.usage.cache_read_tokens, 15);
    assert_eq!(gpt.usage.cache_write_tokens, 21);
    assert_eq!(gpt.label, "openai/gpt-4o-mini");

    let by_user = s.usage_summary(&all, UsageGrouping::User).await.unwrap();
    assert_eq!(by_user.len(), 2);
    let mine = by_user
        .iter()
        .find(|t| t.key == w.user.id.to_string())
        .unwrap();
    assert_eq!((mine.calls, mine.turns), (3, 2));
    assert_eq!(mine.label, w.user.name);

    let by_agent = s
        .usage_summary(
            &UsageFilter {
                user_id: Some(w.user.id),
                ..UsageFilter::default()
            },
            UsageGrouping::Agent,
        )
        .await
        .unwrap();
    assert_eq!(by_agent.len(), 1);
    assert_eq!(by_agent[0].key, w.agent.id.to_string());
    assert_eq!(by_agent[0].label, w.agent.name);

    let by_day = s.usage_summary(&all, UsageGrouping::Day).await.unwrap();
    let days: Vec<&str> = by_day.iter().map(|t| t.key.as_str()).collect();
    let today = now().format("%Y-%m-%d").to_string();
    let before = unpriced.created_at.format("%Y-%m-%d").to_string();
    assert_eq!(days, [before.as_str(), today.as_str()]);
    assert_eq!(by_day[1].calls, 3);

    let recent = UsageFilter {
        since: Some(now() - chrono::Duration::days(1)),
        ..UsageFilter::default()
    };
    let recent = s
        .usage_summary(&recent, UsageGrouping::Model)
        .await
        .unwrap();
    assert_eq!(recent.len(), 1);
    assert!(
        s.usage_summary(
            &UsageFilter {
                session_id: Some(SessionId::new()),
                ..UsageFilter::default()
            },
            UsageGrouping::Day
        )
        .await
        .unwrap()
        .is_empty()
    );
}

/// A lease held by one replica is refused to another until it expires.
pub async fn lease_is_exclusive_until_expiry(h: &Harness) {
    let s = &h.store;
    let long = Duration::from_secs(60);
    assert!(
        s.try_acquire_lease("session:1", "replica-a", long)
            .await
            .unwrap()
    );
    assert!(
        !s.try_acquire_lease("session:1", "replica-b", long)
            .await
            .unwrap()
    );
    assert!(
        s.try_acquire_lease("session:2", "replica-b", long)
            .await
            .unwrap()
    );
    // Renewed with a short ttl, it lapses and another replica may take it.
    assert!(
        s.try_acquire_lease("session:1", "replica-a", Duration::from_millis(20))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert!(
        s.try_acquire_lease("session:1", "replica-b", long)
            .await
            .unwrap()
    );
    assert!(
        !s.try_acquire_lease("session:1", "replica-a", long)
            .await
            .unwrap()
    );
}

/// The holder renews its lease; releasing frees it, and a non-holder's release does nothing.
pub async fn lease_is_renewed_by_its_holder_and_freed_by_release(h: &Harness) {
    let s = &h.store;
    let ttl = Duration::from_secs(60);
    assert!(s.try_acquire_lease("channel:tg", "a", ttl).await.unwrap());
    assert!(s.try_acquire_lease("channel:tg", "a", ttl).await.unwrap());
    s.release_lease("channel:tg", "b").await.unwrap();
    assert!(!s.try_acquire_lease("channel:tg", "b", ttl).await.unwrap());
    s.release_lease("channel:tg", "a").await.unwrap();
    assert!(s.try_acquire_lease("channel:tg", "b", ttl).await.unwrap());
}

/// Replicas racing for a free lease: exactly one wins.
pub async fn concurrent_lease_acquisitions_have_one_winner(h: &Harness) {
    let s = &h.store;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(s);
        tasks.push(tokio::spawn(async move {
            store
                .try_acquire_lease("session:race", &format!("r{i}"), Duration::from_secs(60))
                .await
        }));
    }
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1);
}

/// A freshly migrated database reports no pending migrations, and migrating again is a no-op.
pub async fn migration_status_is_current_after_migrate(h: &Harness) {
    let s = &h.store;
    let status = s.migration_status().await.unwrap();
    assert!(status.is_current(), "{status:?}");
    assert!(!status.applied.is_empty());
    s.migrate().await.unwrap();
    assert_eq!(s.migration_status().await.unwrap(), status);
}

/// The database answers and the store names its backend.
pub async fn ping_answers_and_backend_is_named(h: &Harness) {
    h.store.ping().await.unwrap();
    assert!(matches!(
        h.store.backend(),
        Backend::Sqlite | Backend::Postgres
    ));
}

/// A stored enum value the code does not know is reported as corrupt data, not a panic, and
/// other records stay readable.
pub async fn corrupt_enum_is_an_error_not_a_panic(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let item = enqueue(s.as_ref(), &w, "fine").await;
    h.execute("UPDATE users SET role = 'overlord'").await;
    let err = s.get_user(w.user.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    assert!(s.list_users().await.is_err());
    h.execute("UPDATE messages SET role = 'narrator'").await;
    let err = s.list_messages(w.session.id, 0, 0).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    h.execute("UPDATE inbox SET status = 'limbo'").await;
    let err = s.get_inbox_item(item.turn_id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    // Records that are fine stay readable.
    assert!(s.get_agent(w.agent.id).await.unwrap().is_some());
}

/// Malformed JSON in a stored column is corrupt data, not a panic.
pub async fn corrupt_json_is_an_error_not_a_panic(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    h.execute("UPDATE agents SET tools = '{not json'").await;
    let err = s.get_agent(w.agent.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    h.execute("UPDATE sessions SET channel = 'irc'").await;
    let err = s.get_session(w.session.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
}
