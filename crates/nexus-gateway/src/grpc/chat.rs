//! `Chat`: commit the message, then stream its turn's events until `done` or `error`.

use std::sync::Arc;

use chrono::Utc;
use futures::StreamExt;
use nexus_core::{ChannelKind, Metadata, Session, SessionId};
use nexus_runtime::Submission;
use nexus_security::Principal;
use nexus_store::DedupeKey;
use tracing::info;

use super::{ChatStream, GatewayService, convert};
use crate::error::ApiError;
use crate::pb;
use crate::validate;

impl GatewayService {
    pub(crate) async fn chat_stream(
        &self,
        principal: Principal,
        request: pb::ChatRequest,
    ) -> Result<ChatStream, ApiError> {
        if !principal.can_write() {
            return Err(ApiError::PermissionDenied(
                "viewers cannot chat; ask an admin for a user key".to_owned(),
            ));
        }
        validate::chat_text(&request.text, self.settings.max_message_bytes)?;
        if request.client_message_id.len() > validate::MAX_CLIENT_MESSAGE_ID {
            return Err(ApiError::invalid(format!(
                "client_message_id is longer than {} bytes",
                validate::MAX_CLIENT_MESSAGE_ID
            )));
        }
        let agent = self.resolve_agent(&principal, &request.agent).await?;
        let session = if request.session_id.trim().is_empty() {
            let id = SessionId::new();
            let now = Utc::now();
            let session = Session {
                id,
                user_id: principal.user_id,
                agent_id: agent.id,
                channel: ChannelKind::Grpc,
                scope: id.to_string(),
                title: validate::title(&request.text, 60),
                created_at: now,
                updated_at: now,
            };
            self.store.create_session(&session).await?;
            info!(session_id = %id, agent = %agent.name, "Session started");
            session
        } else {
            let session = self
                .resolve_session(&principal, request.session_id.trim(), false)
                .await?;
            if session.agent_id != agent.id {
                return Err(ApiError::invalid(format!(
                    "session {} belongs to another agent than `{}`",
                    session.id, request.agent
                )));
            }
            session
        };
        let dedupe = (!request.client_message_id.is_empty()).then(|| DedupeKey {
            channel: ChannelKind::Grpc,
            account: principal.user_id.to_string(),
            external_id: request.client_message_id.clone(),
        });
        let handle = self
            .runtime
            .submit(Submission {
                session,
                text: request.text,
                attachments: Vec::new(),
                metadata: Metadata::new(),
                dedupe,
            })
            .await?;
        let settings = Arc::clone(&self.settings);
        let events = futures::stream::unfold(
            (handle.events, false, settings),
            |(mut rx, finished, settings)| async move {
                if finished {
                    return None;
                }
                let event = rx.recv().await?;
                let terminal = event.is_terminal();
                Some((
                    convert::event(event, &settings.links),
                    (rx, terminal, settings),
                ))
            },
        )
        .filter_map(|e| async move { e.map(Ok) });
        Ok(Box::pin(events))
    }
}
