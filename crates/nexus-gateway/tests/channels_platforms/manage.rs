//! Managing channels over gRPC, end to end: credentials checked with the platform, pause and
//! resume, removal, allowlists; and typing indicators while a slow answer is produced.

use std::time::Duration;

use nexus_gateway::pb;
use nexus_testkit::chat::{ChatPlatform, UserSays};
use nexus_testkit::discord::FakeDiscord;
use nexus_testkit::openai::Reply;
use nexus_testkit::telegram::FakeTelegram;

use crate::channels::{Platform, World, open, says_text};
use crate::common::authed;

impl<P: Platform> World<P> {
    async fn set_paused(&self, paused: bool) -> pb::Channel {
        self.client()
            .await
            .set_channel_status(authed(
                &self.key,
                pb::SetChannelStatusRequest {
                    channel: self.channel.name.clone(),
                    paused,
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    async fn list_names(&self) -> Vec<String> {
        self.client()
            .await
            .list_channels(authed(&self.key, pb::ListChannelsRequest {}))
            .await
            .unwrap()
            .into_inner()
            .channels
            .into_iter()
            .map(|c| c.name)
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adding_a_channel_with_a_token_the_platform_rejects_fails_and_stores_nothing() {
    let w = World::<FakeTelegram>::start(open()).await;
    let status = w
        .add_channel(pb::AddChannelRequest {
            name: "wrong-token".into(),
            token: "987654321:AAWrongTokenWrongTokenWrongToken".into(),
            ..w.platform.add_request("assistant")
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("Telegram rejected the bot token"),
        "the message says the platform rejected it: {}",
        status.message()
    );
    assert_eq!(w.list_names().await, vec!["telegram"], "nothing stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_channel_answers_what_was_sent_meanwhile_once_resumed() {
    let w = World::<FakeTelegram>::start(open()).await;
    w.llm.push(Reply::text("Before the pause."));
    w.platform.say(UserSays::direct("2101", "hello")).await;
    w.wait_bot("the first answer", |m| says_text(m, "Before the pause."))
        .await;

    let paused = w.set_paused(true).await;
    assert_eq!(paused.status, "paused");
    w.llm.push(Reply::text("After the resume."));
    w.platform
        .say(UserSays::direct("2101", "are you there?"))
        .await;
    // The bot no longer receives: the update waits on Telegram's side, unanswered (the
    // window spans a resync of the channels, which must not start it again).
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(w.platform.pending_updates().len(), 1);
    assert_eq!(w.platform.bot_messages().len(), 1);
    assert_eq!(w.llm.request_count(), 1);

    let resumed = w.set_paused(false).await;
    assert_eq!(resumed.status, "active");
    let messages = w
        .wait_bot("the answer after the resume", |m| {
            says_text(m, "After the resume.")
        })
        .await;
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(w.platform.pending_updates().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_channel_is_gone_from_the_list() {
    let w = World::<FakeTelegram>::start(open()).await;
    assert_eq!(w.list_names().await, vec!["telegram"]);
    let removed = w
        .client()
        .await
        .remove_channel(authed(
            &w.key,
            pb::RemoveChannelRequest {
                channel: "telegram".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(removed.removed);
    assert!(w.list_names().await.is_empty());
    let status = w
        .client()
        .await
        .get_channel(authed(
            &w.key,
            pb::GetChannelRequest {
                channel: w.channel.id.clone(),
            },
        ))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
}

/// A reply whose channel was removed while its turn ran is given up, not left pending where it
/// would crowd out the deliveries behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reply_of_a_removed_channel_is_given_up() {
    let w = World::<FakeTelegram>::start(open()).await;
    w.llm
        .push(Reply::text("Too late.").first_byte_delay(Duration::from_millis(800)));
    w.platform.say(UserSays::direct("3001", "hello")).await;
    let started = tokio::time::Instant::now();
    while w.llm.request_count() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the turn never started"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let removed = w
        .client()
        .await
        .remove_channel(authed(
            &w.key,
            pb::RemoveChannelRequest {
                channel: "telegram".into(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(removed.removed);
    let store = &w.server().store;
    // The answer is stored, then its delivery is given up.
    let started = tokio::time::Instant::now();
    loop {
        let sessions = w.stored_sessions().await;
        let answered = sessions.first().is_some_and(|s| s.len() == 2);
        let pending = store
            .pending_deliveries(nexus_core::ChannelKind::Telegram, 10)
            .await
            .unwrap();
        if answered && pending.is_empty() {
            let item = store
                .pending_inbox(sessions[0][0].session_id)
                .await
                .unwrap();
            assert!(item.is_empty());
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "delivery still pending: {pending:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        w.platform
            .bot_messages()
            .iter()
            .all(|m| m.text != "Too late."),
        "nothing is sent on a removed channel"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowlist_answers_only_the_listed_user() {
    let w = World::<FakeTelegram>::start(open()).await;
    let changed = w
        .client()
        .await
        .set_channel_access(authed(
            &w.key,
            pb::SetChannelAccessRequest {
                channel: w.channel.id.clone(),
                access: Some(pb::ChannelAccess {
                    dm: "allowlist".into(),
                    allow: vec!["2201".into()],
                    groups: "mention".into(),
                    tools: None,
                }),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    let access = changed.access.unwrap();
    assert_eq!(
        (access.dm.as_str(), access.allow),
        ("allowlist", vec!["2201".to_owned()])
    );

    w.llm.push(Reply::text("For the listed user."));
    w.platform
        .say(UserSays::direct("2202", "not on the list"))
        .await;
    w.platform
        .say(UserSays::direct("2201", "on the list"))
        .await;
    // Telegram hands updates over in order: the stranger's was turned away first.
    let messages = w
        .wait_bot("the listed user's answer", |m| {
            says_text(m, "For the listed user.")
        })
        .await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0].chat_id, "2201");
    assert_eq!(w.llm.request_count(), 1);
    let body = w.llm.last_request().unwrap().body.to_string();
    assert!(!body.contains("not on the list"), "{body}");
}

/// A slow answer: typing indicators show in the chat until the first words arrive.
async fn typing_shows_while_a_slow_answer_is_produced<P: Platform>() {
    let w = World::<P>::start(open()).await;
    w.llm.push(
        Reply::text("A slow but complete answer.").first_byte_delay(Duration::from_millis(700)),
    );
    let said = w
        .platform
        .say(UserSays::direct("2301", "take your time"))
        .await;
    let messages = w
        .wait_bot("the answer", |m| {
            says_text(m, "A slow but complete answer.")
        })
        .await;
    assert_eq!(messages.len(), 1);
    assert!(
        w.platform.typing_count(&said.chat_id) >= 1,
        "the chat showed the bot typing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telegram_shows_typing_while_a_slow_answer_is_produced() {
    typing_shows_while_a_slow_answer_is_produced::<FakeTelegram>().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discord_shows_typing_while_a_slow_answer_is_produced() {
    typing_shows_while_a_slow_answer_is_produced::<FakeDiscord>().await;
}
