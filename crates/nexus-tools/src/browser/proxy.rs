//! The browser's only way out: a SOCKS5 proxy on loopback that Chromium is started behind
//! (`--proxy-server=socks5://…`, loopback not bypassed). Chromium hands it host names
//! unresolved; the proxy resolves them with the [`NetworkGuard`] and connects only to the
//! addresses it checked. This covers what the Fetch domain does not see (WebSockets, and any
//! other connection a page opens) and closes DNS rebinding: the address checked is the address
//! connected to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;

use super::guard::{PROXY_FRAME, Refusals};
use crate::net::{GuardError, NetworkGuard};

/// Connections tunnelled at once.
const MAX_TUNNELS: usize = 512;
/// Longest the SOCKS handshake, the name resolution or the connection may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// SOCKS5 reply codes.
const SUCCEEDED: u8 = 0;
const NOT_ALLOWED: u8 = 2;
const HOST_UNREACHABLE: u8 = 4;
const CONNECTION_REFUSED: u8 = 5;
const COMMAND_NOT_SUPPORTED: u8 = 7;
const ADDRESS_NOT_SUPPORTED: u8 = 8;

/// A running proxy; it stops (with every tunnel) when dropped.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    stop: CancellationToken,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Proxy {
    /// Listens on a free loopback port.
    pub(crate) async fn start(
        guard: NetworkGuard,
        refusals: Arc<Refusals>,
    ) -> std::io::Result<Proxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let tunnels = Arc::new(Semaphore::new(MAX_TUNNELS));
        let accepting = stop.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    () = accepting.cancelled() => break,
                    accepted = listener.accept() => accepted,
                };
                let Ok((client, _)) = accepted else {
                    continue;
                };
                let Ok(permit) = Arc::clone(&tunnels).try_acquire_owned() else {
                    continue;
                };
                let (guard, refusals, stop) =
                    (guard.clone(), Arc::clone(&refusals), accepting.clone());
                tokio::spawn(async move {
                    tokio::select! {
                        () = stop.cancelled() => {}
                        () = serve(client, &guard, &refusals) => {}
                    }
                    drop(permit);
                });
            }
        });
        Ok(Proxy { addr, stop })
    }

    /// The `--proxy-server` value for Chromium.
    pub(crate) fn chromium_flag(&self) -> String {
        format!("--proxy-server=socks5://{}", self.addr)
    }
}

/// One connection: the SOCKS5 handshake, the guard, then bytes both ways.
async fn serve(mut client: TcpStream, guard: &NetworkGuard, refusals: &Refusals) {
    let upstream = match tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        handshake(&mut client, guard, refusals),
    )
    .await
    {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(code)) => {
            let _ = client.write_all(&reply(code)).await;
            return;
        }
        Err(_) => return,
    };
    let Some(mut upstream) = upstream else {
        return;
    };
    if client.write_all(&reply(SUCCEEDED)).await.is_err() {
        return;
    }
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}

fn reply(code: u8) -> [u8; 10] {
    [5, code, 0, 1, 0, 0, 0, 0, 0, 0]
}

