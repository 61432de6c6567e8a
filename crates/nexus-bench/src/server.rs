//! The server under test as a child process: started twice (the first start creates the data
//! directory; the second is a normal start, which is what `start_to_ready` reports), watched
//! for memory, stopped with SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nexus_testkit::openai::FakeOpenAi;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::Args;

pub(crate) struct ServerProcess {
    child: Child,
    _dir: tempfile::TempDir,
    grpc: SocketAddr,
    database: String,
    pub(crate) api_key: String,
    /// Spawn to ready on an empty data directory (migrations, bootstrap, key generation).
    pub(crate) first_start: Duration,
    /// Spawn to ready on an existing data directory.
    pub(crate) start_to_ready: Duration,
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn ready(http: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect(http).await else {
        return false;
    };
    let _ = stream.set_nodelay(true);
    if stream
        .write_all(b"GET /readyz HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut buf = [0u8; 12];
    stream.read_exact(&mut buf).await.is_ok() && &buf[9..12] == b"200"
}

impl ServerProcess {
    pub(crate) async fn start(args: &Args, fake: &FakeOpenAi) -> anyhow::Result<ServerProcess> {
        let bin = match &args.server_bin {
            Some(b) => b.clone(),
            None => std::env::current_exe()?
                .parent()
                .map(|d| d.join("nexus"))
                .unwrap_or_else(|| PathBuf::from("nexus")),
        };
        if !bin.exists() {
            bail!(
                "server binary {} not found; build it with `cargo build --release -p nexus-cli` \
                 or pass --server-bin",
                bin.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let grpc = free_addr()?;
        let http = free_addr()?;
        let database = args.database.clone();
        let mut command = Command::new(&bin);
        command
            .arg("serve")
            .env("NEXUS_DATA_DIR", dir.path())
            .env("NEXUS_GRPC_ADDR", grpc.to_string())
            .env("NEXUS_HTTP_ADDR", http.to_string())
            .env("OPENAI_API_KEY", fake.api_key())
            .env("OPENAI_BASE_URL", fake.base_url())
            .env("NEXUS_LOG", "warn")
            .env_remove("NEXUS_MASTER_KEY")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        if database != "sqlite" {
            command.env("NEXUS_DATABASE_URL", &database);
        }

        let (first_child, first_start) = spawn_until_ready(&mut command, http).await?;
        terminate(first_child).await;
        let (child, start_to_ready) = spawn_until_ready(&mut command, http).await?;
        let api_key = std::fs::read_to_string(dir.path().join("admin.key"))
            .context("the server wrote no admin.key")?
            .trim()
            .to_owned();
        Ok(ServerProcess {
            child,
            _dir: dir,
            grpc,
            database,
            api_key,
            first_start,
            start_to_ready,
        })
    }

    pub(crate) fn database_label(&self) -> String {
        if self.database == "sqlite" {
            "sqlite".into()
        } else {
            "postgres".into()
        }
    }

    pub(crate) fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    pub(crate) fn rss_mib(&self) -> anyhow::Result<f64> {
        let pid = self.child.id().context("server exited")?;
        rss_mib(pid)
    }

    /// CPU time (user + system) the server used so far.
    pub(crate) fn cpu_time(&self) -> anyhow::Result<Duration> {
        let pid = self.child.id().context("server exited")?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        // Fields after the command name (which may contain spaces) are space separated;
        // utime and stime are the 12th and 13th of them, in clock ticks.
        let rest = stat
            .rsplit_once(") ")
            .map(|(_, r)| r)
            .context("malformed /proc stat")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = fields
            .get(11..13)
            .context("short /proc stat")?
            .iter()
            .map(|f| f.parse::<u64>().unwrap_or(0))
            .sum();
        // Linux reports CPU time in USER_HZ ticks, 100 per second on every mainstream platform.
        Ok(Duration::from_millis(ticks * 10))
    }

    /// Samples RSS every `every` until stopped; the sampler returns the peak.
    pub(crate) fn sample_rss(&self, every: Duration) -> RssSampler {
        let pid = self.child.id();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            let mut peak: f64 = 0.0;
            let Some(pid) = pid else { return peak };
            loop {
                if let Ok(rss) = rss_mib(pid) {
                    peak = peak.max(rss);
                }
                tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = &mut stopped => return peak,
                }
            }
        });
        RssSampler { stop, handle }
    }

    pub(crate) async fn stop(self) {
        terminate(self.child).await;
    }
}

pub(crate) struct RssSampler {
    stop: oneshot::Sender<()>,
    handle: tokio::task::JoinHandle<f64>,
}

impl RssSampler {
    pub(crate) async fn stop(self) -> f64 {
        let _ = self.stop.send(());
        self.handle.await.unwrap_or(0.0)
    }
}

fn rss_mib(pid: u32) -> anyhow::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("no VmRSS in /proc status")?;
    Ok(kib / 1024.0)
}

async fn spawn_until_ready(
    command: &mut Command,
    http: SocketAddr,
) -> anyhow::Result<(Child, Duration)> {
    let started = Instant::now();
    let mut child = command.spawn().context("cannot start the server")?;
    let deadline = started + Duration::from_secs(30);
    loop {
        if ready(http).await {
            return Ok((child, started.elapsed()));
        }
        if let Some(status) = child.try_wait()? {
            bail!("the server exited during start: {status}");
        }
        if Instant::now() > deadline {
            bail!("the server was not ready within 30 s");
        }
        // Not `tokio::time::sleep`: tokio's timer counts whole milliseconds, which would add
        // up to a millisecond to the start measured.
        tokio::task::spawn_blocking(|| std::thread::sleep(POLL_EVERY)).await?;
    }
}

/// How often a starting server is asked whether it is ready.
const POLL_EVERY: Duration = Duration::from_micros(200);

async fn terminate(mut child: Child) {
    if let Some(pid) = child.id() {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .await;
    }
    if tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .is_err()
    {
        let _ = child.kill().await;
    }
}
