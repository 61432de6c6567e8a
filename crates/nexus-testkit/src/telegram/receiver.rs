//! [`WebhookEndpoint`]: an HTTP endpoint on 127.0.0.1 that hands every request to a function,
//! so a test can register it with `setWebhook` and answer with the adapter under test.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Response, StatusCode};
use axum::serve::ListenerExt;
use tokio::sync::oneshot;

/// A running endpoint; it stops when dropped.
#[derive(Debug)]
pub struct WebhookEndpoint {
    addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

impl WebhookEndpoint {
    /// Serves `handler` on `127.0.0.1:0`: it gets the request's headers (names in lower case)
    /// and body, and returns the status and body to answer.
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn serve<F, Fut>(handler: F) -> WebhookEndpoint
    where
        F: Fn(Vec<(String, String)>, Vec<u8>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = (u16, Vec<u8>)> + Send + 'static,
    {
        let listener = match tokio::net::TcpListener::bind(("127.0.0.1", 0)).await {
            Ok(l) => l,
            Err(err) => panic!("cannot bind a webhook endpoint on 127.0.0.1: {err}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(err) => panic!("cannot read the webhook endpoint's address: {err}"),
        };
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let handler = handler.clone();
            async move {
                let headers = headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect();
                let (status, body) = handler(headers, body.to_vec()).await;
                let mut response = Response::new(Body::from(body));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                response
            }
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let listener = listener.tap_io(|tcp| {
            if let Err(err) = tcp.set_nodelay(true) {
                tracing::debug!(error = %err, "Cannot set TCP_NODELAY");
            }
        });
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(err) = serve.await {
                tracing::warn!(error = %err, "Webhook endpoint stopped");
            }
        });
        WebhookEndpoint { addr, _stop: stop }
    }

    /// The URL to register, `http://127.0.0.1:PORT/webhook`.
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }
}
