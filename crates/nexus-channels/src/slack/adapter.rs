//! [`SlackAdapter`]: the `ChannelAdapter` for Slack.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use nexus_core::{
    BotIdentity, ChannelAdapter, ChannelCapabilities, ChannelError, ChannelKind, ChatRef,
    InboundEnvelope, OutboundMessage, SentMessage, WebhookRequest, WebhookResponse,
};
use secrecy::ExposeSecret;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::config::{SlackConfig, SlackMode};
use super::dispatch::Dispatch;
use super::events;
use super::socket::SocketMode;
use crate::context::ChannelContext;

/// The prefix of app-level tokens, which Socket Mode needs.
const APP_TOKEN_PREFIX: &str = "xapp-";

/// A Slack bot over Socket Mode or the Events API.
#[derive(Debug)]
pub struct SlackAdapter {
    mode: SlackMode,
    client: Arc<Client>,
    dispatch: Arc<Dispatch>,
    /// The token of the running `start`, cancelled by `stop`.
    running: Mutex<Option<CancellationToken>>,
}

impl SlackAdapter {
    /// An adapter for `config`, running with `ctx`. `Fatal` for an API base that cannot be a
    /// base URL or an empty token.
    pub fn new(config: SlackConfig, ctx: ChannelContext) -> Result<SlackAdapter, ChannelError> {
        let fatal = |message: &str| ChannelError::Fatal {
            message: message.to_owned(),
        };
        let mut base = config.api_base;
        if base.cannot_be_a_base() || !matches!(base.scheme(), "http" | "https") {
            return Err(fatal("the Slack API base must be an http(s) URL"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        if config.bot_token.expose_secret().trim().is_empty() {
            return Err(fatal("the Slack bot token is empty"));
        }
        let client = Arc::new(Client::new(
            ctx.http.clone(),
            base,
            config.bot_token,
            ctx.limits,
        ));
        Ok(SlackAdapter {
            mode: config.mode,
            dispatch: Arc::new(Dispatch::new(ctx, Arc::clone(&client))),
            client,
            running: Mutex::new(None),
        })
    }

    fn running(&self) -> std::sync::MutexGuard<'_, Option<CancellationToken>> {
        self.running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A reply's text with a line naming each attachment (files are not uploaded).
fn with_attachment_lines(message: &OutboundMessage) -> String {
    let mut text = message.text.clone();
    for attachment in &message.attachments {
        let name = attachment.filename.as_deref().unwrap_or("file");
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("(attachment not sent: {name})"));
    }
    text
}

#[async_trait]
impl ChannelAdapter for SlackAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Slack
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            max_message_len: 4000,
            edit: true,
            threads: true,
            typing: false,
            media: true,
        }
    }

    /// `auth.test` with the bot token; in Socket Mode the app token must look like one
    /// (`xapp-…`): whether Slack accepts it shows when `start` opens a connection.
    async fn verify(&self) -> Result<BotIdentity, ChannelError> {
        if let SlackMode::Socket { app_token } = &self.mode
            && !app_token.expose_secret().starts_with(APP_TOKEN_PREFIX)
        {
            return Err(ChannelError::Auth {
                message: "Socket Mode needs an app-level token (xapp-…), from the app's Basic Information page".to_owned(),
            });
        }
        let identity = self.client.auth_test().await?;
        let _ = self.dispatch.identity.set(identity.clone());
        Ok(BotIdentity {
            id: identity.user_id,
            name: identity.user,
        })
    }

    async fn start(&self, cancel: CancellationToken) -> Result<(), ChannelError> {
        let run = cancel.child_token();
        *self.running() = Some(run.clone());
        let result = match &self.mode {
            SlackMode::Socket { app_token } => {
                let socket = SocketMode {
                    app_token: app_token.clone(),
                    dispatch: Arc::clone(&self.dispatch),
                };
                socket.run(run.clone()).await
            }
            // Slack POSTs to the webhook; nothing to connect. The identity is learnt first so
            // that a wrong token fails here, not on the first event.
            SlackMode::Events { .. } => match self.dispatch.identity().await {
                Ok(_) => {
                    run.cancelled().await;
                    Ok(())
                }
                Err(err) => Err(err),
            },
        };
        *self.running() = None;
        result
    }

    async fn stop(&self) -> Result<(), ChannelError> {
        if let Some(run) = self.running().take() {
            run.cancel();
        }
        Ok(())
    }

    fn messages(&self) -> Result<mpsc::Receiver<InboundEnvelope>, ChannelError> {
        self.dispatch.inbound.take()
    }

    /// `chat.postMessage` in the chat's thread (or under `reply_to` when the chat has none).
    async fn send(&self, message: &OutboundMessage) -> Result<SentMessage, ChannelError> {
        let channel = &message.chat.chat_id;
        let thread_ts = message
            .chat
            .thread_id
            .clone()
            .or_else(|| message.reply_to.clone());
        let text = with_attachment_lines(message);
        let ts = self
            .client
            .post_message(channel, &text, thread_ts.as_deref())
            .await?;
        let threads = &self.dispatch.threads;
        threads.remember(channel, thread_ts.as_deref().unwrap_or(&ts));
        Ok(SentMessage {
            chat: ChatRef {
                chat_id: channel.clone(),
                thread_id: thread_ts,
            },
            platform_message_id: ts,
        })
    }

    async fn edit(&self, sent: &SentMessage, text: &str) -> Result<(), ChannelError> {
        self.client
            .update(&sent.chat.chat_id, &sent.platform_message_id, text)
            .await
    }

    async fn typing(&self, _chat: &ChatRef) -> Result<(), ChannelError> {
        Err(ChannelError::Unsupported {
            what: "typing indicators for Slack bots".to_owned(),
        })
    }

    async fn webhook(&self, request: WebhookRequest) -> Result<WebhookResponse, ChannelError> {
        match &self.mode {
            SlackMode::Events { signing_secret } => {
                Ok(events::handle(&self.dispatch, signing_secret, request).await)
            }
            SlackMode::Socket { .. } => Err(ChannelError::Unsupported {
                what: "webhooks on a Slack channel in Socket Mode".to_owned(),
            }),
        }
    }
}
