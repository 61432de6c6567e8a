//! The agent loop end to end: a real SQLite store, the OpenAI provider over HTTP against the
//! protocol-faithful fake, and a tool defined in the test.

mod common;

use std::time::Duration;

use common::{Harness, collect, deltas, test_config, text_of};
use nexus_core::{Role, TurnErrorKind, TurnEvent};
use nexus_store::InboxStatus;
use nexus_testkit::openai::{FakeOpenAi, FakeOpenAiConfig, Reply};
use serde_json::json;

#[tokio::test]
async fn answer_streams_as_deltas_and_is_stored_with_its_usage() {
    let h = Harness::new().await;
    // Pauses between the tokens, so that they arrive apart (deltas read together are merged).
    h.fake.push(
        Reply::text("Hello there, how can I help?")
            .usage(12, 7, 4)
            .token_delay(Duration::from_millis(20)),
    );
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "hello").await;
    let events = collect(&mut turn.events).await;

    assert!(matches!(events[0], TurnEvent::Started { .. }));
    assert!(deltas(&events) > 1, "the answer arrives in several deltas");
    assert_eq!(text_of(&events), "Hello there, how can I help?");
    let TurnEvent::Done { message_id, .. } = events.last().unwrap() else {
        panic!("last event is not Done: {events:?}");
    };
    assert!(events.iter().any(|e| matches!(e,
        TurnEvent::Usage { usage, .. } if usage.input_tokens == 12 && usage.output_tokens == 7 && usage.cache_read_tokens == 4)));

    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0].role, Role::User);
    assert_eq!(history[1].id, *message_id);
    assert_eq!(history[1].content, "Hello there, how can I help?");
    assert_eq!((history[0].seq, history[1].seq), (1, 2));

    let usage = h
        .store
        .list_usage(&nexus_store::UsageFilter {
            session_id: Some(session.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(usage.len(), 1);
    assert_eq!(usage[0].model, "openai/gpt-4o-mini");
    assert_eq!(usage[0].usage.output_tokens, 7);

    let request = h.fake.last_request().unwrap();
    assert_eq!(request.body["messages"][0]["role"], "system");
    assert_eq!(request.body["messages"][0]["content"], "You are terse.");
    assert_eq!(request.body["tools"][0]["function"]["name"], "add");
}

#[tokio::test]
async fn tool_call_runs_the_test_tool_and_the_model_answers_with_its_result() {
    let h = Harness::new().await;
    h.fake
        .push(Reply::tool_calls(vec![("add", json!({"a": 2, "b": 3}))]));
    h.fake.push(Reply::text("The sum is 5."));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "what is 2+3?").await;
    let events = collect(&mut turn.events).await;

    assert!(events.iter().any(|e| matches!(e,
        TurnEvent::ToolCallStarted { name, arguments, .. } if name == "add" && arguments == &json!({"a": 2, "b": 3}))));
    assert!(events.iter().any(|e| matches!(e,
        TurnEvent::ToolCallFinished { output, is_error: false, .. } if output == "5")));
    assert!(matches!(events.last(), Some(TurnEvent::Done { .. })));

    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    let roles: Vec<Role> = history.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [Role::User, Role::Assistant, Role::Tool, Role::Assistant]
    );
    assert_eq!(history[1].tool_calls[0].name, "add");
    assert_eq!(
        history[2].tool_call_id.as_deref(),
        Some(history[1].tool_calls[0].id.as_str())
    );
    assert_eq!(history[2].content, "5");
    assert_eq!(history[3].content, "The sum is 5.");

    // The second model call carried the tool result, answering the call by id.
    let second = h.fake.last_request().unwrap().body;
    let messages = second["messages"].as_array().unwrap();
    let tool_msg = messages.iter().find(|m| m["role"] == "tool").unwrap();
    assert_eq!(tool_msg["content"], "5");
    assert_eq!(
        tool_msg["tool_call_id"],
        history[1].tool_calls[0].id.as_str()
    );
}

