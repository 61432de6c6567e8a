//! The Socket Mode server: single-use tickets from `apps.connections.open`, a `hello` on every
//! connection, envelopes pushed to the newest connection, acknowledgements recorded by
//! `envelope_id`, unacknowledged envelopes delivered again with `retry_attempt` and
//! `retry_reason`, and the faults (`disconnect`, dropped connections, raw frames).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{Response, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};
use std::sync::Mutex;
use tokio::sync::mpsc;

use super::{Shared, SocketEvent};
use crate::journal::lock;

/// What the server writes to one connection.
#[derive(Debug)]
enum Out {
    Text(String),
    Ping,
    /// A close frame, then the end once the client answers (or after a second).
    Close,
    /// The TCP connection closed without a close frame.
    Drop,
}

#[derive(Debug)]
struct Pending {
    envelope: Value,
    acked: bool,
}

/// An envelope the server wrote (first delivery or redelivery).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEnvelope {
    /// Its `envelope_id`.
    pub envelope_id: String,
    /// The `event_id` of its payload.
    pub event_id: Option<String>,
    /// Its `retry_attempt` (0 for the first delivery).
    pub retry_attempt: u32,
    /// The connection it went to.
    pub connection: u64,
}

/// The Socket Mode side of the fake.
#[derive(Debug, Default)]
pub(crate) struct SocketHub {
    tickets: Mutex<HashSet<String>>,
    conns: Mutex<Vec<(u64, mpsc::UnboundedSender<Out>)>>,
    pending: Mutex<HashMap<String, Pending>>,
    queued: Mutex<VecDeque<String>>,
    pub(crate) acks: Mutex<Vec<String>>,
    pub(crate) sent: Mutex<Vec<SentEnvelope>>,
    pub(crate) log: Mutex<Vec<SocketEvent>>,
    pub(crate) pongs: std::sync::atomic::AtomicU64,
    next_conn: std::sync::atomic::AtomicU64,
}

fn random_hex(bytes: usize) -> String {
    let raw: Vec<u8> = (0..bytes).map(|_| rand::random::<u8>()).collect();
    hex::encode(raw)
}

/// A fresh single-use connection URL.
pub(crate) fn issue_ticket(shared: &Shared) -> String {
    let ticket = random_hex(16);
    lock(&shared.socket.tickets).insert(ticket.clone());
    format!(
        "ws://{}/link/?ticket={ticket}&app_id={}",
        shared.addr, shared.config.app_id
    )
}

/// `GET /link/?ticket=…`: the WebSocket upgrade, refused for an unknown or used ticket.
pub(crate) async fn link(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    upgrade: WebSocketUpgrade,
) -> Response<Body> {
    let valid = query
        .get("ticket")
        .is_some_and(|t| lock(&shared.socket.tickets).remove(t));
    if !valid {
        lock(&shared.socket.log).push(SocketEvent::Refused);
        shared.changed.notify_waiters();
        return (StatusCode::UNAUTHORIZED, "invalid or used ticket").into_response();
    }
    upgrade
        .max_message_size(64 << 20)
        .on_upgrade(move |socket| serve(shared, socket))
        .into_response()
}

async fn serve(shared: Arc<Shared>, mut socket: WebSocket) {
    let hub = &shared.socket;
    let id = hub.next_conn.fetch_add(1, Ordering::Relaxed) + 1;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let count = {
        let mut conns = lock(&hub.conns);
        conns.push((id, tx));
        conns.len()
    };
    lock(&hub.log).push(SocketEvent::Opened(id));
    shared.changed.notify_waiters();
    let hello = json!({
        "type": "hello",
        "num_connections": count,
        "debug_info": {"host": "fake-slack", "build_number": 1, "approximate_connection_time": 18060},
        "connection_info": {"app_id": shared.config.app_id},
    });
    if socket
        .send(Message::Text(hello.to_string().into()))
        .await
        .is_ok()
    {
        let queued: Vec<String> = lock(&hub.queued).drain(..).collect();
        for envelope_id in queued {
            send_envelope(&shared, &envelope_id);
        }
        pump(&shared, &mut socket, &mut rx).await;
    }
    lock(&hub.conns).retain(|(c, _)| *c != id);
    lock(&hub.log).push(SocketEvent::Closed(id));
    shared.changed.notify_waiters();
}

