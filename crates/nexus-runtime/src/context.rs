//! Building the model's view of a session: stored messages → provider-neutral chat messages.
//!
//! Owns the ordering rule for a turn's context and the repair of a history window that was cut
//! in the middle of a tool exchange. Must never call a provider or the store.

use std::borrow::Borrow;

use nexus_core::{ChatMessage, ChatRole, ContentBlock, Message, Role};

/// Orders the history for the turn answering `current` (a user message with `current.seq`).
///
/// Messages are committed in seq order, but a user message that waited in the inbox while an
/// earlier turn ran has a smaller seq than that turn's answer. The model must see the earlier
/// exchange first and the message being answered last; user messages queued after `current` are
/// not part of this turn.
pub(crate) fn order_for_turn(history: Vec<Message>, current: &Message) -> Vec<Message> {
    let mut ordered: Vec<Message> = history
        .into_iter()
        .filter(|m| m.id != current.id)
        .filter(|m| m.seq < current.seq || m.role != Role::User)
        .collect();
    ordered.push(current.clone());
    ordered
}

/// Whether `message` starts an exchange: a user message that is not tool results.
fn starts_exchange(message: &ChatMessage) -> bool {
    message.role == ChatRole::User
        && !message
            .content
            .iter()
            .any(|b| matches!(b, ContentBlock::ToolResult { .. }))
}

/// Drops the oldest exchanges of `conversation` (a user message and everything up to the next
/// one, so no tool call loses its result) until `fits` says it fits, keeping at least the last
/// exchange. Returns how many messages were dropped.
pub(crate) fn trim_to_fit(
    conversation: &mut Vec<ChatMessage>,
    fits: impl Fn(&[ChatMessage]) -> bool,
) -> usize {
    let mut dropped = 0;
    while !fits(conversation) {
        let next = conversation
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, m)| starts_exchange(m))
            .map(|(i, _)| i);
        let Some(next) = next else { break };
        conversation.drain(..next);
        dropped += next;
    }
    dropped
}

