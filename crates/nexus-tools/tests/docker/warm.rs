//! Warm containers: reused by a session, reset between its runs, replaced when broken,
//! removed when released, idle, evicted or at shutdown.

use std::time::{Duration, Instant};

use nexus_core::{ExecRequest, Sandbox as _, SessionId};

use crate::support::{Harness, harness, harness_with, python, shell};

fn warm(mut request: ExecRequest, session: SessionId) -> ExecRequest {
    request.session = Some(session);
    request
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

async fn timed(h: &Harness, request: ExecRequest) -> Duration {
    let started = Instant::now();
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    started.elapsed()
}

#[tokio::test]
async fn a_warm_run_is_faster_than_a_cold_one_and_reuses_the_container() {
    let Some(h) = harness().await else { return };
    let session = SessionId::new();
    timed(&h, warm(python("print(1)"), session)).await;
    let first = h.session_containers(session).await;
    assert_eq!(first.len(), 1);
    let mut cold = Vec::new();
    let mut hot = Vec::new();
    for _ in 0..3 {
        cold.push(timed(&h, python("print(1)")).await);
        hot.push(timed(&h, warm(python("print(1)"), session)).await);
    }
    assert_eq!(h.session_containers(session).await, first, "same container");
    let (cold, hot) = (median(cold), median(hot));
    assert!(hot < cold, "warm {hot:?} is not faster than cold {cold:?}");
    h.sandbox.release(session).await;
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_warm_container_is_reset_between_runs() {
    let Some(h) = harness().await else { return };
    let session = SessionId::new();
    let result = h
        .run(warm(
            shell(
                "echo state > /work/state.txt; echo t > /tmp/t; mkdir -p out; echo r > out/r.txt\n\
                 chmod 000 out\n\
                 (sleep 300 &) ; nohup sleep 301 >/dev/null 2>&1 &\n\
                 echo started",
            ),
            session,
        ))
        .await;
    assert_eq!(result.stdout, "started\n", "{result:?}");
    let result = h
        .run(warm(
            shell(
                "ls -A /work /tmp\n\
                 for p in /proc/[0-9]*; do cat $p/cmdline | tr '\\0' ' '; echo; done | grep -c 'sleep 30[01]'",
            ),
            session,
        ))
        .await;
    // /work holds only the fresh out/, /tmp is empty, no leftover process.
    assert_eq!(result.stdout, "/tmp:\n\n/work:\nout\n0\n", "{result:?}");
    assert_eq!(h.session_containers(session).await.len(), 1);
    h.sandbox.shutdown().await;
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_warm_container_killed_for_memory_is_replaced() {
    let Some(h) = harness().await else { return };
    let session = SessionId::new();
    h.run(warm(python("print(1)"), session)).await;
    let before = h.session_containers(session).await;
    let mut bomb = warm(
        python("a = []\nwhile True:\n    a.append(bytearray(8 * 1024 * 1024))\n"),
        session,
    );
    bomb.limits.memory_bytes = 128 * 1024 * 1024;
    let result = h.run(bomb).await;
    assert!(result.oom_killed, "{result:?}");
    assert_eq!(result.exit_code, None);
    assert!(h.session_containers(session).await.is_empty());
    let result = h.run(warm(python("print(2)"), session)).await;
    assert_eq!(result.stdout, "2\n");
    assert!(
        !result.oom_killed,
        "the count starts over in a new container"
    );
    let after = h.session_containers(session).await;
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
    h.sandbox.release(session).await;
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_warm_run_past_its_deadline_leaves_a_fresh_container_for_the_next() {
    let Some(h) = harness().await else { return };
    let session = SessionId::new();
    let mut endless = warm(shell("while :; do :; done"), session);
    endless.limits.wall_time = Duration::from_secs(1);
    let result = h.run(endless).await;
    assert!(result.timed_out);
    assert!(h.session_containers(session).await.is_empty());
    let result = h.run(warm(shell("echo again"), session)).await;
    assert_eq!(result.stdout, "again\n");
    h.sandbox.shutdown().await;
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_run_with_other_limits_or_network_gets_another_container() {
    let Some(h) = harness().await else { return };
    let session = SessionId::new();
    h.run(warm(shell("true"), session)).await;
    let first = h.session_containers(session).await;
    let mut networked = warm(shell("ls /sys/class/net | grep -c eth0"), session);
    networked.network = true;
    let result = h.run(networked).await;
    assert_eq!(result.stdout, "1\n");
    let second = h.session_containers(session).await;
    assert_eq!(second.len(), 1);
    assert_ne!(first, second);
    h.sandbox.release(session).await;
    h.assert_none_left().await;
}

#[tokio::test]
async fn an_idle_warm_container_is_reaped() {
    let Some(h) = harness_with(|c| c.idle_timeout_secs = 1).await else {
        return;
    };
    let session = SessionId::new();
    h.run(warm(shell("true"), session)).await;
    assert_eq!(h.session_containers(session).await.len(), 1);
    h.assert_none_left_within(Duration::from_secs(10)).await;
    assert_eq!(h.sandbox.warm_sessions(), 0);
    h.sandbox.shutdown().await;
}

#[tokio::test]
async fn past_max_warm_the_least_recently_used_session_is_evicted() {
    let Some(h) = harness_with(|c| c.max_warm = 2).await else {
        return;
    };
    let sessions = [SessionId::new(), SessionId::new(), SessionId::new()];
    for session in sessions {
        h.run(warm(shell("true"), session)).await;
    }
    assert!(h.session_containers(sessions[0]).await.is_empty());
    assert_eq!(h.session_containers(sessions[1]).await.len(), 1);
    assert_eq!(h.session_containers(sessions[2]).await.len(), 1);
    assert_eq!(h.sandbox.warm_sessions(), 2);
    h.sandbox.shutdown().await;
    h.assert_none_left().await;
}

#[tokio::test]
async fn parallel_runs_of_one_session_take_turns_on_its_container() {
    let Some(h) = harness().await else { return };
    let session = SessionId::new();
    let a = h.run(warm(
        shell("echo a > /work/mine; sleep 1; cat /work/mine"),
        session,
    ));
    let b = h.run(warm(
        shell("echo b > /work/mine; sleep 1; cat /work/mine"),
        session,
    ));
    let (a, b) = tokio::join!(a, b);
    assert_eq!(a.stdout, "a\n");
    assert_eq!(b.stdout, "b\n");
    assert_eq!(h.session_containers(session).await.len(), 1);
    h.sandbox.release(session).await;
    h.assert_none_left().await;
}
