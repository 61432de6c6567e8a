//! The `code` tool over an in-test fake sandbox: arguments, files in and out, the result
//! text, and how sandbox errors reach the model.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{
    ArtifactStore, ExecRequest, ExecResult, Language, Sandbox, SandboxError, SandboxFile,
    SessionId, Tool, ToolError,
};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::files::sanitize_name;
use super::{CodeConfig, CodeTool};
use crate::testing::{MemoryArtifacts, context};

/// Answers every run with `answer` and keeps the requests it got.
#[derive(Debug)]
struct FakeSandbox {
    answer: Result<ExecResult, SandboxError>,
    requests: Mutex<Vec<ExecRequest>>,
}

impl FakeSandbox {
    fn answering(answer: Result<ExecResult, SandboxError>) -> Arc<Self> {
        Arc::new(FakeSandbox {
            answer,
            requests: Mutex::new(Vec::new()),
        })
    }

    fn last(&self) -> ExecRequest {
        self.requests.lock().unwrap().last().cloned().unwrap()
    }
}

#[async_trait]
impl Sandbox for FakeSandbox {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn check(&self) -> Result<(), SandboxError> {
        Ok(())
    }

    async fn run(
        &self,
        request: ExecRequest,
        _cancel: CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        self.requests.lock().unwrap().push(request);
        self.answer.clone()
    }

    async fn release(&self, _session: SessionId) {}

    async fn shutdown(&self) {}
}

fn ok(stdout: &str, exit: i64) -> Result<ExecResult, SandboxError> {
    Ok(ExecResult {
        exit_code: Some(exit),
        stdout: stdout.to_owned(),
        duration: Duration::from_millis(120),
        ..ExecResult::default()
    })
}

fn tool(sandbox: Arc<FakeSandbox>, config: CodeConfig) -> CodeTool {
    CodeTool::new(sandbox, config).unwrap()
}

#[tokio::test]
async fn a_successful_run_reports_exit_code_and_stdout_without_error() {
    let sandbox = FakeSandbox::answering(ok("1\n", 0));
    let t = tool(sandbox.clone(), CodeConfig::default());
    let ctx = context(MemoryArtifacts::new());
    let session = ctx.session_id;
    let out = t
        .execute(ctx, json!({"language": "python", "code": "print(1)"}))
        .await
        .unwrap();
    assert!(!out.is_error);
    assert!(out.content.starts_with("exit code: 0"), "{}", out.content);
    assert!(out.content.contains("--- stdout:\n1\n"), "{}", out.content);
    assert!(
        out.content.contains("--- stderr: (empty)"),
        "{}",
        out.content
    );
    let req = sandbox.last();
    assert_eq!(req.language, Language::Python);
    assert_eq!(req.session, Some(session));
    assert!(!req.network);
    assert_eq!(req.limits.wall_time, Duration::from_secs(30));
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_result_the_model_reads() {
    let sandbox = FakeSandbox::answering(ok("", 3));
    let t = tool(sandbox, CodeConfig::default());
    let out = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "shell", "code": "exit 3"}),
        )
        .await
        .unwrap();
    assert!(out.is_error);
    assert!(out.content.starts_with("exit code: 3"));
}

#[tokio::test]
async fn limits_hit_are_named_in_the_result() {
    let sandbox = FakeSandbox::answering(Ok(ExecResult {
        exit_code: None,
        timed_out: true,
        oom_killed: true,
        truncated: true,
        ..ExecResult::default()
    }));
    let t = tool(sandbox, CodeConfig::default());
    let out = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "python", "code": "while True: pass", "timeout_secs": 5}),
        )
        .await
        .unwrap();
    assert!(out.is_error);
    assert!(out.content.contains("killed"), "{}", out.content);
    assert!(out.content.contains("time limit of 5 s"), "{}", out.content);
    assert!(out.content.contains("limit 256.0 MiB"), "{}", out.content);
    assert!(out.content.contains("output truncated"), "{}", out.content);
}

#[tokio::test]
async fn an_unknown_language_or_a_bad_timeout_is_refused_with_a_clear_message() {
    let sandbox = FakeSandbox::answering(ok("", 0));
    let t = tool(sandbox, CodeConfig::default());
    let err = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "ruby", "code": "puts 1"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::InvalidArguments { message } if message.contains("\"python\" or \"shell\"")),
        "{err:?}"
    );
    let err = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "python", "code": "1", "timeout_secs": 0}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err:?}");
    let err = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "python", "code": "  "}),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::InvalidArguments { .. }), "{err:?}");
}

#[tokio::test]
async fn a_longer_timeout_than_configured_is_capped_and_network_follows_the_policy() {
    let sandbox = FakeSandbox::answering(ok("", 0));
    let t = tool(
        sandbox.clone(),
        CodeConfig {
            timeout_secs: 10,
            warm: false,
            ..CodeConfig::default()
        },
    );
    let mut ctx = context(MemoryArtifacts::new());
    ctx.policy.network = true;
    t.execute(
        ctx,
        json!({"language": "python", "code": "1", "timeout_secs": 600}),
    )
    .await
    .unwrap();
    let req = sandbox.last();
    assert_eq!(req.limits.wall_time, Duration::from_secs(10));
    assert!(req.network);
    assert_eq!(req.session, None, "warm off runs in a fresh sandbox");
}

