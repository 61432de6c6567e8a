//! The channel conformance suite: one set of behaviours every chat platform must show, end to
//! end — a person writes on the platform's fake, the adapter and router commit it, the agent
//! (on the fake model) answers, and the reply streams back onto the fake.
//!
//! [`channel_conformance!`] turns the list into one test per behaviour and platform.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

pub mod platforms;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_gateway::channels::{ChannelServiceConfig, PlatformAdapters};
use nexus_gateway::pb;
use nexus_gateway::server::{RunningServer, ServerOptions, start};
use nexus_store::SessionFilter;
use nexus_testkit::chat::{BotMessage, ChatPlatform, FakeFile, UserSays};
use nexus_testkit::openai::{FakeOpenAi, Reply};
use secrecy::ExposeSecret;

use crate::common::{authed, registry_for, settings};

/// A platform fake the suite can set up a channel on.
pub trait Platform: ChatPlatform + Sized + 'static {
    /// Starts the fake.
    fn start() -> impl std::future::Future<Output = Self> + Send;
    /// The request adding a channel on this fake for `agent`.
    fn add_request(&self, agent: &str) -> pb::AddChannelRequest;
    /// The platform's message length limit, in characters.
    fn limit(&self) -> usize;
    /// The command starting a new conversation.
    fn new_command(&self) -> &'static str {
        "/new"
    }
    /// A group chat id valid on this fake.
    fn group_id(&self) -> String;
}

/// A server, the fake model, the platform fake and a channel between them.
pub struct World<P: Platform> {
    pub dir: tempfile::TempDir,
    pub llm: FakeOpenAi,
    pub platform: P,
    pub server: Option<RunningServer>,
    pub key: String,
    pub channel: pb::Channel,
}

fn channel_config() -> ChannelServiceConfig {
    ChannelServiceConfig {
        lease_ttl: Duration::from_secs(3),
        resync_interval: Duration::from_millis(500),
        outbox_interval: Duration::from_millis(100),
        outbox_grace: Duration::from_millis(300),
        restart_base: Duration::from_millis(50),
        restart_max: Duration::from_millis(500),
        edit_interval_scale: 0.1,
        ..ChannelServiceConfig::default()
    }
}

async fn start_server(dir: &Path, llm: &FakeOpenAi) -> RunningServer {
    let providers = nexus_gateway::models::from_registry(
        registry_for(llm),
        None,
        nexus_llm::Catalog::default(),
    );
    let mut settings = settings(dir);
    settings.shutdown_grace = Duration::from_millis(100);
    start(
        settings,
        ServerOptions {
            models: providers.resolver,
            default_model: providers.default_model,
            tools: Vec::new(),
            adapters: Arc::new(PlatformAdapters),
            channels: channel_config(),
        },
    )
    .await
    .unwrap()
}

/// Access rules: open direct messages, groups by mention.
pub fn open() -> pb::ChannelAccess {
    pb::ChannelAccess {
        dm: "open".into(),
        allow: vec![],
        groups: "mention".into(),
        tools: None,
    }
}

/// Access rules: pairing for direct messages.
pub fn pairing() -> pb::ChannelAccess {
    pb::ChannelAccess {
        dm: "pairing".into(),
        allow: vec![],
        groups: "mention".into(),
        tools: None,
    }
}

impl<P: Platform> World<P> {
    pub async fn start(access: pb::ChannelAccess) -> World<P> {
        let platform = P::start().await;
        World::start_on(platform, |p| pb::AddChannelRequest {
            access: Some(access),
            ..p.add_request("assistant")
        })
        .await
    }

    /// A world on an already started `platform` (a fake with its own configuration), its
    /// channel added with the request `request` builds.
    pub async fn start_on(
        platform: P,
        request: impl FnOnce(&P) -> pb::AddChannelRequest,
    ) -> World<P> {
        let dir = tempfile::tempdir().unwrap();
        let llm = FakeOpenAi::start().await;
        let server = start_server(dir.path(), &llm).await;
        let key = server
            .bootstrapped
            .admin_key
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        let mut world = World {
            dir,
            llm,
            platform,
            server: Some(server),
            key,
            channel: pb::Channel::default(),
        };
        let request = request(&world.platform);
        let added = world
            .add_channel(request)
            .await
            .unwrap_or_else(|status| panic!("the channel could not be added: {status:?}"));
        world.channel = added.channel.unwrap();
        world
    }

