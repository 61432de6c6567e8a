//! Socket Mode: a fresh URL from `apps.connections.open` for every connection, `hello`
//! awaited, envelopes delivered and acknowledged (`{"envelope_id"}`) only once the router
//! acknowledged them, `disconnect` answered by opening the next connection before closing the
//! old one, lost connections reopened with backoff, and everything closed on cancel.

use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use nexus_core::ChannelError;
use secrecy::SecretString;
use serde_json::json;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, warn};

use super::dispatch::Dispatch;
use super::payload::{self, Frame};
use crate::backoff::Backoff;
use crate::ws::{self, Socket};

/// Longest wait for `hello` on a new connection.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for Slack to answer our close frame.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// Consecutive failed connection attempts before `start` gives up (the gateway restarts it).
const MAX_CONNECT_FAILURES: u32 = 6;

/// What a connection tells the supervisor.
#[derive(Debug)]
enum Report {
    /// Slack asked connection `n` to make way for a new one.
    Refresh(u64),
    /// Connection `n` ended (`Ok` when we closed it).
    Ended(u64, Result<(), ChannelError>),
}

/// The open connection.
#[derive(Debug)]
struct Live {
    id: u64,
    stop: CancellationToken,
}

/// Everything one Socket Mode run needs.
#[derive(Debug)]
pub(crate) struct SocketMode {
    pub(crate) app_token: SecretString,
    pub(crate) dispatch: Arc<Dispatch>,
}

