//! What the fake runs as its guest and which faults it injects, from code or from the
//! environment (the `fake-firecracker` process takes Firecracker's own command line, so its
//! knobs come from `FAKE_FIRECRACKER_*` variables).

use std::path::PathBuf;
use std::time::Duration;

/// The program the fake "boots": run on the host when `InstanceStart` is accepted.
///
/// The fake appends `--unix-dir <dir> --work-dir <dir>/work --state-dir <dir>/state
/// --die-with-parent`; the program listens on the unix socket `<dir>/port-<port>.sock` for
/// each vsock port it serves (the Nexus guest agent does exactly this with `--unix-dir`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestCommand {
    /// The program, e.g. `python3`.
    pub program: PathBuf,
    /// Its first arguments, e.g. the path of `guest-agent.py`.
    pub args: Vec<String>,
}

impl GuestCommand {
    /// Splits a command line on whitespace (no quoting): `python3 /path/guest-agent.py`.
    pub fn parse(line: &str) -> Option<GuestCommand> {
        let mut words = line.split_whitespace();
        let program = PathBuf::from(words.next()?);
        Some(GuestCommand {
            program,
            args: words.map(str::to_owned).collect(),
        })
    }
}

/// A request the fake refuses with 400 and a fault message of the test's choosing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// HTTP method, e.g. `PUT`.
    pub method: String,
    /// Path, e.g. `/machine-config`.
    pub path: String,
    /// The `fault_message` answered.
    pub fault_message: String,
}

/// Faults the fake injects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// Refuse this request with 400 (every time it comes).
    pub refuse: Option<Refusal>,
    /// Exit (like a crashed Firecracker: exit code 1, sockets left behind) this long after
    /// `InstanceStart`.
    pub crash_after_start: Option<Duration>,
    /// After the vsock handshake, the guest never answers (a hung guest).
    pub hang_guest: bool,
}

/// How the fake behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeFirecrackerConfig {
    /// The guest program. `None`: the VM "boots" but nothing listens on any vsock port.
    pub guest: Option<GuestCommand>,
    /// Time from `InstanceStart` to the guest program being started. Default 50 ms.
    pub boot_delay: Duration,
    /// Faults to inject. Default: none.
    pub faults: Faults,
    /// Also append every request and process event as a JSON line to this file (for tests
    /// that run the fake as a separate process). Default: none.
    pub journal: Option<PathBuf>,
    /// The version reported by `GET /version` and `GET /`. Default `1.12.0`.
    pub version: String,
}

impl Default for FakeFirecrackerConfig {
    fn default() -> Self {
        FakeFirecrackerConfig {
            guest: None,
            boot_delay: Duration::from_millis(50),
            faults: Faults::default(),
            journal: None,
            version: "1.12.0".to_owned(),
        }
    }
}

/// Environment variables read by [`FakeFirecrackerConfig::from_env`].
pub mod env {
    /// The guest command line, e.g. `python3 /path/to/guest-agent.py`.
    pub const GUEST: &str = "FAKE_FIRECRACKER_GUEST";
    /// Milliseconds from `InstanceStart` to the guest starting.
    pub const BOOT_DELAY_MS: &str = "FAKE_FIRECRACKER_BOOT_DELAY_MS";
    /// `METHOD /path: fault message`, refused with 400.
    pub const REFUSE: &str = "FAKE_FIRECRACKER_REFUSE";
    /// Milliseconds after `InstanceStart` at which the process exits with code 1.
    pub const CRASH_AFTER_START_MS: &str = "FAKE_FIRECRACKER_CRASH_AFTER_START_MS";
    /// `1`: the guest accepts the vsock connection and never answers.
    pub const HANG_GUEST: &str = "FAKE_FIRECRACKER_HANG_GUEST";
    /// Path of the JSON-lines journal.
    pub const JOURNAL: &str = "FAKE_FIRECRACKER_JOURNAL";
}

impl FakeFirecrackerConfig {
    /// The configuration described by the `FAKE_FIRECRACKER_*` variables of [`env`]; errors
    /// name the variable.
    pub fn from_env() -> Result<Self, String> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`from_env`](Self::from_env), reading variables through `get`.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let mut config = FakeFirecrackerConfig::default();
        if let Some(line) = get(env::GUEST) {
            config.guest = GuestCommand::parse(&line);
        }
        if let Some(ms) = get(env::BOOT_DELAY_MS) {
            config.boot_delay = Duration::from_millis(parse_ms(env::BOOT_DELAY_MS, &ms)?);
        }
        if let Some(ms) = get(env::CRASH_AFTER_START_MS) {
            let ms = parse_ms(env::CRASH_AFTER_START_MS, &ms)?;
            config.faults.crash_after_start = Some(Duration::from_millis(ms));
        }
        if let Some(spec) = get(env::REFUSE) {
            config.faults.refuse = Some(parse_refusal(&spec)?);
        }
        config.faults.hang_guest = get(env::HANG_GUEST).is_some_and(|v| v == "1");
        config.journal = get(env::JOURNAL).map(PathBuf::from);
        Ok(config)
    }
}

fn parse_ms(name: &str, value: &str) -> Result<u64, String> {
    value
        .trim()
        .parse()
        .map_err(|_| format!("{name} must be a number of milliseconds, got {value:?}"))
}

fn parse_refusal(spec: &str) -> Result<Refusal, String> {
    let bad = || {
        format!(
            "{} must look like `PUT /path: message`, got {spec:?}",
            env::REFUSE
        )
    };
    let (request, message) = spec.split_once(": ").ok_or_else(bad)?;
    let (method, path) = request.trim().split_once(' ').ok_or_else(bad)?;
    Ok(Refusal {
        method: method.to_owned(),
        path: path.trim().to_owned(),
        fault_message: message.to_owned(),
    })
}
