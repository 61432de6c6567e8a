//! The Firecracker backend against the fake Firecracker of the test kit, spawned as a real
//! process in place of the binary (see `firecracker_support`). Exercised for real: the
//! backend's process handling, its HTTP client on the API socket, the vsock handshake and
//! framing, and the guest agent's code (run on the host, as `nobody` when the tests run as
//! root). Not exercised: a VM, KVM, a guest kernel, vsock inside a guest, isolation, the
//! jailer.
#![cfg(feature = "firecracker")]
#![allow(clippy::unwrap_used, unreachable_pub)]

mod firecracker_support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use firecracker_support::{ARGV_VAR, Harness, python_request};
use nexus_core::{Language, Sandbox, SandboxError, SandboxFile};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// Not a test: the body of the fake Firecracker process when a wrapper script re-executes this
/// binary with `ARGV_VAR` set; a no-op otherwise.
#[test]
fn fake_firecracker_process() {
    let Ok(argv) = std::env::var(ARGV_VAR) else {
        return;
    };
    let argv: Vec<String> = argv
        .split('\u{1f}')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let code = runtime.block_on(nexus_testkit::firecracker::run_cli(argv));
    std::process::exit(code);
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

#[tokio::test]
async fn print_runs_in_the_guest_agent() {
    let harness = Harness::new(&[]);
    let sandbox = harness.sandbox();
    sandbox.check().await.unwrap();
    let request = python_request("import os\nprint(1)\nprint(os.getcwd())", secs(10));
    let result = sandbox
        .run(request, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    let mut lines = result.stdout.lines();
    assert_eq!(lines.next(), Some("1"));
    assert!(
        lines.next().unwrap().ends_with("/work"),
        "runs in the work dir"
    );
    assert!(!result.timed_out && !result.truncated && !result.oom_killed);
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn api_sequence_and_bodies_follow_firecracker() {
    let harness = Harness::new(&[]);
    let mut request = python_request("print('ok')", secs(10));
    request.limits.cpus = 1.5;
    request.limits.memory_bytes = 128 * 1024 * 1024;
    let result = harness
        .sandbox()
        .run(request, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(result.stdout, "ok\n");

    let calls = harness.requests();
    let paths: Vec<_> = calls.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    assert_eq!(
        paths,
        [
            "PUT /boot-source",
            "PUT /drives/rootfs",
            "PUT /machine-config",
            "PUT /vsock",
            "PUT /actions"
        ],
        "no network interface without network"
    );
    let config = &harness.config;
    assert_eq!(
        calls[0].2,
        json!({ "kernel_image_path": config.kernel, "boot_args": "console=ttyS0 reboot=k panic=1 pci=off" })
    );
    assert_eq!(
        calls[1].2,
        json!({ "drive_id": "rootfs", "path_on_host": config.rootfs, "is_root_device": true, "is_read_only": true })
    );
    assert_eq!(
        calls[2].2,
        json!({ "vcpu_count": 2, "mem_size_mib": 128 + 64 })
    );
    assert_eq!(calls[3].2["guest_cid"], 3);
    let uds = calls[3].2["uds_path"].as_str().unwrap();
    assert!(uds.starts_with(config.run_dir.to_str().unwrap()) && uds.ends_with(".vsock"));
    assert_eq!(calls[4].2, json!({ "action_type": "InstanceStart" }));
    let answered: Vec<_> = harness
        .journal("request")
        .iter()
        .map(|r| r["status"].as_u64())
        .collect();
    assert!(answered.iter().all(|s| *s == Some(204)), "{answered:?}");
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn an_api_fault_surfaces_with_its_message() {
    let harness = Harness::new(&[(
        "REFUSE",
        "PUT /machine-config: Machine config error: injected refusal",
    )]);
    let err = harness
        .sandbox()
        .run(
            python_request("print(1)", secs(10)),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let SandboxError::Failed { message } = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message,
        "firecracker refused PUT /machine-config (400): Machine config error: injected refusal"
    );
    harness.assert_nothing_left().await;

    // A kernel that does not exist: the fake's own validation, worded like Firecracker's.
    let mut harness = Harness::new(&[]);
    harness.config.kernel = harness.dir.path().join("missing-vmlinux");
    let err = harness
        .sandbox()
        .run(
            python_request("print(1)", secs(10)),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains(
            "PUT /boot-source (400): Boot source error: The kernel file cannot be opened"
        ),
        "{err}"
    );
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn wall_time_kills_the_code_and_reports_a_timeout() {
    let harness = Harness::new(&[]);
    let started = Instant::now();
    let result = harness
        .sandbox()
        .run(
            python_request("while True:\n    pass", secs(1)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(result.timed_out, "{result:?}");
    assert_eq!(result.exit_code, None);
    assert!(started.elapsed() < secs(8), "took {:?}", started.elapsed());
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn a_hung_guest_is_killed_by_the_host_after_the_grace() {
    let mut harness = Harness::new(&[("HANG_GUEST", "1")]);
    harness.config.kill_grace_secs = 1;
    let started = Instant::now();
    let result = harness
        .sandbox()
        .run(
            python_request("print(1)", Duration::from_millis(500)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(result.timed_out && result.exit_code.is_none(), "{result:?}");
    assert!(
        result.duration >= Duration::from_millis(1500),
        "{:?}",
        result.duration
    );
    assert!(started.elapsed() < secs(8));
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn output_is_capped_and_marked_truncated() {
    let harness = Harness::new(&[]);
    let mut request = python_request(
        "import sys\nprint('x' * 100000)\nsys.stderr.write('e' * 5000)",
        secs(10),
    );
    request.limits.output_bytes = 1000;
    let result = harness
        .sandbox()
        .run(request, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(result.stdout.len(), 1000);
    assert_eq!(result.stderr.len(), 1000);
    assert!(result.truncated);
    assert_eq!(result.exit_code, Some(0));
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn files_go_in_and_come_out_without_following_links() {
    let harness = Harness::new(&[]);
    let code = "import os\n\
                data = open('data/in.txt').read()\n\
                os.makedirs('out/sub')\n\
                open('out/result.txt', 'w').write(data.upper())\n\
                open('out/sub/big.bin', 'wb').write(b'z' * 2000)\n\
                os.symlink('/etc/passwd', 'out/passwd')\n";
    let mut request = python_request(code, secs(10));
    request.files = vec![SandboxFile {
        path: "data/in.txt".to_owned(),
        bytes: Bytes::from_static(b"hello"),
    }];
    let result = harness
        .sandbox()
        .run(request.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(result.exit_code, Some(0), "{result:?}");
    let mut files: Vec<_> = result
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.bytes.len()))
        .collect();
    files.sort();
    assert_eq!(files, [("result.txt", 5), ("sub/big.bin", 2000)]);
    let text = result
        .files
        .iter()
        .find(|f| f.path == "result.txt")
        .unwrap();
    assert_eq!(&text.bytes[..], b"HELLO");
    assert!(!result.truncated);

    request.limits.files_bytes = 1000;
    let result = harness
        .sandbox()
        .run(request.clone(), CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(result.files.len(), 1, "the 2000-byte file does not fit");
    assert!(result.truncated);

    request.files[0].path = "../escape.txt".to_owned();
    let err = harness
        .sandbox()
        .run(request, CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SandboxError::Invalid { .. }), "{err:?}");
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn shell_runs_too() {
    let harness = Harness::new(&[]);
    let mut request = python_request("echo \"$((6 * 7))\"; exit 3", secs(10));
    request.language = Language::Shell;
    let result = harness
        .sandbox()
        .run(request, CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(
        (result.exit_code, result.stdout.as_str()),
        (Some(3), "42\n")
    );
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn cancellation_kills_the_vm() {
    let harness = Harness::new(&[]);
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = harness
        .sandbox()
        .run(
            python_request("import time\ntime.sleep(60)", secs(60)),
            cancel,
        )
        .await
        .unwrap_err();
    assert_eq!(err, SandboxError::Cancelled);
    assert!(started.elapsed() < secs(5), "took {:?}", started.elapsed());
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn the_whole_process_group_is_killed() {
    let harness = Harness::behind_a_wrapper();
    let result = harness
        .sandbox()
        .run(
            python_request("while True:\n    pass", secs(1)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert!(result.timed_out);
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn network_without_tap_is_refused_before_any_vm() {
    let harness = Harness::new(&[]);
    let mut request = python_request("print(1)", secs(10));
    request.network = true;
    let err = harness
        .sandbox()
        .run(request, CancellationToken::new())
        .await
        .unwrap_err();
    let SandboxError::Unavailable { message } = err else {
        panic!("{err:?}")
    };
    assert!(message.contains("tap_device"), "{message}");
    assert!(
        harness.journal("process").is_empty(),
        "no Firecracker was started"
    );
}

#[tokio::test]
async fn a_crash_during_the_run_is_a_failure_with_firecracker_output() {
    let harness = Harness::new(&[("CRASH_AFTER_START_MS", "800")]);
    let err = harness
        .sandbox()
        .run(
            python_request("import time\ntime.sleep(20)", secs(20)),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let SandboxError::Failed { message } = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("firecracker exited (exit status: 1)"),
        "{message}"
    );
    assert!(message.contains("injected fault"), "{message}");
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn a_guest_that_never_answers_fails_at_the_boot_timeout() {
    let mut harness = Harness::without_guest();
    harness.config.boot_timeout_secs = 1;
    let started = Instant::now();
    let err = harness
        .sandbox()
        .run(
            python_request("print(1)", secs(10)),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    let SandboxError::Failed { message } = err else {
        panic!("{err:?}")
    };
    assert!(
        message.contains("did not answer on vsock port 52"),
        "{message}"
    );
    assert!(started.elapsed() < secs(4));
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn a_slow_boot_is_waited_for() {
    let harness = Harness::new(&[("BOOT_DELAY_MS", "1200")]);
    let result = harness
        .sandbox()
        .run(
            python_request("print('late')", secs(10)),
            CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(result.stdout, "late\n");
    harness.assert_nothing_left().await;
}

#[tokio::test]
async fn check_names_what_is_missing() {
    let mut harness = Harness::new(&[]);
    harness.sandbox().check().await.unwrap();

    harness.config.rootfs = harness.dir.path().join("missing.ext4");
    let err = harness.sandbox().check().await.unwrap_err();
    assert!(err.to_string().contains("rootfs"), "{err}");

    let mut config = harness.config.clone();
    config.binary = "no-such-firecracker-binary".into();
    let err = nexus_tools::FirecrackerSandbox::new(config)
        .unwrap()
        .check()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("was not found"), "{err}");

    harness.config.rootfs = harness.dir.path().join("rootfs.ext4");
    harness.config.require_kvm = true;
    let kvm = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm");
    match (kvm, harness.sandbox().check().await) {
        (Ok(_), result) => assert!(result.is_ok()),
        (Err(_), Err(SandboxError::Unavailable { message })) => {
            assert!(message.contains("/dev/kvm"), "{message}")
        }
        (Err(_), other) => panic!("expected /dev/kvm to be reported: {other:?}"),
    }
}

#[tokio::test]
async fn shutdown_stops_a_running_vm() {
    let harness = Harness::new(&[]);
    let sandbox = std::sync::Arc::new(harness.sandbox());
    let running = std::sync::Arc::clone(&sandbox);
    let run = tokio::spawn(async move {
        running
            .run(
                python_request("import time\ntime.sleep(60)", secs(60)),
                CancellationToken::new(),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sandbox.shutdown().await;
    let err = tokio::time::timeout(secs(5), run)
        .await
        .unwrap()
        .unwrap()
        .unwrap_err();
    assert_eq!(err, SandboxError::Cancelled);
    harness.assert_nothing_left().await;
    let err = sandbox
        .run(
            python_request("print(1)", secs(5)),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        SandboxError::Cancelled | SandboxError::Unavailable { .. }
    ));
}
