//! WebSocket connections (Discord Gateway, Slack Socket Mode): `ws://` for local servers and
//! fakes, `wss://` through rustls with the aws-lc-rs provider (the one reqwest uses) and the
//! Mozilla root certificates.

use std::sync::{Arc, OnceLock};

use nexus_core::ChannelError;
use tokio::net::TcpStream;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// An open WebSocket.
pub type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Largest frame accepted from a platform.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

fn tls() -> Result<Arc<rustls::ClientConfig>, ChannelError> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map(|b| Arc::new(b.with_root_certificates(roots).with_no_client_auth()))
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|message| ChannelError::Transport { message })
}

/// Opens a WebSocket to `url` (`ws://` or `wss://`), with Nagle off and frames capped.
pub async fn connect(url: &str) -> Result<Socket, ChannelError> {
    let config = tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .max_frame_size(Some(MAX_FRAME_BYTES))
        .max_message_size(Some(MAX_FRAME_BYTES));
    let connector = if url.starts_with("wss://") {
        Some(Connector::Rustls(tls()?))
    } else {
        None
    };
    let (socket, _response) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(config), true, connector)
            .await
            .map_err(|e| ChannelError::Transport {
                message: format!("WebSocket connection failed: {e}"),
            })?;
    Ok(socket)
}
