//! Conformance: channel health, DM pairing, streamed replies, retiring a session's scope.

use chrono::Duration;
use nexus_core::{ChannelCredential, ChannelCredentialId, ChannelKind, ChannelStatus, TurnId};

use super::{Harness, inbound, new_agent, new_session, new_user, now, world};
use crate::error::StoreError;
use crate::records::{ChannelHealth, ChannelReply, ChannelState, EnqueueOutcome, Pairing};

async fn channel(h: &Harness, name: &str) -> ChannelCredential {
    let s = &h.store;
    let user = new_user(&format!("owner-{name}"));
    s.create_user(&user).await.unwrap();
    let agent = new_agent(user.id, "bot");
    s.create_agent(&agent).await.unwrap();
    let channel = ChannelCredential {
        id: ChannelCredentialId::new(),
        user_id: user.id,
        agent_id: agent.id,
        kind: ChannelKind::Telegram,
        name: name.to_owned(),
        settings: serde_json::json!({"mode": "polling"}),
        sealed_secret: vec![1, 2, 3],
        status: ChannelStatus::Active,
        created_at: now(),
    };
    s.create_channel_credential(&channel).await.unwrap();
    channel
}

fn pairing(channel: &ChannelCredential, sender: &str, code: &str, ttl_minutes: i64) -> Pairing {
    let at = now();
    Pairing {
        channel_id: channel.id,
        sender_id: sender.to_owned(),
        sender_name: Some(format!("name of {sender}")),
        code: code.to_owned(),
        created_at: at,
        expires_at: at + Duration::minutes(ttl_minutes),
        approved_at: None,
    }
}

