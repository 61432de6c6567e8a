//! The host side of the channel to the guest agent: Firecracker's host-initiated vsock
//! handshake (connect to `uds_path`, send `CONNECT <port>\n`, read `OK <n>\n`), then frames of
//! a 4-byte big-endian length and that many bytes.

use std::path::Path;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

/// Longest acknowledgement line read (`OK 4294967295\n` is 14 bytes).
const MAX_ACK: u64 = 32;
/// How long one handshake may take; a guest that is still booting leaves it unanswered or
/// closes it, and the caller retries.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_millis(500);

/// A framing or handshake failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ChannelError {
    /// The socket failed.
    #[error("vsock: {0}")]
    Io(#[from] std::io::Error),
    /// The peer announced a frame larger than allowed.
    #[error("the guest agent answered {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The cap.
        max: usize,
    },
}

/// One handshake attempt: the connected stream once the guest accepted the connection to
/// `port`, `None` when it is not (yet) listening.
pub(crate) async fn connect(uds: &Path, port: u32) -> Option<BufReader<UnixStream>> {
    tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(uds, port))
        .await
        .ok()
        .flatten()
}

async fn handshake(uds: &Path, port: u32) -> Option<BufReader<UnixStream>> {
    let mut stream = UnixStream::connect(uds).await.ok()?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .await
        .ok()?;
    let mut stream = BufReader::new(stream);
    let mut line = String::new();
    (&mut stream)
        .take(MAX_ACK)
        .read_line(&mut line)
        .await
        .ok()?;
    is_ack(&line).then_some(stream)
}

/// `OK <host port>\n`.
fn is_ack(line: &str) -> bool {
    line.strip_suffix('\n')
        .and_then(|l| l.strip_prefix("OK "))
        .is_some_and(|port| port.parse::<u32>().is_ok())
}

/// Writes one frame.
pub(crate) async fn write_frame(
    stream: &mut BufReader<UnixStream>,
    body: &[u8],
) -> Result<(), ChannelError> {
    let len = u32::try_from(body.len()).map_err(|_| ChannelError::TooLarge {
        len: body.len(),
        max: u32::MAX as usize,
    })?;
    let stream = stream.get_mut();
    stream.write_all(&len.to_be_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    Ok(())
}

/// Reads one frame of at most `max` bytes; a longer announcement is refused unread.
pub(crate) async fn read_frame(
    stream: &mut BufReader<UnixStream>,
    max: usize,
) -> Result<Vec<u8>, ChannelError> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max {
        return Err(ChannelError::TooLarge { len, max });
    }
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn ack_is_ok_a_port_and_a_newline() {
        assert!(is_ack("OK 1073741824\n"));
        assert!(!is_ack("OK 1073741824"));
        assert!(!is_ack("ERR\n"));
        assert!(!is_ack("OK x\n"));
    }

    #[tokio::test]
    async fn frames_round_trip_and_oversized_ones_are_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let (mut a, mut b) = (BufReader::new(a), BufReader::new(b));
        write_frame(&mut a, b"{\"x\":1}").await.unwrap();
        assert_eq!(read_frame(&mut b, 64).await.unwrap(), b"{\"x\":1}");
        write_frame(&mut a, &[b'x'; 100]).await.unwrap();
        let err = read_frame(&mut b, 64).await.unwrap_err();
        assert!(matches!(err, ChannelError::TooLarge { len: 100, max: 64 }));
    }
}
