//! Domain types → wire types of `nexus.v1`.

use chrono::{DateTime, SecondsFormat, Utc};
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{Agent, ApiKey, Attachment, Message, Session, TurnEvent, User};
use nexus_store::blob::LinkSigner;

use crate::pb;
use crate::pb::chat_event::Event;

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn opt_time(t: Option<DateTime<Utc>>) -> String {
    t.map(time).unwrap_or_default()
}

pub(crate) fn agent(a: &Agent) -> pb::Agent {
    pb::Agent {
        id: a.id.to_string(),
        owner_id: a.owner_id.to_string(),
        name: a.name.clone(),
        description: a.description.clone(),
        system_prompt: a.system_prompt.clone(),
        model: a.model.clone(),
        fallback_models: a.fallback_models.clone(),
        tools: a.tools.clone(),
        tool_policy: Some(pb::ToolPolicy {
            network: a.tool_policy.network,
        }),
        max_steps: a.max_steps,
        max_output_tokens: a.max_output_tokens,
        temperature: a.temperature,
        created_at: time(a.created_at),
        updated_at: time(a.updated_at),
    }
}

pub(crate) fn session(s: &Session) -> pb::Session {
    pb::Session {
        id: s.id.to_string(),
        user_id: s.user_id.to_string(),
        agent_id: s.agent_id.to_string(),
        channel: s.channel.to_string(),
        scope: s.scope.clone(),
        title: s.title.clone(),
        created_at: time(s.created_at),
        updated_at: time(s.updated_at),
    }
}

/// Makes time-limited download links of stored files on the HTTP API.
#[derive(Debug, Clone)]
pub struct DownloadLinks {
    /// Signs the links.
    pub signer: Arc<LinkSigner>,
    /// The HTTP API's public base URL.
    pub public_url: url::Url,
    /// How long a link works.
    pub ttl: Duration,
}

impl DownloadLinks {
    /// The wire form of an attachment, with a download link.
    pub(crate) fn attachment(&self, a: &Attachment) -> pb::Attachment {
        let ttl = chrono::TimeDelta::from_std(self.ttl).unwrap_or(chrono::TimeDelta::hours(1));
        let link = self.signer.sign_for(&a.storage_key, ttl);
        let base = self.public_url.as_str().trim_end_matches('/');
        pb::Attachment {
            id: a.id.to_string(),
            content_type: a.content_type.clone(),
            filename: a.filename.clone().unwrap_or_default(),
            size: a.size,
            url: format!("{base}{}", link.path_and_query()),
        }
    }
}

pub(crate) fn message(m: &Message, links: &DownloadLinks) -> pb::Message {
    pb::Message {
        id: m.id.to_string(),
        seq: m.seq,
        role: m.role.as_str().to_owned(),
        direction: m.direction.as_str().to_owned(),
        channel: m.channel.to_string(),
        content: m.content.clone(),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| pb::ToolCall {
                id: c.id.clone(),
                name: c.name.clone(),
                arguments_json: c.arguments.to_string(),
            })
            .collect(),
        tool_call_id: m.tool_call_id.clone().unwrap_or_default(),
        is_error: m.is_error,
        created_at: time(m.created_at),
        attachments: m.attachments.iter().map(|a| links.attachment(a)).collect(),
    }
}

pub(crate) fn user(u: &User) -> pb::User {
    pb::User {
        id: u.id.to_string(),
        name: u.name.clone(),
        role: u.role.to_string(),
        created_at: time(u.created_at),
    }
}

pub(crate) fn api_key(k: &ApiKey) -> pb::ApiKey {
    pb::ApiKey {
        id: k.id.to_string(),
        user_id: k.user_id.to_string(),
        name: k.name.clone(),
        prefix: k.prefix.clone(),
        created_at: time(k.created_at),
        last_used_at: opt_time(k.last_used_at),
        revoked_at: opt_time(k.revoked_at),
    }
}

/// The wire form of a turn event; `None` for events the API does not expose.
pub(crate) fn event(e: TurnEvent, links: &DownloadLinks) -> Option<pb::ChatEvent> {
    let event = match e {
        TurnEvent::Started {
            turn_id,
            session_id,
            message_id,
        } => Event::Started(pb::TurnStarted {
            turn_id: turn_id.to_string(),
            session_id: session_id.to_string(),
            message_id: message_id.to_string(),
        }),
        TurnEvent::TextDelta { text } => Event::TextDelta(pb::TextDelta { text }),
        TurnEvent::ToolCallStarted {
            call_id,
            name,
            arguments,
        } => Event::ToolCallStarted(pb::ToolCallStarted {
            call_id,
            name,
            arguments_json: arguments.to_string(),
        }),
        TurnEvent::ToolCallFinished {
            call_id,
            name,
            output,
            is_error,
            duration_ms,
            attachments,
        } => Event::ToolCallFinished(pb::ToolCallFinished {
            call_id,
            name,
            output,
            is_error,
            duration_ms,
            attachments: attachments.iter().map(|a| links.attachment(a)).collect(),
        }),
        TurnEvent::Usage { model, usage } => Event::Usage(pb::Usage {
            model,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cache_read_tokens: usage.cache_read_tokens,
            cache_write_tokens: usage.cache_write_tokens,
        }),
        TurnEvent::Failover { from, to, reason } => {
            Event::Failover(pb::Failover { from, to, reason })
        }
        TurnEvent::Error { kind, message } => Event::Error(pb::Error {
            kind: kind.as_str().to_owned(),
            message,
        }),
        TurnEvent::Done {
            turn_id,
            session_id,
            message_id,
        } => Event::Done(pb::Done {
            turn_id: turn_id.to_string(),
            session_id: session_id.to_string(),
            message_id: message_id.to_string(),
        }),
        _ => return None,
    };
    Some(pb::ChatEvent { event: Some(event) })
}
