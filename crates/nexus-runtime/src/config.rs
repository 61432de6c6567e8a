//! Runtime settings, validated by the caller (the gateway maps its configuration file onto them).

use std::time::Duration;

use nexus_tools::ToolLimits;

/// How the runtime schedules and bounds turns.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// This replica's name in leases. Default: a random id.
    pub replica_id: String,
    /// Whether a worker takes the session's lease in the database before working on it. Needed
    /// when several replicas share a database; a single process (SQLite) can skip it.
    /// Default: true.
    pub use_leases: bool,
    /// How long a session lease lasts without renewal. Default 30 s; renewed every third of it.
    pub lease_ttl: Duration,
    /// Messages of history given to the model (the most recent ones). Default 100.
    pub history_limit: u32,
    /// How many times a turn is restarted from storage for one inbound message (after a crash
    /// or shutdown interrupted it) before it is given up: a message that crashes the process
    /// every time must not crash it forever. Default 3.
    pub max_attempts: u32,
    /// How often pending inbox items without a live worker are looked for (items of a crashed
    /// replica, items whose lease was busy). Default 5 s.
    pub sweep_interval: Duration,
    /// How long shutdown waits for running turns before abandoning them (they stay pending and
    /// are answered after the next start). Default 10 s.
    pub shutdown_grace: Duration,
    /// Limits of tool calls.
    pub tool_limits: ToolLimits,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            replica_id: format!("replica-{}", uuid::Uuid::new_v4().simple()),
            use_leases: true,
            lease_ttl: Duration::from_secs(30),
            history_limit: 100,
            max_attempts: 3,
            sweep_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            tool_limits: ToolLimits::default(),
        }
    }
}
