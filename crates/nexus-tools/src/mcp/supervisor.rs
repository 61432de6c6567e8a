//! The background task of one server: connect, offer its tools, refresh them on
//! `tools/list_changed`, notice when it dies (stdio: the child exits; HTTP: transport errors),
//! report it (status and a warning with the exit status and stderr), and restart it with
//! backoff, until shut down.

use std::pin::pin;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use rmcp::model::{ClientRequest, PingRequest};
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::client::{self, Handler, Session, call_failure};
use super::process::Process;
use super::state::{Connection, Shared};
use super::status::{FailureKind, McpFailure, McpStatus};

/// How long shutting a session down may wait for rmcp to close it.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How long a health ping may wait for its answer.
const PING_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs `shared`'s server until `stop` fires.
pub(crate) async fn supervise(shared: Arc<Shared>, stop: CancellationToken) {
    let settings = &shared.settings;
    let mut backoff = Backoff::new(settings.backoff_min, settings.backoff_max);
    let mut restarts = 0u32;
    let mut last_error: Option<McpFailure> = None;
    loop {
        shared.set_status(McpStatus::Connecting {
            since: Utc::now(),
            restarts,
            last_error: last_error.clone(),
        });
        let handler = Handler::default();
        let opened = tokio::select! {
            () = stop.cancelled() => break,
            opened = client::open(settings, handler.clone()) => opened,
        };
        let failure = match opened {
            Ok(session) => {
                let started = Instant::now();
                let ended = run(&shared, session, handler, restarts, &stop).await;
                backoff.connection_lasted(started.elapsed());
                match ended {
                    Some(failure) => failure,
                    None => break,
                }
            }
            Err(failure) => failure,
        };
        let delay = backoff.next_delay();
        let tail = &failure.stderr_tail[failure.stderr_tail.len().saturating_sub(5)..];
        tracing::warn!(
            server = %settings.name,
            kind = ?failure.kind,
            error = %failure.message,
            exit_status = %failure.exit_status.as_deref().unwrap_or("-"),
            stderr = %tail.join(" | "),
            restarts,
            retry_in_secs = delay.as_secs(),
            "MCP server failed, restarting it"
        );
        let now = Utc::now();
        shared.set_status(McpStatus::Failed {
            error: failure.clone(),
            since: now,
            restarts,
            retry_at: now + delay,
        });
        last_error = Some(failure);
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(delay) => {}
        }
        restarts = restarts.saturating_add(1);
    }
    shared.uninstall();
    shared.set_status(McpStatus::Stopped {
        since: Utc::now(),
        restarts,
    });
}

/// Serves one session until it fails (the failure) or `stop` fires (`None`).
async fn run(
    shared: &Arc<Shared>,
    session: Session,
    handler: Handler,
    restarts: u32,
    stop: &CancellationToken,
) -> Option<McpFailure> {
    let Session {
        service,
        mut process,
        tools,
    } = session;
    let name = &shared.settings.name;
    let conn = Connection::new(service.peer().clone());
    let count = shared.install(&conn, tools);
    shared.set_status(McpStatus::Ready {
        since: Utc::now(),
        tools: count,
        restarts,
    });
    tracing::info!(server = %name, tools = count, restarts, "MCP server ready");
    let mut health = shared.settings.health_check.map(|every| {
        let mut interval = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let cancel_service = service.cancellation_token();
    let mut closed = pin!(service.waiting());
    let mut closed_done = false;
    let failure = loop {
        tokio::select! {
            () = stop.cancelled() => break None,
            () = handler.list_changed.notified() => {
                let listed = tokio::time::timeout(
                    shared.settings.startup_timeout,
                    conn.peer.list_all_tools(),
                ).await;
                match listed {
                    Ok(Ok(tools)) => {
                        let count = shared.install(&conn, tools);
                        shared.status.send_modify(|status| {
                            if let McpStatus::Ready { tools, .. } = status {
                                *tools = count;
                            }
                        });
                        tracing::info!(server = %name, tools = count, "MCP server tools changed");
                    }
                    Ok(Err(err)) => {
                        let failure = call_failure(err);
                        if failure.kind == FailureKind::Transport {
                            break Some(failure);
                        }
                        tracing::warn!(server = %name, error = %failure, "MCP server tools/list failed; keeping the previous tools");
                    }
                    Err(_) => {
                        tracing::warn!(server = %name, "MCP server tools/list timed out; keeping the previous tools");
                    }
                }
            }
            status = wait_exit(process.as_mut()) => {
                break Some(match (status, process.as_mut()) {
                    (Ok(status), Some(p)) => p.exited(status, "").await,
                    (Ok(_), None) => McpFailure::new(FailureKind::Transport, "the process is gone"),
                    (Err(e), _) => McpFailure::new(
                        FailureKind::Transport,
                        format!("could not watch the process: {e}"),
                    ),
                });
            }
            _ = &mut closed, if !closed_done => {
                closed_done = true;
                let failure = McpFailure::new(FailureKind::Transport, "the connection closed");
                break Some(match process.as_mut() {
                    Some(p) => p.explain(
                        McpFailure::new(FailureKind::Transport, "closed its stdout"), "",
                    ).await,
                    None => failure,
                });
            }
            () = tick(health.as_mut()) => {
                if let Some(failure) = ping(&conn).await {
                    break Some(failure);
                }
            }
            // A stdio server's exit says more than the failed request that noticed it.
            failure = conn.broken(), if process.is_none() => break Some(failure),
        }
    };
    shared.uninstall();
    conn.die(
        failure
            .clone()
            .unwrap_or_else(|| McpFailure::new(FailureKind::Transport, "the server was shut down")),
    );
    cancel_service.cancel();
    if !closed_done {
        let _ = tokio::time::timeout(CLOSE_WAIT, closed).await;
    }
    if let Some(p) = process.as_mut() {
        p.stop().await;
    }
    failure
}

/// The next health check, or never when they are off.
async fn tick(interval: Option<&mut tokio::time::Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Pings the server: a transport failure is the server's failure. A slow answer is not (a busy
/// server is not a dead one), nor an error answer.
async fn ping(conn: &Connection) -> Option<McpFailure> {
    let request = ClientRequest::PingRequest(PingRequest::default());
    match tokio::time::timeout(PING_TIMEOUT, conn.peer.send_request(request)).await {
        Ok(Err(err)) => {
            let failure = call_failure(err);
            (failure.kind == FailureKind::Transport || failure.kind == FailureKind::Unauthorized)
                .then_some(failure)
        }
        Ok(Ok(_)) | Err(_) => None,
    }
}

/// The exit of the process, or never when there is none (HTTP).
async fn wait_exit(process: Option<&mut Process>) -> std::io::Result<ExitStatus> {
    match process {
        Some(p) => p.wait().await,
        None => std::future::pending().await,
    }
}
