//! One session's page: an isolated browser context (own cookies, storage, cache) holding one
//! page, attached over a flattened CDP session, and the events that say when it loads.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::cdp::{CdpError, Connection, Event};
use super::guard::Refusals;

/// Unread page events kept.
const PAGE_EVENTS: usize = 256;
/// Dialog messages kept for the next action to report.
const DIALOGS_KEPT: usize = 8;

/// What the page's main frame is doing, kept current by the page's event task.
#[derive(Debug, Clone, Default)]
pub(crate) struct Loading {
    /// Navigations the main frame started.
    pub(crate) started: u64,
    /// Whether the main frame is loading (between `frameStartedLoading` and
    /// `frameStoppedLoading`).
    pub(crate) busy: bool,
}

/// Messages of JavaScript dialogs dismissed since the last action took them.
type Dialogs = Arc<Mutex<Vec<String>>>;

/// An open page in its own browser context.
#[derive(Debug)]
pub(crate) struct Page {
    pub(crate) conn: Arc<Connection>,
    pub(crate) refusals: Arc<Refusals>,
    pub(crate) context_id: String,
    /// Also the id of the page's main frame.
    pub(crate) target_id: String,
    pub(crate) session: String,
    pub(crate) loading: watch::Receiver<Loading>,
    dialogs: Dialogs,
    /// The browser launch this page belongs to.
    pub(crate) generation: u64,
    events: JoinHandle<()>,
    closed: bool,
}

impl Drop for Page {
    fn drop(&mut self) {
        self.events.abort();
        self.conn.unsubscribe(&self.session);
        if !self.closed && !self.conn.is_closed() {
            // Dropped without `close` (a cancelled action, a tool dropped without shutdown):
            // the context is disposed in the background.
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                let conn = Arc::clone(&self.conn);
                let context_id = std::mem::take(&mut self.context_id);
                runtime.spawn(async move {
                    let _ =
                        tokio::time::timeout(Duration::from_secs(5), dispose(&conn, &context_id))
                            .await;
                });
            }
        }
    }
}

