//! One gateway connection: HELLO, IDENTIFY or RESUME, heartbeats, dispatches pumped from the
//! session's log, the client-side limits (4096-byte frames, 120 frames per 60 s), and faults.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::model::{Cmd, Session, user_json};
use super::{ClientFrame, GatewayFault, Shared};
use crate::journal::lock;

/// Largest client frame Discord accepts.
const MAX_CLIENT_FRAME: usize = 4096;
/// Client frames allowed per [`FRAME_WINDOW`].
const MAX_CLIENT_FRAMES: usize = 120;
const FRAME_WINDOW: Duration = Duration::from_secs(60);
/// Every intent bit Discord defines (up to DIRECT_MESSAGE_POLLS, 1 << 25).
const KNOWN_INTENTS: u64 = (1 << 26) - 1;
/// The privileged MESSAGE_CONTENT intent.
pub(crate) const MESSAGE_CONTENT: u64 = 1 << 15;

/// What a connection does next.
enum Step {
    Continue,
    Send(Vec<String>),
    Pump,
    Fault(GatewayFault),
    Close(u16, &'static str),
    Drop,
}

/// Per-connection state.
struct Conn {
    id: u64,
    path: String,
    session: Option<String>,
    sent: VecDeque<Instant>,
}

/// Serves one upgraded connection until either side ends it.
pub(crate) async fn serve(mut socket: WebSocket, shared: Arc<Shared>, path: String) {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let id = {
        let mut model = lock(&shared.model);
        let id = model.add_conn(tx.clone());
        for fault in model.pending_faults.drain(..) {
            // The receiver is alive: it is `rx` below.
            let _ = tx.send(Cmd::Fault(fault));
        }
        id
    };
    shared.changed.notify_waiters();
    let mut conn = Conn {
        id,
        path,
        session: None,
        sent: VecDeque::new(),
    };
    let interval = u64::try_from(shared.config.heartbeat_interval.as_millis()).unwrap_or(u64::MAX);
    let hello = json!({"op": 10, "d": {"heartbeat_interval": interval}, "s": null, "t": null});
    let mut shutdown = shared.shutdown.clone();
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        loop {
            let step = tokio::select! {
                _ = shutdown.changed() => Step::Drop,
                incoming = socket.recv() => match incoming {
                    None | Some(Err(_)) => Step::Drop,
                    Some(Ok(Message::Text(text))) => on_text(&shared, &mut conn, text.as_str()),
                    Some(Ok(Message::Binary(_))) => Step::Close(4002, "Error while decoding payload."),
                    Some(Ok(Message::Close(frame))) => {
                        record(&shared, &conn, None, Value::Null, 0, Some(frame.map_or(1005, |f| f.code)));
                        Step::Drop
                    }
                    Some(Ok(_)) => Step::Continue,
                },
                cmd = rx.recv() => match cmd {
                    Some(Cmd::Pump) => Step::Pump,
                    Some(Cmd::Fault(fault)) => Step::Fault(fault),
                    None => Step::Drop,
                },
            };
            let step = match step {
                Step::Fault(fault) => apply(&shared, &conn, fault),
                other => other,
            };
            let ok = match step {
                Step::Continue | Step::Fault(_) => true,
                Step::Send(frames) => send_all(&mut socket, frames).await,
                Step::Pump => pump(&shared, &conn, &mut socket).await,
                Step::Close(code, reason) => {
                    let frame = CloseFrame {
                        code,
                        reason: reason.into(),
                    };
                    // The client may be gone already; the connection ends either way.
                    let _ = socket.send(Message::Close(Some(frame))).await;
                    false
                }
                Step::Drop => false,
            };
            if !ok {
                break;
            }
        }
    }
    lock(&shared.model).remove_conn(id);
    shared.changed.notify_waiters();
}

async fn send_all(socket: &mut WebSocket, frames: Vec<String>) -> bool {
    for frame in frames {
        if socket.send(Message::Text(frame.into())).await.is_err() {
            return false;
        }
    }
    true
}