/// Converts stored messages into chat messages for a provider.
///
/// Consecutive tool results become one user-side message of `ToolResult` blocks. Tool results
/// whose call is not in the window, and assistant tool calls whose results are not, are dropped
/// so the provider never sees an unanswered or orphaned call.
pub(crate) fn to_chat<M: Borrow<Message>>(messages: &[M]) -> Vec<ChatMessage> {
    let mut out: Vec<ChatMessage> = Vec::with_capacity(messages.len());
    let mut i = 0;
    while i < messages.len() {
        let msg = messages[i].borrow();
        match msg.role {
            Role::User => {
                out.push(ChatMessage::text(ChatRole::User, msg.content.clone()));
                i += 1;
            }
            Role::System => {
                // System notes in history are shown to the model as user-side context.
                out.push(ChatMessage::text(ChatRole::User, msg.content.clone()));
                i += 1;
            }
            Role::Assistant if msg.tool_calls.is_empty() => {
                out.push(ChatMessage::text(ChatRole::Assistant, msg.content.clone()));
                i += 1;
            }
            Role::Assistant => {
                // Gather the tool results that follow; keep the exchange only if complete.
                let mut j = i + 1;
                let mut results = Vec::new();
                while j < messages.len() && messages[j].borrow().role == Role::Tool {
                    results.push(messages[j].borrow());
                    j += 1;
                }
                let answered = msg.tool_calls.iter().all(|call| {
                    results
                        .iter()
                        .any(|r| r.tool_call_id.as_deref() == Some(call.id.as_str()))
                });
                if answered {
                    let mut content = Vec::with_capacity(msg.tool_calls.len() + 1);
                    if !msg.content.is_empty() {
                        content.push(ContentBlock::Text {
                            text: msg.content.clone(),
                        });
                    }
                    content.extend(msg.tool_calls.iter().map(|call| ContentBlock::ToolUse {
                        id: call.id.clone(),
                        name: call.name.clone(),
                        input: call.arguments.clone(),
                    }));
                    out.push(ChatMessage {
                        role: ChatRole::Assistant,
                        content,
                    });
                    out.push(ChatMessage {
                        role: ChatRole::User,
                        content: results
                            .iter()
                            .filter(|r| {
                                msg.tool_calls
                                    .iter()
                                    .any(|c| r.tool_call_id.as_deref() == Some(c.id.as_str()))
                            })
                            .map(|r| ContentBlock::ToolResult {
                                tool_use_id: r.tool_call_id.clone().unwrap_or_default(),
                                content: r.content.clone(),
                                is_error: r.is_error,
                            })
                            .collect(),
                    });
                } else if !msg.content.is_empty() {
                    out.push(ChatMessage::text(ChatRole::Assistant, msg.content.clone()));
                }
                i = j;
            }
            // A tool result without its call in the window (cut off by the window start).
            Role::Tool => i += 1,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use nexus_core::{ChannelKind, Direction, SessionId, ToolCall};
    use serde_json::json;

    fn msg(session: SessionId, seq: i64, role: Role, text: &str) -> Message {
        let dir = if role == Role::User {
            Direction::Inbound
        } else {
            Direction::Outbound
        };
        let mut m = Message::new(session, ChannelKind::Grpc, dir, role, text);
        m.seq = seq;
        m
    }

    #[test]
    fn trimming_drops_whole_oldest_exchanges_and_keeps_the_last() {
        let user = |t: &str| ChatMessage::text(ChatRole::User, t);
        let assistant = |t: &str| ChatMessage::text(ChatRole::Assistant, t);
        let call = ChatMessage {
            role: ChatRole::Assistant,
            content: vec![ContentBlock::ToolUse {
                id: "c1".into(),
                name: "add".into(),
                input: json!({}),
            }],
        };
        let result = ChatMessage {
            role: ChatRole::User,
            content: vec![ContentBlock::ToolResult {
                tool_use_id: "c1".into(),
                content: "2".into(),
                is_error: false,
            }],
        };
        let full = vec![
            user("one"),
            call,
            result,
            assistant("it is 2"),
            user("two"),
            assistant("ok"),
            user("three"),
        ];
        // Fits once at most three messages remain.
        let mut conversation = full.clone();
        let dropped = trim_to_fit(&mut conversation, |c| c.len() <= 3);
        assert_eq!(dropped, 4, "the tool exchange goes as a whole");
        assert_eq!(conversation, full[4..]);
        // Never fits: the last exchange stays.
        let mut conversation = full.clone();
        trim_to_fit(&mut conversation, |_| false);
        assert_eq!(conversation, full[6..]);
        // Already fits: untouched.
        let mut conversation = full.clone();
        assert_eq!(trim_to_fit(&mut conversation, |_| true), 0);
        assert_eq!(conversation, full);
    }

    #[test]
    fn queued_message_is_answered_after_the_earlier_exchange() {
        let s = SessionId::new();
        let a = msg(s, 1, Role::User, "first");
        let b = msg(s, 2, Role::User, "second");
        let c = msg(s, 3, Role::User, "third, still queued");
        let answer_a = msg(s, 4, Role::Assistant, "answer to first");
        let ordered = order_for_turn(vec![a, b.clone(), c, answer_a], &b);
        let texts: Vec<_> = ordered.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["first", "answer to first", "second"]);
    }

    #[test]
    fn tool_exchange_becomes_tool_use_and_tool_result_blocks() {
        let s = SessionId::new();
        let user = msg(s, 1, Role::User, "weather?");
        let mut call = msg(s, 2, Role::Assistant, "");
        call.tool_calls = vec![ToolCall {
            id: "call_1".into(),
            name: "weather".into(),
            arguments: json!({"city": "Paris"}),
        }];
        let mut result = msg(s, 3, Role::Tool, "sunny");
        result.tool_call_id = Some("call_1".into());
        let answer = msg(s, 4, Role::Assistant, "It is sunny.");
        let chat = to_chat(&[user, call, result, answer]);
        assert_eq!(chat.len(), 4);
        assert!(
            matches!(chat[1].content[0], ContentBlock::ToolUse { ref id, .. } if id == "call_1")
        );
        assert!(
            matches!(chat[2].content[0], ContentBlock::ToolResult { ref tool_use_id, ref content, .. } if tool_use_id == "call_1" && content == "sunny")
        );
    }

    #[test]
    fn window_cut_inside_a_tool_exchange_drops_the_orphans() {
        let s = SessionId::new();
        let mut orphan_result = msg(s, 5, Role::Tool, "old output");
        orphan_result.tool_call_id = Some("call_old".into());
        let mut unanswered = msg(s, 6, Role::Assistant, "let me check");
        unanswered.tool_calls = vec![ToolCall {
            id: "call_new".into(),
            name: "weather".into(),
            arguments: json!({}),
        }];
        let user = msg(s, 7, Role::User, "hello");
        let chat = to_chat(&[orphan_result, unanswered, user]);
        assert_eq!(chat.len(), 2);
        assert_eq!(
            chat[0],
            ChatMessage::text(ChatRole::Assistant, "let me check")
        );
        assert_eq!(chat[1], ChatMessage::text(ChatRole::User, "hello"));
    }
}
