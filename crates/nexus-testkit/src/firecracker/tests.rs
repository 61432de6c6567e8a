#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::vmm::NOT_AFTER_BOOT;
use super::{FakeFirecracker, FakeFirecrackerConfig, Faults, GuestCommand, InstanceState, Refusal};

/// One HTTP/1.1 request on the unix socket; (status, JSON body or Null).
async fn call(sock: &Path, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut stream = UnixStream::connect(sock).await.unwrap();
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).await.unwrap();
    let status = raw[9..12].parse().unwrap();
    let body = raw.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn fault(answer: &(u16, Value)) -> &str {
    assert_eq!(answer.0, 400, "{answer:?}");
    answer.1["fault_message"].as_str().unwrap()
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("vmlinux"), b"not really a kernel").unwrap();
        std::fs::write(dir.path().join("rootfs.ext4"), b"not really ext4").unwrap();
        Files { dir }
    }
    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

async fn configure(sock: &Path, files: &Files) {
    let kernel =
        json!({ "kernel_image_path": files.path("vmlinux"), "boot_args": "console=ttyS0" });
    assert_eq!(call(sock, "PUT", "/boot-source", Some(kernel)).await.0, 204);
    let drive = json!({ "drive_id": "rootfs", "path_on_host": files.path("rootfs.ext4"),
                        "is_root_device": true, "is_read_only": true });
    assert_eq!(
        call(sock, "PUT", "/drives/rootfs", Some(drive)).await.0,
        204
    );
    let vsock = json!({ "guest_cid": 3, "uds_path": files.path("v.sock") });
    assert_eq!(call(sock, "PUT", "/vsock", Some(vsock)).await.0, 204);
}

#[tokio::test]
async fn pre_boot_resources_are_validated_and_refused_after_start() {
    let files = Files::new();
    let sock = files.dir.path().join("api.sock");
    let fake = FakeFirecracker::start(&sock, FakeFirecrackerConfig::default())
        .await
        .unwrap();

    let (status, info) = call(&sock, "GET", "/", None).await;
    assert_eq!(status, 200);
    assert_eq!(info["state"], "Not started");
    assert_eq!(info["id"], "anonymous-instance");
    assert_eq!(
        call(&sock, "GET", "/machine-config", None).await.1["mem_size_mib"],
        128
    );

    let start = json!({ "action_type": "InstanceStart" });
    let answer = call(&sock, "PUT", "/actions", Some(start.clone())).await;
    assert_eq!(
        fault(&answer),
        "Start microvm error: Cannot start microvm without kernel configuration."
    );

    let answer = call(
        &sock,
        "PUT",
        "/machine-config",
        Some(json!({ "vcpu_count": 0, "mem_size_mib": 128 })),
    )
    .await;
    assert!(fault(&answer).starts_with("Machine config error: The number of vCPUs"));
    let answer = call(
        &sock,
        "PUT",
        "/machine-config",
        Some(json!({ "mem_size_mib": 128 })),
    )
    .await;
    assert!(fault(&answer).starts_with(
        "An error occurred when deserializing the json body of a request: missing field `vcpu_count`"
    ));
    let answer = call(
        &sock,
        "PUT",
        "/machine-config",
        Some(json!({ "vcpu_count": 1, "mem_size_mib": 0 })),
    )
    .await;
    assert!(fault(&answer).contains("memory size (MiB) is either 0"));
    let answer = call(
        &sock,
        "PUT",
        "/boot-source",
        Some(json!({ "kernel_image_path": "/nonexistent/vmlinux" })),
    )
    .await;
    assert!(fault(&answer).starts_with("Boot source error: The kernel file cannot be opened"));
    let drive = json!({ "drive_id": "other", "path_on_host": files.path("rootfs.ext4"), "is_root_device": true });
    let answer = call(&sock, "PUT", "/drives/rootfs", Some(drive)).await;
    assert_eq!(
        fault(&answer),
        "The id from the path does not match the id from the body!"
    );
    let answer = call(
        &sock,
        "PUT",
        "/drives/rootfs",
        Some(json!({ "drive_id": "rootfs", "path_on_host": files.path("rootfs.ext4") })),
    )
    .await;
    assert!(fault(&answer).contains("missing field `is_root_device`"));

    configure(&sock, &files).await;
    let answer = call(
        &sock,
        "PUT",
        "/machine-config",
        Some(json!({ "vcpu_count": 2, "mem_size_mib": 320 })),
    )
    .await;
    assert_eq!(answer.0, 204);
    assert_eq!(
        call(&sock, "GET", "/machine-config", None).await.1["vcpu_count"],
        2
    );
    let second_root = json!({ "drive_id": "scratch", "path_on_host": files.path("rootfs.ext4"), "is_root_device": true, "is_read_only": false });
    let answer = call(&sock, "PUT", "/drives/scratch", Some(second_root)).await;
    assert_eq!(
        fault(&answer),
        "Drive config error: A root block device already exists!"
    );

    assert_eq!(
        call(&sock, "PUT", "/actions", Some(start.clone())).await.0,
        204
    );
    assert_eq!(fake.state(), InstanceState::Running);
    assert_eq!(call(&sock, "GET", "/", None).await.1["state"], "Running");
    let answer = call(
        &sock,
        "PUT",
        "/machine-config",
        Some(json!({ "vcpu_count": 1, "mem_size_mib": 128 })),
    )
    .await;
    assert_eq!(fault(&answer), NOT_AFTER_BOOT);
    assert_eq!(
        fault(&call(&sock, "PUT", "/actions", Some(start)).await),
        NOT_AFTER_BOOT
    );
    let answer = call(&sock, "PUT", "/nope", Some(json!({}))).await;
    assert_eq!(
        fault(&answer),
        "Invalid request method and/or path: PUT /nope."
    );

    let recorded = fake.requests();
    assert_eq!(recorded[0].method, "GET");
    assert!(
        recorded
            .iter()
            .any(|c| c.path == "/vsock" && c.status == 204 && c.body["guest_cid"] == 3)
    );
}

