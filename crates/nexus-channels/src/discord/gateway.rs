//! The gateway session: connect, HELLO, IDENTIFY or RESUME, heartbeats with zombie detection,
//! sequence tracking, and the reconnect policy (op 7, op 9, close codes, dropped connections).
//! Dispatches other than READY and RESUMED go to a callback; this module knows nothing of
//! messages.

use std::sync::Mutex;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use nexus_core::ChannelError;
use rand::Rng;
use secrecy::SecretString;
use serde_json::Value;
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use url::Url;

use super::config::GatewayTiming;
use super::payload::{Hello, Ready};
use super::protocol::{self, CloseAction, Frame, FrameBudget};
use crate::backoff::Backoff;
use crate::ws::{self, Socket};

/// Frames kept back for IDENTIFY/RESUME and regular heartbeats when the server asks for
/// extra heartbeats.
const RESERVE: usize = 10;
/// How long a close handshake may take before the socket is dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A gateway session that can be resumed.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) id: String,
    pub(crate) resume_url: Option<Url>,
    pub(crate) seq: Option<u64>,
    pub(crate) bot_id: String,
}

/// Called with `(event name, d, bot user id)` for every dispatch but READY and RESUMED.
pub(crate) type OnDispatch<'a> = &'a (dyn Fn(&str, Value, &str) + Send + Sync);

/// What the gateway loop needs.
pub(crate) struct Gateway<'a> {
    pub(crate) token: &'a SecretString,
    pub(crate) intents: u64,
    pub(crate) timing: &'a GatewayTiming,
    /// Kept by the adapter so a restarted `start` resumes.
    pub(crate) session: &'a Mutex<Option<Session>>,
    pub(crate) on_dispatch: OnDispatch<'a>,
}

/// When to reconnect.
#[derive(Debug, Clone, Copy)]
enum Delay {
    Now,
    Backoff,
    Fixed(Duration),
}

/// How one connection ended.
#[derive(Debug)]
enum Outcome {
    Cancelled,
    Stop(ChannelError),
    Reconnect {
        resume: bool,
        delay: Delay,
        established: bool,
    },
}

/// One open connection.
struct Conn {
    socket: Socket,
    budget: FrameBudget,
    awaiting_ack: bool,
    established: bool,
}

impl Conn {
    /// Sends `frame`; with a `reserve`, skips it (`Ok(false)`) rather than eat into it.
    async fn send(&mut self, frame: String, reserve: usize) -> Result<bool, ChannelError> {
        if frame.len() > protocol::MAX_CLIENT_FRAME {
            return Err(ChannelError::Rejected {
                message: format!(
                    "a gateway frame of {} bytes exceeds Discord's 4096",
                    frame.len()
                ),
            });
        }
        if !self.budget.take(Instant::now(), reserve) {
            if reserve > 0 {
                return Ok(false);
            }
            sleep_until(self.budget.next_slot(Instant::now())).await;
            self.budget.take(Instant::now(), 0);
        }
        self.socket
            .send(Message::text(frame))
            .await
            .map_err(|e| ChannelError::Transport {
                message: format!("gateway send failed: {e}"),
            })?;
        Ok(true)
    }

    async fn close(&mut self, code: u16) {
        let frame = CloseFrame {
            code: code.into(),
            reason: "".into(),
        };
        // The connection is being abandoned; a failed close changes nothing.
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.close(Some(frame))).await;
    }

    fn reconnect(&self, resume: bool, delay: Delay) -> Outcome {
        Outcome::Reconnect {
            resume,
            delay,
            established: self.established,
        }
    }
}

