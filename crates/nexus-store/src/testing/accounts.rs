//! Conformance: users, data keys, API keys, channel and provider credentials.

use nexus_core::{
    ApiKey, ApiKeyId, ChannelCredential, ChannelCredentialId, ChannelKind, ChannelStatus, UserId,
};

use super::{Harness, new_agent, new_user, now};
use crate::StoreError;
use crate::records::ProviderCredential;

fn api_key(user: UserId, name: &str) -> ApiKey {
    ApiKey {
        id: ApiKeyId::new(),
        user_id: user,
        name: name.to_owned(),
        prefix: "nx_abcd".to_owned(),
        hash: format!("{:x}", uuid::Uuid::new_v4().as_u128()),
        created_at: now(),
        last_used_at: None,
        revoked_at: None,
    }
}

/// A created user reads back equal, by id and by name; unknown ones are `None`.
pub async fn user_round_trips_by_id_and_name(h: &Harness) {
    let s = &h.store;
    let user = new_user("alice");
    s.create_user(&user).await.unwrap();
    assert_eq!(s.get_user(user.id).await.unwrap(), Some(user.clone()));
    assert_eq!(s.get_user_by_name(&user.name).await.unwrap(), Some(user));
    assert_eq!(s.get_user(UserId::new()).await.unwrap(), None);
    assert_eq!(s.get_user_by_name("nobody").await.unwrap(), None);
}

/// A second user with a taken name is refused and the first is untouched.
pub async fn user_name_taken_is_a_conflict(h: &Harness) {
    let s = &h.store;
    let first = new_user("bob");
    s.create_user(&first).await.unwrap();
    let mut second = new_user("other");
    second.name = first.name.clone();
    let err = s.create_user(&second).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    assert_eq!(s.get_user_by_name(&first.name).await.unwrap(), Some(first));
    assert_eq!(s.count_users().await.unwrap(), 1);
}

/// Users are listed by name and counted.
pub async fn users_are_listed_by_name_and_counted(h: &Harness) {
    let s = &h.store;
    assert_eq!(s.count_users().await.unwrap(), 0);
    let mut names = Vec::new();
    for prefix in ["carol", "alice", "bob"] {
        let user = new_user(prefix);
        names.push(user.name.clone());
        s.create_user(&user).await.unwrap();
    }
    names.sort();
    let listed: Vec<_> = s
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.name)
        .collect();
    assert_eq!(listed, names);
    assert_eq!(s.count_users().await.unwrap(), 3);
}

/// The first stored data key wins; a later put returns it instead of replacing it.
pub async fn user_data_key_first_writer_wins(h: &Harness) {
    let s = &h.store;
    let user = new_user("dk");
    s.create_user(&user).await.unwrap();
    assert_eq!(s.get_user_data_key(user.id).await.unwrap(), None);
    assert_eq!(
        s.put_user_data_key(user.id, b"first").await.unwrap(),
        b"first"
    );
    assert_eq!(
        s.put_user_data_key(user.id, b"second").await.unwrap(),
        b"first"
    );
    assert_eq!(
        s.get_user_data_key(user.id).await.unwrap(),
        Some(b"first".to_vec())
    );
}