#[tokio::test]
async fn parallel_tool_calls_all_run_and_answer_in_call_order() {
    let h = Harness::new().await;
    h.fake.push(Reply::tool_calls(vec![
        ("add", json!({"a": 1, "b": 1})),
        ("add", json!({"a": 20, "b": 22})),
    ]));
    h.fake.push(Reply::text("2 and 42"));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "two sums").await;
    let events = collect(&mut turn.events).await;
    assert!(matches!(events.last(), Some(TurnEvent::Done { .. })));
    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    let outputs: Vec<&str> = history
        .iter()
        .filter(|m| m.role == Role::Tool)
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(outputs, ["2", "42"]);
}

#[tokio::test]
async fn invalid_tool_arguments_come_back_to_the_model_as_a_readable_error() {
    let h = Harness::new().await;
    h.fake
        .push(Reply::tool_calls(vec![("add", json!({"a": "two"}))]));
    h.fake.push(Reply::text("Sorry, let me fix that."));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "add").await;
    let events = collect(&mut turn.events).await;
    assert!(events.iter().any(|e| matches!(e,
        TurnEvent::ToolCallFinished { output, is_error: true, .. } if output.contains("invalid arguments"))));
    assert!(matches!(events.last(), Some(TurnEvent::Done { .. })));
    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    assert!(history.iter().any(|m| m.role == Role::Tool && m.is_error));
}

#[tokio::test]
async fn rate_limited_call_is_retried_after_retry_after_and_answered_once() {
    let h = Harness::new().await;
    h.fake
        .push(Reply::error(429, "rate_limit_exceeded").retry_after(Duration::from_millis(200)));
    h.fake.push(Reply::text("Worth the wait."));
    let session = h.new_session().await;
    let started = std::time::Instant::now();
    let mut turn = h.submit(&session, "hi").await;
    let events = collect(&mut turn.events).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "retry-after honoured"
    );
    assert_eq!(text_of(&events), "Worth the wait.");
    assert_eq!(h.fake.request_count(), 2);
    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    assert_eq!(history.len(), 2, "one question, one answer");
}

#[tokio::test]
async fn server_error_is_retried_and_answered() {
    let h = Harness::new().await;
    h.fake.push(Reply::error(500, "server_error"));
    h.fake.push(Reply::text("Back on my feet."));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "hi").await;
    let events = collect(&mut turn.events).await;
    assert_eq!(text_of(&events), "Back on my feet.");
    assert!(matches!(events.last(), Some(TurnEvent::Done { .. })));
}

#[tokio::test]
async fn stream_cut_midway_fails_the_turn_and_stores_no_partial_answer() {
    let h = Harness::new().await;
    h.fake.push(Reply::cut_after(4));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "tell me a story").await;
    let events = collect(&mut turn.events).await;
    assert!(deltas(&events) > 0, "some text was streamed before the cut");
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Error {
            kind: TurnErrorKind::Provider,
            ..
        })
    ));
    let item = h.store.get_inbox_item(turn.turn_id).await.unwrap().unwrap();
    assert_eq!(item.status, InboxStatus::Failed);
    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    assert_eq!(history.len(), 1, "only the question is stored");
    assert_eq!(
        h.fake.request_count(),
        1,
        "text reached the user: no silent retry"
    );

    // The session stays usable.
    h.fake.push(Reply::text("Once upon a time."));
    let mut next = h.submit(&session, "try again").await;
    let events = collect(&mut next.events).await;
    assert_eq!(text_of(&events), "Once upon a time.");
}

#[tokio::test]
async fn malformed_stream_fails_the_turn_and_other_sessions_are_unaffected() {
    let h = Harness::new().await;
    h.fake.push(Reply::malformed());
    let broken = h.new_session().await;
    let mut turn = h.submit(&broken, "hi").await;
    let events = collect(&mut turn.events).await;
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Error {
            kind: TurnErrorKind::Provider,
            ..
        })
    ));
    let healthy = h.new_session().await;
    h.fake.push(Reply::text("All good here."));
    let mut turn = h.submit(&healthy, "hi").await;
    assert_eq!(text_of(&collect(&mut turn.events).await), "All good here.");
}

