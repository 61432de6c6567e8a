//! The Telegram adapter against the fake Bot API: receiving by long polling and by webhook,
//! acknowledging only what the router took, mapping, files, sending, editing, typing, and
//! every fault the fake can inject.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use nexus_channels::telegram::{TelegramAdapter, TelegramConfig, TelegramMode};
use nexus_channels::testing::MemoryMedia;
use nexus_channels::{ChannelContext, Limits};
use nexus_core::{
    AckOutcome, ChannelAdapter, ChannelCredentialId, ChannelError, ChatRef, InboundMessage,
    OutboundMessage, SentMessage, WebhookRequest,
};
use nexus_testkit::chat::{ChatPlatform, FakeFile, UserSays};
use nexus_testkit::telegram::{FakeTelegram, Fault, WebhookEndpoint};
use serde_json::json;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(5);

fn limits() -> Limits {
    Limits {
        max_file_bytes: 1024 * 1024,
        max_body_bytes: 64 * 1024,
        ack_timeout: Duration::from_secs(2),
        max_rate_limit_wait: Duration::from_secs(2),
    }
}

fn polling() -> TelegramMode {
    TelegramMode::Polling {
        timeout: Duration::from_secs(1),
    }
}

fn config(fake: &FakeTelegram, mode: TelegramMode) -> TelegramConfig {
    TelegramConfig {
        api_base: fake.base_url().parse().unwrap(),
        token: fake.token().into(),
        mode,
    }
}

/// An adapter with a router that records messages and answers scripted outcomes
/// (`Committed` when none is queued).
struct Bot {
    adapter: Arc<TelegramAdapter>,
    media: Arc<MemoryMedia>,
    inbox: mpsc::UnboundedReceiver<InboundMessage>,
    outcomes: Arc<Mutex<VecDeque<AckOutcome>>>,
    cancel: CancellationToken,
    run: Option<JoinHandle<Result<(), ChannelError>>>,
}

impl Bot {
    fn new(config: TelegramConfig, limits: Limits) -> Bot {
        let media = Arc::new(MemoryMedia::new());
        let ctx = ChannelContext {
            account_id: ChannelCredentialId::new(),
            http: reqwest::Client::new(),
            media: media.clone(),
            limits,
        };
        let adapter = Arc::new(TelegramAdapter::new(config, ctx).unwrap());
        let mut envelopes = adapter.messages().unwrap();
        let outcomes = Arc::new(Mutex::new(VecDeque::new()));
        let (tx, inbox) = mpsc::unbounded_channel();
        let scripted = outcomes.clone();
        tokio::spawn(async move {
            while let Some(envelope) = envelopes.recv().await {
                let _ = tx.send(envelope.message);
                let outcome = scripted.lock().unwrap().pop_front();
                let _ = envelope.ack.send(outcome.unwrap_or(AckOutcome::Committed));
            }
        });
        Bot {
            adapter,
            media,
            inbox,
            outcomes,
            cancel: CancellationToken::new(),
            run: None,
        }
    }

    /// Polls `fake` in the background.
    async fn polling(fake: &FakeTelegram) -> Bot {
        Bot::new(config(fake, polling()), limits()).started()
    }

    fn started(mut self) -> Bot {
        let adapter = self.adapter.clone();
        let cancel = self.cancel.clone();
        self.run = Some(tokio::spawn(async move { adapter.start(cancel).await }));
        self
    }

    fn answer_next(&self, outcome: AckOutcome) {
        self.outcomes.lock().unwrap().push_back(outcome);
    }

    async fn next(&mut self) -> InboundMessage {
        tokio::time::timeout(WAIT, self.inbox.recv())
            .await
            .expect("a message in time")
            .unwrap()
    }

    async fn stop(mut self) -> Result<(), ChannelError> {
        self.cancel.cancel();
        let run = self.run.take().unwrap();
        tokio::time::timeout(Duration::from_secs(1), run)
            .await
            .expect("stops promptly")
            .unwrap()
    }
}