fn str_field(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

impl Page {
    /// Creates a browser context and a blank page in it, with the given viewport.
    pub(crate) async fn open(
        conn: Arc<Connection>,
        refusals: Arc<Refusals>,
        generation: u64,
        viewport: (u32, u32),
    ) -> Result<Page, CdpError> {
        let context = conn
            .call(
                None,
                "Target.createBrowserContext",
                json!({ "disposeOnDetach": true }),
            )
            .await?;
        let context_id = str_field(&context, "browserContextId");
        match Self::open_in(&conn, &context_id, viewport).await {
            Ok((target_id, session, events)) => {
                let (tx, loading) = watch::channel(Loading::default());
                let dialogs = Dialogs::default();
                let task = tokio::spawn(watch_events(
                    Arc::clone(&conn),
                    session.clone(),
                    target_id.clone(),
                    events,
                    (tx, Arc::clone(&dialogs)),
                ));
                let page = Page {
                    conn,
                    refusals,
                    context_id,
                    target_id,
                    session,
                    loading,
                    dialogs,
                    generation,
                    events: task,
                    closed: false,
                };
                // Files a page offers for download are refused (they would land on the
                // server's disk).
                page.conn
                    .call(
                        None,
                        "Browser.setDownloadBehavior",
                        json!({ "behavior": "deny", "browserContextId": page.context_id }),
                    )
                    .await?;
                page.call("Page.enable", json!({})).await?;
                page.call(
                    "Emulation.setDeviceMetricsOverride",
                    json!({ "width": viewport.0, "height": viewport.1,
                            "deviceScaleFactor": 1, "mobile": false }),
                )
                .await?;
                Ok(page)
            }
            Err(err) => {
                let _ = dispose(&conn, &context_id).await;
                Err(err)
            }
        }
    }

    async fn open_in(
        conn: &Connection,
        context_id: &str,
        viewport: (u32, u32),
    ) -> Result<(String, String, mpsc::Receiver<Event>), CdpError> {
        let target = conn
            .call(
                None,
                "Target.createTarget",
                json!({ "url": "about:blank", "browserContextId": context_id,
                        "width": viewport.0, "height": viewport.1 }),
            )
            .await?;
        let target_id = str_field(&target, "targetId");
        let attached = conn
            .call(
                None,
                "Target.attachToTarget",
                json!({ "targetId": target_id, "flatten": true }),
            )
            .await?;
        let session = str_field(&attached, "sessionId");
        let events = conn.subscribe(Some(&session), PAGE_EVENTS);
        Ok((target_id, session, events))
    }

    /// Sends a command to this page.
    pub(crate) async fn call(&self, method: &str, params: Value) -> Result<Value, CdpError> {
        self.conn.call(Some(&self.session), method, params).await
    }

    /// Evaluates `expression` in the page's main frame and returns its value; a thrown
    /// exception is `Ok(Err(description))`.
    pub(crate) async fn eval(&self, expression: &str) -> Result<Result<Value, String>, CdpError> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": expression, "returnByValue": true,
                        "awaitPromise": true, "userGesture": true }),
            )
            .await?;
        if let Some(details) = answer.get("exceptionDetails") {
            let description = details
                .pointer("/exception/description")
                .and_then(Value::as_str)
                .or_else(|| details.get("text").and_then(Value::as_str))
                .unwrap_or("exception");
            return Ok(Err(description
                .lines()
                .next()
                .unwrap_or_default()
                .to_owned()));
        }
        Ok(Ok(answer
            .pointer("/result/value")
            .cloned()
            .unwrap_or(Value::Null)))
    }

    /// Navigations started so far (compare after an action to see whether it navigated).
    pub(crate) fn navigations(&self) -> u64 {
        self.loading.borrow().started
    }

    /// Waits until a navigation after `before` started and finished loading, or `until`.
    /// Whether it finished.
    pub(crate) async fn wait_loaded(&self, before: u64, until: Instant) -> bool {
        let mut rx = self.loading.clone();
        tokio::time::timeout_at(until, rx.wait_for(|l| l.started > before && !l.busy))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Whether a navigation after `before` starts within `within`.
    pub(crate) async fn navigation_started(&self, before: u64, within: Duration) -> bool {
        let mut rx = self.loading.clone();
        tokio::time::timeout(within, rx.wait_for(|l| l.started > before))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Dialog messages dismissed since the last call.
    pub(crate) fn take_dialogs(&self) -> Vec<String> {
        std::mem::take(&mut *self.dialogs.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Closes the page's browser context (its cookies and storage are gone).
    pub(crate) async fn close(mut self) {
        self.closed = true;
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            dispose(&self.conn, &self.context_id),
        )
        .await;
    }
}

async fn dispose(conn: &Connection, context_id: &str) -> Result<Value, CdpError> {
    conn.call(
        None,
        "Target.disposeBrowserContext",
        json!({ "browserContextId": context_id }),
    )
    .await
}

/// Keeps [`Loading`] current and dismisses JavaScript dialogs (an open dialog would block
/// every script the tool runs).
async fn watch_events(
    conn: Arc<Connection>,
    session: String,
    main_frame: String,
    mut events: mpsc::Receiver<Event>,
    (state, dialogs): (watch::Sender<Loading>, Dialogs),
) {
    while let Some(event) = events.recv().await {
        let frame = event.params.get("frameId").and_then(Value::as_str);
        let main = frame == Some(main_frame.as_str());
        match event.method.as_str() {
            "Page.frameStartedLoading" if main => state.send_modify(|l| {
                l.started += 1;
                l.busy = true;
            }),
            "Page.frameStoppedLoading" if main => state.send_modify(|l| l.busy = false),
            "Page.javascriptDialogOpening" => {
                let kind = str_field(&event.params, "type");
                let message: String = str_field(&event.params, "message")
                    .chars()
                    .take(300)
                    .collect();
                {
                    let mut dialogs = dialogs.lock().unwrap_or_else(PoisonError::into_inner);
                    if dialogs.len() == DIALOGS_KEPT {
                        dialogs.remove(0);
                    }
                    dialogs.push(format!("{kind}: {message}"));
                }
                // Leaving a page is allowed; alerts, confirms and prompts are dismissed.
                let accept = kind == "beforeunload";
                let conn = Arc::clone(&conn);
                let session = session.clone();
                tokio::spawn(async move {
                    let _ = conn
                        .call(
                            Some(&session),
                            "Page.handleJavaScriptDialog",
                            json!({ "accept": accept }),
                        )
                        .await;
                });
            }
            _ => {}
        }
    }
}