/// A data key for a user that does not exist is refused.
pub async fn user_data_key_of_missing_user_is_not_found(h: &Harness) {
    let err = h
        .store
        .put_user_data_key(UserId::new(), b"k")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Keys are found by hash and id, and listed per user or all, oldest first.
pub async fn api_key_is_found_by_hash_and_listed_oldest_first(h: &Harness) {
    let s = &h.store;
    let (alice, bob) = (new_user("alice"), new_user("bob"));
    s.create_user(&alice).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let mut first = api_key(alice.id, "laptop");
    first.created_at = now() - chrono::Duration::seconds(10);
    let second = api_key(alice.id, "ci");
    let bobs = api_key(bob.id, "bob");
    for key in [&second, &bobs, &first] {
        s.create_api_key(key).await.unwrap();
    }
    assert_eq!(
        s.get_api_key_by_hash(&second.hash).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(s.get_api_key(first.id).await.unwrap(), Some(first.clone()));
    assert_eq!(s.get_api_key_by_hash("unknown").await.unwrap(), None);
    let alices = s.list_api_keys(Some(alice.id)).await.unwrap();
    assert_eq!(alices, vec![first.clone(), second.clone()]);
    assert_eq!(s.list_api_keys(None).await.unwrap().len(), 3);
}

/// Two keys with one hash cannot exist.
pub async fn api_key_hash_taken_is_a_conflict(h: &Harness) {
    let s = &h.store;
    let user = new_user("k");
    s.create_user(&user).await.unwrap();
    let key = api_key(user.id, "a");
    s.create_api_key(&key).await.unwrap();
    let mut copy = api_key(user.id, "b");
    copy.hash = key.hash.clone();
    let err = s.create_api_key(&copy).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
}

/// A revoked key is still found by hash, with its revocation time; revoking again, or a
/// missing key, reports `false`.
pub async fn revoked_key_still_readable_with_revoked_at(h: &Harness) {
    let s = &h.store;
    let user = new_user("r");
    s.create_user(&user).await.unwrap();
    let key = api_key(user.id, "old");
    s.create_api_key(&key).await.unwrap();
    let at = now();
    assert!(s.revoke_api_key(key.id, at).await.unwrap());
    let stored = s.get_api_key_by_hash(&key.hash).await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(at));
    assert!(!s.revoke_api_key(key.id, now()).await.unwrap());
    let again = s.get_api_key(key.id).await.unwrap().unwrap();
    assert_eq!(
        again.revoked_at,
        Some(at),
        "a second revoke must not move the time"
    );
    assert!(!s.revoke_api_key(ApiKeyId::new(), now()).await.unwrap());
}

/// Touching a key records its last use; touching a missing key is `NotFound`.
pub async fn touch_api_key_records_last_use(h: &Harness) {
    let s = &h.store;
    let user = new_user("t");
    s.create_user(&user).await.unwrap();
    let key = api_key(user.id, "used");
    s.create_api_key(&key).await.unwrap();
    let at = now();
    s.touch_api_key(key.id, at).await.unwrap();
    assert_eq!(
        s.get_api_key(key.id).await.unwrap().unwrap().last_used_at,
        Some(at)
    );
    let err = s.touch_api_key(ApiKeyId::new(), at).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

fn channel_credential(user: UserId, agent: nexus_core::AgentId, name: &str) -> ChannelCredential {
    ChannelCredential {
        id: ChannelCredentialId::new(),
        user_id: user,
        agent_id: agent,
        kind: ChannelKind::Telegram,
        name: name.to_owned(),
        settings: serde_json::json!({"mode": "polling", "allow": ["@alice"], "n": 1.5}),
        sealed_secret: vec![0, 1, 2, 255, 254],
        status: ChannelStatus::Active,
        created_at: now(),
    }
}

/// A channel credential reads back whole (settings and sealed bytes); its status changes; it
/// can be deleted once.
pub async fn channel_credential_round_trips_and_status_changes(h: &Harness) {
    let s = &h.store;
    let user = new_user("c");
    s.create_user(&user).await.unwrap();
    let agent = new_agent(user.id, "bot");
    s.create_agent(&agent).await.unwrap();
    let cred = channel_credential(user.id, agent.id, "tg-main");
    s.create_channel_credential(&cred).await.unwrap();
    assert_eq!(
        s.get_channel_credential(cred.id).await.unwrap(),
        Some(cred.clone())
    );
    assert_eq!(
        s.list_channel_credentials(Some(user.id)).await.unwrap(),
        vec![cred.clone()]
    );
    assert_eq!(
        s.list_channel_credentials(Some(UserId::new()))
            .await
            .unwrap(),
        vec![]
    );

    s.set_channel_status(cred.id, ChannelStatus::Paused)
        .await
        .unwrap();
    let paused = s.get_channel_credential(cred.id).await.unwrap().unwrap();
    assert_eq!(paused.status, ChannelStatus::Paused);
    let err = s
        .set_channel_status(ChannelCredentialId::new(), ChannelStatus::Active)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");

    assert!(s.delete_channel_credential(cred.id).await.unwrap());
    assert!(!s.delete_channel_credential(cred.id).await.unwrap());
    assert_eq!(s.get_channel_credential(cred.id).await.unwrap(), None);
}

/// Channel names are unique per user, not across users.
pub async fn channel_credential_name_conflict_per_user(h: &Harness) {
    let s = &h.store;
    let (alice, bob) = (new_user("alice"), new_user("bob"));
    s.create_user(&alice).await.unwrap();
    s.create_user(&bob).await.unwrap();
    let a_agent = new_agent(alice.id, "bot");
    let b_agent = new_agent(bob.id, "bot");
    s.create_agent(&a_agent).await.unwrap();
    s.create_agent(&b_agent).await.unwrap();
    s.create_channel_credential(&channel_credential(alice.id, a_agent.id, "main"))
        .await
        .unwrap();
    let err = s
        .create_channel_credential(&channel_credential(alice.id, a_agent.id, "main"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");
    s.create_channel_credential(&channel_credential(bob.id, b_agent.id, "main"))
        .await
        .unwrap();
    assert_eq!(s.list_channel_credentials(None).await.unwrap().len(), 2);
}

/// Putting a provider key again replaces it (new id and secret); deleting reports whether one
/// existed.
pub async fn provider_credential_put_replaces_and_delete_removes(h: &Harness) {
    let s = &h.store;
    let user = new_user("p");
    s.create_user(&user).await.unwrap();
    let first = ProviderCredential {
        id: uuid::Uuid::new_v4(),
        user_id: user.id,
        provider: "openai".to_owned(),
        sealed_secret: b"sealed-1".to_vec(),
        created_at: now(),
    };
    s.put_provider_credential(&first).await.unwrap();
    assert_eq!(
        s.get_provider_credential(user.id, "openai").await.unwrap(),
        Some(first.clone())
    );
    let second = ProviderCredential {
        id: uuid::Uuid::new_v4(),
        sealed_secret: b"sealed-2".to_vec(),
        created_at: now(),
        ..first.clone()
    };
    s.put_provider_credential(&second).await.unwrap();
    assert_eq!(
        s.get_provider_credential(user.id, "openai").await.unwrap(),
        Some(second)
    );
    assert_eq!(
        s.get_provider_credential(user.id, "anthropic")
            .await
            .unwrap(),
        None
    );
    assert!(
        s.delete_provider_credential(user.id, "openai")
            .await
            .unwrap()
    );
    assert!(
        !s.delete_provider_credential(user.id, "openai")
            .await
            .unwrap()
    );
    assert_eq!(
        s.get_provider_credential(user.id, "openai").await.unwrap(),
        None
    );
}
