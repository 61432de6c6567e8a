//! The SSRF guard inside the browser: every request any page makes (navigations, redirects,
//! subresources, iframes, workers, fetch/XHR) is paused by the CDP Fetch domain, enabled on
//! the browser target so it covers every context and out-of-process frame. Its host is
//! resolved and checked by the [`NetworkGuard`]; refused requests fail with `BlockedByClient`,
//! the others continue. Refusals are recorded so an action can say why a navigation failed.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};

use super::cdp::{Connection, Event};
use crate::net::{GuardError, NetworkGuard};

/// Refusals kept for actions to report.
const KEPT: usize = 256;
/// Requests checked at once (each may wait on DNS).
const CONCURRENT_CHECKS: usize = 32;
/// Longest a name resolution may take before the request is refused.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Unread browser events kept (requests beyond it stay paused until their page gives up).
pub(crate) const EVENT_BUFFER: usize = 4096;
/// The frame id of what the proxy records (it does not know frames).
pub(crate) const PROXY_FRAME: &str = "";

/// A request the guard refused, or a connection the proxy could not make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    seq: u64,
    /// The frame that made the request (a page's main frame id is its target id).
    pub(crate) frame_id: String,
    /// Whether it was a document (navigation, redirect, iframe) rather than a subresource.
    pub(crate) document: bool,
    /// The URL (cut to 200 characters).
    pub(crate) url: String,
    /// Why (`refused: …` when the guard refused).
    pub(crate) reason: String,
    /// Whether the guard refused it (rather than the connection failing).
    pub(crate) refused: bool,
}

/// The recent refusals of one browser.
#[derive(Debug, Default)]
pub(crate) struct Refusals {
    next: AtomicU64,
    kept: Mutex<VecDeque<Refusal>>,
}

impl Refusals {
    /// A mark: refusals after it are returned by [`Refusals::since`].
    pub(crate) fn mark(&self) -> u64 {
        self.next.load(Ordering::SeqCst)
    }

    /// Refusals of `frame_id` after `mark`, oldest first.
    pub(crate) fn since(&self, mark: u64, frame_id: &str) -> Vec<Refusal> {
        self.kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter(|r| r.seq >= mark && r.frame_id == frame_id)
            .cloned()
            .collect()
    }

    /// Records a refusal (`refused`) or a failed connection.
    pub(crate) fn record(
        &self,
        frame_id: String,
        document: bool,
        url: &str,
        reason: String,
        refused: bool,
    ) {
        let seq = self.next.fetch_add(1, Ordering::SeqCst);
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() == KEPT {
            kept.pop_front();
        }
        kept.push_back(Refusal {
            seq,
            frame_id,
            document,
            url: url.chars().take(200).collect(),
            reason,
            refused,
        });
    }
}

/// Turns interception on for the whole browser. Call before any page exists.
pub(crate) async fn enable(conn: &Connection) -> Result<(), super::cdp::CdpError> {
    conn.call(
        None,
        "Fetch.enable",
        json!({ "patterns": [{ "urlPattern": "*", "requestStage": "Request" }] }),
    )
    .await
    .map(drop)
}

/// Answers paused requests until the browser's events end (the connection closed).
pub(crate) async fn run(
    conn: Arc<Connection>,
    mut events: mpsc::Receiver<Event>,
    guard: NetworkGuard,
    refusals: Arc<Refusals>,
) {
    let permits = Arc::new(Semaphore::new(CONCURRENT_CHECKS));
    while let Some(event) = events.recv().await {
        if event.method != "Fetch.requestPaused" {
            continue;
        }
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            break;
        };
        let conn = Arc::clone(&conn);
        let guard = guard.clone();
        let refusals = Arc::clone(&refusals);
        tokio::spawn(async move {
            answer(&conn, &guard, &refusals, event.params).await;
            drop(permit);
        });
    }
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

async fn answer(conn: &Connection, guard: &NetworkGuard, refusals: &Refusals, params: Value) {
    let request_id = str_of(&params, "requestId");
    let url = params
        .get("request")
        .map(|r| str_of(r, "url"))
        .unwrap_or_default();
    let verdict = check(guard, url).await;
    let result = match verdict {
        Ok(()) => {
            conn.call(
                None,
                "Fetch.continueRequest",
                json!({ "requestId": request_id }),
            )
            .await
        }
        Err(reason) => {
            let document = matches!(str_of(&params, "resourceType"), "Document");
            tracing::info!(url, reason, "Browser request refused");
            refusals.record(
                str_of(&params, "frameId").to_owned(),
                document,
                url,
                reason,
                true,
            );
            conn.call(
                None,
                "Fetch.failRequest",
                json!({ "requestId": request_id, "errorReason": "BlockedByClient" }),
            )
            .await
        }
    };
    if let Err(err) = result {
        // The request went away (its page closed) or the browser did.
        tracing::debug!(%err, "Paused request not answered");
    }
}

/// Whether a page may load `url`; the refusal text otherwise (`refused: …`).
pub(crate) async fn check(guard: &NetworkGuard, url: &str) -> Result<(), String> {
    let parsed = url::Url::parse(url).map_err(|_| format!("refused: {url:.100} is not a URL"))?;
    let default_port = match parsed.scheme() {
        "http" | "ws" => 80,
        "https" | "wss" => 443,
        other => {
            return Err(format!(
                "refused: {other}: URLs are not allowed; only http and https"
            ));
        }
    };
    let Some(host) = parsed.host_str() else {
        return Err(format!("refused: {url:.100} has no host"));
    };
    let port = parsed.port().unwrap_or(default_port);
    match tokio::time::timeout(RESOLVE_TIMEOUT, guard.resolve(host, port)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err @ GuardError::Refused { .. })) => Err(err.to_string()),
        Ok(Err(err @ GuardError::Resolve { .. })) => Err(format!("refused: {err}")),
        Err(_) => Err(format!(
            "refused: resolving {host} took over {RESOLVE_TIMEOUT:?}"
        )),
    }
}