#[tokio::test]
async fn a_model_that_only_calls_tools_stops_at_the_step_limit() {
    let mut h = Harness::new().await;
    h.set_agent(|a| a.max_steps = 2).await;
    for _ in 0..2 {
        h.fake
            .push(Reply::tool_calls(vec![("add", json!({"a": 1, "b": 2}))]));
    }
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "loop forever").await;
    let events = collect(&mut turn.events).await;
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Error { kind: TurnErrorKind::StepLimit, message }) if message.contains("max_steps")
    ));
    assert_eq!(h.fake.request_count(), 2);
}

#[tokio::test]
async fn unconfigured_provider_fails_with_the_variable_to_set() {
    let mut h = Harness::new().await;
    h.set_agent(|a| a.model = "anthropic/claude-sonnet-4-5".into())
        .await;
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "hi").await;
    let events = collect(&mut turn.events).await;
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Error { kind: TurnErrorKind::ProviderNotConfigured, message }) if message.contains("ANTHROPIC_API_KEY")
    ));
}

#[tokio::test]
async fn concurrent_sessions_each_get_their_own_answers_in_order() {
    let fake = FakeOpenAi::start_with(FakeOpenAiConfig {
        token_delay: Duration::from_millis(2),
        ..FakeOpenAiConfig::default()
    })
    .await;
    let h = Harness::with(test_config(), fake).await;
    let mut sessions = Vec::new();
    for _ in 0..8 {
        sessions.push(h.new_session().await);
    }
    // Three messages per session, all submitted before any is answered.
    let mut handles = Vec::new();
    for (i, session) in sessions.iter().enumerate() {
        for j in 0..3 {
            handles.push((i, j, h.submit(session, &format!("s{i} m{j}")).await));
        }
    }
    for (i, j, handle) in &mut handles {
        let events = collect(&mut handle.events).await;
        assert_eq!(text_of(&events), format!("You said: s{i} m{j}"));
    }
    for (i, session) in sessions.iter().enumerate() {
        let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
        assert_eq!(history.len(), 6);
        let answers: Vec<&str> = history
            .iter()
            .filter(|m| m.role == Role::Assistant)
            .map(|m| m.content.as_str())
            .collect();
        let expected: Vec<String> = (0..3).map(|j| format!("You said: s{i} m{j}")).collect();
        assert_eq!(answers, expected, "turns of one session ran in order");
    }
}

#[tokio::test]
async fn duplicate_submission_replays_the_stored_answer_without_a_new_turn() {
    let h = Harness::new().await;
    h.fake.push(Reply::text("Only once."));
    let session = h.new_session().await;
    let mut first = h.submit_with_key(&session, "hi", Some("req-1")).await;
    assert_eq!(text_of(&collect(&mut first.events).await), "Only once.");
    let mut again = h.submit_with_key(&session, "hi", Some("req-1")).await;
    assert!(again.duplicate);
    assert_eq!(again.turn_id, first.turn_id);
    let events = collect(&mut again.events).await;
    assert_eq!(text_of(&events), "Only once.");
    assert_eq!(h.fake.request_count(), 1);
    assert_eq!(
        h.store.list_messages(session.id, 0, 0).await.unwrap().len(),
        2
    );
}