/// The last health report of a channel replaces the previous one and keeps the error.
pub async fn channel_health_is_replaced_by_the_latest_report(h: &Harness) {
    let s = &h.store;
    let ch = channel(h, "tg").await;
    assert_eq!(s.get_channel_health(ch.id).await.unwrap(), None);
    let mut report = ChannelHealth {
        channel_id: ch.id,
        state: ChannelState::Backoff,
        last_error: Some("transport error: connection refused".into()),
        holder: Some("replica-a".into()),
        updated_at: now(),
    };
    s.put_channel_health(&report).await.unwrap();
    assert_eq!(
        s.get_channel_health(ch.id).await.unwrap(),
        Some(report.clone())
    );
    report.state = ChannelState::Running;
    report.updated_at = now();
    s.put_channel_health(&report).await.unwrap();
    let got = s.get_channel_health(ch.id).await.unwrap().unwrap();
    assert_eq!(got.state, ChannelState::Running);
    assert_eq!(
        got.last_error.as_deref(),
        Some("transport error: connection refused")
    );

    let err = s
        .put_channel_health(&ChannelHealth {
            channel_id: ChannelCredentialId::new(),
            ..report
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Settings and the sealed secret are replaced whole; a missing channel is NotFound.
pub async fn channel_settings_are_replaced(h: &Harness) {
    let s = &h.store;
    let ch = channel(h, "tg").await;
    s.update_channel_secret(ch.id, &[7, 7, 7]).await.unwrap();
    let got = s.get_channel_credential(ch.id).await.unwrap().unwrap();
    assert_eq!(got.sealed_secret, vec![7, 7, 7]);
    let err = s
        .update_channel_secret(ChannelCredentialId::new(), &[1])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    let settings = serde_json::json!({"mode": "webhook", "access": {"dm": "open"}});
    s.update_channel_settings(ch.id, &settings).await.unwrap();
    let got = s.get_channel_credential(ch.id).await.unwrap().unwrap();
    assert_eq!(got.settings, settings);
    let err = s
        .update_channel_settings(ChannelCredentialId::new(), &settings)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// A sender keeps a valid code; an expired one is replaced; an approved sender is paired and
/// keeps the approval; codes are unique; approval happens once and only before expiry.
pub async fn pairing_codes_are_offered_kept_replaced_and_approved_once(h: &Harness) {
    let s = &h.store;
    let ch = channel(h, "tg").await;
    let first = s
        .offer_pairing(&pairing(&ch, "42", "AAAA1111", 60))
        .await
        .unwrap();
    assert_eq!(first.code, "AAAA1111");
    // A second offer while the first is valid keeps the first code.
    let again = s
        .offer_pairing(&pairing(&ch, "42", "BBBB2222", 60))
        .await
        .unwrap();
    assert_eq!(again.code, "AAAA1111");
    assert!(!s.is_paired(ch.id, "42").await.unwrap());

    // Another sender may not take the same code.
    let err = s
        .offer_pairing(&pairing(&ch, "43", "AAAA1111", 60))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict { .. }), "{err:?}");

    // Approval by the owner of another channel finds nothing.
    let stranger = new_user("stranger");
    s.create_user(&stranger).await.unwrap();
    assert_eq!(
        s.approve_pairing("AAAA1111", Some(stranger.id), now())
            .await
            .unwrap(),
        None
    );
    let approved = s
        .approve_pairing("AAAA1111", Some(ch.user_id), now())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(approved.sender_id, "42");
    assert!(approved.approved_at.is_some());
    assert!(s.is_paired(ch.id, "42").await.unwrap());
    assert_eq!(
        s.approve_pairing("AAAA1111", None, now()).await.unwrap(),
        None
    );
    // An approved sender keeps the approval when offered a code again.
    let kept = s
        .offer_pairing(&pairing(&ch, "42", "CCCC3333", 60))
        .await
        .unwrap();
    assert_eq!(kept.code, "AAAA1111");
    assert!(kept.approved_at.is_some());

    // An expired code cannot be approved, and is replaced by the next offer.
    let expired = s
        .offer_pairing(&pairing(&ch, "44", "DDDD4444", -1))
        .await
        .unwrap();
    assert_eq!(
        s.approve_pairing(&expired.code, None, now()).await.unwrap(),
        None
    );
    let fresh = s
        .offer_pairing(&pairing(&ch, "44", "EEEE5555", 60))
        .await
        .unwrap();
    assert_eq!(fresh.code, "EEEE5555");

    let listed = s.list_pairings(ch.id).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(s.revoke_pairing(ch.id, "42").await.unwrap());
    assert!(!s.revoke_pairing(ch.id, "42").await.unwrap());
    assert!(!s.is_paired(ch.id, "42").await.unwrap());
}

/// A streamed reply's platform message ids are stored per turn and replaced as they grow.
pub async fn channel_reply_ids_round_trip_per_turn(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    let ch = ChannelCredential {
        id: ChannelCredentialId::new(),
        user_id: w.user.id,
        agent_id: w.agent.id,
        kind: ChannelKind::Telegram,
        name: "tg".into(),
        settings: serde_json::json!({}),
        sealed_secret: vec![9],
        status: ChannelStatus::Active,
        created_at: now(),
    };
    s.create_channel_credential(&ch).await.unwrap();
    let EnqueueOutcome::Enqueued(item) = s.enqueue(&inbound(&w.session, "hi", None)).await.unwrap()
    else {
        panic!("not enqueued")
    };
    assert_eq!(s.get_channel_reply(item.turn_id).await.unwrap(), None);
    let mut reply = ChannelReply {
        turn_id: item.turn_id,
        channel_id: ch.id,
        message_ids: vec!["100".into()],
        updated_at: now(),
    };
    s.put_channel_reply(&reply).await.unwrap();
    reply.message_ids.push("101".into());
    reply.updated_at = now();
    s.put_channel_reply(&reply).await.unwrap();
    assert_eq!(
        s.get_channel_reply(item.turn_id).await.unwrap(),
        Some(reply)
    );

    let err = s
        .put_channel_reply(&ChannelReply {
            turn_id: TurnId::new(),
            channel_id: ch.id,
            message_ids: vec![],
            updated_at: now(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
}

/// Retiring a session frees its scope for a new session and keeps its history.
pub async fn retired_session_frees_its_scope_and_keeps_history(h: &Harness) {
    let s = &h.store;
    let w = world(s.as_ref()).await;
    s.enqueue(&inbound(&w.session, "old", None)).await.unwrap();
    assert!(s.retire_session(w.session.id).await.unwrap());
    let found = s
        .find_session(w.user.id, w.agent.id, w.session.channel, &w.session.scope)
        .await
        .unwrap();
    assert_eq!(found, None);
    let next = new_session(&w.user, &w.agent, w.session.channel, &w.session.scope);
    s.create_session(&next).await.unwrap();
    let old = s.get_session(w.session.id).await.unwrap().unwrap();
    assert_ne!(old.scope, w.session.scope);
    assert_eq!(s.list_messages(old.id, 0, 0).await.unwrap().len(), 1);
    assert!(
        !s.retire_session(nexus_core::SessionId::new())
            .await
            .unwrap()
    );
}
