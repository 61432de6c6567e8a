//! [`TelegramAdapter`]: the [`ChannelAdapter`] seam over the Bot API. Receiving is in
//! `polling` and `webhook`; this module builds the adapter, hands updates to the router, and
//! sends, edits and shows typing.

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use nexus_core::{
    BotIdentity, ChannelAdapter, ChannelCapabilities, ChannelError, ChannelKind, ChatRef,
    InboundEnvelope, OutboundMessage, SentMessage, WebhookRequest, WebhookResponse,
};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use super::client::{CallError, Client};
use super::config::{TelegramConfig, TelegramMode};
use super::files::{self, Target};
use super::inbound::{Bot, Disposition, map_update};
use super::payload::{SentId, Update, User};
use super::render::plain_fallback;
use crate::context::{ChannelContext, Inbound, acknowledged};

/// A Telegram bot: receives by long polling or webhook, sends HTML messages.
#[derive(Debug)]
pub struct TelegramAdapter {
    pub(super) client: Client,
    pub(super) mode: TelegramMode,
    pub(super) ctx: ChannelContext,
    inbound: Inbound,
    /// Who the bot is (from `getMe`), for mentions and dropping its own messages.
    bot: Mutex<Option<Bot>>,
    /// Cancelled by [`ChannelAdapter::stop`].
    stopped: CancellationToken,
}

/// Whether Telegram may consider an update handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Receipt {
    /// Acknowledge it (committed, duplicate, rejected or ignored).
    Acknowledge,
    /// Do not acknowledge: Telegram must deliver it again.
    Redeliver,
}

/// `fut`, or `None` once `cancel` fires.
pub(super) async fn cancellable<F: Future>(
    cancel: &CancellationToken,
    fut: F,
) -> Option<F::Output> {
    tokio::select! {
        biased;
        () = cancel.cancelled() => None,
        out = fut => Some(out),
    }
}

/// A `chat_id` parameter: the number when the id is one, else the string (`@channel`).
fn chat_param(chat_id: &str) -> Value {
    chat_id
        .parse::<i64>()
        .map_or_else(|_| json!(chat_id), |id| json!(id))
}

/// A Telegram id given as a string (thread, message).
fn id_param(what: &str, id: &str) -> Result<i64, ChannelError> {
    id.parse().map_err(|_| ChannelError::Rejected {
        message: format!("{what} {id:?} is not a Telegram id"),
    })
}

fn thread_param(chat: &ChatRef) -> Result<Option<i64>, ChannelError> {
    chat.thread_id
        .as_deref()
        .map(|t| id_param("thread", t))
        .transpose()
}

impl TelegramAdapter {
    /// An adapter for `config`, receiving for `ctx.account_id`. Fails with `Fatal` when the
    /// configuration cannot work (empty token, bad base URL, bad webhook secret).
    pub fn new(config: TelegramConfig, ctx: ChannelContext) -> Result<Self, ChannelError> {
        config.validate()?;
        let client = Client::new(
            ctx.http.clone(),
            config.api_base,
            config.token,
            ctx.limits.max_body_bytes,
            ctx.limits.max_rate_limit_wait,
        );
        Ok(TelegramAdapter {
            client,
            mode: config.mode,
            inbound: Inbound::new(ctx.limits.ack_timeout),
            ctx,
            bot: Mutex::new(None),
            stopped: CancellationToken::new(),
        })
    }

    /// Asks Telegram who the bot is and remembers it.
    pub(super) async fn refresh_bot(&self) -> Result<Bot, ChannelError> {
        let me: User = self.client.call("getMe", &json!({})).await?;
        let bot = Bot {
            id: me.id,
            username: me.username.unwrap_or_default(),
        };
        *self.bot.lock().unwrap_or_else(PoisonError::into_inner) = Some(bot.clone());
        Ok(bot)
    }

    async fn bot(&self) -> Result<Bot, ChannelError> {
        let cached = self
            .bot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        match cached {
            Some(bot) => Ok(bot),
            None => self.refresh_bot().await,
        }
    }

    /// Maps one raw update, downloads its files and hands it to the router.
    pub(super) async fn receive(&self, raw: Value) -> Receipt {
        let update: Update = match serde_json::from_value(raw) {
            Ok(u) => u,
            Err(err) => {
                // The same bytes would fail again: acknowledge rather than block the queue.
                warn!(error = %err, "Telegram update has an unexpected shape; dropped");
                return Receipt::Acknowledge;
            }
        };
        let bot = match self.bot().await {
            Ok(bot) => bot,
            Err(err) => {
                warn!(error = %err, "Cannot learn the bot's identity; update left for redelivery");
                return Receipt::Redeliver;
            }
        };
        let (mut message, files) = match map_update(&update, &bot, self.ctx.account_id) {
            Disposition::Deliver { message, files } => (message, files),
            Disposition::Ignore(why) => {
                debug!(update_id = update.update_id, why, "Telegram update ignored");
                return Receipt::Acknowledge;
            }
        };
        match files::fetch(&self.client, &self.ctx, &files).await {
            Ok((attachments, skipped)) => {
                message.attachments = attachments;
                if !skipped.is_empty() {
                    message
                        .metadata
                        .insert("skipped_attachments".into(), Value::Array(skipped));
                }
            }
            Err(err) => {
                warn!(update_id = update.update_id, error = %err, "Cannot fetch a Telegram file; update left for redelivery");
                return Receipt::Redeliver;
            }
        }
        let outcome = self.inbound.deliver(*message).await;
        if acknowledged(&outcome) {
            Receipt::Acknowledge
        } else {
            warn!(
                update_id = update.update_id,
                ?outcome,
                "Router did not take a Telegram update; left for redelivery"
            );
            Receipt::Redeliver
        }
    }