#[tokio::test]
async fn unanswered_message_is_answered_on_start_exactly_once() {
    let h = Harness::new().await;
    let session = h.new_session().await;
    // A message committed by a process that died before its turn ran.
    let message = nexus_core::Message::new(
        session.id,
        session.channel,
        nexus_core::Direction::Inbound,
        Role::User,
        "are you there?",
    );
    h.store
        .enqueue(&nexus_store::NewInbound {
            message,
            dedupe: None,
        })
        .await
        .unwrap();
    let restarted = common::runtime(&h.store, &h.fake, test_config());
    assert_eq!(restarted.start().await.unwrap(), 1);
    let mut answered = false;
    for _ in 0..200 {
        if h.store.list_messages(session.id, 0, 0).await.unwrap().len() == 2 {
            answered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(answered, "recovered message was answered");
    // A second start finds nothing to do.
    let again = common::runtime(&h.store, &h.fake, test_config());
    assert_eq!(again.start().await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        h.store.list_messages(session.id, 0, 0).await.unwrap().len(),
        2
    );
    assert_eq!(h.fake.request_count(), 1);
}

#[tokio::test]
async fn shutdown_abandons_a_slow_turn_which_is_answered_after_restart() {
    let h = Harness::new().await;
    h.fake
        .push(Reply::text("too late").first_byte_delay(Duration::from_secs(30)));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "slow one").await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    h.runtime.shutdown().await;
    let events = collect(&mut turn.events).await;
    assert!(matches!(
        events.last(),
        Some(TurnEvent::Error {
            kind: TurnErrorKind::Cancelled,
            ..
        })
    ));
    let item = h.store.get_inbox_item(turn.turn_id).await.unwrap().unwrap();
    assert_eq!(
        item.status,
        InboxStatus::Pending,
        "the message stays in the inbox"
    );

    h.fake.push(Reply::text("Here now."));
    let restarted = common::runtime(&h.store, &h.fake, test_config());
    assert_eq!(restarted.start().await.unwrap(), 1);
    for _ in 0..200 {
        let item = h.store.get_inbox_item(turn.turn_id).await.unwrap().unwrap();
        if item.status == InboxStatus::Done {
            let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
            assert_eq!(history.len(), 2);
            assert_eq!(history[1].content, "Here now.");
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the abandoned message was not answered after restart");
}

#[tokio::test]
async fn submissions_after_shutdown_are_refused() {
    let h = Harness::new().await;
    h.runtime.shutdown().await;
    let session = h.new_session().await;
    let err = h
        .runtime
        .submit(nexus_runtime::Submission {
            session,
            text: "hi".into(),
            attachments: vec![],
            metadata: Default::default(),
            dedupe: None,
        })
        .await
        .unwrap_err();
    assert!(matches!(err, nexus_runtime::RuntimeError::ShuttingDown));
}

#[tokio::test]
async fn an_answer_withheld_by_a_content_filter_fails_the_turn_with_a_clear_message() {
    let h = Harness::new().await;
    h.fake.push(Reply::text("").finish_reason("content_filter"));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "something the provider filters").await;
    let events = collect(&mut turn.events).await;
    match events.last() {
        Some(TurnEvent::Error {
            kind: TurnErrorKind::Provider,
            message,
        }) => assert!(message.contains("content policy"), "{message}"),
        other => panic!("expected a provider error, got {other:?}"),
    }
    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    assert_eq!(history.len(), 1, "no empty answer is stored");
}

fn submission(session: &nexus_core::Session, text: &str) -> nexus_runtime::Submission {
    nexus_runtime::Submission {
        session: session.clone(),
        text: text.into(),
        attachments: vec![],
        metadata: nexus_core::Metadata::new(),
        dedupe: None,
    }
}

#[tokio::test]
async fn tools_see_the_agents_policy_and_the_files_of_the_message() {
    let mut h = Harness::new().await;
    h.set_agent(|a| {
        a.tools = vec!["add".into(), "probe".into()];
        a.tool_policy.network = true;
    })
    .await;
    h.fake
        .push(Reply::tool_calls(vec![("probe", json!({"file": true}))]));
    h.fake.push(Reply::text("seen"));
    let session = h.new_session().await;
    let mut sub = submission(&session, "look at this file");
    sub.attachments.push(nexus_core::Attachment {
        id: nexus_core::AttachmentId::new(),
        content_type: "text/csv".into(),
        filename: Some("data.csv".into()),
        size: 3,
        storage_key: "attachments/x".into(),
    });
    let mut turn = h.runtime.submit(sub).await.unwrap();
    let events = collect(&mut turn.events).await;
    assert!(events.iter().any(|e| matches!(e,
        TurnEvent::ToolCallFinished { output, is_error: false, .. } if output == "network=true attachments=1")));

    let made = events
        .iter()
        .find_map(|e| match e {
            TurnEvent::ToolCallFinished { attachments, .. } => Some(attachments.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(made.len(), 1, "the file the tool made is in its event");

    // The call is recorded with its duration next to its result, and the file goes out with
    // the answer.
    let history = h.store.list_messages(session.id, 0, 0).await.unwrap();
    let result = history.iter().find(|m| m.role == Role::Tool).unwrap();
    assert!(result.metadata["nexus_duration_ms"].is_u64());
    assert_eq!(result.attachments, made);
    assert_eq!(history.last().unwrap().attachments, made);
}

#[tokio::test]
async fn a_channel_tool_limit_narrows_the_agents_tools() {
    let mut h = Harness::new().await;
    h.set_agent(|a| a.tools = vec!["add".into(), "probe".into()])
        .await;
    h.fake
        .push(Reply::tool_calls(vec![("add", json!({"a": 1, "b": 2}))]));
    h.fake.push(Reply::text("no tools here"));
    let session = h.new_session().await;
    let mut sub = submission(&session, "add 1 and 2");
    sub.metadata.insert(
        nexus_runtime::TOOLS_METADATA_KEY.into(),
        json!(["probe", "code"]),
    );
    let mut turn = h.runtime.submit(sub).await.unwrap();
    let events = collect(&mut turn.events).await;

    // Only the agent's tools the limit names were offered (`code` is not the agent's)…
    let first = &h.fake.requests()[0].body;
    let offered: Vec<&str> = first["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["probe"]);
    // …and a call of another one is refused, readably.
    assert!(events.iter().any(|e| matches!(e,
        TurnEvent::ToolCallFinished { output, is_error: true, .. } if output.contains("unknown tool `add`"))));
    assert!(matches!(events.last(), Some(TurnEvent::Done { .. })));
}

#[tokio::test]
async fn a_cancelled_turn_stops_its_tools_fails_its_message_and_leaves_the_session_usable() {
    let mut h = Harness::new().await;
    h.set_agent(|a| a.tools = vec!["add".into(), "slow".into()])
        .await;
    h.fake.push(Reply::tool_calls(vec![("slow", json!({}))]));
    let session = h.new_session().await;
    let mut turn = h.submit(&session, "take your time").await;
    let before = common::SLOW
        .stopped
        .load(std::sync::atomic::Ordering::SeqCst);

    // Cancel once the tool runs.
    loop {
        match turn.events.recv().await {
            Some(TurnEvent::ToolCallStarted { .. }) => break,
            Some(_) => {}
            None => panic!("the turn ended before its tool started"),
        }
    }
    assert!(h.runtime.cancel_turn(session.id).is_some());
    let rest = tokio::time::timeout(Duration::from_secs(10), collect(&mut turn.events))
        .await
        .expect("the cancelled turn ends at once, not after the tool's minute");
    assert!(matches!(
        rest.last(),
        Some(TurnEvent::Error {
            kind: TurnErrorKind::Cancelled,
            ..
        })
    ));
    assert!(
        common::SLOW
            .stopped
            .load(std::sync::atomic::Ordering::SeqCst)
            > before,
        "the tool's call was stopped"
    );
    let items = h.store.pending_inbox(session.id).await.unwrap();
    assert!(items.is_empty(), "the cancelled message is not retried");
    assert!(h.runtime.cancel_turn(session.id).is_none());

    // The session goes on.
    h.fake.push(Reply::text("Still here."));
    let mut next = h.submit(&session, "hello again").await;
    let events = collect(&mut next.events).await;
    assert_eq!(text_of(&events), "Still here.");
}
