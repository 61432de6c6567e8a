//! HTTP helpers every adapter shares: error classification of transport failures (with URLs
//! removed, since Telegram's carry the token), bounded body reads and downloads, and the
//! rate-limit wait.

use std::future::Future;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use nexus_core::ChannelError;
use tracing::debug;

/// A transport failure, with the URL stripped (it may carry a token).
pub fn transport(err: reqwest::Error) -> ChannelError {
    ChannelError::Transport {
        message: err.without_url().to_string(),
    }
}

/// Reads a response body of at most `max` bytes; a longer one is an error, not truncated.
pub async fn read_capped(response: reqwest::Response, max: usize) -> Result<Bytes, ChannelError> {
    if let Some(len) = response.content_length()
        && len > max as u64
    {
        return Err(ChannelError::Rejected {
            message: format!("response of {len} bytes is larger than the {max}-byte limit"),
        });
    }
    let mut body = BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport)?;
        if body.len() + chunk.len() > max {
            return Err(ChannelError::Rejected {
                message: format!("response is larger than the {max}-byte limit"),
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct Download {
    /// The bytes.
    pub bytes: Bytes,
    /// The `Content-Type` the server gave, if any.
    pub content_type: Option<String>,
}

/// Downloads `request`'s body, at most `max` bytes.
pub async fn download(
    request: reqwest::RequestBuilder,
    max: u64,
) -> Result<Download, ChannelError> {
    let response = request.send().await.map_err(transport)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ChannelError::Rejected {
            message: format!("download failed with HTTP {}", status.as_u16()),
        });
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let bytes = read_capped(response, max).await?;
    Ok(Download {
        bytes,
        content_type,
    })
}

/// Runs `op`, waiting out the platform's rate-limit answers: a `RateLimited` error with a
/// delay up to `max_wait` is slept and the operation tried again, at most `attempts` times in
/// all. A longer (or unknown) delay, or the last attempt's, is returned to the caller.
pub async fn obey_rate_limits<T, F, Fut>(
    max_wait: Duration,
    attempts: u32,
    mut op: F,
) -> Result<T, ChannelError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, ChannelError>>,
{
    let mut attempt = 1;
    loop {
        match op().await {
            Err(ChannelError::RateLimited {
                retry_after: Some(wait),
            }) if wait <= max_wait && attempt < attempts => {
                debug!(
                    wait_ms = wait.as_millis() as u64,
                    attempt, "Rate limited by the platform; waiting"
                );
                tokio::time::sleep(wait).await;
                attempt += 1;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_short_rate_limit_is_waited_out_and_retried() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let out = obey_rate_limits(Duration::from_secs(10), 3, || async {
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                Err(ChannelError::RateLimited {
                    retry_after: Some(Duration::from_secs(3)),
                })
            } else {
                Ok(7)
            }
        })
        .await;
        assert_eq!(out, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        assert!(started.elapsed() >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limit_longer_than_the_cap_is_returned_at_once() {
        let calls = AtomicU32::new(0);
        let out: Result<(), _> = obey_rate_limits(Duration::from_secs(10), 3, || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Err(ChannelError::RateLimited {
                retry_after: Some(Duration::from_secs(600)),
            })
        })
        .await;
        assert!(matches!(out, Err(ChannelError::RateLimited { .. })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