#[tokio::test]
async fn the_users_files_go_in_under_safe_names_within_the_size_cap() {
    let artifacts = MemoryArtifacts::new();
    let a = artifacts
        .put(
            Some("../../etc/passwd"),
            "text/plain",
            Bytes::from_static(b"x"),
        )
        .await
        .unwrap();
    let b = artifacts
        .put(Some("data.csv"), "text/csv", Bytes::from_static(b"a,b\n"))
        .await
        .unwrap();
    let c = artifacts
        .put(Some("data.csv"), "text/csv", Bytes::from_static(b"c,d\n"))
        .await
        .unwrap();
    let big = artifacts
        .put(
            Some("big.bin"),
            "application/octet-stream",
            Bytes::from(vec![0u8; 2 * 1024 * 1024]),
        )
        .await
        .unwrap();
    let sandbox = FakeSandbox::answering(ok("", 0));
    let t = tool(
        sandbox.clone(),
        CodeConfig {
            input_files_mib: 1,
            ..CodeConfig::default()
        },
    );
    let mut ctx = context(artifacts);
    ctx.attachments = vec![a, b, c, big];
    let out = t
        .execute(ctx, json!({"language": "shell", "code": "ls"}))
        .await
        .unwrap();
    let names: Vec<String> = sandbox.last().files.into_iter().map(|f| f.path).collect();
    assert_eq!(names, ["passwd", "data.csv", "data-2.csv"]);
    assert!(
        out.content.contains("big.bin (2.0 MiB) skipped"),
        "{}",
        out.content
    );
}

#[test]
fn file_names_are_reduced_to_one_safe_component() {
    assert_eq!(sanitize_name("../a b/c d.txt"), "c_d.txt");
    assert_eq!(sanitize_name("..."), "file");
    assert_eq!(sanitize_name(".bashrc"), "bashrc");
    assert_eq!(sanitize_name("C:\\x\\rapport été.pdf"), "rapport_été.pdf");
    let long = format!("{}.csv", "a".repeat(300));
    let clean = sanitize_name(&long);
    assert!(clean.len() <= 100 && clean.ends_with(".csv"));
}

#[tokio::test]
async fn files_left_in_out_are_stored_attached_and_listed() {
    let sandbox = FakeSandbox::answering(Ok(ExecResult {
        exit_code: Some(0),
        files: vec![
            SandboxFile {
                path: "plot.png".to_owned(),
                bytes: Bytes::from_static(b"\x89PNG"),
            },
            SandboxFile {
                path: "data/table.csv".to_owned(),
                bytes: Bytes::from_static(b"a,b\n"),
            },
        ],
        ..ExecResult::default()
    }));
    let artifacts = MemoryArtifacts::new();
    let t = tool(sandbox, CodeConfig::default());
    let out = t
        .execute(
            context(artifacts.clone()),
            json!({"language": "python", "code": "..."}),
        )
        .await
        .unwrap();
    assert_eq!(out.attachments.len(), 2);
    assert_eq!(out.attachments[0].content_type, "image/png");
    assert_eq!(
        out.attachments[1].filename.as_deref(),
        Some("data_table.csv")
    );
    assert_eq!(
        artifacts.bytes(&out.attachments[1].storage_key).unwrap(),
        Bytes::from_static(b"a,b\n")
    );
    assert!(
        out.content
            .contains("- /work/out/plot.png (image/png, 4 B)")
    );
    assert!(out.content.contains("- /work/out/data/table.csv (text/csv"));
}

#[tokio::test]
async fn an_unavailable_sandbox_fails_the_call_with_the_fix() {
    let sandbox = FakeSandbox::answering(Err(SandboxError::Unavailable {
        message: "no Docker engine: run scripts/services/docker.sh".to_owned(),
    }));
    let t = tool(sandbox, CodeConfig::default());
    let err = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "python", "code": "1"}),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ToolError::Failed { message } if message.contains("scripts/services/docker.sh")),
        "{err:?}"
    );
    let sandbox = FakeSandbox::answering(Err(SandboxError::Cancelled));
    let t = tool(sandbox, CodeConfig::default());
    let err = t
        .execute(
            context(MemoryArtifacts::new()),
            json!({"language": "python", "code": "1"}),
        )
        .await
        .unwrap_err();
    assert_eq!(err, ToolError::Cancelled);
}

#[tokio::test]
async fn a_call_with_no_time_left_does_not_start_a_run() {
    let sandbox = FakeSandbox::answering(ok("", 0));
    let t = tool(sandbox.clone(), CodeConfig::default());
    let mut ctx = context(MemoryArtifacts::new());
    ctx.deadline = tokio::time::Instant::now() + Duration::from_millis(500);
    let err = t
        .execute(ctx, json!({"language": "python", "code": "1"}))
        .await
        .unwrap_err();
    assert!(matches!(err, ToolError::Timeout { .. }));
    assert!(sandbox.requests.lock().unwrap().is_empty());
}
