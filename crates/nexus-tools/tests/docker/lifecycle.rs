//! Containers never left behind: cancellation, dropped runs, crashes, shutdown; and the errors
//! that name their fix.

use std::time::{Duration, Instant};

use nexus_core::{Sandbox as _, SandboxError, SessionId};
use nexus_tools::{DockerConfig, DockerSandbox};
use tokio_util::sync::CancellationToken;

use crate::support::{Harness, config, harness, service, shell};

async fn cancel_after(h: &Harness, session: Option<SessionId>) {
    let mut request = shell("sleep 60");
    request.session = session;
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = h.sandbox.run(request, cancel).await.unwrap_err();
    assert_eq!(err, SandboxError::Cancelled);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    h.assert_none_left().await;
}

#[tokio::test]
async fn cancel_stops_a_running_cold_container() {
    let Some(h) = harness().await else { return };
    cancel_after(&h, None).await;
}

#[tokio::test]
async fn cancel_stops_a_running_warm_container() {
    let Some(h) = harness().await else { return };
    cancel_after(&h, Some(SessionId::new())).await;
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn a_run_dropped_mid_way_still_removes_its_container() {
    let Some(h) = harness().await else { return };
    let run = h.sandbox.run(shell("sleep 60"), CancellationToken::new());
    assert!(
        tokio::time::timeout(Duration::from_secs(2), run)
            .await
            .is_err(),
        "the run should still be going"
    );
    h.assert_none_left_within(Duration::from_secs(10)).await;
}

#[tokio::test]
async fn containers_left_by_a_crashed_process_are_removed_at_start_up() {
    let Some((host, image)) = service() else {
        return;
    };
    let config = config(&host, &image);
    let crashed = Harness::new(config.clone()).await;
    let session = SessionId::new();
    let mut request = shell("true");
    request.session = Some(session);
    crashed.run(request).await;
    assert_eq!(crashed.containers().await.len(), 1);
    // A crash: no shutdown, and the containers it holds are never dropped.
    std::mem::forget(crashed.sandbox.clone());

    let next = Harness::new(config).await;
    assert_eq!(next.containers().await.len(), 1);
    next.sandbox.check().await.unwrap();
    next.assert_none_left().await;
}

#[tokio::test]
async fn shutdown_removes_every_container_of_the_instance() {
    let Some(h) = harness().await else { return };
    for _ in 0..2 {
        let mut request = shell("true");
        request.session = Some(SessionId::new());
        h.run(request).await;
    }
    assert_eq!(h.containers().await.len(), 2);
    h.sandbox.shutdown().await;
    h.assert_none_left().await;
    assert_eq!(h.sandbox.warm_sessions(), 0);
}

#[tokio::test]
async fn a_missing_image_is_unavailable_with_the_fix() {
    let Some(h) = harness().await else { return };
    let mut config: DockerConfig = h.config.clone();
    config.image = "nexus-sandbox:does-not-exist".to_owned();
    let sandbox = DockerSandbox::new(config).unwrap();
    let err = sandbox.check().await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Unavailable { message } if message.contains("scripts/services/docker.sh")),
        "{err:?}"
    );
    let err = sandbox
        .run(shell("true"), CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Unavailable { .. }), "{err:?}");
    h.assert_none_left().await;
}

#[tokio::test]
async fn an_engine_that_does_not_answer_is_unavailable_with_the_fix() {
    let config = DockerConfig {
        socket: Some("unix:///nonexistent/docker.sock".to_owned()),
        ..DockerConfig::default()
    };
    let sandbox = DockerSandbox::new(config).unwrap();
    let err = sandbox.check().await.unwrap_err();
    assert!(
        matches!(&err, SandboxError::Unavailable { message } if message.contains("start the Docker engine")),
        "{err:?}"
    );
}