    /// Sends or edits `text` as HTML; when Telegram refuses the entities, sends it again as
    /// plain text. `params` holds everything but `text` and `parse_mode`.
    async fn call_html<T: serde::de::DeserializeOwned>(
        &self,
        method: &str,
        mut params: Value,
        text: &str,
    ) -> Result<T, CallError> {
        params["text"] = json!(text);
        params["parse_mode"] = json!("HTML");
        match self.client.call(method, &params).await {
            Err(CallError::EntitiesRejected { description }) => {
                warn!(
                    method,
                    description, "Telegram refused the HTML; sending plain text"
                );
                params["text"] = json!(plain_fallback(text));
                if let Some(obj) = params.as_object_mut() {
                    obj.remove("parse_mode");
                }
                self.client.call(method, &params).await
            }
            other => other,
        }
    }
}

#[async_trait]
impl ChannelAdapter for TelegramAdapter {
    fn kind(&self) -> ChannelKind {
        ChannelKind::Telegram
    }

    fn capabilities(&self) -> ChannelCapabilities {
        ChannelCapabilities {
            max_message_len: 4096,
            edit: true,
            threads: true,
            typing: true,
            media: true,
        }
    }

    async fn verify(&self) -> Result<BotIdentity, ChannelError> {
        let bot = self.refresh_bot().await?;
        Ok(BotIdentity {
            id: bot.id.to_string(),
            name: bot.username,
        })
    }

    async fn start(&self, cancel: CancellationToken) -> Result<(), ChannelError> {
        if self.stopped.is_cancelled() {
            return Err(ChannelError::NotRunning {
                message: "the Telegram adapter was stopped".to_owned(),
            });
        }
        let run = async {
            match &self.mode {
                TelegramMode::Polling { timeout } => self.poll(&cancel, *timeout).await,
                TelegramMode::Webhook { url, secret } => {
                    self.register_webhook(&cancel, url, secret).await
                }
            }
        };
        cancellable(&self.stopped, run).await.unwrap_or(Ok(()))
    }

    async fn stop(&self) -> Result<(), ChannelError> {
        self.stopped.cancel();
        Ok(())
    }

    fn messages(&self) -> Result<mpsc::Receiver<InboundEnvelope>, ChannelError> {
        self.inbound.take()
    }

    async fn send(&self, message: &OutboundMessage) -> Result<SentMessage, ChannelError> {
        let chat_id = chat_param(&message.chat.chat_id);
        let thread_id = thread_param(&message.chat)?;
        let reply_to = message
            .reply_to
            .as_deref()
            .map(|r| id_param("message", r))
            .transpose()?;
        let mut first = None;
        if !message.text.trim().is_empty() {
            let mut params =
                json!({"chat_id": chat_id, "link_preview_options": {"is_disabled": true}});
            if let Some(t) = thread_id {
                params["message_thread_id"] = json!(t);
            }
            if let Some(r) = reply_to {
                params["reply_parameters"] =
                    json!({"message_id": r, "allow_sending_without_reply": true});
            }
            let sent: SentId = self.call_html("sendMessage", params, &message.text).await?;
            first = Some(sent.message_id);
        }
        for attachment in &message.attachments {
            let target = Target {
                chat_id: &chat_id,
                thread_id,
                reply_to: if first.is_none() { reply_to } else { None },
            };
            // Text already visible is not sent again: a failed file fails the whole send,
            // and the error says which part.
            let id = files::upload(&self.client, &self.ctx, target, attachment)
                .await
                .map_err(|err| match (first, err) {
                    (Some(_), ChannelError::Rejected { message }) => ChannelError::Rejected {
                        message: format!("text sent, but an attachment failed: {message}"),
                    },
                    (Some(_), ChannelError::Transport { message }) => ChannelError::Transport {
                        message: format!("text sent, but an attachment failed: {message}"),
                    },
                    (_, err) => err,
                })?;
            first.get_or_insert(id);
        }
        let id = first.ok_or_else(|| ChannelError::Rejected {
            message: "nothing to send: no text and no attachments".to_owned(),
        })?;
        Ok(SentMessage {
            chat: message.chat.clone(),
            platform_message_id: id.to_string(),
        })
    }

    async fn edit(&self, sent: &SentMessage, text: &str) -> Result<(), ChannelError> {
        let params = json!({
            "chat_id": chat_param(&sent.chat.chat_id),
            "message_id": id_param("message", &sent.platform_message_id)?,
            "link_preview_options": {"is_disabled": true},
        });
        match self
            .call_html::<Value>("editMessageText", params, text)
            .await
        {
            Ok(_) | Err(CallError::NotModified) => Ok(()),
            Err(err) => Err(err.into()),
        }
    }

    async fn typing(&self, chat: &ChatRef) -> Result<(), ChannelError> {
        let mut params = json!({"chat_id": chat_param(&chat.chat_id), "action": "typing"});
        if let Some(t) = thread_param(chat)? {
            params["message_thread_id"] = json!(t);
        }
        let _: bool = self.client.call("sendChatAction", &params).await?;
        Ok(())
    }

    async fn webhook(&self, request: WebhookRequest) -> Result<WebhookResponse, ChannelError> {
        self.handle_webhook(request).await
    }
}
