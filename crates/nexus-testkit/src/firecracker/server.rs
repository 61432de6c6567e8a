//! The API server on the unix socket: every request goes through the [`Vmm`] state machine, is
//! recorded, and its effect (boot, shutdown) is carried out here.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::RecordedCall;
use super::config::FakeFirecrackerConfig;
use super::guest::{self, RunningGuest};
use super::vmm::{Answer, Effect, Vmm};
use super::vsock::{self, GuestPorts};
use crate::journal::lock;

/// What the server, the boot and the vsock muxer share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: FakeFirecrackerConfig,
    pub(crate) api_sock: PathBuf,
    pub(crate) vmm: Mutex<Vmm>,
    pub(crate) recorded: Mutex<Vec<RecordedCall>>,
    journal: Option<Mutex<std::fs::File>>,
    pub(crate) ports: Arc<GuestPorts>,
    pub(crate) guest: Mutex<Option<RunningGuest>>,
    /// `Some(code)` once the VM exited.
    pub(crate) exit: watch::Sender<Option<i32>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    pub(crate) fn new(
        config: FakeFirecrackerConfig,
        api_sock: PathBuf,
        id: String,
    ) -> std::io::Result<Arc<Self>> {
        let journal = match &config.journal {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        let vmm = Vmm::new(id, config.version.clone());
        let ports = GuestPorts::new(config.faults.hang_guest);
        Ok(Arc::new(Shared {
            config,
            api_sock,
            vmm: Mutex::new(vmm),
            recorded: Mutex::new(Vec::new()),
            journal,
            ports,
            guest: Mutex::new(None),
            exit: watch::Sender::new(None),
            tasks: Mutex::new(Vec::new()),
        }))
    }

    /// Runs `task` until the VM exits.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        lock(&self.tasks).push(tokio::spawn(task));
    }

    /// Appends one line to the journal file, if any.
    pub(crate) fn event(&self, line: Value) {
        if let Some(file) = &self.journal {
            let mut file = lock(file);
            let _ = writeln!(file, "{line}");
            let _ = file.flush();
        }
    }

    /// The VM exits with `code`: the guest is killed, the sockets stop answering (their files
    /// stay, like those of a dead Firecracker process).
    pub(crate) fn exit(&self, code: i32) {
        if self.exit.borrow().is_some() {
            return;
        }
        if let Some(mut guest) = lock(&self.guest).take() {
            let _ = guest.child.start_kill();
            drop(guest.dir);
        }
        for task in lock(&self.tasks).drain(..) {
            task.abort();
        }
        self.event(json!({ "kind": "exit", "code": code }));
        self.exit.send_replace(Some(code));
    }

    fn record(&self, call: RecordedCall) {
        self.event(json!({
            "kind": "request",
            "method": call.method,
            "path": call.path,
            "body": call.body,
            "status": call.status,
            "fault_message": call.fault_message,
        }));
        lock(&self.recorded).push(call);
    }
}

/// Serves the API on `listener` until the VM exits.
pub(crate) fn serve(shared: Arc<Shared>, listener: tokio::net::UnixListener) {
    let app = Router::new()
        .fallback(handle)
        .with_state(Arc::clone(&shared));
    let mut exited = shared.exit.subscribe();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = exited.wait_for(Option::is_some).await;
    });
    shared.spawn(async move {
        let _ = server.await;
    });
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    respond(dispatch(&shared, method.as_str(), uri.path(), &body))
}

/// Answers one request: the injected refusal or the state machine's answer, recorded, with
/// its effect carried out.
pub(crate) fn dispatch(shared: &Arc<Shared>, method: &str, path: &str, body: &[u8]) -> Answer {
    let refused = shared
        .config
        .faults
        .refuse
        .as_ref()
        .filter(|r| r.method == method && r.path == path);
    let answer = match refused {
        Some(refusal) => Answer::fault(refusal.fault_message.clone()),
        None => lock(&shared.vmm).handle(method, path, body),
    };
    shared.record(RecordedCall {
        method: method.to_owned(),
        path: path.to_owned(),
        body: serde_json::from_slice(body).unwrap_or(Value::Null),
        status: answer.status,
        fault_message: answer.fault_message().map(str::to_owned),
    });
    match answer.effect {
        Effect::None => {}
        Effect::Boot => start_vm(shared),
        Effect::Shutdown => {
            let down = Arc::clone(shared);
            tokio::spawn(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                down.exit(0);
            });
        }
    }
    answer
}

fn start_vm(shared: &Arc<Shared>) {
    let listener = lock(&shared.vmm).vsock.as_ref().and_then(|(_, l)| {
        let listener = l.try_clone().ok()?;
        listener.set_nonblocking(true).ok()?;
        tokio::net::UnixListener::from_std(listener).ok()
    });
    if let Some(listener) = listener {
        shared.spawn(vsock::serve(listener, Arc::clone(&shared.ports)));
    }
    let booting = Arc::clone(shared);
    shared.spawn(guest::boot(booting));
}

fn respond(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    match answer.body {
        None => status.into_response(),
        Some(body) => (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response(),
    }
}
