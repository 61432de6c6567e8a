//! A minimal Chrome DevTools Protocol client: commands with their answers, and events routed
//! by CDP session (flattened sessions: one socket for the browser and all its pages).
//!
//! Only JSON in and out (`serde_json::Value`): the tool uses a dozen methods, and untyped
//! messages keep working when a newer Chromium adds fields or enum values.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

/// Largest message read from the browser (a full-page screenshot in base64 is the largest).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// What went wrong talking to the browser.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum CdpError {
    /// The socket closed (the browser exited or was killed).
    #[error("the browser connection closed")]
    Closed,
    /// The browser answered the command with an error.
    #[error("{method}: {message}")]
    Protocol {
        /// The command.
        method: String,
        /// The browser's message.
        message: String,
    },
    /// The socket could not be opened.
    #[error("cannot connect to the browser's DevTools socket: {0}")]
    Connect(String),
}

/// An event: `method` and `params`, for the session it came from.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// E.g. `Fetch.requestPaused`.
    pub(crate) method: String,
    /// The event's parameters.
    pub(crate) params: Value,
}

type Pending = Mutex<HashMap<u64, oneshot::Sender<Result<Value, CdpError>>>>;
type Subscribers = Mutex<HashMap<String, mpsc::Sender<Event>>>;

/// One DevTools socket to a browser.
#[derive(Debug)]
pub(crate) struct Connection {
    outgoing: mpsc::UnboundedSender<Message>,
    pending: Arc<Pending>,
    subscribers: Arc<Subscribers>,
    next_id: AtomicU64,
    closed: CancellationToken,
    tasks: [JoinHandle<()>; 2],
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.closed.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Removes an unanswered command from the pending table when its caller goes away (timeout,
/// cancellation), so the table only holds commands someone waits for.
struct PendingGuard<'a> {
    pending: &'a Pending,
    id: u64,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.id);
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The key events of the browser itself (no CDP session) are routed under.
const BROWSER: &str = "";

impl Connection {
    /// Opens the DevTools socket at `ws_url` (`ws://127.0.0.1:port/devtools/browser/…`).
    pub(crate) async fn connect(ws_url: &str) -> Result<Connection, CdpError> {
        let connect = |e: &dyn std::fmt::Display| CdpError::Connect(e.to_string());
        let rest = ws_url
            .strip_prefix("ws://")
            .ok_or_else(|| connect(&format!("not a ws:// address: {ws_url}")))?;
        let authority = rest.split('/').next().unwrap_or_default();
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| connect(&e))?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (socket, _) = tokio_tungstenite::client_async_with_config(ws_url, stream, Some(config))
            .await
            .map_err(|e| connect(&e))?;
        let (mut sink, mut stream) = socket.split();

        let closed = CancellationToken::new();
        let pending: Arc<Pending> = Arc::default();
        let subscribers: Arc<Subscribers> = Arc::default();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<Message>();

        let writer_closed = closed.clone();
        let writer = tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = writer_closed.cancelled() => break,
                    message = queue.recv() => match message {
                        Some(message) => {
                            if sink.send(message).await.is_err() {
                                break;
                            }
                        }
                        None => break,
                    },
                }
            }
            writer_closed.cancel();
            let _ = sink.close().await;
        });

        let reader_closed = closed.clone();
        let reader_pending = Arc::clone(&pending);
        let reader_subscribers = Arc::clone(&subscribers);
        let reader = tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = reader_closed.cancelled() => break,
                    message = stream.next() => message,
                };
                match message {
                    Some(Ok(Message::Text(text))) => {
                        dispatch(text.as_str(), &reader_pending, &reader_subscribers);
                    }
                    Some(Ok(Message::Binary(bytes))) => {
                        if let Ok(text) = std::str::from_utf8(&bytes) {
                            dispatch(text, &reader_pending, &reader_subscribers);
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => break,
                }
            }
            reader_closed.cancel();
            // Callers still waiting see their sender dropped: `Closed`.
            lock(&reader_pending).clear();
            lock(&reader_subscribers).clear();
        });

        Ok(Connection {
            outgoing,
            pending,
            subscribers,
            next_id: AtomicU64::new(1),
            closed,
            tasks: [writer, reader],
        })
    }

    /// Whether the socket closed (the browser is gone).
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    /// Sends `method` with `params` to the browser (`session: None`) or to a page's session,
    /// and waits for the answer. Unbounded: callers put it under their action's deadline.
    pub(crate) async fn call(
        &self,
        session: Option<&str>,
        method: &str,
        params: Value,
    ) -> Result<Value, CdpError> {
        if self.is_closed() {
            return Err(CdpError::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let _guard = PendingGuard {
            pending: &self.pending,
            id,
        };
        let mut command = json!({ "id": id, "method": method, "params": params });
        if let Some(session) = session {
            command["sessionId"] = Value::from(session);
        }
        self.outgoing
            .send(Message::text(command.to_string()))
            .map_err(|_| CdpError::Closed)?;
        match rx.await {
            Ok(Ok(result)) => Ok(result),
            Ok(Err(CdpError::Protocol { message, .. })) => Err(CdpError::Protocol {
                method: method.to_owned(),
                message,
            }),
            Ok(Err(other)) => Err(other),
            Err(_) => Err(CdpError::Closed),
        }
    }

    /// Events of the browser (`None`) or of a page's session, from now on. Events beyond
    /// `capacity` unread are dropped (the reader never waits on a slow subscriber).
    pub(crate) fn subscribe(
        &self,
        session: Option<&str>,
        capacity: usize,
    ) -> mpsc::Receiver<Event> {
        let (tx, rx) = mpsc::channel(capacity);
        lock(&self.subscribers).insert(session.unwrap_or(BROWSER).to_owned(), tx);
        rx
    }

    /// Stops routing the events of `session`.
    pub(crate) fn unsubscribe(&self, session: &str) {
        lock(&self.subscribers).remove(session);
    }
}

fn dispatch(text: &str, pending: &Pending, subscribers: &Subscribers) {
    let Ok(mut message) = serde_json::from_str::<Value>(text) else {
        return;
    };
    if let Some(id) = message.get("id").and_then(Value::as_u64) {
        let Some(tx) = lock(pending).remove(&id) else {
            return;
        };
        let answer = match message.get_mut("error") {
            Some(error) => Err(CdpError::Protocol {
                method: String::new(),
                message: error
                    .get("message")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown error")
                    .to_owned(),
            }),
            None => Ok(message
                .get_mut("result")
                .map(Value::take)
                .unwrap_or_default()),
        };
        let _ = tx.send(answer);
        return;
    }
    let Some(method) = message
        .get("method")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return;
    };
    let session = message
        .get("sessionId")
        .and_then(Value::as_str)
        .unwrap_or(BROWSER)
        .to_owned();
    let subscribers = lock(subscribers);
    if let Some(tx) = subscribers.get(&session) {
        let event = Event {
            method,
            params: message
                .get_mut("params")
                .map(Value::take)
                .unwrap_or_default(),
        };
        if tx.try_send(event).is_err() {
            tracing::debug!(session, "Browser event dropped: subscriber full or gone");
        }
    }
}
