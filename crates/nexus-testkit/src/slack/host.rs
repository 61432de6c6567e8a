//! A tiny HTTP server handing every request to a closure: what stands in for the gateway's
//! `/channels/{id}/webhook` route when an Events API adapter is tested against the fake.

use std::future::Future;
use std::net::SocketAddr;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response, StatusCode};

use crate::journal::{Journal, Stop};

/// An answer: status, headers, body.
pub type HostReply = (u16, Vec<(String, String)>, Vec<u8>);

/// A running webhook host. It stops when dropped.
#[derive(Debug)]
pub struct WebhookHost {
    addr: SocketAddr,
    _stop: Stop,
}

impl WebhookHost {
    /// Serves on `127.0.0.1:0`, answering every request with `handler(headers, body)` (header
    /// names in lowercase).
    ///
    /// # Panics
    /// When no loopback port can be bound (a broken test machine).
    pub async fn start<F, Fut>(handler: F) -> WebhookHost
    where
        F: Fn(Vec<(String, String)>, Vec<u8>) -> Fut + Clone + Send + Sync + 'static,
        Fut: Future<Output = HostReply> + Send + 'static,
    {
        let listener =
            match tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await {
                Ok(listener) => listener,
                Err(err) => panic!("cannot bind the webhook host on 127.0.0.1: {err}"),
            };
        let addr = match listener.local_addr() {
            Ok(addr) => addr,
            Err(err) => panic!("cannot read the webhook host's address: {err}"),
        };
        let app = Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let handler = handler.clone();
            async move {
                let headers = headers
                    .iter()
                    .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
                    .collect();
                let (status, headers, body) = handler(headers, body.to_vec()).await;
                let mut response = Response::new(Body::from(body));
                *response.status_mut() =
                    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                for (name, value) in headers {
                    if let (Ok(name), Ok(value)) =
                        (HeaderName::try_from(name), HeaderValue::try_from(value))
                    {
                        response.headers_mut().append(name, value);
                    }
                }
                response
            }
        });
        let journal: Journal<(), ()> = Journal::new(0);
        let stop = journal.serve(listener, app, "webhook-host");
        WebhookHost { addr, _stop: stop }
    }

    /// The URL to give the fake as the Request URL.
    pub fn url(&self) -> String {
        format!("http://{}/webhook", self.addr)
    }
}
