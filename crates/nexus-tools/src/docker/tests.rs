//! Unit tests of the Docker backend parts that need no engine: settings, the container's
//! confinement, tar in and out, output caps, the warm pool's bookkeeping.

use std::time::Duration;

use bytes::Bytes;
use nexus_core::{ExecLimits, SandboxError, SandboxFile, SessionId};

use super::archive::{pack, unpack};
use super::config::{DockerConfig, Settings};
use super::exec::{Caps, Captured};
use super::run::{Status, take_status};
use super::spec::{self, LABEL_SESSION, Shape};
use super::warm::Pool;

fn settings(change: impl FnOnce(&mut DockerConfig)) -> Settings {
    let mut config = DockerConfig::default();
    change(&mut config);
    Settings::new(&config, None).unwrap()
}

fn refused_key(change: impl FnOnce(&mut DockerConfig)) -> &'static str {
    let mut config = DockerConfig::default();
    change(&mut config);
    Settings::new(&config, None).unwrap_err().key
}

#[test]
fn defaults_are_valid_and_docker_host_is_used_when_no_socket_is_set() {
    let s = settings(|_| {});
    assert_eq!(s.host, "unix:///var/run/docker.sock");
    assert_eq!(s.image, "nexus-sandbox:latest");
    assert_eq!(s.idle_timeout, Duration::from_secs(300));
    assert!(!s.instance.is_empty());
    let s = Settings::new(
        &DockerConfig::default(),
        Some("tcp://127.0.0.1:2375".to_owned()),
    )
    .unwrap();
    assert_eq!(s.host, "tcp://127.0.0.1:2375");
}

#[test]
fn unsafe_settings_are_refused_with_their_key() {
    assert_eq!(refused_key(|c| c.user = "0:0".to_owned()), "user");
    assert_eq!(refused_key(|c| c.user = "65534:0".to_owned()), "user");
    assert_eq!(refused_key(|c| c.user = "root".to_owned()), "user");
    assert_eq!(refused_key(|c| c.network = "host".to_owned()), "network");
    assert_eq!(
        refused_key(|c| c.socket = Some("https://docker:2376".to_owned())),
        "socket"
    );
    assert_eq!(
        refused_key(|c| c.instance = Some("a b".to_owned())),
        "instance"
    );
    assert_eq!(
        refused_key(|c| c.idle_timeout_secs = 0),
        "idle_timeout_secs"
    );
}

fn shape(network: bool) -> Shape {
    Shape::new(
        network,
        &ExecLimits {
            memory_bytes: 128 * 1024 * 1024,
            cpus: 0.5,
            pids: 32,
            disk_bytes: 8 * 1024 * 1024,
            ..ExecLimits::default()
        },
    )
}

#[test]
fn a_container_is_confined_without_network_by_default() {
    let s = settings(|c| c.instance = Some("unit".to_owned()));
    let session = SessionId::new();
    let body = spec::create_body(&s, &shape(false), Some(session));
    let host = body.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(body.network_disabled, Some(true));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_owned()])
    );
    assert_eq!(host.memory, Some(128 * 1024 * 1024));
    assert_eq!(host.memory_swap, host.memory);
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.pids_limit, Some(32));
    assert_eq!(host.auto_remove, Some(false));
    assert_eq!(host.privileged, Some(false));
    assert!(
        host.binds.is_none() && host.mounts.is_none(),
        "no host mounts"
    );
    let tmpfs = host.tmpfs.unwrap();
    assert!(tmpfs["/work"].contains("size=8388608"));
    assert!(tmpfs["/work"].contains("exec") && tmpfs["/tmp"].contains("noexec"));
    assert_eq!(body.user.as_deref(), Some("65534:65534"));
    let labels = body.labels.unwrap();
    assert_eq!(labels["nexus.sandbox"], "1");
    assert_eq!(labels["nexus.sandbox.instance"], "unit");
    assert_eq!(labels[LABEL_SESSION], session.to_string());
}

#[test]
fn a_run_allowed_the_network_joins_the_configured_network() {
    let s = settings(|c| {
        c.network = "sandbox-net".to_owned();
        c.runtime = Some("runsc".to_owned());
    });
    let body = spec::create_body(&s, &shape(true), None);
    let host = body.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("sandbox-net"));
    assert_eq!(host.runtime.as_deref(), Some("runsc"));
    assert_eq!(body.network_disabled, Some(false));
    assert!(!body.labels.unwrap().contains_key(LABEL_SESSION));
}

#[test]
fn container_names_are_unique_and_prefixed() {
    let (a, b) = (spec::container_name(), spec::container_name());
    assert!(a.starts_with("nexus-sbx-"));
    assert_ne!(a, b);
}

fn file(path: &str, bytes: &'static [u8]) -> SandboxFile {
    SandboxFile {
        path: path.to_owned(),
        bytes: Bytes::from_static(bytes),
    }
}

#[test]
fn packed_files_unpack_to_the_same_files() {
    let long = format!("{}/name.txt", "d".repeat(200));
    let files = vec![
        file("a.txt", b"alpha"),
        file("dir/b.bin", &[0, 1, 2]),
        SandboxFile {
            path: long.clone(),
            bytes: Bytes::from_static(b"long"),
        },
    ];
    let tar = pack(&files, 1024).unwrap();
    let back = unpack(&tar, 1024);
    assert!(!back.truncated);
    assert_eq!(back.files, files);
}