/// Writes the dispatches of the connection's session not yet written.
async fn pump(shared: &Shared, conn: &Conn, socket: &mut WebSocket) -> bool {
    let frames: Vec<(u64, String)> = {
        let model = lock(&shared.model);
        match conn.session.as_ref().and_then(|id| model.sessions.get(id)) {
            Some(s) if s.conn == Some(conn.id) => s
                .log
                .iter()
                .filter(|(seq, _)| *seq > s.sent_upto)
                .cloned()
                .collect(),
            _ => Vec::new(),
        }
    };
    let Some(last) = frames.last().map(|(seq, _)| *seq) else {
        return true;
    };
    if !send_all(socket, frames.into_iter().map(|(_, f)| f).collect()).await {
        return false;
    }
    if let Some(id) = &conn.session
        && let Some(s) = lock(&shared.model).sessions.get_mut(id)
    {
        s.sent_upto = s.sent_upto.max(last);
    }
    shared.changed.notify_waiters();
    true
}

fn record(
    shared: &Shared,
    conn: &Conn,
    op: Option<u64>,
    d: Value,
    size: usize,
    close_code: Option<u16>,
) {
    lock(&shared.model).record_frame(ClientFrame {
        index: 0,
        conn: conn.id,
        path: conn.path.clone(),
        op,
        d,
        size,
        close_code,
    });
    shared.changed.notify_waiters();
}

fn on_text(shared: &Shared, conn: &mut Conn, text: &str) -> Step {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let op = parsed
        .as_ref()
        .and_then(|v| v.get("op"))
        .and_then(Value::as_u64);
    let d = parsed
        .as_ref()
        .and_then(|v| v.get("d"))
        .cloned()
        .unwrap_or(Value::Null);
    record(shared, conn, op, d.clone(), text.len(), None);
    if parsed.is_none() || text.len() > MAX_CLIENT_FRAME {
        return Step::Close(4002, "Error while decoding payload.");
    }
    let now = Instant::now();
    conn.sent.push_back(now);
    while conn
        .sent
        .front()
        .is_some_and(|t| now.duration_since(*t) > FRAME_WINDOW)
    {
        conn.sent.pop_front();
    }
    if conn.sent.len() > MAX_CLIENT_FRAMES {
        return Step::Close(4008, "Rate limited.");
    }
    match op {
        Some(1) if shared.acks.load(Ordering::SeqCst) => Step::Send(vec![
            json!({"op": 11, "d": null, "s": null, "t": null}).to_string(),
        ]),
        Some(1) => Step::Continue,
        Some(2) => identify(shared, conn, &d),
        Some(6) => resume(shared, conn, &d),
        Some(3 | 4 | 8) if conn.session.is_some() => Step::Continue,
        Some(3 | 4 | 8) => Step::Close(4003, "Not authenticated."),
        _ => Step::Close(4001, "Unknown opcode."),
    }
}