/// A stand-in guest: echoes each line back on the vsock port it is given.
const ECHO_GUEST: &str = r#"
import argparse, os, socket
p = argparse.ArgumentParser(); p.add_argument("--unix-dir"); a, _ = p.parse_known_args()
s = socket.socket(socket.AF_UNIX); s.bind(os.path.join(a.unix_dir, "port-52.sock")); s.listen(4)
while True:
    c, _ = s.accept()
    data = c.recv(1024)
    c.sendall(b"echo:" + data)
    c.close()
"#;

/// The host side of the handshake; `None` when the connection is refused, closed or left
/// unanswered (before the start nothing serves the socket, like Firecracker's).
async fn handshake(uds: &Path, port: u32) -> Option<(String, BufReader<UnixStream>)> {
    tokio::time::timeout(Duration::from_millis(300), try_handshake(uds, port))
        .await
        .ok()
        .flatten()
}

async fn try_handshake(uds: &Path, port: u32) -> Option<(String, BufReader<UnixStream>)> {
    let mut stream = UnixStream::connect(uds).await.ok()?;
    stream
        .write_all(format!("CONNECT {port}\n").as_bytes())
        .await
        .ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).await.ok()?;
    (!line.is_empty()).then_some((line, reader))
}

#[tokio::test]
async fn vsock_connect_reaches_the_guest_once_booted() {
    let files = Files::new();
    let script = files.dir.path().join("echo.py");
    std::fs::write(&script, ECHO_GUEST).unwrap();
    let config = FakeFirecrackerConfig {
        guest: GuestCommand::parse(&format!("python3 {}", script.display())),
        ..FakeFirecrackerConfig::default()
    };
    let sock = files.dir.path().join("api.sock");
    let fake = FakeFirecracker::start(&sock, config).await.unwrap();
    configure(&sock, &files).await;
    let uds = files.dir.path().join("v.sock");
    assert!(
        handshake(&uds, 52).await.is_none(),
        "nothing answers before the start"
    );
    call(
        &sock,
        "PUT",
        "/actions",
        Some(json!({ "action_type": "InstanceStart" })),
    )
    .await;

    let mut answer = None;
    for _ in 0..200 {
        if let Some(found) = handshake(&uds, 52).await {
            answer = Some(found);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (ok, mut stream) = answer.expect("the guest answers on port 52");
    assert_eq!(ok, "OK 1073741824\n");
    stream.get_mut().write_all(b"ping").await.unwrap();
    let mut echoed = String::new();
    stream.read_to_string(&mut echoed).await.unwrap();
    assert_eq!(echoed, "echo:ping");
    assert!(
        handshake(&uds, 53).await.is_none(),
        "nobody listens on port 53"
    );

    let pid = fake.guest_pid().unwrap();
    drop(fake);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(
        status.is_empty() || status.contains(") Z"),
        "guest {pid} still runs: {status}"
    );
}

#[tokio::test]
async fn a_vm_without_root_device_panics_and_exits() {
    let files = Files::new();
    let sock = files.dir.path().join("api.sock");
    let fake = FakeFirecracker::start(&sock, FakeFirecrackerConfig::default())
        .await
        .unwrap();
    let kernel = json!({ "kernel_image_path": files.path("vmlinux") });
    call(&sock, "PUT", "/boot-source", Some(kernel)).await;
    call(
        &sock,
        "PUT",
        "/actions",
        Some(json!({ "action_type": "InstanceStart" })),
    )
    .await;
    let code = tokio::time::timeout(Duration::from_secs(5), fake.exited())
        .await
        .unwrap();
    assert_eq!(code, 0);
}

#[tokio::test]
async fn faults_refuse_a_request_and_crash_after_start() {
    let files = Files::new();
    let sock = files.dir.path().join("api.sock");
    let config = FakeFirecrackerConfig {
        faults: Faults {
            refuse: Some(Refusal {
                method: "PUT".into(),
                path: "/machine-config".into(),
                fault_message: "injected".into(),
            }),
            crash_after_start: Some(Duration::from_millis(100)),
            hang_guest: false,
        },
        ..FakeFirecrackerConfig::default()
    };
    let fake = FakeFirecracker::start(&sock, config).await.unwrap();
    let answer = call(
        &sock,
        "PUT",
        "/machine-config",
        Some(json!({ "vcpu_count": 1, "mem_size_mib": 128 })),
    )
    .await;
    assert_eq!(fault(&answer), "injected");
    configure(&sock, &files).await;
    call(
        &sock,
        "PUT",
        "/actions",
        Some(json!({ "action_type": "InstanceStart" })),
    )
    .await;
    let code = tokio::time::timeout(Duration::from_secs(5), fake.exited())
        .await
        .unwrap();
    assert_eq!(code, 1);
    assert!(UnixStream::connect(&sock).await.is_err() || call_fails(&sock).await);
}

async fn call_fails(sock: &Path) -> bool {
    let Ok(mut stream) = UnixStream::connect(sock).await else {
        return true;
    };
    let _ = stream.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let mut buf = Vec::new();
    matches!(
        tokio::time::timeout(Duration::from_millis(500), stream.read_to_end(&mut buf)).await,
        Ok(Ok(0)) | Ok(Err(_)) | Err(_)
    )
}

#[test]
fn environment_configures_guest_and_faults() {
    let vars = |name: &str| match name {
        "FAKE_FIRECRACKER_GUEST" => Some("python3 /x/guest-agent.py".to_owned()),
        "FAKE_FIRECRACKER_REFUSE" => Some("PUT /vsock: no vsock today".to_owned()),
        "FAKE_FIRECRACKER_CRASH_AFTER_START_MS" => Some("250".to_owned()),
        "FAKE_FIRECRACKER_HANG_GUEST" => Some("1".to_owned()),
        _ => None,
    };
    let config = FakeFirecrackerConfig::from_vars(vars).unwrap();
    assert_eq!(
        config.guest.unwrap().args,
        vec!["/x/guest-agent.py".to_owned()]
    );
    let refusal = config.faults.refuse.unwrap();
    assert_eq!(
        (refusal.method.as_str(), refusal.path.as_str()),
        ("PUT", "/vsock")
    );
    assert_eq!(refusal.fault_message, "no vsock today");
    assert_eq!(
        config.faults.crash_after_start,
        Some(Duration::from_millis(250))
    );
    assert!(config.faults.hang_guest);
    assert!(
        FakeFirecrackerConfig::from_vars(
            |n| (n == "FAKE_FIRECRACKER_BOOT_DELAY_MS").then(|| "x".to_owned())
        )
        .is_err()
    );
}
