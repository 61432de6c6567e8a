//! The `fake-firecracker` process takes Firecracker's command line and serves its API.
#![allow(clippy::unwrap_used, unreachable_pub)]

use std::process::{Command, Stdio};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

const BIN: &str = env!("CARGO_BIN_EXE_fake-firecracker");

#[test]
fn unknown_arguments_exit_like_firecracker() {
    let status = Command::new(BIN)
        .arg("--bogus")
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(153));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("Firecracker v"));
}

#[tokio::test]
async fn serves_the_api_on_the_socket_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let sock = dir.path().join("fc.sock");
    let mut child = tokio::process::Command::new(BIN)
        .arg("--api-sock")
        .arg(&sock)
        .arg("--id")
        .arg("vm-7")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(s) = UnixStream::connect(&sock).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut stream = stream.expect("the API socket is served");
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains(r#""state":"Not started""#), "{answer}");
    assert!(answer.contains(r#""id":"vm-7""#), "{answer}");

    // A second process cannot take the same socket.
    let status = Command::new(BIN)
        .arg("--api-sock")
        .arg(&sock)
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    child.kill().await.unwrap();
}