/// Waits until `fake` has no unconfirmed update.
async fn drained(fake: &FakeTelegram) {
    tokio::time::timeout(WAIT, async {
        while !fake.pending_updates().is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("all updates confirmed");
}

fn dm(chat: &str) -> ChatRef {
    ChatRef {
        chat_id: chat.to_owned(),
        thread_id: None,
    }
}

fn reply(chat: ChatRef, text: &str) -> OutboundMessage {
    OutboundMessage {
        chat,
        text: text.to_owned(),
        reply_to: None,
        attachments: Vec::new(),
    }
}

#[tokio::test]
async fn verify_names_the_bot_and_a_wrong_token_is_an_auth_error_without_the_token() {
    let fake = FakeTelegram::start().await;
    let bot = Bot::new(config(&fake, polling()), limits());
    let me = bot.adapter.verify().await.unwrap();
    assert_eq!(
        (me.id, me.name.as_str()),
        (fake.bot_id().to_string(), "nexus_fake_bot")
    );
    let mut wrong = config(&fake, polling());
    wrong.token = "123:WRONGSECRET".into();
    let err = Bot::new(wrong, limits())
        .adapter
        .verify()
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChannelError::Auth { message } if message.contains("rejected the bot token")),
        "{err}"
    );
    assert!(!err.restartable());
    let mut dead = config(&fake, polling());
    dead.api_base = "http://127.0.0.1:9".parse().unwrap();
    let err = Bot::new(dead, limits()).adapter.verify().await.unwrap_err();
    assert!(matches!(err, ChannelError::Transport { .. }));
    assert!(!err.to_string().contains(fake.token()), "{err}");
}

#[tokio::test]
async fn polling_delivers_a_direct_message_and_confirms_it_once_committed() {
    let fake = FakeTelegram::start().await;
    let mut bot = Bot::polling(&fake).await;
    let said = fake.say(UserSays::direct("42", "hello there")).await;
    let m = bot.next().await;
    assert_eq!(
        (m.text.as_str(), m.chat.chat_id.as_str(), m.addressed),
        ("hello there", "42", true)
    );
    assert_eq!(m.sender.external_id, "42");
    assert_eq!(
        m.metadata["telegram_message_id"].to_string(),
        said.message_id
    );
    assert_eq!(m.external_id, m.metadata["telegram_update_id"].to_string());
    drained(&fake).await;
    let first_calls: Vec<String> = fake
        .requests()
        .iter()
        .take(3)
        .map(|c| c.method.clone())
        .collect();
    assert_eq!(first_calls, ["getMe", "deleteWebhook", "getUpdates"]);
    assert_eq!(
        fake.calls("getUpdates")[0]["allowed_updates"],
        json!(["message"])
    );
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn an_update_the_router_failed_is_not_confirmed_and_comes_again() {
    let fake = FakeTelegram::start().await;
    let mut bot = Bot::polling(&fake).await;
    bot.answer_next(AckOutcome::Failed {
        reason: "db down".into(),
    });
    fake.say(UserSays::direct("42", "first")).await;
    fake.say(UserSays::direct("42", "second")).await;
    let a = bot.next().await;
    assert_eq!(
        fake.pending_updates().len(),
        2,
        "nothing confirmed after a failure"
    );
    let again = bot.next().await;
    assert_eq!(
        (again.text.as_str(), again.external_id.as_str()),
        ("first", a.external_id.as_str())
    );
    assert_eq!(bot.next().await.text, "second", "order is kept");
    drained(&fake).await;
    bot.stop().await.unwrap();
}

async fn survives(fault: Fault, limits: Limits) {
    let fake = FakeTelegram::start().await;
    fake.fail_next("getUpdates", 1, fault);
    let mut bot = Bot::new(config(&fake, polling()), limits).started();
    fake.say(UserSays::direct("42", "still here")).await;
    assert_eq!(bot.next().await.text, "still here");
    drained(&fake).await;
    assert!(fake.calls("getUpdates").len() >= 2);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn polling_backs_off_and_retries_after_another_poller_conflicts() {
    let description = "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running";
    survives(
        Fault::Error {
            status: 409,
            description: description.into(),
        },
        limits(),
    )
    .await;
}

#[tokio::test]
async fn polling_retries_after_a_server_error() {
    survives(Fault::ServerError { status: 502 }, limits()).await;
}

#[tokio::test]
async fn polling_retries_after_a_dropped_connection() {
    survives(Fault::DropConnection, limits()).await;
}

#[tokio::test]
async fn polling_retries_after_a_malformed_body() {
    survives(Fault::MalformedBody, limits()).await;
}

#[tokio::test]
async fn polling_retries_after_a_body_over_the_limit() {
    survives(Fault::OversizedBody { bytes: 100_000 }, limits()).await;
}

#[tokio::test]
async fn polling_waits_out_a_rate_limit() {
    survives(Fault::RateLimited { retry_after: 1 }, limits()).await;
}

#[tokio::test]
async fn polling_with_a_revoked_token_ends_with_an_auth_error() {
    let fake = FakeTelegram::start().await;
    fake.fail_next(
        "getUpdates",
        1,
        Fault::Error {
            status: 401,
            description: "Unauthorized".into(),
        },
    );
    let mut bot = Bot::polling(&fake).await;
    let run = bot.run.take().unwrap();
    let err = tokio::time::timeout(WAIT, run)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, ChannelError::Auth { .. }));
}

