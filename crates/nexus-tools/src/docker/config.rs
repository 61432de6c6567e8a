//! `DockerConfig`: where the engine is, which image runs the code and how containers are kept,
//! as the operator writes it, and its validation into [`Settings`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The engine address used when neither the configuration nor `DOCKER_HOST` names one.
pub const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

/// The image built by `scripts/services/docker.sh`.
pub const DEFAULT_IMAGE: &str = "nexus-sandbox:latest";

/// Settings of the Docker sandbox backend. Every field has a default; a value out of range is
/// refused by [`DockerSandbox::new`](super::DockerSandbox::new) with the key named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DockerConfig {
    /// Address of the Docker engine: `unix:///path/to/docker.sock` or `tcp://host:port`
    /// (plain HTTP: keep it on a private interface). Default: `DOCKER_HOST` when set, else
    /// `unix:///var/run/docker.sock`.
    pub socket: Option<String>,
    /// Image the code runs in; it needs `sh`, `python3`, `tar`, `find`, `sleep`. Default
    /// `nexus-sandbox:latest` (built by `scripts/services/docker.sh`).
    pub image: String,
    /// Seconds a session's warm container stays after its last run. 1 to 86400. Default 300.
    pub idle_timeout_secs: u64,
    /// Most warm containers at once (one per session); a session past it runs in a fresh
    /// container removed after the run, once no idle one can be evicted. 0 turns warm
    /// containers off. At most 1024. Default 32.
    pub max_warm: usize,
    /// User the code runs as, `uid:gid`; never root. Default `65534:65534` (nobody).
    pub user: String,
    /// OCI runtime of the containers (e.g. `runsc` for gVisor). Default: the engine's default
    /// (`runc`).
    pub runtime: Option<String>,
    /// Docker network of the runs the agent's policy lets reach the network (runs without
    /// network get `none`). `host` is refused. Default `bridge`.
    pub network: String,
    /// Size of `/tmp` and of `/dev/shm` in each container, in MiB (held in memory, counted in
    /// the memory limit). 1 to 1024. Default 16.
    pub tmp_mib: u64,
    /// Name of this server among those sharing the engine: containers are labelled with it,
    /// and start-up and shutdown remove every container with this name left behind (by a
    /// crash). Servers sharing one engine need different names. `[A-Za-z0-9_.-]`, at most 63.
    /// Default: the host name.
    pub instance: Option<String>,
}

impl Default for DockerConfig {
    fn default() -> Self {
        DockerConfig {
            socket: None,
            image: DEFAULT_IMAGE.to_owned(),
            idle_timeout_secs: 300,
            max_warm: 32,
            user: "65534:65534".to_owned(),
            runtime: None,
            network: "bridge".to_owned(),
            tmp_mib: 16,
            instance: None,
        }
    }
}

/// A setting of [`DockerConfig`] out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("docker sandbox setting `{key}`: {reason}")]
pub struct DockerConfigError {
    /// The key, as written in the configuration.
    pub key: &'static str,
    /// What is wrong and what is accepted.
    pub reason: String,
}

fn refuse<T>(key: &'static str, reason: impl Into<String>) -> Result<T, DockerConfigError> {
    Err(DockerConfigError {
        key,
        reason: reason.into(),
    })
}

/// [`DockerConfig`] once validated.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// `unix:///…` or `tcp://…`.
    pub(crate) host: String,
    pub(crate) image: String,
    pub(crate) idle_timeout: Duration,
    pub(crate) max_warm: usize,
    pub(crate) user: String,
    pub(crate) runtime: Option<String>,
    pub(crate) network: String,
    pub(crate) tmp_bytes: u64,
    pub(crate) instance: String,
}

fn is_label_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// The host name, from the kernel or `HOSTNAME`, made label-safe; `nexus` when unknown.
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let clean: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        .take(63)
        .collect();
    if clean.is_empty() {
        "nexus".to_owned()
    } else {
        clean
    }
}

impl Settings {
    /// Validates `c`; `docker_host` is the value of `DOCKER_HOST`, if any.
    pub(crate) fn new(
        c: &DockerConfig,
        docker_host: Option<String>,
    ) -> Result<Self, DockerConfigError> {
        let host = c
            .socket
            .clone()
            .or(docker_host.filter(|h| !h.trim().is_empty()))
            .unwrap_or_else(|| DEFAULT_SOCKET.to_owned());
        if !(host.starts_with("unix:///") || host.starts_with("tcp://")) {
            return refuse(
                "socket",
                format!(
                    "`{host}` is neither unix:///path nor tcp://host:port (TLS is not supported)"
                ),
            );
        }
        if c.image.trim().is_empty() {
            return refuse("image", "must name an image, e.g. nexus-sandbox:latest");
        }
        if !(1..=86_400).contains(&c.idle_timeout_secs) {
            return refuse("idle_timeout_secs", "must be 1 to 86400 seconds");
        }
        if c.max_warm > 1024 {
            return refuse("max_warm", "must be at most 1024");
        }
        let mut ids = c.user.splitn(2, ':');
        let uid = ids.next().unwrap_or_default();
        let gid = ids.next();
        let numeric = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !numeric(uid) || gid.is_some_and(|g| !numeric(g)) {
            return refuse("user", "must be numeric `uid:gid`, e.g. 65534:65534");
        }
        if uid.trim_start_matches('0').is_empty()
            || gid.is_some_and(|g| g.trim_start_matches('0').is_empty())
        {
            return refuse("user", "the code must not run as root (uid or gid 0)");
        }
        if let Some(runtime) = &c.runtime
            && !is_label_safe(runtime)
        {
            return refuse("runtime", "must be a runtime name such as runsc");
        }
        if c.network.trim().is_empty() || c.network == "host" || c.network.starts_with("container:")
        {
            return refuse(
                "network",
                "must name a Docker network (default bridge); host and container: are refused",
            );
        }
        if !(1..=1024).contains(&c.tmp_mib) {
            return refuse("tmp_mib", "must be 1 to 1024 MiB");
        }
        let instance = match &c.instance {
            Some(name) if is_label_safe(name) => name.clone(),
            Some(_) => {
                return refuse("instance", "must be 1 to 63 characters of [A-Za-z0-9_.-]");
            }
            None => host_name(),
        };
        Ok(Settings {
            host,
            image: c.image.trim().to_owned(),
            idle_timeout: Duration::from_secs(c.idle_timeout_secs),
            max_warm: c.max_warm,
            user: c.user.clone(),
            runtime: c.runtime.clone(),
            network: c.network.clone(),
            tmp_bytes: c.tmp_mib * 1024 * 1024,
            instance,
        })
    }
}
