//! Telegram: webhook mode with its secret token, duplicate updates, HTML Telegram refuses, and
//! 429s with `retry_after`.

use std::time::Duration;

use nexus_gateway::pb;
use nexus_testkit::chat::{ChatPlatform, UserSays};
use nexus_testkit::openai::Reply;
use nexus_testkit::telegram::{FakeTelegram, Fault, SECRET_HEADER};
use serde_json::json;

use crate::channels::{Platform, World, eventually, open, says_text};

/// A Telegram world whose channel receives through a webhook on the server.
async fn webhook_world() -> World<FakeTelegram> {
    let fake = <FakeTelegram as Platform>::start().await;
    World::start_on(fake, |p| pb::AddChannelRequest {
        mode: "webhook".into(),
        access: Some(open()),
        ..p.add_request("assistant")
    })
    .await
}

fn webhook_url(w: &World<FakeTelegram>) -> String {
    format!(
        "http://{}/channels/{}/webhook",
        w.server().http_addr,
        w.channel.id
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_mode_registers_the_server_url_and_answers_posted_updates() {
    let w = webhook_world().await;
    assert_eq!(w.channel.mode, "webhook");
    assert_eq!(w.channel.webhook_url, webhook_url(&w));
    let hook = eventually("the webhook registered on Telegram", || async {
        w.platform.webhook()
    })
    .await;
    assert_eq!(hook.url, webhook_url(&w));
    let secret = hook.secret_token.expect("the webhook has a secret token");
    assert!(secret.len() >= 32, "a long secret: {secret}");

    let answer = "Answered through the webhook, streamed word by word so that the reply is \
                  edited before it is complete.";
    w.llm
        .push(Reply::text(answer).token_delay(Duration::from_millis(30)));
    let said = w
        .platform
        .say(UserSays::direct("2001", "hello over the webhook"))
        .await;
    let messages = w.wait_bot("the answer", |m| says_text(m, answer)).await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0].chat_id, said.chat_id);
    assert!(messages[0].edits >= 1, "the reply streamed: {messages:#?}");
    let deliveries = w.platform.webhook_deliveries();
    assert!(
        !deliveries.is_empty() && deliveries.iter().all(|d| d.status == Some(200)),
        "Telegram's POSTs were accepted at once: {deliveries:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_webhook_refuses_a_forged_or_missing_secret_token() {
    let w = webhook_world().await;
    eventually("the webhook registered on Telegram", || async {
        w.platform.webhook()
    })
    .await;
    let message = w
        .platform
        .message_for(&UserSays::direct("2002", "forged question"));
    let body = json!({"update_id": 990_001, "message": message})
        .to_string()
        .into_bytes();
    let json = ("content-type", "application/json");
    let forged = w
        .platform
        .post_to_webhook(&[json, (SECRET_HEADER, "not-the-secret")], body.clone())
        .await;
    assert_eq!(forged, Some(403), "a forged secret is refused");
    let missing = w.platform.post_to_webhook(&[json], body).await;
    assert_eq!(missing, Some(403), "a missing secret is refused");

    // The same person's genuine message is answered, and the forged one is nowhere: not
    // answered, not in the conversation the model sees, not stored.
    w.llm.push(Reply::text("Only the genuine question."));
    w.platform
        .say(UserSays::direct("2002", "genuine question"))
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
    let sessions = w
        .wait_stored("the genuine turn", |s| s.len() == 1 && s[0].len() == 2)
        .await;
    assert_eq!(sessions[0][0].content, "genuine question");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_update_delivered_twice_is_answered_once() {
    let w = World::<FakeTelegram>::start(open()).await;
    w.llm.push(Reply::text("Said once."));
    w.platform.duplicate_next_update();
    w.platform
        .say(UserSays::direct("2003", "are you there?"))
        .await;
    w.wait_bot("the answer", |m| says_text(m, "Said once."))
        .await;
    // Both copies were confirmed to Telegram, so both went through the router.
    eventually("both copies confirmed", || async {
        w.platform.pending_updates().is_empty().then_some(())
    })
    .await;
    // A later question in the same conversation comes after anything the copy could cause.
    w.llm.push(Reply::text("Second answer."));
    w.platform.say(UserSays::direct("2003", "and again?")).await;
    let messages = w
        .wait_bot("the second answer", |m| says_text(m, "Second answer."))
        .await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert_eq!(w.llm.request_count(), 2);
    let sessions = w
        .wait_stored("both turns", |s| s.len() == 1 && s[0].len() == 4)
        .await;
    let questions: Vec<_> = sessions[0]
        .iter()
        .filter(|m| m.content == "are you there?")
        .collect();
    assert_eq!(questions.len(), 1, "the question is stored once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_refused_html_is_delivered_as_plain_text() {
    let w = World::<FakeTelegram>::start(open()).await;
    // Telegram refuses the entities of every HTML message and edit.
    w.platform
        .fail_next("sendMessage", 50, Fault::RejectEntities);
    w.platform
        .fail_next("editMessageText", 50, Fault::RejectEntities);
    w.llm.push(Reply::text("The **answer** is 42 & more."));
    w.platform
        .say(UserSays::direct("2004", "what is it?"))
        .await;
    let plain = "The answer is 42 & more.";
    let messages = w
        .wait_bot("the plain-text answer", |m| says_text(m, plain))
        .await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let sends = w.platform.calls("sendMessage");
    assert_eq!(sends.len(), 2, "HTML, then plain text: {sends:#?}");
    assert_eq!(sends[0]["parse_mode"], "HTML");
    assert!(sends[1].get("parse_mode").is_none(), "{sends:#?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_rate_limit_on_send_is_waited_out_and_the_reply_arrives_once() {
    let w = World::<FakeTelegram>::start(open()).await;
    w.platform
        .fail_next("sendMessage", 1, Fault::RateLimited { retry_after: 1 });
    w.llm.push(Reply::text("Worth the wait."));
    let started = tokio::time::Instant::now();
    w.platform
        .say(UserSays::direct("2005", "quick question"))
        .await;
    w.wait_bot("the answer", |m| says_text(m, "Worth the wait."))
        .await;
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "the retry_after was obeyed"
    );
    let sends = w.platform.calls("sendMessage");
    assert_eq!(sends.len(), 2, "refused once, then sent: {sends:#?}");
    w.wait_delivered().await;
    let messages = w.platform.bot_messages();
    assert_eq!(messages.len(), 1, "the reply arrived once: {messages:#?}");
}