impl Gateway<'_> {
    fn session(&self) -> std::sync::MutexGuard<'_, Option<Session>> {
        self.session
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs the gateway from `base` until `cancel` (then `Ok`), a close code that forbids
    /// reconnecting, or too many failed connections in a row.
    pub(crate) async fn run(
        &self,
        base: &Url,
        cancel: &CancellationToken,
    ) -> Result<(), ChannelError> {
        let timing = self.timing;
        let mut backoff = Backoff::new(timing.reconnect_base, timing.reconnect_max);
        let mut failures = 0u32;
        loop {
            let resume_url = self.session().as_ref().and_then(|s| s.resume_url.clone());
            let url = protocol::connect_url(resume_url.as_ref().unwrap_or(base));
            let connected = tokio::select! {
                () = cancel.cancelled() => return Ok(()),
                connected = ws::connect(url.as_str()) => connected,
            };
            let outcome = match connected {
                Ok(socket) => self.connection(socket, cancel).await,
                Err(err) => {
                    warn!(channel = "discord", error = %err, "Cannot connect to the Discord gateway");
                    Outcome::Reconnect {
                        resume: true,
                        delay: Delay::Backoff,
                        established: false,
                    }
                }
            };
            let (resume, delay) = match outcome {
                Outcome::Cancelled => {
                    *self.session() = None;
                    return Ok(());
                }
                Outcome::Stop(err) => {
                    *self.session() = None;
                    return Err(err);
                }
                Outcome::Reconnect {
                    resume,
                    delay,
                    established,
                } => {
                    if established {
                        backoff.reset();
                        failures = 0;
                    } else {
                        failures += 1;
                    }
                    (resume, delay)
                }
            };
            if failures > timing.max_reconnects {
                return Err(ChannelError::Transport {
                    message: format!("the Discord gateway failed {failures} times in a row"),
                });
            }
            if !resume {
                *self.session() = None;
            }
            let wait = match delay {
                Delay::Now => Duration::ZERO,
                Delay::Backoff => backoff.next_delay(),
                Delay::Fixed(wait) => wait,
            };
            debug!(
                channel = "discord",
                resume,
                wait_ms = wait.as_millis() as u64,
                "Reconnecting to the Discord gateway"
            );
            if !wait.is_zero() {
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }

    async fn connection(&self, socket: Socket, cancel: &CancellationToken) -> Outcome {
        let mut conn = Conn {
            socket,
            budget: FrameBudget::default(),
            awaiting_ack: false,
            established: false,
        };
        let hello = tokio::select! {
            () = cancel.cancelled() => {
                conn.close(1000).await;
                return Outcome::Cancelled;
            }
            hello = tokio::time::timeout(self.timing.hello_timeout, read_hello(&mut conn.socket)) => hello,
        };
        let Ok(Some(hello)) = hello else {
            warn!(channel = "discord", "The Discord gateway sent no HELLO");
            return conn.reconnect(true, Delay::Backoff);
        };
        let interval = Duration::from_millis(hello.heartbeat_interval.max(1));
        let first = match self.session().as_ref() {
            Some(s) => protocol::resume(self.token, &s.id, s.seq),
            None => protocol::identify(self.token, self.intents),
        };
        if let Err(err) = conn.send(first, 0).await {
            warn!(channel = "discord", error = %err, "Cannot identify on the Discord gateway");
            return conn.reconnect(true, Delay::Backoff);
        }
        let jitter: f64 = rand::rng().random_range(0.0..1.0);
        let mut next_beat = Instant::now() + interval.mul_f64(jitter);
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => {
                    conn.close(1000).await;
                    return Outcome::Cancelled;
                }
                () = sleep_until(next_beat) => {
                    if conn.awaiting_ack {
                        warn!(channel = "discord", "The Discord gateway stopped acknowledging heartbeats; reconnecting");
                        conn.close(4000).await;
                        return conn.reconnect(true, Delay::Now);
                    }
                    next_beat = (next_beat + interval).max(Instant::now());
                    conn.awaiting_ack = true;
                    if conn.send(protocol::heartbeat(self.seq()), 0).await.is_err() {
                        return conn.reconnect(true, Delay::Backoff);
                    }
                }
                incoming = conn.socket.next() => match incoming {
                    None => return conn.reconnect(true, Delay::Backoff),
                    Some(Err(err)) => {
                        warn!(channel = "discord", error = %err, "The Discord gateway connection failed");
                        return conn.reconnect(true, Delay::Backoff);
                    }
                    Some(Ok(Message::Close(frame))) => {
                        let code = frame.map_or(1005, |f| u16::from(f.code));
                        info!(channel = "discord", code, "The Discord gateway closed the connection");
                        return match protocol::on_close(code) {
                            CloseAction::Resume => conn.reconnect(true, Delay::Backoff),
                            CloseAction::Identify => conn.reconnect(false, Delay::Backoff),
                            CloseAction::Stop(err) => Outcome::Stop(err),
                        };
                    }
                    Some(Ok(Message::Text(text))) => {
                        if let Some(outcome) = self.on_text(&mut conn, text.as_str()).await {
                            return outcome;
                        }
                    }
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    fn seq(&self) -> Option<u64> {
        self.session().as_ref().and_then(|s| s.seq)
    }

    /// Handles one text frame; `Some` ends the connection.
    async fn on_text(&self, conn: &mut Conn, text: &str) -> Option<Outcome> {
        let frame: Frame = match serde_json::from_str(text) {
            Ok(frame) => frame,
            Err(err) => {
                warn!(channel = "discord", error = %err, bytes = text.len(), "Unreadable Discord gateway frame; ignored");
                return None;
            }
        };
        match frame.op {
            protocol::DISPATCH => {
                self.on_dispatch(conn, frame);
                None
            }
            protocol::HEARTBEAT => {
                match conn.send(protocol::heartbeat(self.seq()), RESERVE).await {
                    Ok(sent) => {
                        conn.awaiting_ack |= sent;
                        None
                    }
                    Err(_) => Some(conn.reconnect(true, Delay::Backoff)),
                }
            }
            protocol::HEARTBEAT_ACK => {
                conn.awaiting_ack = false;
                None
            }
            protocol::RECONNECT => {
                info!(
                    channel = "discord",
                    "The Discord gateway asked for a reconnect"
                );
                conn.close(4000).await;
                Some(conn.reconnect(true, Delay::Now))
            }
            protocol::INVALID_SESSION => {
                let resumable = frame.d.as_bool().unwrap_or(false);
                info!(
                    channel = "discord",
                    resumable, "The Discord gateway invalidated the session"
                );
                conn.close(4000).await;
                if resumable {
                    return Some(conn.reconnect(true, Delay::Now));
                }
                let (min, max) = (
                    self.timing.invalid_session_min,
                    self.timing.invalid_session_max,
                );
                let wait = if max > min {
                    rand::rng().random_range(min..=max)
                } else {
                    min
                };
                Some(conn.reconnect(false, Delay::Fixed(wait)))
            }
            protocol::HELLO => None,
            other => {
                debug!(
                    channel = "discord",
                    op = other,
                    "Unknown Discord gateway opcode; ignored"
                );
                None
            }
        }
    }

    fn on_dispatch(&self, conn: &mut Conn, frame: Frame) {
        let event = frame.t.unwrap_or_default();
        if event == "READY" {
            match serde_json::from_value::<Ready>(frame.d) {
                Ok(ready) => {
                    info!(channel = "discord", bot = %ready.user.id, "Discord gateway session ready");
                    *self.session() = Some(Session {
                        id: ready.session_id,
                        resume_url: Url::parse(&ready.resume_gateway_url).ok(),
                        seq: frame.s,
                        bot_id: ready.user.id,
                    });
                    conn.established = true;
                }
                Err(err) => warn!(channel = "discord", error = %err, "Unreadable READY; ignored"),
            }
            return;
        }
        let bot_id = {
            let mut session = self.session();
            let Some(session) = session.as_mut() else {
                debug!(channel = "discord", event, "Dispatch before READY; ignored");
                return;
            };
            if let Some(s) = frame.s {
                session.seq = Some(session.seq.map_or(s, |old| old.max(s)));
            }
            session.bot_id.clone()
        };
        if event == "RESUMED" {
            info!(channel = "discord", "Discord gateway session resumed");
            conn.established = true;
            return;
        }
        (self.on_dispatch)(&event, frame.d, &bot_id);
    }
}

/// Reads frames until HELLO; `None` if the connection ends first.
async fn read_hello(socket: &mut Socket) -> Option<Hello> {
    while let Some(message) = socket.next().await {
        let Ok(Message::Text(text)) = message else {
            if message.is_err() {
                return None;
            }
            continue;
        };
        let Ok(frame) = serde_json::from_str::<Frame>(text.as_str()) else {
            continue;
        };
        if frame.op == protocol::HELLO {
            return serde_json::from_value(frame.d).ok();
        }
    }
    None
}
