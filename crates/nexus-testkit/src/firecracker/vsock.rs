//! Firecracker's host side of vsock (docs/vsock.md, "Host-Initiated Connections"): the host
//! connects to `uds_path`, writes `CONNECT <port>\n`; when something in the guest listens on
//! that port the fake answers `OK <host port>\n` and bridges the two streams, otherwise it
//! closes the connection (Firecracker resets it).
//!
//! "The guest listens on port P" means: the guest program listens on the unix socket
//! `<guest dir>/port-P.sock`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

/// Longest `CONNECT` line accepted, and how long the host has to send it.
const MAX_LINE: u64 = 64;
const LINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Firecracker numbers host-side ports from 2^30 (docs/vsock.md shows `OK 1073741824`).
const FIRST_HOST_PORT: u32 = 1 << 30;

/// Where the guest listens, and whether it answers.
#[derive(Debug)]
pub(crate) struct GuestPorts {
    /// `None` until the guest has booted.
    pub(crate) dir: std::sync::Mutex<Option<PathBuf>>,
    /// The guest accepts and never answers.
    pub(crate) hang: bool,
    next_port: AtomicU32,
}

impl GuestPorts {
    pub(crate) fn new(hang: bool) -> Arc<Self> {
        Arc::new(GuestPorts {
            dir: std::sync::Mutex::new(None),
            hang,
            next_port: AtomicU32::new(FIRST_HOST_PORT),
        })
    }

    fn socket(&self, port: u32) -> Option<PathBuf> {
        let dir = crate::journal::lock(&self.dir);
        dir.as_ref().map(|d| d.join(format!("port-{port}.sock")))
    }
}

/// Accepts host connections on `listener` until the task is aborted.
pub(crate) async fn serve(listener: UnixListener, ports: Arc<GuestPorts>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let ports = Arc::clone(&ports);
        tokio::spawn(async move {
            let _ = forward(stream, &ports).await;
        });
    }
}

async fn forward(host: UnixStream, ports: &GuestPorts) -> std::io::Result<()> {
    let mut host = BufReader::new(host);
    let mut line = String::new();
    let mut limited = (&mut host).take(MAX_LINE);
    let read = limited.read_line(&mut line);
    match tokio::time::timeout(LINE_TIMEOUT, read).await {
        Ok(Ok(_)) => {}
        _ => return Ok(()),
    }
    let Some(port) = parse_connect(&line) else {
        // Firecracker drops a connection whose first line is not a CONNECT command.
        return Ok(());
    };
    let Some(path) = ports.socket(port) else {
        return Ok(());
    };
    let guest = match connect(&path).await {
        Some(guest) => guest,
        // Nobody listens on that port in the guest: the host connection is closed.
        None => return Ok(()),
    };
    let host_port = ports.next_port.fetch_add(1, Ordering::Relaxed);
    host.get_mut()
        .write_all(format!("OK {host_port}\n").as_bytes())
        .await?;
    if ports.hang {
        // Hold both ends open and swallow what the host sends.
        let mut sink = tokio::io::sink();
        let _ = tokio::io::copy(&mut host, &mut sink).await;
        drop(guest);
        return Ok(());
    }
    let mut guest = guest;
    let mut host = host;
    let _ = tokio::io::copy_bidirectional(&mut host, &mut guest).await;
    Ok(())
}

async fn connect(path: &Path) -> Option<UnixStream> {
    UnixStream::connect(path).await.ok()
}

/// `CONNECT <port>\n` → the port.
fn parse_connect(line: &str) -> Option<u32> {
    let rest = line.strip_suffix('\n')?.strip_prefix("CONNECT ")?;
    rest.trim_end_matches('\r').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::parse_connect;

    #[test]
    fn connect_line_needs_the_newline_and_a_decimal_port() {
        assert_eq!(parse_connect("CONNECT 52\n"), Some(52));
        assert_eq!(parse_connect("CONNECT 52"), None);
        assert_eq!(parse_connect("CONNECT x\n"), None);
        assert_eq!(parse_connect("connect 52\n"), None);
    }
}
