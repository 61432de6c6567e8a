//! What the fake platform holds: channels (guild text channels, threads, DMs), messages, files
//! on the CDN, typing counts, gateway sessions with their dispatch logs, and live connections.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{ClientFrame, GatewayFault};

/// Dispatches kept per session for RESUME replays.
const MAX_LOG: usize = 1000;

/// Client frames kept for inspection.
const MAX_FRAMES: usize = 4096;

/// A channel: guild text channel, thread (its own channel, with a parent) or DM.
#[derive(Debug, Clone)]
pub(crate) struct Channel {
    pub(crate) guild_id: Option<String>,
    pub(crate) parent_id: Option<String>,
}

/// A message on the platform.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub(crate) channel_id: String,
    pub(crate) author_id: String,
    pub(crate) json: Value,
    pub(crate) edits: u32,
    pub(crate) reply_to: Option<String>,
}

/// A gateway session: its sequence and the dispatches a RESUME replays.
#[derive(Debug, Default)]
pub(crate) struct Session {
    /// The intents IDENTIFY asked for.
    pub(crate) intents: u64,
    pub(crate) seq: u64,
    /// `(seq, frame text)`, oldest first.
    pub(crate) log: VecDeque<(u64, String)>,
    /// The highest sequence written to a socket.
    pub(crate) sent_upto: u64,
    /// The connection it is attached to.
    pub(crate) conn: Option<u64>,
}

/// What a connection task is told.
#[derive(Debug)]
pub(crate) enum Cmd {
    /// New dispatches are in its session's log.
    Pump,
    /// Misbehave.
    Fault(GatewayFault),
}

/// A live gateway connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) tx: mpsc::UnboundedSender<Cmd>,
    pub(crate) session: Option<String>,
}

/// The platform's state, behind one lock (never held across an await).
#[derive(Debug, Default)]
pub(crate) struct Model {
    next_id: u64,
    pub(crate) channels: HashMap<String, Channel>,
    pub(crate) dms: HashMap<String, String>,
    pub(crate) messages: HashMap<String, Stored>,
    pub(crate) bot_order: Vec<String>,
    pub(crate) typing: HashMap<String, u32>,
    /// CDN path → (content type, bytes).
    pub(crate) files: HashMap<String, (String, Vec<u8>)>,
    pub(crate) sessions: HashMap<String, Session>,
    pub(crate) current: Option<String>,
    pub(crate) conns: BTreeMap<u64, Conn>,
    next_conn: u64,
    pub(crate) frames: VecDeque<ClientFrame>,
    pub(crate) frame_count: u64,
    pub(crate) pending_faults: VecDeque<GatewayFault>,
    pub(crate) identifies: u32,
    pub(crate) resumes: u32,
}

impl Model {
    /// A fresh snowflake-like id.
    pub(crate) fn snowflake(&mut self) -> String {
        self.next_id += 1;
        format!("{}", 1_300_000_000_000_000_000u64 + self.next_id)
    }

    /// Registers a connection and returns its id.
    pub(crate) fn add_conn(&mut self, tx: mpsc::UnboundedSender<Cmd>) -> u64 {
        self.next_conn += 1;
        self.conns
            .insert(self.next_conn, Conn { tx, session: None });
        self.next_conn
    }

    /// Forgets a connection; its session stays resumable.
    pub(crate) fn remove_conn(&mut self, conn: u64) {
        if let Some(c) = self.conns.remove(&conn)
            && let Some(session) = c.session.and_then(|id| self.sessions.get_mut(&id))
            && session.conn == Some(conn)
        {
            session.conn = None;
        }
    }

    /// Attaches `session` to `conn` (after IDENTIFY or RESUME).
    pub(crate) fn attach(&mut self, session: &str, conn: u64) {
        if let Some(s) = self.sessions.get_mut(session) {
            s.conn = Some(conn);
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session = Some(session.to_owned());
        }
    }

    /// Appends a dispatch to `session`'s log and wakes its connection. Returns its sequence.
    pub(crate) fn dispatch_to(&mut self, session: &str, t: &str, d: Value) -> Option<u64> {
        let s = self.sessions.get_mut(session)?;
        s.seq += 1;
        let seq = s.seq;
        let frame = json!({"op": 0, "t": t, "s": seq, "d": d}).to_string();
        s.log.push_back((seq, frame));
        while s.log.len() > MAX_LOG {
            s.log.pop_front();
        }
        if let Some(conn) = s.conn.and_then(|c| self.conns.get(&c)) {
            // A closed connection task just misses the wake-up; RESUME replays.
            let _ = conn.tx.send(Cmd::Pump);
        }
        Some(seq)
    }

    /// Dispatches to the current session, if any: `(session id, seq)`.
    pub(crate) fn dispatch(&mut self, t: &str, d: Value) -> Option<(String, u64)> {
        let session = self.current.clone()?;
        let seq = self.dispatch_to(&session, t, d)?;
        Some((session, seq))
    }

    /// Sends `fault` to the newest live connection, or keeps it for the next one.
    pub(crate) fn inject(&mut self, fault: GatewayFault) {
        match self.conns.values().next_back() {
            Some(conn) => {
                if let Err(mpsc::error::SendError(Cmd::Fault(fault))) =
                    conn.tx.send(Cmd::Fault(fault))
                {
                    self.pending_faults.push_back(fault);
                }
            }
            None => self.pending_faults.push_back(fault),
        }
    }

    /// Keeps a client frame.
    pub(crate) fn record_frame(&mut self, mut frame: ClientFrame) {
        frame.index = self.frame_count;
        self.frame_count += 1;
        while self.frames.len() >= MAX_FRAMES {
            self.frames.pop_front();
        }
        self.frames.push_back(frame);
    }

    /// The channel `id`, created in `guild` when unknown.
    pub(crate) fn ensure_channel(&mut self, id: &str, guild: &str, parent: Option<&str>) {
        self.channels.entry(id.to_owned()).or_insert(Channel {
            guild_id: Some(guild.to_owned()),
            parent_id: parent.map(str::to_owned),
        });
    }

    /// The DM channel with `user`, created when there is none.
    pub(crate) fn dm_channel(&mut self, user: &str) -> String {
        if let Some(id) = self.dms.get(user) {
            return id.clone();
        }
        let id = self.snowflake();
        self.channels.insert(
            id.clone(),
            Channel {
                guild_id: None,
                parent_id: None,
            },
        );
        self.dms.insert(user.to_owned(), id.clone());
        id
    }
}

/// A user object as Discord sends it (`bot` only when true).
pub(crate) fn user_json(id: &str, name: &str, bot: bool) -> Value {
    let mut user = json!({
        "id": id,
        "username": name,
        "global_name": name,
        "discriminator": "0",
        "avatar": null,
        "public_flags": 0,
    });
    if bot && let Some(u) = user.as_object_mut() {
        u.insert("bot".to_owned(), Value::Bool(true));
    }
    user
}

/// The current time as Discord's ISO 8601 timestamps.
pub(crate) fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}000+00:00",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60,
        now.subsec_millis()
    )
}

/// Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}
