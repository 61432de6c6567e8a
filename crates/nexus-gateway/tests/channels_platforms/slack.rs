//! Slack: the Events API (signed POSTs to the server's webhook, the URL handshake, forged and
//! stale signatures, Slack's retries, mentions arriving twice) and Socket Mode refreshes.

use std::time::Duration;

use nexus_gateway::pb;
use nexus_testkit::chat::{ChatPlatform, UserSays};
use nexus_testkit::openai::Reply;
use nexus_testkit::slack::{AttemptOutcome, FakeSlack, FakeSlackConfig, SocketEvent, sign};
use serde_json::json;

use crate::channels::{Platform, World, eventually, open, says_text};

const SIGNING_SECRET: &str = "8f742231b10e8888abcd99yyyzzz85a5";

/// A Slack world in Events API mode: the channel is added with a signing secret, and the fake
/// posts its events to the webhook URL the server gave the channel.
async fn events_world(config: FakeSlackConfig) -> World<FakeSlack> {
    let fake = FakeSlack::start_with(config).await;
    fake.create_channel("C100");
    let w = World::start_on(fake, |p| pb::AddChannelRequest {
        app_token: String::new(),
        signing_secret: SIGNING_SECRET.into(),
        access: Some(open()),
        ..p.add_request("assistant")
    })
    .await;
    assert_eq!(w.channel.mode, "events");
    let expected = format!(
        "http://{}/channels/{}/webhook",
        w.server().http_addr,
        w.channel.id
    );
    assert_eq!(w.channel.webhook_url, expected);
    w.platform
        .use_events_api(&w.channel.webhook_url, SIGNING_SECRET);
    w
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_events_api_answers_signed_events_and_the_url_verification() {
    let w = events_world(FakeSlackConfig::default()).await;
    let handshake = w
        .platform
        .send_url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
        .await
        .unwrap();
    assert_eq!(handshake.status, 200);
    assert_eq!(
        handshake.text(),
        "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
    );

    let answer = "Answered over the Events API, streamed word by word so that the reply is \
                  edited before it is complete.";
    w.llm
        .push(Reply::text(answer).token_delay(Duration::from_millis(30)));
    let said = w
        .platform
        .say(UserSays::direct("U2001", "hello over events"))
        .await;
    let messages = w.wait_bot("the answer", |m| says_text(m, answer)).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0].chat_id, said.chat_id);
    let attempts = w.platform.event_attempts();
    assert!(
        attempts
            .iter()
            .all(|a| a.retry_num == 0 && a.outcome == AttemptOutcome::Answered(200)),
        "every POST was accepted at the first attempt: {attempts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_events_api_refuses_forged_and_stale_signatures() {
    let w = events_world(FakeSlackConfig::default()).await;
    let dm = w.platform.dm_channel("U2002");
    let body = json!({
        "token": "fake-verification-token",
        "team_id": "T0FAKE",
        "api_app_id": "A0FAKE",
        "type": "event_callback",
        "event_id": "Ev0FORGED001",
        "event_time": now(),
        "event": {
            "type": "message",
            "channel": dm,
            "channel_type": "im",
            "user": "U2002",
            "text": "forged question",
            "ts": "1700000000.000100",
            "event_ts": "1700000000.000100",
        },
    })
    .to_string()
    .into_bytes();
    let headers = |signature: String| {
        vec![
            ("content-type".to_owned(), "application/json".to_owned()),
            ("x-slack-request-timestamp".to_owned(), now().to_string()),
            ("x-slack-signature".to_owned(), signature),
        ]
    };
    let forged = w
        .platform
        .post_raw(body.clone(), headers(format!("v0={}", "0".repeat(64))))
        .await
        .unwrap();
    assert_eq!(forged.status, 401, "a forged signature is refused");
    let other_secret = w
        .platform
        .post_raw(body.clone(), headers(sign("not-our-secret", now(), &body)))
        .await
        .unwrap();
    assert_eq!(
        other_secret.status, 401,
        "another app's signature is refused"
    );
    let stale = w
        .platform
        .post_signed_at(body.clone(), now() - 600)
        .await
        .unwrap();
    assert_eq!(stale.status, 401, "a replayed, stale request is refused");
    let unsigned = w
        .platform
        .post_raw(
            body,
            vec![("content-type".to_owned(), "application/json".to_owned())],
        )
        .await
        .unwrap();
    assert_eq!(unsigned.status, 401, "an unsigned request is refused");

    // The same person's genuine message is answered; the forged one is nowhere.
    w.llm.push(Reply::text("Only the genuine question."));
    w.platform
        .say(UserSays::direct("U2002", "genuine question"))
        .await;
    let messages = w
        .wait_bot("the genuine answer", |m| {
            says_text(m, "Only the genuine question.")
        })
        .await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(w.llm.request_count(), 1);
    let body = w.llm.last_request().unwrap().body.to_string();
    assert!(!body.contains("forged question"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_event_retried_by_slack_is_answered_once() {
    // Without the bot's own posts echoed back, the person's event is the only one delivered.
    let w = events_world(FakeSlackConfig {
        echo_bot_messages: false,
        ..FakeSlackConfig::default()
    })
    .await;
    w.llm.push(Reply::text("Answered once."));
    w.platform
        .say(UserSays::direct("U2003", "did you get this?"))
        .await;
    w.wait_bot("the answer", |m| says_text(m, "Answered once."))
        .await;
    let ids = w.platform.delivered_event_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    // Slack did not see the answer in time and sends the event again.
    assert!(w.platform.repeat_event(&ids[0]).await);
    let retry = w.platform.event_attempts().pop().unwrap();
    assert_eq!(
        (retry.retry_num, retry.outcome),
        (1, AttemptOutcome::Answered(200)),
        "the retry is acknowledged"
    );
    // A later question in the same conversation comes after anything the retry could cause.
    w.llm.push(Reply::text("Second answer."));
    w.platform.say(UserSays::direct("U2003", "and this?")).await;
    let messages = w
        .wait_bot("the second answer", |m| says_text(m, "Second answer."))
        .await;
    let texts: Vec<_> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["Answered once.", "Second answer."]);
    assert_eq!(w.llm.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_channel_mention_is_answered_once_in_its_thread() {
    let w = events_world(FakeSlackConfig::default()).await;
    w.llm.push(Reply::text("Answer in the thread."));
    let said = w
        .platform
        .say(UserSays::group("U2004", "C100", "what is new?").mentioning())
        .await;
    let messages = w
        .wait_bot("the answer", |m| says_text(m, "Answer in the thread."))
        .await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0].chat_id, "C100");
    assert_eq!(
        messages[0].thread_id.as_deref(),
        Some(said.message_id.as_str()),
        "the answer is in the thread of the mention"
    );
    // The mention came as app_mention and as message, both accepted at once.
    let attempts = w.platform.event_attempts();
    assert!(attempts.len() >= 2, "{attempts:#?}");
    assert!(
        attempts
            .iter()
            .all(|a| a.retry_num == 0 && a.outcome == AttemptOutcome::Answered(200)),
        "{attempts:#?}"
    );

    // A follow-up in the thread comes after anything the second event could cause.
    w.llm.push(Reply::text("Follow-up answer."));
    w.platform
        .say(
            UserSays::group("U2004", "C100", "and then?")
                .in_thread(&said.message_id)
                .mentioning(),
        )
        .await;
    let messages = w
        .wait_bot("the follow-up answer", |m| {
            says_text(m, "Follow-up answer.")
        })
        .await;
    let texts: Vec<_> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["Answer in the thread.", "Follow-up answer."]);
    assert!(
        messages
            .iter()
            .all(|m| m.thread_id.as_deref() == Some(said.message_id.as_str())),
        "{messages:#?}"
    );
    assert_eq!(w.llm.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_socket_mode_refresh_mid_conversation_loses_and_repeats_nothing() {
    let fake = FakeSlack::start_with(FakeSlackConfig {
        disconnect_grace: Duration::from_millis(300),
        ..FakeSlackConfig::default()
    })
    .await;
    let w = World::start_on(fake, |p| pb::AddChannelRequest {
        access: Some(open()),
        ..p.add_request("assistant")
    })
    .await;
    assert_eq!(w.channel.mode, "socket");
    eventually("the Socket Mode connection", || async {
        (w.platform.live_connections() == 1).then_some(())
    })
    .await;

    let first = "The first answer streams while Slack asks the app to reconnect, word by word.";
    w.llm
        .push(Reply::text(first).token_delay(Duration::from_millis(40)));
    w.platform
        .say(UserSays::direct("U2005", "first question"))
        .await;
    w.wait_bot("the first words", |m| !m.is_empty()).await;
    w.platform.disconnect("refresh_requested");
    w.llm.push(Reply::text("Second answer."));
    w.platform
        .say(UserSays::direct("U2005", "second question"))
        .await;

    let messages = w
        .wait_bot("both answers", |m| {
            says_text(m, first) && says_text(m, "Second answer.")
        })
        .await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    let log = w.platform.socket_log();
    assert!(
        log.contains(&SocketEvent::Opened(2)) && log.contains(&SocketEvent::Closed(1)),
        "the refreshed connection was replaced: {log:?}"
    );
    let sessions = w
        .wait_stored("both turns", |s| s.len() == 1 && s[0].len() == 4)
        .await;
    let mut history: Vec<_> = sessions[0].iter().map(|m| m.content.as_str()).collect();
    history.sort_unstable();
    let mut expected = vec!["first question", first, "second question", "Second answer."];
    expected.sort_unstable();
    assert_eq!(history, expected, "each question and answer stored once");
    w.wait_delivered().await;
    assert_eq!(w.platform.bot_messages().len(), 2);
    assert_eq!(w.llm.request_count(), 2);
}
