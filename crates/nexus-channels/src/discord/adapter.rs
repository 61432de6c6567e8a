//! [`DiscordAdapter`]: the `ChannelAdapter` over Discord's gateway (inbound) and REST API
//! (verify, send, edit, typing).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use nexus_core::{
    BotIdentity, ChannelAdapter, ChannelCapabilities, ChannelError, ChannelKind, ChatRef,
    InboundEnvelope, OutboundMessage, SentMessage,
};
use secrecy::SecretString;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{Instrument, error, info_span, warn};
use url::Url;

use super::client::{Rest, Upload};
use super::config::{self, DiscordConfig, GatewayTiming};
use super::gateway::{Gateway, Session};
use super::inbound::{self, Delivery, Job};
use super::payload::{self, Message};
use crate::context::{ChannelContext, Inbound};

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A Discord bot: gateway inbound, REST outbound.
pub struct DiscordAdapter {
    rest: Rest,
    token: SecretString,
    intents: u64,
    gateway_url: Option<Url>,
    timing: GatewayTiming,
    ctx: ChannelContext,
    inbound: Arc<Inbound>,
    /// The inbound worker's queue, started with the first `start`.
    worker: Mutex<Option<mpsc::Sender<Job>>>,
    /// The last session, resumed by the next connection.
    session: Mutex<Option<Session>>,
    /// Cancels the running `start` (for `stop`).
    running: Mutex<Option<CancellationToken>>,
}

impl fmt::Debug for DiscordAdapter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiscordAdapter")
            .field("account", &self.ctx.account_id)
            .field("intents", &self.intents)
            .field("gateway_url", &self.gateway_url.as_ref().map(Url::as_str))
            .finish_non_exhaustive()
    }
}

impl DiscordAdapter {
    /// An adapter for `config`; `Fatal` when a URL has the wrong scheme.
    pub fn new(config: DiscordConfig, ctx: ChannelContext) -> Result<DiscordAdapter, ChannelError> {
        config::validate(&config)?;
        Ok(DiscordAdapter {
            rest: Rest::new(
                ctx.http.clone(),
                &config.api_base,
                config.token.clone(),
                ctx.limits,
            ),
            token: config.token,
            intents: config.intents,
            gateway_url: config.gateway_url,
            timing: GatewayTiming::default(),
            inbound: Arc::new(Inbound::new(ctx.limits.ack_timeout)),
            ctx,
            worker: Mutex::new(None),
            session: Mutex::new(None),
            running: Mutex::new(None),
        })
    }

    /// The same adapter with other gateway and delivery timing (tests shorten it).
    pub fn with_timing(mut self, timing: GatewayTiming) -> Self {
        self.timing = timing;
        self
    }

    /// The inbound worker's queue, starting the worker if none runs.
    fn worker(&self) -> mpsc::Sender<Job> {
        let mut worker = lock(&self.worker);
        if let Some(tx) = worker.as_ref().filter(|tx| !tx.is_closed()) {
            return tx.clone();
        }
        let (tx, rx) = mpsc::channel(inbound::QUEUE);
        inbound::spawn(
            Delivery {
                account: self.ctx.account_id,
                inbound: Arc::clone(&self.inbound),
                http: self.ctx.http.clone(),
                media: Arc::clone(&self.ctx.media),
                limits: self.ctx.limits,
                attempts: self.timing.delivery_attempts,
                backoff: self.timing.delivery_backoff,
            },
            rx,
        );
        *worker = Some(tx.clone());
        tx
    }

    async fn gateway_base(&self) -> Result<Url, ChannelError> {
        if let Some(url) = &self.gateway_url {
            return Ok(url.clone());
        }
        let answer = self.rest.gateway_bot().await?;
        Url::parse(&answer.url).map_err(|e| ChannelError::Transport {
            message: format!("Discord named an unusable gateway URL: {e}"),
        })
    }
}

/// Queues a `MESSAGE_CREATE` for the worker; drops the bot's own messages, system messages
/// and every other event.
fn enqueue(tx: &mpsc::Sender<Job>, event: &str, d: Value, bot_id: &str) {
    if event != "MESSAGE_CREATE" {
        return;
    }
    let message: Message = match serde_json::from_value(d) {
        Ok(message) => message,
        Err(err) => {
            warn!(channel = "discord", error = %err, "Unreadable MESSAGE_CREATE; ignored");
            return;
        }
    };
    if message.author.id == bot_id || !message.is_chat() {
        return;
    }
    let (id, channel_id) = (message.id.clone(), message.channel_id.clone());
    let job = Job {
        message,
        bot_id: bot_id.to_owned(),
    };
    if let Err(err) = tx.try_send(job) {
        error!(
            channel = "discord",
            discord_message_id = %id,
            discord_channel_id = %channel_id,
            error = %err,
            "Inbound Discord message LOST: the inbound queue is full or closed"
        );
    }
}

#[async_trait]
impl ChannelAdapter for DiscordAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Discord
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            max_message_len: 2000,
            edit: true,
            threads: true,
            typing: true,
            media: true,
        }
    }

    async fn verify(&self) -> Result<BotIdentity, ChannelError> {
        let me = self.rest.me().await?;
        Ok(BotIdentity {
            id: me.id,
            name: me.username,
        })
    }

    async fn start(&self, cancel: CancellationToken) -> Result<(), ChannelError> {
        let run = cancel.child_token();
        *lock(&self.running) = Some(run.clone());
        let span = info_span!("discord", channel = "discord", account = %self.ctx.account_id);
        let result = async {
            let base = self.gateway_base().await?;
            let tx = self.worker();
            let on_dispatch =
                move |event: &str, d: Value, bot_id: &str| enqueue(&tx, event, d, bot_id);
            let gateway = Gateway {
                token: &self.token,
                intents: self.intents,
                timing: &self.timing,
                session: &self.session,
                on_dispatch: &on_dispatch,
            };
            gateway.run(&base, &run).await
        }
        .instrument(span)
        .await;
        *lock(&self.running) = None;
        result
    }

    async fn stop(&self) -> Result<(), ChannelError> {
        if let Some(run) = lock(&self.running).take() {
            run.cancel();
        }
        Ok(())
    }

    fn messages(&self) -> Result<mpsc::Receiver<InboundEnvelope>, ChannelError> {
        self.inbound.take()
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SentMessage, ChannelError> {
        let channel = payload::target_channel(&message.chat);
        let mut files = Vec::with_capacity(message.attachments.len());
        for (i, attachment) in message.attachments.iter().enumerate() {
            files.push(Upload {
                filename: attachment
                    .filename
                    .clone()
                    .unwrap_or_else(|| format!("file{i}")),
                content_type: attachment.content_type.clone(),
                bytes: self.ctx.media.get(attachment).await?,
            });
        }
        let names: Vec<String> = files.iter().map(|f| f.filename.clone()).collect();
        let body = payload::create_body(message, &names);
        let created = self.rest.create_message(channel, &body, &files).await?;
        Ok(SentMessage {
            chat: message.chat.clone(),
            platform_message_id: created.id,
        })
    }

    async fn edit(&self, sent: &SentMessage, text: &str) -> Result<(), ChannelError> {
        let channel = payload::target_channel(&sent.chat);
        self.rest
            .edit_message(
                channel,
                &sent.platform_message_id,
                &payload::edit_body(text),
            )
            .await
            .map(|_| ())
    }

    async fn typing(&self, chat: &ChatRef) -> Result<(), ChannelError> {
        self.rest.typing(payload::target_channel(chat)).await
    }
}
