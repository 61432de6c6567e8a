//! Discord: gateway reconnects (op 7, a dropped connection) between messages, the fatal close
//! 4014 of a bot without the Message Content intent, and REST 429s on message creation.

use std::time::Duration;

use nexus_gateway::pb;
use nexus_testkit::chat::{ChatPlatform, UserSays};
use nexus_testkit::discord::{FakeDiscord, FakeDiscordConfig, GatewayFault, RestFault};
use nexus_testkit::openai::Reply;

use crate::channels::{Platform, World, eventually, open, says_text};

/// The IDENTIFY frames the fake received.
fn identifies(fake: &FakeDiscord) -> usize {
    fake.client_frames()
        .iter()
        .filter(|f| f.op == Some(2))
        .count()
}

/// A message answered, `fault` on the gateway, and a second message: both are answered once,
/// and the session was resumed rather than started again.
async fn both_answered_once_across(fault: GatewayFault) {
    let w = World::<FakeDiscord>::start(open()).await;
    assert!(w.platform.wait_connected(Duration::from_secs(10)).await);
    w.llm.push(Reply::text("First answer."));
    w.platform
        .say(UserSays::direct("3001", "first question"))
        .await;
    w.wait_bot("the first answer", |m| says_text(m, "First answer."))
        .await;

    w.platform.inject(fault);
    w.llm.push(Reply::text("Second answer."));
    w.platform
        .say(UserSays::direct("3001", "second question"))
        .await;
    let messages = w
        .wait_bot("the second answer", |m| says_text(m, "Second answer."))
        .await;
    let texts: Vec<_> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, vec!["First answer.", "Second answer."]);
    let (identified, resumed) = w.platform.sessions_started();
    assert_eq!(
        (identified, resumed),
        (1, 1),
        "the session was resumed, not started again"
    );
    w.wait_delivered().await;
    assert_eq!(w.platform.bot_messages().len(), 2);
    assert_eq!(w.llm.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_reconnect_request_between_messages_answers_both_once() {
    both_answered_once_across(GatewayFault::Reconnect).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_dropped_connection_between_messages_answers_both_once() {
    both_answered_once_across(GatewayFault::Drop).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_missing_message_content_intent_fails_the_channel_for_good() {
    // The bot's Message Content intent is off in the developer portal: the gateway closes
    // the session with 4014.
    let fake = FakeDiscord::start_with(FakeDiscordConfig {
        message_content_enabled: false,
        ..FakeDiscordConfig::default()
    })
    .await;
    fake.add_channel("900100");
    let w = World::start_on(fake, |p| pb::AddChannelRequest {
        access: Some(open()),
        ..p.add_request("assistant")
    })
    .await;
    let channel = eventually("the channel failed", || async {
        let c = w.get_channel().await;
        (c.state == "failed").then_some(c)
    })
    .await;
    assert!(
        channel.last_error.contains("Message Content intent"),
        "the error names the fix: {}",
        channel.last_error
    );
    assert_eq!(identifies(&w.platform), 1);
    // A restart would come after the first backoff (50 ms in these tests), and a stopped
    // channel would be started again by the next resync (every 500 ms); neither comes.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(identifies(&w.platform), 1, "not restarted");
    let channel = w.get_channel().await;
    assert_eq!(channel.state, "failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_rate_limit_on_message_create_is_waited_out() {
    let w = World::<FakeDiscord>::start(open()).await;
    assert!(w.platform.wait_connected(Duration::from_secs(10)).await);
    w.llm.push(
        Reply::text("Answer after the rate limit.").first_byte_delay(Duration::from_millis(500)),
    );
    let said = w
        .platform
        .say(UserSays::direct("3003", "quick question"))
        .await;
    // The typing indicator goes out first; the next REST call creates the reply.
    eventually("the typing indicator", || async {
        (w.platform.typing_count(&said.chat_id) >= 1).then_some(())
    })
    .await;
    w.platform.fail_rest(RestFault::RateLimited {
        retry_after: Duration::from_secs(1),
        global: false,
    });
    let messages = w
        .wait_bot("the answer", |m| {
            says_text(m, "Answer after the rate limit.")
        })
        .await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let creates: Vec<u16> = w
        .platform
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/messages"))
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, vec![429, 200], "refused once, then created");
    w.wait_delivered().await;
    assert_eq!(w.platform.bot_messages().len(), 1, "the reply arrived once");
}