#[test]
fn bad_paths_and_oversized_files_are_refused_before_anything_runs() {
    for path in ["", "/abs", "../up", "a/../b", "a//b", "./a", "a\\b", "out"] {
        let err = pack(&[file(path, b"x")], 1024).unwrap_err();
        assert!(matches!(err, SandboxError::Invalid { .. }), "{path:?}");
    }
    let err = pack(&[file("a", b"12345")], 4).unwrap_err();
    assert!(matches!(err, SandboxError::Invalid { .. }));
}

#[test]
fn unpacking_keeps_regular_files_within_the_cap_and_flags_the_rest() {
    let mut builder = tar::Builder::new(Vec::new());
    let mut add = |path: &str, kind: tar::EntryType, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        if kind == tar::EntryType::Symlink {
            h.set_link_name("/etc/passwd").unwrap();
        }
        builder.append_data(&mut h, path, data).unwrap();
    };
    add("./dir", tar::EntryType::Directory, b"");
    add("./link", tar::EntryType::Symlink, b"");
    add("./small", tar::EntryType::Regular, b"1234");
    add("./big", tar::EntryType::Regular, b"123456789");
    add("./also-small", tar::EntryType::Regular, b"56");
    let tar = builder.into_inner().unwrap();
    let back = unpack(&tar, 8);
    let names: Vec<&str> = back.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(names, ["small", "also-small"]);
    assert!(back.truncated);
    // A stream cut in the middle of an entry keeps what came whole before it.
    let cut = unpack(&tar[..tar.len() / 2], 1024);
    assert!(cut.truncated);
}

#[test]
fn output_is_kept_up_to_the_cap_per_stream_and_a_flood_is_noticed() {
    let caps = Caps {
        stdout: 4,
        stderr: 2,
        hard: 20,
    };
    let mut c = Captured::default();
    c.push(&caps, false, b"abc");
    c.push(&caps, true, b"x");
    assert!(!c.truncated());
    c.push(&caps, false, b"defg");
    c.push(&caps, true, b"yz");
    assert_eq!(c.stdout, b"abcd");
    assert_eq!(c.stderr, b"xy");
    assert!(c.truncated());
    assert!(!c.flooded(&caps));
    c.push(&caps, false, &[b'f'; 20]);
    assert!(c.flooded(&caps));
}

#[test]
fn the_status_line_is_found_past_the_cap_and_taken_out_of_stderr() {
    let nonce = "0123456789abcdef0123456789abcdef";
    let caps = Caps {
        stdout: 8,
        stderr: 8,
        hard: 1 << 20,
    };
    // The program's stderr fits: the line is cut out whole.
    let mut c = Captured::default();
    c.push(&caps, true, b"err");
    c.push(&caps, true, format!("{nonce} oom=2 out=1\n").as_bytes());
    let (status, program) = take_status(&mut c, nonce);
    assert_eq!(
        status,
        Some(Status {
            oom_kills: Some(2),
            has_output: true
        })
    );
    assert_eq!(c.stderr, b"err");
    assert_eq!(program, 3);
    // The program wrote past the cap: the status still comes from the tail.
    let mut c = Captured::default();
    c.push(&caps, true, &[b'e'; 100]);
    c.push(&caps, true, format!("{nonce} oom=none out=0\n").as_bytes());
    let (status, program) = take_status(&mut c, nonce);
    assert_eq!(
        status,
        Some(Status {
            oom_kills: None,
            has_output: false
        })
    );
    assert_eq!(c.stderr, [b'e'; 8]);
    assert_eq!(program, 100);
    // No status (the script was killed).
    let mut c = Captured::default();
    c.push(&caps, true, b"Killed\n");
    assert_eq!(take_status(&mut c, nonce).0, None);
}

#[tokio::test]
async fn the_pool_evicts_the_least_recently_used_idle_session_when_full() {
    let pool = Pool::new(2);
    let (a, b, c) = (SessionId::new(), SessionId::new(), SessionId::new());
    let slot_a = pool.slot(a).0.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let slot_b = pool.slot(b).0.unwrap();
    // a is busy: b, idle, is the one to go.
    let busy = slot_a.state.lock().await;
    let (slot_c, _) = pool.slot(c);
    assert!(slot_c.is_some());
    assert!(slot_b.is_retired());
    assert!(!slot_a.is_retired());
    assert_eq!(pool.len(), 2);
    drop(busy);
    // The same session gets the same slot back.
    assert!(std::sync::Arc::ptr_eq(&pool.slot(a).0.unwrap(), &slot_a));
}

#[tokio::test]
async fn a_full_pool_of_busy_sessions_sends_new_runs_cold() {
    let pool = Pool::new(1);
    let slot = pool.slot(SessionId::new()).0.unwrap();
    let _busy = slot.state.lock().await;
    assert!(pool.slot(SessionId::new()).0.is_none());
    assert!(
        Pool::new(0).slot(SessionId::new()).0.is_none(),
        "max_warm 0: never warm"
    );
}

#[tokio::test]
async fn released_reaped_and_drained_slots_are_retired() {
    let pool = Pool::new(8);
    let (a, b, c) = (SessionId::new(), SessionId::new(), SessionId::new());
    let slot_a = pool.slot(a).0.unwrap();
    let slot_b = pool.slot(b).0.unwrap();
    let slot_c = pool.slot(c).0.unwrap();
    assert!(pool.release(a).is_some());
    assert!(slot_a.is_retired());
    assert!(pool.release(a).is_none());
    // Not idle long enough yet.
    assert!(pool.reap(Duration::from_secs(60)).is_empty());
    assert!(!slot_b.is_retired());
    assert!(pool.reap(Duration::ZERO).is_empty());
    assert!(slot_b.is_retired() && slot_c.is_retired());
    let _d = pool.slot(SessionId::new()).0.unwrap();
    pool.drain();
    assert_eq!(pool.len(), 0);
}