/// Writes what the fake queues and reads acknowledgements until the connection ends.
async fn pump(shared: &Shared, socket: &mut WebSocket, rx: &mut mpsc::UnboundedReceiver<Out>) {
    loop {
        tokio::select! {
            out = rx.recv() => match out {
                Some(Out::Text(text)) => {
                    if socket.send(Message::Text(text.into())).await.is_err() {
                        return;
                    }
                }
                Some(Out::Ping) => {
                    if socket.send(Message::Ping(b"fake".to_vec().into())).await.is_err() {
                        return;
                    }
                }
                Some(Out::Close) => {
                    let _ = socket.send(Message::Close(None)).await;
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while let Some(Ok(msg)) = socket.recv().await {
                            if matches!(msg, Message::Close(_)) {
                                break;
                            }
                        }
                    })
                    .await;
                    return;
                }
                Some(Out::Drop) | None => return,
            },
            msg = socket.recv() => match msg {
                Some(Ok(Message::Text(text))) => on_client_text(shared, text.as_str()),
                Some(Ok(Message::Pong(_))) => {
                    shared.socket.pongs.fetch_add(1, Ordering::Relaxed);
                    shared.changed.notify_waiters();
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
}

fn on_client_text(shared: &Shared, text: &str) {
    let Ok(value) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let Some(envelope_id) = value.get("envelope_id").and_then(Value::as_str) else {
        return;
    };
    if let Some(pending) = lock(&shared.socket.pending).get_mut(envelope_id) {
        pending.acked = true;
    }
    lock(&shared.socket.acks).push(envelope_id.to_owned());
    shared.changed.notify_waiters();
}

/// Writes `out` to the newest connection; its id, or `None` when there is none.
fn to_newest(hub: &SocketHub, out: Out) -> Option<u64> {
    let conns = lock(&hub.conns);
    let (id, tx) = conns.last()?;
    tx.send(out).ok().map(|()| *id)
}

/// Writes `out` to every connection.
fn to_all(hub: &SocketHub, out: impl Fn() -> Out) {
    for (_, tx) in lock(&hub.conns).iter() {
        let _ = tx.send(out());
    }
}

fn send_envelope(shared: &Shared, envelope_id: &str) {
    let hub = &shared.socket;
    let Some(envelope) = lock(&hub.pending)
        .get(envelope_id)
        .map(|p| p.envelope.clone())
    else {
        return;
    };
    match to_newest(hub, Out::Text(envelope.to_string())) {
        Some(connection) => {
            lock(&hub.sent).push(SentEnvelope {
                envelope_id: envelope_id.to_owned(),
                event_id: envelope["payload"]["event_id"].as_str().map(str::to_owned),
                retry_attempt: envelope["retry_attempt"].as_u64().unwrap_or(0) as u32,
                connection,
            });
            shared.changed.notify_waiters();
        }
        None => lock(&hub.queued).push_back(envelope_id.to_owned()),
    }
}

/// Pushes an `events_api` envelope carrying `payload` (an `event_callback`), starting at
/// `retry_attempt`; redelivers it until acknowledged. Returns its `envelope_id`.
pub(crate) fn push(shared: &Arc<Shared>, payload: Value, retry_attempt: u32) -> String {
    let envelope_id = format!(
        "{}-{}-{}-{}-{}",
        random_hex(4),
        random_hex(2),
        random_hex(2),
        random_hex(2),
        random_hex(6)
    );
    let envelope = json!({
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": false,
        "retry_attempt": retry_attempt,
        "retry_reason": if retry_attempt == 0 { "" } else { "timeout" },
        "payload": payload,
    });
    lock(&shared.socket.pending).insert(
        envelope_id.clone(),
        Pending {
            envelope,
            acked: false,
        },
    );
    send_envelope(shared, &envelope_id);
    let shared = Arc::clone(shared);
    let id = envelope_id.clone();
    tokio::spawn(async move { redeliver(shared, id).await });
    envelope_id
}

async fn redeliver(shared: Arc<Shared>, envelope_id: String) {
    for _ in 0..shared.config.socket_redeliveries {
        tokio::time::sleep(shared.config.socket_ack_timeout).await;
        {
            let mut pending = lock(&shared.socket.pending);
            let Some(p) = pending.get_mut(&envelope_id) else {
                return;
            };
            if p.acked {
                return;
            }
            let attempt = p.envelope["retry_attempt"].as_u64().unwrap_or(0) + 1;
            p.envelope["retry_attempt"] = json!(attempt);
            p.envelope["retry_reason"] = json!("timeout");
        }
        if !lock(&shared.socket.queued).contains(&envelope_id) {
            send_envelope(&shared, &envelope_id);
        }
    }
}

/// Sends `{"type":"disconnect","reason":…}` to every connection and closes each after the
/// grace period.
pub(crate) fn disconnect(shared: &Arc<Shared>, reason: &str) {
    let frame = json!({
        "type": "disconnect",
        "reason": reason,
        "debug_info": {"host": "fake-slack"},
    })
    .to_string();
    let conns: Vec<(u64, mpsc::UnboundedSender<Out>)> = lock(&shared.socket.conns).clone();
    for (_, tx) in conns {
        let _ = tx.send(Out::Text(frame.clone()));
        let grace = shared.config.disconnect_grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Out::Close);
        });
    }
}

/// Closes every connection's TCP stream without a close frame.
pub(crate) fn drop_connections(shared: &Shared) {
    to_all(&shared.socket, || Out::Drop);
}

/// Writes `text` as one frame to the newest connection; whether there was one.
pub(crate) fn push_raw(shared: &Shared, text: String) -> bool {
    to_newest(&shared.socket, Out::Text(text)).is_some()
}

/// Pings the newest connection; whether there was one.
pub(crate) fn ping(shared: &Shared) -> bool {
    to_newest(&shared.socket, Out::Ping).is_some()
}

/// How many connections are open.
pub(crate) fn live(shared: &Shared) -> usize {
    lock(&shared.socket.conns).len()
}
