//! Conformance: agents, sessions and reading a session's messages.

use std::time::Duration;

use nexus_core::{
    AgentId, Attachment, AttachmentId, ChannelKind, Message, SessionId, ToolCall, UserId,
};

use super::{Harness, inbound, new_agent, new_session, new_user, now, reply, world};
use crate::StoreError;
use crate::records::SessionFilter;

/// Every field of an agent, optional ones included, reads back equal.
pub async fn agent_round_trips_every_field(h: &Harness) {
    let s = &h.store;
    let user = new_user("o");
    s.create_user(&user).await.unwrap();
    let agent = new_agent(user.id, "writer");
    s.create_agent(&agent).await.unwrap();
    assert_eq!(s.get_agent(agent.id).await.unwrap(), Some(agent.clone()));
    assert_eq!(
        s.get_agent_by_name(user.id, "writer").await.unwrap(),
        Some(agent.clone())
    );
    let mut bare = new_agent(user.id, "bare");
    bare.max_output_tokens = None;
    bare.temperature = None;
    bare.fallback_models.clear();
    bare.tools.clear();
    s.create_agent(&bare).await.unwrap();
    assert_eq!(s.get_agent(bare.id).await.unwrap(), Some(bare.clone()));
    assert_eq!(
        s.list_agents(Some(user.id)).await.unwrap(),
        vec![bare, agent]
    );
    assert_eq!(s.get_agent(AgentId::new()).await.unwrap(), None);
}