    /// Adds a channel over gRPC as the admin.
    pub async fn add_channel(
        &self,
        request: pb::AddChannelRequest,
    ) -> Result<pb::AddChannelResponse, tonic::Status> {
        self.client()
            .await
            .add_channel(authed(&self.key, request))
            .await
            .map(tonic::Response::into_inner)
    }

    /// The world's channel as `GetChannel` shows it now.
    pub async fn get_channel(&self) -> pb::Channel {
        self.client()
            .await
            .get_channel(authed(
                &self.key,
                pb::GetChannelRequest {
                    channel: self.channel.id.clone(),
                },
            ))
            .await
            .unwrap()
            .into_inner()
    }

    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().unwrap()
    }

    pub async fn client(&self) -> pb::gateway_client::GatewayClient<tonic::transport::Channel> {
        pb::gateway_client::GatewayClient::connect(format!("http://{}", self.server().grpc_addr))
            .await
            .unwrap()
    }

    /// Stops the server (running turns are abandoned after a short grace) and starts a new
    /// one on the same data directory.
    pub async fn restart(&mut self) {
        let server = self.server.take().unwrap();
        server.shutdown().await;
        self.server = Some(start_server(self.dir.path(), &self.llm).await);
    }

    /// Waits until the bot's messages satisfy `cond` (10 s at most).
    pub async fn wait_bot(
        &self,
        what: &str,
        cond: impl Fn(&[BotMessage]) -> bool,
    ) -> Vec<BotMessage> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let messages = self.platform.bot_messages();
            if cond(&messages) {
                return messages;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; bot messages: {messages:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until the stored sessions satisfy `cond` (10 s at most).
    pub async fn wait_stored(
        &self,
        what: &str,
        cond: impl Fn(&[Vec<nexus_core::Message>]) -> bool,
    ) -> Vec<Vec<nexus_core::Message>> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let sessions = self.stored_sessions().await;
            if cond(&sessions) {
                return sessions;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}; stored: {sessions:#?}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no reply on the channel's platform is left to deliver (10 s at most): the
    /// live replies finished and the outbox has nothing to send again.
    pub async fn wait_delivered(&self) {
        let kind: nexus_core::ChannelKind = self.channel.kind.parse().unwrap();
        let store = &self.server().store;
        eventually("every reply delivered", || async {
            let pending = store.pending_deliveries(kind, 100).await.unwrap();
            pending.is_empty().then_some(())
        })
        .await;
    }

    /// Messages stored in the channel's sessions, oldest session first.
    pub async fn stored_sessions(&self) -> Vec<Vec<nexus_core::Message>> {
        let store = &self.server().store;
        let mut sessions = store
            .list_sessions(&SessionFilter::default())
            .await
            .unwrap();
        sessions.retain(|s| s.scope.starts_with(&self.channel.id));
        sessions.sort_by_key(|s| s.created_at);
        let mut out = Vec::new();
        for s in sessions {
            out.push(store.list_messages(s.id, 0, 0).await.unwrap());
        }
        out
    }
}

/// Waits until `check` returns `Some` (10 s at most), polling every 20 ms.
pub async fn eventually<T, Fut>(what: &str, mut check: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether one of the bot's messages reads exactly `text`.
pub fn says_text(messages: &[BotMessage], text: &str) -> bool {
    messages.iter().any(|m| m.text == text)
}

// ---------------------------------------------------------------- behaviours

/// A direct message gets one reply message: created with the first words, edited as more
/// arrive, ending with the whole answer.
pub async fn direct_message_gets_one_streamed_reply<P: Platform>() {
    let w = World::<P>::start(open()).await;
    let answer = "Hello there, this answer streams in word by word so that the reply is edited \
                  several times before it is complete.";
    w.llm
        .push(Reply::text(answer).token_delay(Duration::from_millis(30)));
    let said = w.platform.say(UserSays::direct("1001", "hi")).await;
    let messages = w
        .wait_bot("the full answer", |m| says_text(m, answer))
        .await;
    assert_eq!(
        messages.len(),
        1,
        "one message, edited in place: {messages:#?}"
    );
    assert_eq!(messages[0].chat_id, said.chat_id);
    assert!(
        messages[0].edits >= 1,
        "the reply streamed with edits: {messages:#?}"
    );
    // The last edit may show the whole text a moment before the turn is committed.
    let sessions = w
        .wait_stored("the answer stored", |s| s.len() == 1 && s[0].len() == 2)
        .await;
    let history: Vec<_> = sessions[0].iter().map(|m| m.content.as_str()).collect();
    assert_eq!(history, vec!["hi", answer]);
}

/// A reply longer than the platform allows arrives as several messages, each within the limit,
/// together holding the whole answer.
pub async fn long_reply_is_split_within_the_platform_limit<P: Platform>() {
    let w = World::<P>::start(open()).await;
    let paragraphs: Vec<String> = (0..7)
        .map(|i| {
            format!("Paragraph{i} {}", "lorem ipsum dolor sit amet ".repeat(30))
                .trim()
                .to_owned()
        })
        .collect();
    let answer = paragraphs.join("\n\n");
    w.llm.push(Reply::text(&answer));
    w.platform
        .say(UserSays::direct("1002", "tell me a lot"))
        .await;
    let messages = w
        .wait_bot("every paragraph", |m| {
            let all: String = m.iter().map(|b| b.text.as_str()).collect();
            (0..7).all(|i| all.contains(&format!("Paragraph{i}")))
                && m.len() >= 2
                && m.iter().all(|b| !b.text.is_empty())
        })
        .await;
    let limit = w.platform.limit();
    for m in &messages {
        assert!(
            m.text.chars().count() <= limit,
            "{} chars > {limit}",
            m.text.chars().count()
        );
    }
}

/// In a group the bot answers only when mentioned; the mention does not reach the model.
pub async fn group_messages_are_answered_only_when_mentioned<P: Platform>() {
    let w = World::<P>::start(open()).await;
    let group = w.platform.group_id();
    w.llm.push(Reply::text("Answer to the mention."));
    w.platform
        .say(UserSays::group("1003", &group, "just chatting"))
        .await;
    w.platform
        .say(UserSays::group("1003", &group, "what is two plus two?").mentioning())
        .await;
    let messages = w
        .wait_bot("the answer to the mention", |m| {
            says_text(m, "Answer to the mention.")
        })
        .await;
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(
        w.llm.request_count(),
        1,
        "only the mention reached the model"
    );
    let last = w.llm.last_request().unwrap();
    let body = last.body.to_string();
    assert!(body.contains("what is two plus two?"), "{body}");
    assert!(
        !body.contains(&w.platform.bot_user_id()),
        "mention stripped: {body}"
    );
}

/// Bots are never answered.
pub async fn bots_are_never_answered<P: Platform>() {
    let w = World::<P>::start(open()).await;
    w.llm.push(Reply::text("For the human."));
    w.platform
        .say(UserSays::direct("1004", "beep").from_bot())
        .await;
    w.platform.say(UserSays::direct("1005", "hello")).await;
    let messages = w
        .wait_bot("the human's answer", |m| says_text(m, "For the human."))
        .await;
    assert_eq!(messages.len(), 1);
    assert_eq!(w.llm.request_count(), 1);
}

/// An unknown sender gets a pairing code and no answer; once the owner approves the code, the
/// sender is answered.
pub async fn unknown_sender_is_paired_before_being_answered<P: Platform>() {
    let w = World::<P>::start(pairing()).await;
    w.platform.say(UserSays::direct("1006", "hello?")).await;
    let messages = w
        .wait_bot("a pairing code", |m| {
            m.iter().any(|b| b.text.contains("pairing code"))
        })
        .await;
    assert_eq!(w.llm.request_count(), 0, "not answered before approval");
    let text = &messages[0].text;
    let code: String = text
        .split("nexus channel approve ")
        .nth(1)
        .expect("the message names the approve command")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert_eq!(code.len(), 8, "{text}");
    let approved = w
        .client()
        .await
        .approve_pairing(authed(
            &w.key,
            pb::ApprovePairingRequest {
                code: code.to_lowercase(),
            },
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(approved.sender_id, "1006");
    w.llm.push(Reply::text("Now we can talk."));
    w.platform
        .say(UserSays::direct("1006", "hello again"))
        .await;
    w.wait_bot("the answer after pairing", |m| {
        says_text(m, "Now we can talk.")
    })
    .await;
    assert_eq!(w.llm.request_count(), 1);
}

/// `/new` starts a fresh session: the next question reaches the model without the history.
pub async fn new_command_starts_a_fresh_session<P: Platform>() {
    let w = World::<P>::start(open()).await;
    w.llm.push(Reply::text("First answer."));
    w.platform
        .say(UserSays::direct("1007", "remember the number 42"))
        .await;
    w.wait_bot("the first answer", |m| says_text(m, "First answer."))
        .await;
    w.platform
        .say(UserSays::direct("1007", w.platform.new_command()))
        .await;
    w.wait_bot("the new-session notice", |m| {
        m.iter()
            .any(|b| b.text.contains("Started a new conversation"))
    })
    .await;
    w.llm.push(Reply::text("Second answer."));
    w.platform
        .say(UserSays::direct("1007", "what number?"))
        .await;
    w.wait_bot("the second answer", |m| says_text(m, "Second answer."))
        .await;
    let body = w.llm.last_request().unwrap().body.to_string();
    assert!(
        !body.contains("42"),
        "the old session's history is not sent: {body}"
    );
    assert_eq!(w.stored_sessions().await.len(), 2);
}

/// A file sent to the bot is stored in object storage and attached to the stored message.
pub async fn attachments_are_stored_with_the_message<P: Platform>() {
    let w = World::<P>::start(open()).await;
    w.llm.push(Reply::text("Got your file."));
    let file = FakeFile {
        name: "notes.txt".into(),
        content_type: "text/plain".into(),
        bytes: b"the notes".to_vec(),
    };
    w.platform
        .say(UserSays::direct("1008", "see attached").with_file(file))
        .await;
    w.wait_bot("the answer", |m| says_text(m, "Got your file."))
        .await;
    let sessions = w.stored_sessions().await;
    let question = &sessions[0][0];
    assert_eq!(question.attachments.len(), 1, "{question:#?}");
    let blob = w
        .server()
        .blobs
        .get(&question.attachments[0].storage_key)
        .await
        .unwrap();
    assert_eq!(&blob.bytes[..], b"the notes");
}

/// A server killed in the middle of a streamed reply, and started again, finishes the reply by
/// editing the message it had begun: the question is neither lost nor answered twice.
pub async fn restart_mid_reply_neither_loses_nor_repeats<P: Platform>() {
    let mut w = World::<P>::start(open()).await;
    let slow = "This first attempt streams very slowly and will be cut off by the restart.";
    w.llm
        .push(Reply::text(slow).token_delay(Duration::from_millis(150)));
    w.platform
        .say(UserSays::direct("1009", "are you there?"))
        .await;
    w.wait_bot("the first words", |m| !m.is_empty()).await;
    w.llm
        .push(Reply::text("The complete answer after the restart."));
    w.restart().await;
    let messages = w
        .wait_bot("the complete answer", |m| {
            says_text(m, "The complete answer after the restart.")
        })
        .await;
    assert_eq!(
        messages.len(),
        1,
        "the begun message was edited, not a second one sent: {messages:#?}"
    );
    let sessions = w.stored_sessions().await;
    assert_eq!(sessions.len(), 1);
    let questions = sessions[0]
        .iter()
        .filter(|m| m.content == "are you there?")
        .count();
    assert_eq!(questions, 1, "the question is stored once");
    // Nothing more arrives later.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(w.platform.bot_messages().len(), 1);
}

/// Generates one test per behaviour for a platform.
#[macro_export]
macro_rules! channel_conformance {
    ($platform:ty) => {
        $crate::channel_conformance!(@each $platform;
            direct_message_gets_one_streamed_reply,
            long_reply_is_split_within_the_platform_limit,
            group_messages_are_answered_only_when_mentioned,
            bots_are_never_answered,
            unknown_sender_is_paired_before_being_answered,
            new_command_starts_a_fresh_session,
            attachments_are_stored_with_the_message,
            restart_mid_reply_neither_loses_nor_repeats,
        );
    };
    (@each $platform:ty; $($test:ident),+ $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $crate::channels::$test::<$platform>().await;
            }
        )+
    };
}
