//! Limits hit are results: processes, memory, wall time, output.

use std::time::{Duration, Instant};

use crate::support::{harness, python, shell};

#[tokio::test]
async fn forks_stop_at_the_process_limit() {
    let Some(h) = harness().await else { return };
    let mut request = python(
        "import os, time\n\
         n = 0\n\
         try:\n\
         \x20   while True:\n\
         \x20       if os.fork() == 0:\n\
         \x20           time.sleep(60)\n\
         \x20           os._exit(0)\n\
         \x20       n += 1\n\
         except OSError as e:\n\
         \x20   print('stopped', n < 32, e.errno)\n",
    );
    request.limits.pids = 32;
    let started = Instant::now();
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert_eq!(
        result.stdout, "stopped True 11\n",
        "EAGAIN before 32 processes"
    );
    // The children still sleeping are killed after the run, not waited for.
    assert!(started.elapsed() < Duration::from_secs(15));
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_the_run_ends() {
    let Some(h) = harness().await else { return };
    let mut request = shell("bomb() { bomb | bomb & }; bomb; sleep 3; echo survived");
    request.limits.pids = 32;
    request.limits.wall_time = Duration::from_secs(8);
    let started = Instant::now();
    let result = h.run(request).await;
    assert!(started.elapsed() < Duration::from_secs(30), "{result:?}");
    // The pids limit contains the bomb: the shell gets to its end despite it, or the bomb still
    // holds every process slot when the shell starts `sleep` and the shell fails, or the run is
    // stopped at its wall-time limit.
    let survived = result.stdout.contains("survived");
    let shell_starved =
        result.exit_code.is_some_and(|code| code != 0) && result.stderr.contains("Cannot fork");
    assert!(survived || shell_starved || result.timed_out, "{result:?}");
    h.assert_none_left().await;
}

#[tokio::test]
async fn a_memory_bomb_is_killed_and_reported_as_out_of_memory() {
    let Some(h) = harness().await else { return };
    let mut request = python("a = []\nwhile True:\n    a.append(bytearray(8 * 1024 * 1024))\n");
    request.limits.memory_bytes = 64 * 1024 * 1024;
    let result = h.run(request).await;
    assert!(result.oom_killed, "{result:?}");
    assert_eq!(result.exit_code, None);
    assert!(!result.timed_out);
    h.assert_none_left().await;
}

#[tokio::test]
async fn an_endless_loop_is_killed_at_its_deadline() {
    let Some(h) = harness().await else { return };
    let mut request = python("while True:\n    pass\n");
    request.limits.wall_time = Duration::from_secs(2);
    let started = Instant::now();
    let result = h.run(request).await;
    assert!(result.timed_out, "{result:?}");
    assert_eq!(result.exit_code, None);
    assert!(result.duration >= Duration::from_secs(2));
    assert!(
        started.elapsed() < Duration::from_secs(12),
        "{:?}",
        started.elapsed()
    );
    h.assert_none_left().await;
}

#[tokio::test]
async fn output_past_the_cap_is_cut_and_flagged() {
    let Some(h) = harness().await else { return };
    let mut request = python("print('x' * 300000)\nimport sys\nprint('e' * 5000, file=sys.stderr)");
    request.limits.output_bytes = 1000;
    let result = h.run(request).await;
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    assert!(result.truncated);
    assert_eq!(result.stdout, "x".repeat(1000));
    assert_eq!(result.stderr, "e".repeat(1000));
    h.assert_none_left().await;
}

#[tokio::test]
async fn an_endless_output_flood_is_stopped_long_before_the_deadline() {
    let Some(h) = harness().await else { return };
    let mut request = shell("yes flooding");
    request.limits.output_bytes = 4096;
    request.limits.wall_time = Duration::from_secs(60);
    let started = Instant::now();
    let result = h.run(request).await;
    assert!(result.truncated, "{result:?}");
    assert!(!result.timed_out);
    assert_eq!(result.stdout.len(), 4096);
    assert!(result.stdout.starts_with("flooding\nflooding\n"));
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    h.assert_none_left().await;
}