/// Agent names are unique per owner; another owner may reuse a name.
pub async fn agent_name_conflict_per_owner(h: &Harness) {
    let s = &h.store;
    let (alice, bob) = (new_user("alice"), new_user("bob"));
    s.create_user(&alice).await.unwrap();
    s.create_user(&bob).await.unwrap();
    s.create_agent(&new_agent(alice.id, "helper"))
        .await
        .unwrap();
    let err = s
        .create_agent(&new_agent(alice.id, "helper"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    s.create_agent(&new_agent(bob.id, "helper")).await.unwrap();
    assert_eq!(s.list_agents(None).await.unwrap().len(), 2);
    assert_eq!(s.list_agents(Some(alice.id)).await.unwrap().len(), 1);
}

/// An update replaces the fields but keeps id, owner and creation time; a missing agent is
/// `NotFound`, a taken name `Conflict`.
pub async fn update_agent_replaces_fields_and_reports_missing_and_taken_names(h: &Harness) {
    let s = &h.store;
    let user = new_user("u");
    s.create_user(&user).await.unwrap();
    let agent = new_agent(user.id, "one");
    s.create_agent(&agent).await.unwrap();
    s.create_agent(&new_agent(user.id, "two")).await.unwrap();

    let mut changed = agent.clone();
    changed.name = "uno".to_owned();
    changed.system_prompt = "Be brief.".to_owned();
    changed.tools = vec!["web_fetch".to_owned()];
    changed.temperature = None;
    changed.max_steps = 3;
    changed.updated_at = now() + chrono::Duration::seconds(1);
    changed.created_at = now() + chrono::Duration::days(1); // must be ignored
    changed.owner_id = UserId::new(); // must be ignored
    s.update_agent(&changed).await.unwrap();
    let stored = s.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(stored.name, "uno");
    assert_eq!(stored.system_prompt, "Be brief.");
    assert_eq!(stored.tools, vec!["web_fetch".to_owned()]);
    assert_eq!(stored.temperature, None);
    assert_eq!(stored.max_steps, 3);
    assert_eq!(stored.updated_at, changed.updated_at);
    assert_eq!(stored.created_at, agent.created_at);
    assert_eq!(stored.owner_id, agent.owner_id);

    let mut taken = stored.clone();
    taken.name = "two".to_owned();
    let err = s.update_agent(&taken).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let missing = new_agent(user.id, "ghost");
    let err = s.update_agent(&missing).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Deleting an agent deletes its sessions with their history; a second delete reports `false`.
pub async fn delete_agent_removes_its_sessions(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    s.enqueue(&inbound(&w.session, "hi", None)).await.unwrap();
    assert!(s.delete_agent(w.agent.id).await.unwrap());
    assert!(!s.delete_agent(w.agent.id).await.unwrap());
    assert_eq!(s.get_agent(w.agent.id).await.unwrap(), None);
    assert_eq!(s.get_session(w.session.id).await.unwrap(), None);
    assert!(
        s.list_messages(w.session.id, 0, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.pending_inbox(w.session.id).await.unwrap().is_empty());
}

/// A session is found by user, agent, channel and scope; a second one for the same scope is a
/// `Conflict`, while another channel or scope is a different session.
pub async fn session_is_found_by_scope_and_same_scope_conflicts(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    assert_eq!(
        s.get_session(w.session.id).await.unwrap(),
        Some(w.session.clone())
    );
    let found = s
        .find_session(w.user.id, w.agent.id, ChannelKind::Telegram, "chat-1")
        .await
        .unwrap();
    assert_eq!(found, Some(w.session.clone()));
    let none = s
        .find_session(w.user.id, w.agent.id, ChannelKind::Discord, "chat-1")
        .await
        .unwrap();
    assert_eq!(none, None);

    let dup = new_session(&w.user, &w.agent, ChannelKind::Telegram, "chat-1");
    let err = s.create_session(&dup).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    let other = new_session(&w.user, &w.agent, ChannelKind::Discord, "chat-1");
    s.create_session(&other).await.unwrap();
    assert_eq!(s.get_session(SessionId::new()).await.unwrap(), None);
}

/// A session needs an existing agent.
pub async fn session_for_missing_agent_is_not_found(h: &Harness) {
    let s = &h.store;
    let user = new_user("n");
    s.create_user(&user).await.unwrap();
    let ghost = new_agent(user.id, "ghost");
    let session = new_session(&user, &ghost, ChannelKind::Http, "x");
    let err = s.create_session(&session).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Listing puts the session with the latest message first, filters by user and agent, and
/// honours the limit.
pub async fn sessions_are_listed_most_recent_first_with_filters_and_limit(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let older = new_session(&w.user, &w.agent, ChannelKind::Grpc, "older");
    let mut backdated = older.clone();
    backdated.created_at = now() - chrono::Duration::hours(1);
    backdated.updated_at = backdated.created_at;
    s.create_session(&backdated).await.unwrap();
    let other_user = new_user("bob");
    s.create_user(&other_user).await.unwrap();
    let bob_agent = new_agent(other_user.id, "bobs");
    s.create_agent(&bob_agent).await.unwrap();
    let bobs = new_session(&other_user, &bob_agent, ChannelKind::Slack, "c");
    s.create_session(&bobs).await.unwrap();

    // A message makes the backdated session the most recent one.
    tokio::time::sleep(Duration::from_millis(2)).await;
    s.enqueue(&inbound(&backdated, "bump", None)).await.unwrap();

    let alices = s
        .list_sessions(&SessionFilter {
            user_id: Some(w.user.id),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = alices.iter().map(|x| x.id).collect();
    assert_eq!(ids, vec![backdated.id, w.session.id]);
    assert!(
        alices[0].updated_at > backdated.updated_at,
        "enqueue touches updated_at"
    );

    let all = s.list_sessions(&SessionFilter::default()).await.unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0].id, backdated.id);
    let limited = s
        .list_sessions(&SessionFilter {
            limit: 1,
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(limited.len(), 1);
    let by_agent = s
        .list_sessions(&SessionFilter {
            agent_id: Some(bob_agent.id),
            ..SessionFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(by_agent, vec![bobs]);
}

/// Tool calls, attachments, metadata and tool-result fields survive storage unchanged.
pub async fn message_round_trips_tool_calls_attachments_and_metadata(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let mut user_msg = inbound(&w.session, "see attached", Some("u-1"));
    user_msg.message.attachments = vec![Attachment {
        id: AttachmentId::new(),
        content_type: "image/png".to_owned(),
        filename: Some("cat.png".to_owned()),
        size: 12_345,
        storage_key: "blobs/ab/cd".to_owned(),
    }];
    user_msg
        .message
        .metadata
        .insert("chat_id".to_owned(), serde_json::json!(-100_123));
    let item = s.enqueue(&user_msg).await.unwrap().item().clone();

    let mut call = reply(&w.session, "");
    call.tool_calls = vec![ToolCall {
        id: "call_1".to_owned(),
        name: "web_search".to_owned(),
        arguments: serde_json::json!({"query": "rust", "n": 3, "nested": {"a": [1, 2.5, null]}}),
    }];
    let mut result = reply(&w.session, "results…");
    result.role = nexus_core::Role::Tool;
    result.tool_call_id = Some("call_1".to_owned());
    result.is_error = true;
    let commit = crate::records::TurnCommit {
        turn_id: item.turn_id,
        session_id: w.session.id,
        messages: vec![call.clone(), result.clone()],
        usage: vec![],
        delivery: None,
    };
    s.complete_turn(&commit).await.unwrap();

    let stored = s.list_messages(w.session.id, 0, 0).await.unwrap();
    let mut expected: Vec<Message> = vec![user_msg.message, call, result];
    for (i, m) in expected.iter_mut().enumerate() {
        m.seq = i as i64 + 1;
    }
    assert_eq!(stored, expected);
}

/// `list_messages` pages forward from a seq; `recent_messages` returns the last ones in order.
pub async fn list_messages_pages_after_seq_and_recent_messages_returns_the_tail(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    for i in 1..=5 {
        s.enqueue(&inbound(&w.session, &format!("m{i}"), None))
            .await
            .unwrap();
    }
    let text = |ms: Vec<Message>| ms.into_iter().map(|m| m.content).collect::<Vec<_>>();
    assert_eq!(
        text(s.list_messages(w.session.id, 2, 2).await.unwrap()),
        ["m3", "m4"]
    );
    assert_eq!(
        text(s.list_messages(w.session.id, 0, 0).await.unwrap()),
        ["m1", "m2", "m3", "m4", "m5"]
    );
    assert!(
        s.list_messages(w.session.id, 5, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        text(s.recent_messages(w.session.id, 3).await.unwrap()),
        ["m3", "m4", "m5"]
    );
    assert_eq!(s.recent_messages(w.session.id, 50).await.unwrap().len(), 5);
    assert!(
        s.recent_messages(SessionId::new(), 5)
            .await
            .unwrap()
            .is_empty()
    );
}