#[tokio::test]
async fn a_duplicated_update_reaches_the_router_once() {
    let fake = FakeTelegram::start().await;
    fake.duplicate_next_update();
    fake.say(UserSays::direct("42", "once")).await;
    fake.say(UserSays::direct("42", "next")).await;
    let mut bot = Bot::polling(&fake).await;
    assert_eq!(bot.next().await.text, "once");
    assert_eq!(bot.next().await.text, "next");
    drained(&fake).await;
    assert!(bot.inbox.try_recv().is_err());
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn cancelling_interrupts_a_long_poll_promptly() {
    let fake = FakeTelegram::start().await;
    let long = TelegramMode::Polling {
        timeout: Duration::from_secs(30),
    };
    let bot = Bot::new(config(&fake, long), limits()).started();
    tokio::time::timeout(WAIT, async {
        while fake.calls("getUpdates").is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn edits_and_the_bots_own_messages_are_confirmed_and_dropped() {
    let fake = FakeTelegram::start().await;
    let edited = fake.message_for(&UserSays::direct("42", "edited"));
    fake.push_update(json!({"edited_message": edited})).unwrap();
    let mut own = fake.message_for(&UserSays::direct("42", "echo"));
    own["from"] = json!({"id": fake.bot_id(), "is_bot": true, "first_name": "Nexus"});
    fake.push_update(json!({"message": own})).unwrap();
    fake.say(UserSays::direct("42", "real").from_bot()).await;
    let mut bot = Bot::polling(&fake).await;
    let m = bot.next().await;
    assert_eq!(m.text, "real");
    assert!(m.sender.is_bot, "other bots are delivered, marked");
    drained(&fake).await;
    assert!(bot.inbox.try_recv().is_err());
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn group_mentions_commands_and_replies_to_the_bot_address_it() {
    let fake = FakeTelegram::start().await;
    let mut bot = Bot::polling(&fake).await;
    fake.say(UserSays::group("42", "-1001", "/new fresh start").mentioning())
        .await;
    let m = bot.next().await;
    assert_eq!((m.text.as_str(), m.addressed), ("/new fresh start", true));
    assert_eq!(m.chat.chat_id, "-1001");
    fake.say(UserSays::group("42", "-1001", "chatter")).await;
    assert!(!bot.next().await.addressed);
    let sent = bot
        .adapter
        .send(&reply(dm("-1001"), "I am here"))
        .await
        .unwrap();
    fake.say(UserSays::group("42", "-1001", "thanks").replying_to(&sent.platform_message_id))
        .await;
    let r = bot.next().await;
    assert_eq!(
        (r.addressed, r.reply_to.as_deref()),
        (true, Some(sent.platform_message_id.as_str()))
    );
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_forum_topic_scopes_the_session_and_replies_go_back_into_it() {
    let fake = FakeTelegram::start().await;
    let mut bot = Bot::polling(&fake).await;
    fake.say(
        UserSays::group("42", "-1005", "in topic")
            .mentioning()
            .in_thread("9"),
    )
    .await;
    let m = bot.next().await;
    assert_eq!(m.chat.thread_id.as_deref(), Some("9"));
    assert_eq!(m.reply_to, None, "the topic root is not a reply");
    bot.adapter
        .send(&reply(m.chat.clone(), "answer"))
        .await
        .unwrap();
    bot.adapter.typing(&m.chat).await.unwrap();
    assert_eq!(fake.bot_messages()[0].thread_id.as_deref(), Some("9"));
    assert_eq!(fake.calls("sendChatAction")[0]["message_thread_id"], 9);
    assert_eq!(fake.typing_count("-1005"), 1);
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn photos_and_documents_are_downloaded_into_media() {
    let fake = FakeTelegram::start().await;
    let mut bot = Bot::polling(&fake).await;
    let photo = FakeFile {
        name: "cat.png".into(),
        content_type: "image/png".into(),
        bytes: vec![1; 300],
    };
    fake.say(UserSays::direct("42", "a cat").with_file(photo))
        .await;
    let m = bot.next().await;
    assert_eq!(m.text, "a cat");
    let a = &m.attachments[0];
    assert_eq!(
        (a.size, a.content_type.as_str()),
        (300, "image/jpeg"),
        "the largest size"
    );
    assert_eq!(bot.media.bytes(&a.storage_key).unwrap().len(), 300);
    let pdf = FakeFile {
        name: "report.pdf".into(),
        content_type: "application/pdf".into(),
        bytes: b"%PDF-1".to_vec(),
    };
    fake.say(UserSays::direct("42", "").with_file(pdf)).await;
    let d = bot.next().await;
    let a = &d.attachments[0];
    assert_eq!(
        (a.filename.as_deref(), a.content_type.as_str()),
        (Some("report.pdf"), "application/pdf")
    );
    assert_eq!(bot.media.bytes(&a.storage_key).unwrap().as_ref(), b"%PDF-1");
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_file_over_the_cap_is_skipped_and_noted() {
    let fake = FakeTelegram::start().await;
    let small = Limits {
        max_file_bytes: 10,
        ..limits()
    };
    let mut bot = Bot::new(config(&fake, polling()), small).started();
    let big = FakeFile {
        name: "big.zip".into(),
        content_type: "application/zip".into(),
        bytes: vec![0; 100],
    };
    fake.say(UserSays::direct("42", "take this").with_file(big))
        .await;
    let m = bot.next().await;
    assert!(m.attachments.is_empty());
    let note = &m.metadata["skipped_attachments"][0];
    assert_eq!(
        (note["name"].as_str(), note["size"].as_u64()),
        (Some("big.zip"), Some(100))
    );
    assert!(note["reason"].as_str().unwrap().contains("limit"));
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn send_uses_html_replies_to_the_message_and_disables_link_previews() {
    let fake = FakeTelegram::start().await;
    let said = fake.say(UserSays::direct("42", "question")).await;
    let bot = Bot::new(config(&fake, polling()), limits());
    let mut out = reply(dm("42"), "<b>Answer</b> &amp; more");
    out.reply_to = Some(said.message_id.clone());
    let sent = bot.adapter.send(&out).await.unwrap();
    let params = &fake.calls("sendMessage")[0];
    assert_eq!(params["parse_mode"], "HTML");
    assert_eq!(params["link_preview_options"], json!({"is_disabled": true}));
    assert_eq!(
        params["reply_parameters"]["message_id"].to_string(),
        said.message_id
    );
    let shown = &fake.bot_messages()[0];
    assert_eq!(
        (shown.id.as_str(), shown.text.as_str()),
        (
            sent.platform_message_id.as_str(),
            "<b>Answer</b> &amp; more"
        )
    );
    assert_eq!(shown.reply_to.as_deref(), Some(said.message_id.as_str()));
}

#[tokio::test]
async fn html_telegram_refuses_is_sent_again_as_plain_text() {
    let fake = FakeTelegram::start().await;
    fake.say(UserSays::direct("42", "hi")).await;
    let bot = Bot::new(config(&fake, polling()), limits());
    bot.adapter
        .send(&reply(dm("42"), "<p>x &lt; y</p>"))
        .await
        .unwrap();
    fake.fail_next("sendMessage", 1, Fault::RejectEntities);
    bot.adapter
        .send(&reply(dm("42"), "<b>bold</b> &quot;q&quot;"))
        .await
        .unwrap();
    let texts: Vec<String> = fake.bot_messages().into_iter().map(|m| m.text).collect();
    assert_eq!(texts, ["x < y", "bold \"q\""]);
    let last = fake.calls("sendMessage").pop().unwrap();
    assert!(last.get("parse_mode").is_none());
}

#[tokio::test]
async fn attachments_go_as_photos_or_documents() {
    let fake = FakeTelegram::start().await;
    fake.say(UserSays::direct("42", "hi")).await;
    let bot = Bot::new(config(&fake, polling()), limits());
    let png = bot
        .media
        .insert("chart.png", "image/png", vec![9; 50].into());
    let csv = bot
        .media
        .insert("data.csv", "text/csv", b"a,b".to_vec().into());
    let mut out = reply(dm("42"), "");
    out.attachments = vec![png, csv];
    let sent = bot.adapter.send(&out).await.unwrap();
    let files = fake.sent_files();
    assert_eq!(
        (files[0].method.as_str(), files[0].bytes.len()),
        ("sendPhoto", 50)
    );
    assert_eq!(
        (files[1].method.as_str(), files[1].filename.as_deref()),
        ("sendDocument", Some("data.csv"))
    );
    assert_eq!(sent.platform_message_id, fake.bot_messages()[0].id);
}

#[tokio::test]
async fn edits_replace_the_text_and_an_unchanged_edit_counts_as_delivered() {
    let fake = FakeTelegram::start().await;
    fake.say(UserSays::direct("42", "hi")).await;
    let bot = Bot::new(config(&fake, polling()), limits());
    let sent = bot
        .adapter
        .send(&reply(dm("42"), "Thinking"))
        .await
        .unwrap();
    bot.adapter
        .edit(&sent, "Thinking <i>hard</i>")
        .await
        .unwrap();
    bot.adapter
        .edit(&sent, "Thinking <i>hard</i>")
        .await
        .unwrap();
    let shown = &fake.bot_messages()[0];
    assert_eq!(
        (shown.text.as_str(), shown.edits),
        ("Thinking <i>hard</i>", 1)
    );
    let missing = SentMessage {
        chat: dm("42"),
        platform_message_id: "999".into(),
    };
    assert!(matches!(
        bot.adapter.edit(&missing, "x").await,
        Err(ChannelError::Rejected { .. })
    ));
}

#[tokio::test]
async fn a_short_rate_limit_is_waited_out_and_a_long_one_is_returned() {
    let fake = FakeTelegram::start().await;
    fake.say(UserSays::direct("42", "hi")).await;
    let bot = Bot::new(config(&fake, polling()), limits());
    fake.fail_next("sendMessage", 1, Fault::RateLimited { retry_after: 1 });
    bot.adapter.send(&reply(dm("42"), "patient")).await.unwrap();
    assert_eq!(fake.bot_messages().len(), 1);
    fake.fail_next("sendChatAction", 1, Fault::RateLimited { retry_after: 120 });
    let err = bot.adapter.typing(&dm("42")).await.unwrap_err();
    assert_eq!(
        err,
        ChannelError::RateLimited {
            retry_after: Some(Duration::from_secs(120))
        }
    );
}

#[tokio::test]
async fn a_migrated_group_and_a_blocked_user_are_rejections() {
    let fake = FakeTelegram::start().await;
    let bot = Bot::new(config(&fake, polling()), limits());
    fake.fail_next("sendMessage", 1, Fault::MigratedTo { chat_id: -100_555 });
    let err = bot.adapter.send(&reply(dm("-5"), "hi")).await.unwrap_err();
    assert!(
        matches!(&err, ChannelError::Rejected { message } if message.contains("-100555")),
        "{err}"
    );
    fake.fail_next(
        "sendMessage",
        1,
        Fault::Error {
            status: 403,
            description: "Forbidden: bot was blocked by the user".into(),
        },
    );
    let err = bot.adapter.send(&reply(dm("42"), "hi")).await.unwrap_err();
    assert!(
        matches!(&err, ChannelError::Rejected { message } if message.contains("blocked")),
        "{err}"
    );
}

/// A webhook-mode bot whose endpoint forwards to the adapter.
async fn webhook_bot(fake: &FakeTelegram) -> (Bot, WebhookEndpoint) {
    let slot: Arc<OnceLock<Arc<TelegramAdapter>>> = Arc::new(OnceLock::new());
    let target = slot.clone();
    let endpoint = WebhookEndpoint::serve(move |headers, body| {
        let target = target.clone();
        async move {
            let adapter = target.get().unwrap().clone();
            match adapter.webhook(WebhookRequest { headers, body }).await {
                Ok(r) => (r.status, r.body),
                Err(_) => (500, Vec::new()),
            }
        }
    })
    .await;
    let mode = TelegramMode::Webhook {
        url: endpoint.url().parse().unwrap(),
        secret: "s3cret-Token_1".into(),
    };
    let bot = Bot::new(config(fake, mode), limits());
    slot.set(bot.adapter.clone()).unwrap();
    (bot.started(), endpoint)
}

async fn registered(fake: &FakeTelegram) {
    tokio::time::timeout(WAIT, async {
        while fake.webhook().is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn webhook_mode_registers_and_receives_updates_and_leaves_the_webhook_on_cancel() {
    let fake = FakeTelegram::start().await;
    let (mut bot, endpoint) = webhook_bot(&fake).await;
    registered(&fake).await;
    let hook = fake.webhook().unwrap();
    assert_eq!(
        (hook.url, hook.secret_token.as_deref()),
        (endpoint.url(), Some("s3cret-Token_1"))
    );
    assert_eq!(hook.allowed_updates, Some(vec!["message".to_owned()]));
    fake.say(UserSays::direct("42", "via webhook")).await;
    assert_eq!(bot.next().await.text, "via webhook");
    assert_eq!(fake.webhook_deliveries()[0].status, Some(200));
    bot.stop().await.unwrap();
    assert!(fake.webhook().is_some(), "left registered");
}

#[tokio::test]
async fn webhook_requests_with_a_wrong_secret_or_a_bad_body_are_refused_or_dropped() {
    let fake = FakeTelegram::start().await;
    let (mut bot, _endpoint) = webhook_bot(&fake).await;
    registered(&fake).await;
    let update =
        json!({"update_id": 1, "message": fake.message_for(&UserSays::direct("42", "forged"))})
            .to_string();
    let header = "x-telegram-bot-api-secret-token";
    assert_eq!(
        fake.post_to_webhook(&[(header, "wrong")], update.clone().into_bytes())
            .await,
        Some(403)
    );
    assert_eq!(
        fake.post_to_webhook(&[], update.into_bytes()).await,
        Some(403)
    );
    let big = vec![b' '; 70 * 1024];
    assert_eq!(
        fake.post_to_webhook(&[(header, "s3cret-Token_1")], big)
            .await,
        Some(413)
    );
    let garbage = b"{\"update_id\": 5, \"message\": ".to_vec();
    assert_eq!(
        fake.post_to_webhook(&[(header, "s3cret-Token_1")], garbage)
            .await,
        Some(200)
    );
    assert!(bot.inbox.try_recv().is_err(), "nothing reached the router");
    fake.say(UserSays::direct("42", "genuine")).await;
    assert_eq!(bot.next().await.text, "genuine");
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn webhook_answers_500_when_the_router_fails_so_telegram_retries() {
    let fake = FakeTelegram::start().await;
    let (mut bot, _endpoint) = webhook_bot(&fake).await;
    registered(&fake).await;
    bot.answer_next(AckOutcome::Failed {
        reason: "db down".into(),
    });
    fake.duplicate_next_update();
    fake.say(UserSays::direct("42", "retry me")).await;
    let statuses: Vec<_> = fake.webhook_deliveries().iter().map(|d| d.status).collect();
    assert_eq!(statuses[..2], [Some(500), Some(200)]);
    assert_eq!(bot.next().await.text, "retry me");
    assert_eq!(
        bot.next().await.external_id,
        bot.next().await.external_id,
        "redelivery and duplicate keep the id"
    );
    bot.stop().await.unwrap();
}

#[tokio::test]
async fn a_webhook_url_telegram_refuses_is_fatal() {
    let fake = FakeTelegram::start().await;
    let mode = TelegramMode::Webhook {
        url: "https://bot.example.com:9999/hook".parse().unwrap(),
        secret: "abc".into(),
    };
    let bot = Bot::new(config(&fake, mode), limits());
    let err = bot
        .adapter
        .start(CancellationToken::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ChannelError::Fatal { message } if message.contains("webhook")),
        "{err}"
    );
}

#[tokio::test]
async fn a_polling_adapter_has_no_webhook() {
    let fake = FakeTelegram::start().await;
    let bot = Bot::new(config(&fake, polling()), limits());
    let request = WebhookRequest {
        headers: Vec::new(),
        body: b"{}".to_vec(),
    };
    assert!(matches!(
        bot.adapter.webhook(request).await,
        Err(ChannelError::Unsupported { .. })
    ));
}