/// Reads the client's greeting and request; the upstream connection, `None` when the client
/// spoke something else (closed without a reply), or the SOCKS error code to answer.
async fn handshake(
    client: &mut TcpStream,
    guard: &NetworkGuard,
    refusals: &Refusals,
) -> Result<Option<TcpStream>, u8> {
    let io = |_| HOST_UNREACHABLE;
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await.map_err(io)?;
    if head[0] != 5 {
        return Ok(None);
    }
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await.map_err(io)?;
    if !methods.contains(&0) {
        let _ = client.write_all(&[5, 0xff]).await;
        return Ok(None);
    }
    client.write_all(&[5, 0]).await.map_err(io)?;

    let mut request = [0u8; 4];
    client.read_exact(&mut request).await.map_err(io)?;
    if request[1] != 1 {
        return Err(COMMAND_NOT_SUPPORTED);
    }
    let host = match request[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await.map_err(io)?;
            IpAddr::V4(Ipv4Addr::from(ip)).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await.map_err(io)?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await.map_err(io)?;
            String::from_utf8(name).map_err(|_| ADDRESS_NOT_SUPPORTED)?
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await.map_err(io)?;
            IpAddr::V6(Ipv6Addr::from(ip)).to_string()
        }
        _ => return Err(ADDRESS_NOT_SUPPORTED),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await.map_err(io)?;
    let port = u16::from_be_bytes(port);

    let addrs = match guard.resolve(&host, port).await {
        Ok(addrs) => addrs,
        Err(err @ GuardError::Refused { .. }) => {
            tracing::info!(host, port, %err, "Browser connection refused");
            refusals.record(
                PROXY_FRAME.to_owned(),
                false,
                &format!("{host}:{port}"),
                err.to_string(),
                true,
            );
            return Err(NOT_ALLOWED);
        }
        Err(err @ GuardError::Resolve { .. }) => {
            refusals.record(
                PROXY_FRAME.to_owned(),
                false,
                &format!("{host}:{port}"),
                err.to_string(),
                false,
            );
            return Err(HOST_UNREACHABLE);
        }
    };
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(stream) => return Ok(Some(stream)),
            Err(err) => last = Some(err),
        }
    }
    let message = last.map(|e| e.to_string()).unwrap_or_default();
    refusals.record(
        PROXY_FRAME.to_owned(),
        false,
        &format!("{host}:{port}"),
        format!("cannot connect to {host}:{port}: {message}"),
        false,
    );
    Err(CONNECTION_REFUSED)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A SOCKS5 CONNECT to `host:port` by name; the reply code.
    async fn connect(proxy: SocketAddr, host: &str, port: u16) -> (TcpStream, u8) {
        let mut socket = TcpStream::connect(proxy).await.unwrap();
        socket.write_all(&[5, 1, 0]).await.unwrap();
        let mut choice = [0u8; 2];
        socket.read_exact(&mut choice).await.unwrap();
        assert_eq!(choice, [5, 0]);
        let mut request = vec![5, 1, 0, 3, u8::try_from(host.len()).unwrap()];
        request.extend_from_slice(host.as_bytes());
        request.extend_from_slice(&port.to_be_bytes());
        socket.write_all(&request).await.unwrap();
        let mut answer = [0u8; 10];
        socket.read_exact(&mut answer).await.unwrap();
        (socket, answer[1])
    }

    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = socket.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn refused_hosts_get_not_allowed_and_are_recorded() {
        let target = echo_server().await;
        let refusals = Arc::new(Refusals::default());
        let proxy = Proxy::start(NetworkGuard::public_only(), Arc::clone(&refusals))
            .await
            .unwrap();
        let (_, code) = connect(proxy.addr, "localhost", target.port()).await;
        assert_eq!(code, NOT_ALLOWED);
        let (_, code) = connect(proxy.addr, "127.0.0.1", target.port()).await;
        assert_eq!(code, NOT_ALLOWED);
        let seen = refusals.since(0, PROXY_FRAME);
        assert_eq!(seen.len(), 2);
        assert!(
            seen.iter()
                .all(|r| r.refused && r.reason.contains("loopback")),
            "{seen:?}"
        );
    }

    #[tokio::test]
    async fn allowed_hosts_are_tunnelled() {
        let target = echo_server().await;
        let guard = NetworkGuard::allowing(vec!["127.0.0.0/8".parse().unwrap()]);
        let refusals = Arc::new(Refusals::default());
        let proxy = Proxy::start(guard, Arc::clone(&refusals)).await.unwrap();
        let (mut socket, code) = connect(proxy.addr, "127.0.0.1", target.port()).await;
        assert_eq!(code, SUCCEEDED);
        socket.write_all(b"ping").await.unwrap();
        let mut back = [0u8; 4];
        socket.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"ping");

        // Nothing listens on port 1: the failure is recorded, not as a refusal.
        let (_, code) = connect(proxy.addr, "127.0.0.1", 1).await;
        assert_eq!(code, CONNECTION_REFUSED);
        let seen = refusals.since(0, PROXY_FRAME);
        assert!(seen.len() == 1 && !seen[0].refused, "{seen:?}");
    }
}