fn identify(shared: &Shared, conn: &mut Conn, d: &Value) -> Step {
    let config = &shared.config;
    if conn.session.is_some() {
        return Step::Close(4005, "Already authenticated.");
    }
    if d.get("token").and_then(Value::as_str) != Some(config.token.as_str()) {
        return Step::Close(4004, "Authentication failed.");
    }
    let Some(intents) = d.get("intents").and_then(Value::as_u64) else {
        return Step::Close(4002, "Error while decoding payload.");
    };
    if intents & !KNOWN_INTENTS != 0 {
        return Step::Close(4013, "Invalid intent(s).");
    }
    if intents & MESSAGE_CONTENT != 0 && !config.message_content_enabled {
        return Step::Close(4014, "Disallowed intent(s).");
    }
    let session_id = hex::encode(rand::rng().random::<[u8; 16]>());
    let mut model = lock(&shared.model);
    model.sessions.insert(
        session_id.clone(),
        Session {
            intents,
            ..Session::default()
        },
    );
    model.current = Some(session_id.clone());
    model.attach(&session_id, conn.id);
    model.identifies += 1;
    conn.session = Some(session_id.clone());
    let ready = json!({
        "v": 10,
        "user": user_json(&config.bot_id, &config.bot_name, true),
        "guilds": [{"id": config.guild_id, "unavailable": true}],
        "session_id": session_id,
        "session_type": "normal",
        "resume_gateway_url": format!("ws://{}/resume", shared.addr),
        "application": {"id": config.bot_id, "flags": 0},
        "private_channels": [],
        "_trace": ["[\"fake-discord\"]"],
    });
    let channels: Vec<Value> = model
        .channels
        .iter()
        .filter(|(_, c)| c.guild_id.as_deref() == Some(config.guild_id.as_str()))
        .map(|(id, c)| match &c.parent_id {
            Some(parent) => {
                json!({"id": id, "type": 11, "parent_id": parent, "guild_id": config.guild_id})
            }
            None => json!({"id": id, "type": 0, "name": format!("channel-{id}")}),
        })
        .collect();
    let guild = json!({"id": config.guild_id, "name": "Fake Guild", "unavailable": false,
        "member_count": 2, "channels": channels, "threads": []});
    model.dispatch_to(&session_id, "READY", ready);
    model.dispatch_to(&session_id, "GUILD_CREATE", guild);
    drop(model);
    shared.changed.notify_waiters();
    Step::Pump
}

fn resume(shared: &Shared, conn: &mut Conn, d: &Value) -> Step {
    if d.get("token").and_then(Value::as_str) != Some(shared.config.token.as_str()) {
        return Step::Close(4004, "Authentication failed.");
    }
    let invalid = || {
        Step::Send(vec![
            json!({"op": 9, "d": false, "s": null, "t": null}).to_string(),
        ])
    };
    let Some(session_id) = d.get("session_id").and_then(Value::as_str) else {
        return invalid();
    };
    let seq = d.get("seq").and_then(Value::as_u64).unwrap_or(0);
    let mut model = lock(&shared.model);
    let Some(session) = model.sessions.get_mut(session_id) else {
        return invalid();
    };
    if seq > session.seq {
        return Step::Close(4007, "Invalid seq.");
    }
    session.sent_upto = seq;
    model.current = Some(session_id.to_owned());
    model.attach(session_id, conn.id);
    model.resumes += 1;
    conn.session = Some(session_id.to_owned());
    model.dispatch_to(
        session_id,
        "RESUMED",
        json!({"_trace": ["[\"fake-discord\"]"]}),
    );
    drop(model);
    shared.changed.notify_waiters();
    Step::Pump
}

fn apply(shared: &Shared, conn: &Conn, fault: GatewayFault) -> Step {
    match fault {
        GatewayFault::RequestHeartbeat => Step::Send(vec![
            json!({"op": 1, "d": null, "s": null, "t": null}).to_string(),
        ]),
        GatewayFault::Reconnect => Step::Send(vec![
            json!({"op": 7, "d": null, "s": null, "t": null}).to_string(),
        ]),
        GatewayFault::InvalidSession { resumable } => {
            if !resumable && let Some(id) = &conn.session {
                let mut model = lock(&shared.model);
                model.sessions.remove(id);
                if model.current.as_ref() == Some(id) {
                    model.current = None;
                }
            }
            Step::Send(vec![
                json!({"op": 9, "d": resumable, "s": null, "t": null}).to_string(),
            ])
        }
        GatewayFault::Close(code) => Step::Close(code, "Scripted close."),
        GatewayFault::Drop => Step::Drop,
        GatewayFault::Malformed => Step::Send(vec![
            "{\"op\": 0, \"t\": \"MESSAGE_CREATE\", \"s\": ".to_owned(),
        ]),
        GatewayFault::Oversized(bytes) => {
            let d = json!({"id": "1", "channel_id": "1", "content": "x".repeat(bytes),
                "author": user_json("1", "big", false)});
            Step::Send(vec![
                json!({"op": 0, "t": "MESSAGE_CREATE", "s": null, "d": d}).to_string(),
            ])
        }
    }
}
