//! The client of Firecracker's API: HTTP/1.1 on the `--api-sock` unix socket, one
//! keep-alive connection per VM. A 2xx is success; any other status is a fault whose
//! `fault_message` is kept word for word.

use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::UnixStream;
use tokio::task::JoinHandle;

/// Largest response body read (Firecracker's are a few hundred bytes).
const MAX_RESPONSE: usize = 64 * 1024;

/// A request Firecracker did not accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ApiError {
    /// Firecracker answered with an error status.
    #[error("firecracker refused {method} {path} ({status}): {message}")]
    Fault {
        /// The request method.
        method: &'static str,
        /// The request path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// Its `fault_message` (or the raw body when it had none).
        message: String,
    },
    /// The request did not get an answer.
    #[error("firecracker API {method} {path}: {message}")]
    Transport {
        /// The request method.
        method: &'static str,
        /// The request path.
        path: String,
        /// What failed.
        message: String,
    },
}

/// A connection to one Firecracker API socket.
#[derive(Debug)]
pub(crate) struct ApiClient {
    sender: SendRequest<Full<Bytes>>,
    connection: JoinHandle<()>,
}

impl Drop for ApiClient {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl ApiClient {
    /// Connects to the socket at `path` (it must exist and be served).
    pub(crate) async fn connect(path: &Path) -> std::io::Result<Self> {
        let stream = UnixStream::connect(path).await?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(std::io::Error::other)?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(ApiClient { sender, connection })
    }

    /// `PUT path` with a JSON body; Firecracker answers 204 on success.
    pub(crate) async fn put(&mut self, path: &str, body: &Value) -> Result<(), ApiError> {
        let transport = |message: String| ApiError::Transport {
            method: "PUT",
            path: path.to_owned(),
            message,
        };
        let request = Request::builder()
            .method(Method::PUT)
            .uri(path)
            .header(header::HOST, "localhost")
            .header(header::ACCEPT, "application/json")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| transport(e.to_string()))?;
        self.sender
            .ready()
            .await
            .map_err(|e| transport(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status();
        let bytes = Limited::new(response.into_body(), MAX_RESPONSE)
            .collect()
            .await
            .map_err(|e| transport(format!("reading the answer: {e}")))?
            .to_bytes();
        if status.is_success() {
            return Ok(());
        }
        Err(ApiError::Fault {
            method: "PUT",
            path: path.to_owned(),
            status: status.as_u16(),
            message: fault_message(&bytes),
        })
    }
}

/// The `fault_message` of an error body, or the body itself.
fn fault_message(body: &[u8]) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("fault_message")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::fault_message;

    #[test]
    fn fault_message_is_taken_word_for_word() {
        let body = br#"{"fault_message":"The requested operation is not supported after starting the microVM."}"#;
        assert_eq!(
            fault_message(body),
            "The requested operation is not supported after starting the microVM."
        );
        assert_eq!(fault_message(b"  plain text \n"), "plain text");
    }
}
