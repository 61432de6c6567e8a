//! The gRPC and HTTP API of a real server (in process, ephemeral ports, SQLite, OpenAI fake).

#![allow(
    clippy::unwrap_used,
    reason = "test helpers fail the test on any error"
)]

mod common;

use common::{TestServer, authed, chat, run_chat};
use nexus_gateway::pb;
use nexus_gateway::pb::chat_event::Event;
use nexus_llm::ProviderRegistry;
use nexus_testkit::openai::{FakeOpenAi, Reply};
use tonic::Code;

async fn create_user_key(t: &TestServer, name: &str, role: &str) -> String {
    let mut client = t.client().await;
    client
        .create_user(authed(
            &t.admin_key,
            pb::CreateUserRequest {
                name: name.into(),
                role: role.into(),
            },
        ))
        .await
        .unwrap();
    client
        .create_api_key(authed(
            &t.admin_key,
            pb::CreateApiKeyRequest {
                user: name.into(),
                name: "test".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .secret
}

#[tokio::test]
async fn chat_streams_the_answer_and_the_session_keeps_the_history() {
    let t = TestServer::start().await;
    t.fake.push(Reply::text("Hi! How can I help?"));
    let mut client = t.client().await;
    let (text, end) = run_chat(&mut client, &t.admin_key, chat("assistant", "", "hello"))
        .await
        .unwrap();
    assert_eq!(text, "Hi! How can I help?");
    let Event::Done(done) = end else {
        panic!("turn failed: {end:?}")
    };

    t.fake.push(Reply::text("Still here."));
    let (text, _) = run_chat(
        &mut client,
        &t.admin_key,
        chat("assistant", &done.session_id, "and now?"),
    )
    .await
    .unwrap();
    assert_eq!(text, "Still here.");
    // The second call carried the first exchange.
    let body = t.fake.last_request().unwrap().body;
    let contents: Vec<&str> = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(contents.contains(&"hello") && contents.contains(&"Hi! How can I help?"));

    let history = client
        .get_session(authed(
            &t.admin_key,
            pb::GetSessionRequest {
                session_id: done.session_id.clone(),
                after_seq: 0,
                limit: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let roles: Vec<&str> = history.messages.iter().map(|m| m.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(history.messages[1].id, done.message_id);

    let sessions = client
        .list_sessions(authed(&t.admin_key, pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].title, "hello");
}

#[tokio::test]
async fn missing_wrong_and_revoked_keys_are_unauthenticated() {
    let t = TestServer::start().await;
    let mut client = t.client().await;
    let err = client
        .list_agents(tonic::Request::new(pb::ListAgentsRequest::default()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client
        .list_agents(authed(
            "nxs_0000000000000000000000000000000000000000",
            pb::ListAgentsRequest::default(),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    let err = client
        .chat(authed("garbage", chat("assistant", "", "hi")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);

    let key = create_user_key(&t, "jane", "user").await;
    client
        .who_am_i(authed(&key, pb::WhoAmIRequest {}))
        .await
        .unwrap();
    let keys = client
        .list_api_keys(authed(
            &t.admin_key,
            pb::ListApiKeysRequest {
                user: "jane".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(keys.len(), 1);
    assert!(key.starts_with(&keys[0].prefix));
    let revoked = client
        .revoke_api_key(authed(
            &t.admin_key,
            pb::RevokeApiKeyRequest {
                key_id: keys[0].id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(revoked.revoked);
    let err = client
        .who_am_i(authed(&key, pb::WhoAmIRequest {}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated);
    assert!(err.message().contains("revoked"));
}

#[tokio::test]
async fn bad_chat_requests_get_clear_errors_and_change_nothing() {
    let t = TestServer::start().await;
    let mut client = t.client().await;
    let cases = [
        (
            chat("nobody", "", "hi"),
            Code::NotFound,
            "agent `nobody` not found",
        ),
        (
            chat("assistant", "", "   "),
            Code::InvalidArgument,
            "text is empty",
        ),
        (
            chat("assistant", "", &"x".repeat(70_000)),
            Code::InvalidArgument,
            "limit",
        ),
        (
            chat("assistant", "not-a-uuid", "hi"),
            Code::InvalidArgument,
            "not a UUID",
        ),
        (
            chat("assistant", "6f1c2a52-5f53-4f0e-9d43-0a7c3b0d3c11", "hi"),
            Code::NotFound,
            "session",
        ),
        (
            chat("", "", "hi"),
            Code::InvalidArgument,
            "agent is required",
        ),
    ];
    for (request, code, needle) in cases {
        let err = client
            .chat(authed(&t.admin_key, request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
        assert!(err.message().contains(needle), "{}", err.message());
    }
    let sessions = client
        .list_sessions(authed(&t.admin_key, pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(
        sessions.is_empty(),
        "no session was created by bad requests"
    );
    assert_eq!(t.fake.request_count(), 0);
}

#[tokio::test]
async fn another_users_session_is_not_found_and_stays_unchanged() {
    let t = TestServer::start().await;
    let mut client = t.client().await;
    let (_, end) = run_chat(&mut client, &t.admin_key, chat("assistant", "", "mine"))
        .await
        .unwrap();
    let Event::Done(done) = end else { panic!() };

    let jane = create_user_key(&t, "jane", "user").await;
    client
        .create_agent(authed(
            &jane,
            pb::CreateAgentRequest {
                name: "assistant".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap();
    let err = client
        .chat(authed(
            &jane,
            chat("assistant", &done.session_id, "let me in"),
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .get_session(authed(
            &jane,
            pb::GetSessionRequest {
                session_id: done.session_id.clone(),
                after_seq: 0,
                limit: 0,
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    // Jane's own listing is empty; the admin's session still has two messages.
    let listed = client
        .list_sessions(authed(&jane, pb::ListSessionsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(listed.is_empty());
    let history = client
        .get_session(authed(
            &t.admin_key,
            pb::GetSessionRequest {
                session_id: done.session_id,
                after_seq: 0,
                limit: 0,
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(history.messages.len(), 2);
}

#[tokio::test]
async fn roles_limit_what_users_and_viewers_may_do() {
    let t = TestServer::start().await;
    let mut client = t.client().await;
    let user = create_user_key(&t, "sam", "user").await;
    let viewer = create_user_key(&t, "vic", "viewer").await;
    let err = client
        .create_user(authed(
            &user,
            pb::CreateUserRequest {
                name: "mallory".into(),
                role: "admin".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .list_agents(authed(&user, pb::ListAgentsRequest { all_users: true }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let err = client
        .create_agent(authed(
            &viewer,
            pb::CreateAgentRequest {
                name: "x".into(),
                ..Default::default()
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    // A user sees only their own agents; the admin's `assistant` is not theirs.
    let err = client
        .get_agent(authed(
            &user,
            pb::GetAgentRequest {
                agent: "assistant".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
}

#[tokio::test]
async fn agents_are_created_listed_and_validated() {
    let t = TestServer::start().await;
    let mut client = t.client().await;
    let created = client
        .create_agent(authed(
            &t.admin_key,
            pb::CreateAgentRequest {
                name: "researcher".into(),
                model: "openai/gpt-4o".into(),
                system_prompt: "Dig deep.".into(),
                max_steps: 5,
                ..Default::default()
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(created.max_steps, 5);
    let fetched = client
        .get_agent(authed(
            &t.admin_key,
            pb::GetAgentRequest {
                agent: created.id.clone(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(fetched.name, "researcher");
    let names: Vec<String> = client
        .list_agents(authed(&t.admin_key, pb::ListAgentsRequest::default()))
        .await
        .unwrap()
        .into_inner()
        .agents
        .into_iter()
        .map(|a| a.name)
        .collect();
    assert_eq!(names, ["assistant", "researcher"]);

    let bad = [
        (
            pb::CreateAgentRequest {
                name: "researcher".into(),
                ..Default::default()
            },
            Code::AlreadyExists,
        ),
        (
            pb::CreateAgentRequest {
                name: "Bad Name".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::CreateAgentRequest {
                name: "x".into(),
                model: "gpt-4o".into(),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::CreateAgentRequest {
                name: "y".into(),
                tools: vec!["nope".into()],
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
        (
            pb::CreateAgentRequest {
                name: "z".into(),
                temperature: Some(7.0),
                ..Default::default()
            },
            Code::InvalidArgument,
        ),
    ];
    for (request, code) in bad {
        let err = client
            .create_agent(authed(&t.admin_key, request))
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{}", err.message());
    }
}

#[tokio::test]
async fn chat_without_a_provider_says_which_variable_to_set() {
    let fake = FakeOpenAi::start().await;
    let t = TestServer::start_with(fake, ProviderRegistry::new()).await;
    let mut client = t.client().await;
    let (_, end) = run_chat(&mut client, &t.admin_key, chat("assistant", "", "hello"))
        .await
        .unwrap();
    let Event::Error(err) = end else {
        panic!("expected an error, got {end:?}")
    };
    assert_eq!(err.kind, "provider_not_configured");
    assert!(err.message.contains("OPENAI_API_KEY"), "{}", err.message);
}

#[tokio::test]
async fn a_retried_chat_with_the_same_client_message_id_is_answered_once() {
    let t = TestServer::start().await;
    t.fake.push(Reply::text("Exactly once."));
    let mut client = t.client().await;
    let mut request = chat("assistant", "", "hello");
    request.client_message_id = "msg-42".into();
    let (first, end) = run_chat(&mut client, &t.admin_key, request.clone())
        .await
        .unwrap();
    let Event::Done(done) = end else { panic!() };
    request.session_id = done.session_id.clone();
    let (second, end) = run_chat(&mut client, &t.admin_key, request).await.unwrap();
    let Event::Done(again) = end else { panic!() };
    assert_eq!(first, second);
    assert_eq!(again.message_id, done.message_id);
    assert_eq!(t.fake.request_count(), 1);
}

#[tokio::test]
async fn health_readiness_metrics_and_grpc_health_answer() {
    let t = TestServer::start().await;
    let http = reqwest::Client::new();
    let health = http.get(t.http("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: serde_json::Value = http
        .get(t.http("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["ready"], true);

    let mut client = t.client().await;
    run_chat(&mut client, &t.admin_key, chat("assistant", "", "count me"))
        .await
        .unwrap();
    let metrics = http
        .get(t.http("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("nexus_turns_total{kind=\"done\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("nexus_turn_duration_seconds_count 1"),
        "{metrics}"
    );

    let mut health = tonic_health::pb::health_client::HealthClient::new(t.channel().await);
    let status = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "nexus.v1.Gateway".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        status.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

#[tokio::test]
async fn signed_download_links_serve_the_blob_until_they_expire_or_are_tampered() {
    let t = TestServer::start().await;
    let attachment = t
        .server
        .blobs
        .put(
            nexus_store::blob::BlobKind::Export,
            bytes::Bytes::from_static(b"%PDF-1.7 fake"),
            "application/pdf",
            Some("report.pdf"),
        )
        .await
        .unwrap();
    let link = t
        .server
        .links
        .sign_for(&attachment.storage_key, chrono::Duration::seconds(60));
    let http = reqwest::Client::new();
    let url = format!(
        "{}{}",
        t.server.public_url.as_str().trim_end_matches('/'),
        link.path_and_query()
    );
    let response = http.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/pdf");
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("report.pdf")
    );
    assert_eq!(response.bytes().await.unwrap().as_ref(), b"%PDF-1.7 fake");

    let tampered = url.replace(&link.signature, &"0".repeat(link.signature.len()));
    assert_eq!(http.get(&tampered).send().await.unwrap().status(), 403);
    let expired = t.server.links.sign(
        &attachment.storage_key,
        chrono::Utc::now() - chrono::Duration::seconds(1),
    );
    let expired_url = format!(
        "{}{}",
        t.server.public_url.as_str().trim_end_matches('/'),
        expired.path_and_query()
    );
    let response = http.get(&expired_url).send().await.unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.text().await.unwrap().contains("expired"));
}

#[tokio::test]
async fn provider_keys_are_stored_sealed_and_never_returned() {
    let t = TestServer::start().await;
    let mut client = t.client().await;
    let key = create_user_key(&t, "jane", "user").await;
    let secret = "sk-jane-very-secret-0123456789";
    let stored = client
        .set_provider_key(authed(
            &key,
            pb::SetProviderKeyRequest {
                provider: "openai".into(),
                api_key: secret.into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.provider, "openai");

    let jane = t
        .server
        .store
        .get_user_by_name("jane")
        .await
        .unwrap()
        .unwrap();
    let record = t
        .server
        .store
        .get_provider_credential(jane.id, "openai")
        .await
        .unwrap()
        .unwrap();
    let needle = secret.as_bytes();
    assert!(
        !record
            .sealed_secret
            .windows(needle.len())
            .any(|w| w == needle),
        "the database holds no plaintext"
    );
    let opened = t
        .server
        .vault
        .open_for(jane.id, record.id.as_bytes(), &record.sealed_secret)
        .await
        .unwrap();
    assert_eq!(opened.as_slice(), needle);
    // Sealed to this record: another record id does not open it.
    assert!(
        t.server
            .vault
            .open_for(
                jane.id,
                uuid::Uuid::new_v4().as_bytes(),
                &record.sealed_secret
            )
            .await
            .is_err()
    );

    let listed = client
        .list_provider_keys(authed(&key, pb::ListProviderKeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert_eq!(listed.len(), 1);
    let admin_listed = client
        .list_provider_keys(authed(&t.admin_key, pb::ListProviderKeysRequest {}))
        .await
        .unwrap()
        .into_inner()
        .keys;
    assert!(admin_listed.is_empty(), "keys are per user");

    let err = client
        .set_provider_key(authed(
            &key,
            pb::SetProviderKeyRequest {
                provider: "openai".into(),
                api_key: "  ".into(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    let deleted = client
        .delete_provider_key(authed(
            &key,
            pb::DeleteProviderKeyRequest {
                provider: "openai".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.deleted);
}
