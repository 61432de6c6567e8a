//! The Events API end to end.

use super::*;

#[tokio::test]
async fn the_url_verification_challenge_is_answered() {
    let mut rig = Rig::events().await;
    let answer = rig
        .fake
        .send_url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        .await
        .unwrap();
    assert_eq!(
        (answer.status, answer.text().as_str()),
        (200, "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    );
    assert_eq!(rig.stop().await, Ok(()));
}

#[tokio::test]
async fn a_signed_event_is_delivered_and_answered_200() {
    let mut rig = Rig::events().await;
    rig.fake
        .say(UserSays::group("U1", "C1", "hi bot").mentioning())
        .await;
    let (message, outcome) = rig.router.next().await;
    assert_eq!(
        (message.text.as_str(), outcome),
        ("hi bot", AckOutcome::Committed)
    );
    assert!(message.addressed);
    let attempts = rig.fake.event_attempts();
    assert_eq!(attempts.len(), 2, "app_mention and message");
    assert!(
        attempts
            .iter()
            .all(|a| a.outcome == AttemptOutcome::Answered(200))
    );
}

#[tokio::test]
async fn forged_stale_or_unsigned_requests_are_refused_401() {
    let mut rig = Rig::events().await;
    let body = br#"{"type":"event_callback","event_id":"Ev1","event":{"type":"message","channel":"D1","channel_type":"im","user":"U1","text":"evil","ts":"1.1"}}"#.to_vec();
    let now = chrono::Utc::now().timestamp();
    let forged = vec![
        ("x-slack-request-timestamp".to_owned(), now.to_string()),
        (
            "x-slack-signature".to_owned(),
            sign("not-the-secret", now, &body),
        ),
        ("content-type".to_owned(), "application/json".to_owned()),
    ];
    assert_eq!(
        rig.fake
            .post_raw(body.clone(), forged)
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        rig.fake
            .post_signed_at(body.clone(), now - 301)
            .await
            .unwrap()
            .status,
        401
    );
    assert_eq!(
        rig.fake
            .post_raw(body.clone(), vec![])
            .await
            .unwrap()
            .status,
        401
    );
    rig.router.quiet(Duration::from_millis(200)).await;
    assert_eq!(
        rig.fake.post_signed_at(body, now).await.unwrap().status,
        200
    );
    assert_eq!(rig.router.next().await.0.text, "evil");
}

#[tokio::test]
async fn an_oversized_body_is_refused_413() {
    let rig = Rig::events().await;
    let body = format!(
        r#"{{"type":"event_callback","pad":"{}"}}"#,
        "x".repeat(100 * 1024)
    );
    let answer = rig
        .fake
        .post_signed_at(body.into_bytes(), chrono::Utc::now().timestamp())
        .await
        .unwrap();
    assert_eq!(answer.status, 413);
}

#[tokio::test]
async fn a_failed_commit_answers_500_and_slacks_retry_is_stored() {
    let mut rig = Rig::events().await;
    rig.router.then(
        Duration::ZERO,
        AckOutcome::Failed {
            reason: "db down".into(),
        },
    );
    rig.fake.say(UserSays::direct("U1", "important")).await;
    rig.router.next().await;
    let (retried, outcome) = rig.router.next().await;
    assert_eq!(
        (retried.text.as_str(), outcome),
        ("important", AckOutcome::Committed)
    );
    rig.fake
        .wait_for("the retry answered", |f| f.event_attempts().len() == 2)
        .await;
    let attempts = rig.fake.event_attempts();
    assert_eq!(attempts[0].outcome, AttemptOutcome::Answered(500));
    assert_eq!(
        (attempts[1].retry_num, attempts[1].retry_reason.as_deref()),
        (1, Some("http_error"))
    );
    assert_eq!(attempts[1].outcome, AttemptOutcome::Answered(200));
}

#[tokio::test]
async fn a_slow_router_gets_500_in_time_and_the_retry_waits_for_the_same_delivery() {
    let mut rig = Rig::events().await;
    rig.router
        .then(Duration::from_millis(2800), AckOutcome::Committed);
    rig.fake.say(UserSays::direct("U1", "slow")).await;
    let (message, outcome) = rig.router.next().await;
    assert_eq!(
        (message.text.as_str(), outcome),
        ("slow", AckOutcome::Committed)
    );
    rig.fake
        .wait_for("the retry answered 200", |f| {
            f.event_attempts()
                .iter()
                .any(|a| a.outcome == AttemptOutcome::Answered(200))
        })
        .await;
    let attempts = rig.fake.event_attempts();
    assert_eq!(
        attempts[0].outcome,
        AttemptOutcome::Answered(500),
        "answered before Slack's 3 s"
    );
    rig.router.quiet(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_retried_event_is_acked_as_a_duplicate() {
    let mut rig = Rig::events().await;
    rig.fake.say(UserSays::direct("U1", "once")).await;
    rig.router.next().await;
    let event_id = rig.fake.delivered_event_ids()[0].clone();
    assert!(rig.fake.repeat_event(&event_id).await);
    let (_, outcome) = rig.router.next().await;
    assert_eq!(outcome, AckOutcome::Duplicate);
    let last = rig.fake.event_attempts().pop().unwrap();
    assert_eq!(
        (last.retry_num, last.outcome),
        (1, AttemptOutcome::Answered(200))
    );
}

#[tokio::test]
async fn a_socket_mode_adapter_has_no_webhook() {
    let rig = Rig::socket().await;
    let request = WebhookRequest {
        headers: vec![],
        body: b"{}".to_vec(),
    };
    assert!(matches!(
        rig.adapter.webhook(request).await,
        Err(ChannelError::Unsupported { .. })
    ));
}