impl SocketMode {
    /// Receives until `cancel` (then `Ok`), or until Slack refuses the tokens or no connection
    /// can be made.
    pub(crate) async fn run(&self, cancel: CancellationToken) -> Result<(), ChannelError> {
        self.dispatch.identity().await?;
        let tracker = TaskTracker::new();
        let (reports, mut reported) = mpsc::channel::<Report>(16);
        let mut backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
        let mut next_id = 0;
        let mut live: Option<Live> = None;
        let outcome = loop {
            if live.is_none() {
                let connected = tokio::select! {
                    _ = cancel.cancelled() => break Ok(()),
                    connected = self.connect() => connected,
                };
                match connected {
                    Ok(socket) => {
                        backoff.reset();
                        next_id += 1;
                        live = Some(self.spawn(&tracker, socket, next_id, &cancel, &reports));
                    }
                    Err(err) if !err.restartable() => break Err(err),
                    Err(err) if backoff.attempts() + 1 >= MAX_CONNECT_FAILURES => break Err(err),
                    Err(err) => {
                        let delay = backoff.next_delay();
                        warn!(error = %err, delay_ms = delay.as_millis() as u64, channel = "slack", "Cannot open a Socket Mode connection; retrying");
                        tokio::select! {
                            _ = cancel.cancelled() => break Ok(()),
                            _ = tokio::time::sleep(delay) => continue,
                        }
                    }
                }
            }
            let report = tokio::select! {
                _ = cancel.cancelled() => break Ok(()),
                report = reported.recv() => report,
            };
            let current = live.as_ref().map(|l| l.id);
            match report {
                Some(Report::Refresh(id)) if Some(id) == current => {
                    let connected = tokio::select! {
                        _ = cancel.cancelled() => break Ok(()),
                        connected = self.connect() => connected,
                    };
                    match connected {
                        Ok(socket) => {
                            next_id += 1;
                            let fresh = self.spawn(&tracker, socket, next_id, &cancel, &reports);
                            if let Some(old) = live.replace(fresh) {
                                old.stop.cancel();
                            }
                            debug!(channel = "slack", "Socket Mode connection refreshed");
                        }
                        Err(err) if !err.restartable() => break Err(err),
                        // The old connection keeps working until Slack closes it; then the
                        // lost connection is reopened with backoff.
                        Err(err) => {
                            warn!(error = %err, channel = "slack", "Cannot open the next Socket Mode connection")
                        }
                    }
                }
                Some(Report::Ended(id, result)) if Some(id) == current => {
                    live = None;
                    let delay = backoff.next_delay();
                    match result {
                        Ok(()) => debug!(channel = "slack", "Socket Mode connection closed"),
                        Err(err) => {
                            info!(error = %err, delay_ms = delay.as_millis() as u64, channel = "slack", "Socket Mode connection lost; reconnecting")
                        }
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => break Ok(()),
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
                // Reports of connections already replaced.
                Some(_) | None => {}
            }
        };
        if let Some(old) = live.take() {
            old.stop.cancel();
        }
        tracker.close();
        let _ = tokio::time::timeout(CLOSE_GRACE + Duration::from_secs(1), tracker.wait()).await;
        outcome
    }

    /// Opens a connection on a fresh URL and waits for its `hello`.
    async fn connect(&self) -> Result<Socket, ChannelError> {
        let url = self
            .dispatch
            .client
            .open_connection(&self.app_token)
            .await?;
        let mut socket = ws::connect(&url).await?;
        let hello = tokio::time::timeout(HELLO_TIMEOUT, async {
            while let Some(message) = socket.next().await {
                match message {
                    Ok(Message::Text(text)) => match payload::frame(text.as_str()) {
                        Ok(Frame::Hello) => return Ok(()),
                        Ok(Frame::Disconnect { reason }) => {
                            return Err(format!("Slack refused the connection ({reason})"));
                        }
                        _ => {}
                    },
                    Ok(_) => {}
                    Err(err) => return Err(format!("Socket Mode connection failed: {err}")),
                }
            }
            Err("Slack closed the connection before hello".to_owned())
        })
        .await;
        match hello {
            Ok(Ok(())) => Ok(socket),
            Ok(Err(message)) => Err(ChannelError::Transport { message }),
            Err(_) => Err(ChannelError::Transport {
                message: "Slack sent no hello".to_owned(),
            }),
        }
    }

    fn spawn(
        &self,
        tracker: &TaskTracker,
        socket: Socket,
        id: u64,
        cancel: &CancellationToken,
        reports: &mpsc::Sender<Report>,
    ) -> Live {
        let stop = cancel.child_token();
        let connection = Connection {
            id,
            stop: stop.clone(),
            dispatch: Arc::clone(&self.dispatch),
            reports: reports.clone(),
            tracker: tracker.clone(),
        };
        tracker.spawn(async move { connection.serve(socket).await });
        Live { id, stop }
    }
}

/// One open connection.
#[derive(Debug)]
struct Connection {
    id: u64,
    stop: CancellationToken,
    dispatch: Arc<Dispatch>,
    reports: mpsc::Sender<Report>,
    tracker: TaskTracker,
}

impl Connection {
    async fn serve(self, socket: Socket) {
        let result = self.pump(socket).await;
        let _ = self.reports.send(Report::Ended(self.id, result)).await;
    }

    /// Reads frames, delivers envelopes and writes their acks, until the connection ends or
    /// is stopped (a close frame, then at most [`CLOSE_GRACE`] for Slack's answer).
    async fn pump(&self, socket: Socket) -> Result<(), ChannelError> {
        let (mut sink, mut stream) = socket.split();
        let (acks, mut to_ack) = mpsc::channel::<String>(64);
        let mut closing: Option<Instant> = None;
        loop {
            let deadline = closing.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = self.stop.cancelled(), if closing.is_none() => {
                    let _ = sink.send(Message::Close(None)).await;
                    closing = Some(Instant::now() + CLOSE_GRACE);
                }
                _ = tokio::time::sleep_until(deadline), if closing.is_some() => return Ok(()),
                Some(envelope_id) = to_ack.recv() => {
                    let ack = json!({ "envelope_id": envelope_id }).to_string();
                    if let Err(err) = sink.send(Message::Text(ack.into())).await {
                        return Err(ChannelError::Transport {
                            message: format!("cannot acknowledge on Socket Mode: {err}"),
                        });
                    }
                }
                message = stream.next() => match message {
                    Some(Ok(Message::Text(text))) => self.on_text(text.as_str(), &acks, closing.is_some()).await,
                    Some(Ok(Message::Close(_))) | None => {
                        return if closing.is_some() {
                            Ok(())
                        } else {
                            Err(ChannelError::Transport {
                                message: "Slack closed the Socket Mode connection".to_owned(),
                            })
                        };
                    }
                    // Pings are answered by tungstenite on the next read.
                    Some(Ok(_)) => {}
                    Some(Err(err)) => {
                        return Err(ChannelError::Transport {
                            message: format!("Socket Mode connection failed: {err}"),
                        });
                    }
                },
            }
        }
    }

    async fn on_text(&self, text: &str, acks: &mpsc::Sender<String>, closing: bool) {
        match payload::frame(text) {
            Ok(Frame::Envelope {
                envelope_id,
                kind,
                payload,
                retry_attempt,
            }) => {
                if retry_attempt > 0 {
                    debug!(
                        retry_attempt,
                        channel = "slack",
                        "Slack redelivered an envelope"
                    );
                }
                let dispatch = Arc::clone(&self.dispatch);
                let acks = acks.clone();
                self.tracker.spawn(async move {
                    // Only events are handled; other envelopes are acknowledged and dropped.
                    let ack = kind != "events_api" || dispatch.handle(payload).await;
                    if ack {
                        let _ = acks.send(envelope_id).await;
                    }
                });
            }
            Ok(Frame::Disconnect { reason }) => {
                debug!(reason = %reason, channel = "slack", "Slack asked to reconnect");
                if !closing {
                    let _ = self.reports.send(Report::Refresh(self.id)).await;
                }
            }
            Ok(Frame::Hello) | Ok(Frame::Other(_)) => {}
            Err(err) => {
                warn!(error = %err, channel = "slack", "Dropped a malformed Socket Mode frame");
            }
        }
    }
}
