//! The `code` tool over the Docker sandbox: the user's file in, a file out as an attachment.

use std::sync::Arc;

use bytes::Bytes;
use nexus_core::{ArtifactStore as _, Sandbox as _, Tool as _};
use nexus_tools::testing::{MemoryArtifacts, context};
use nexus_tools::{CodeConfig, CodeTool};
use serde_json::json;

use crate::support::harness;

#[tokio::test]
async fn the_code_tool_reads_the_users_file_and_returns_a_new_one() {
    let Some(h) = harness().await else { return };
    let sandbox = Arc::new(h.sandbox.clone());
    let tool = CodeTool::new(sandbox.clone(), CodeConfig::default()).unwrap();
    let artifacts = MemoryArtifacts::new();
    let input = artifacts
        .put(
            Some("numbers.txt"),
            "text/plain",
            Bytes::from_static(b"1\n2\n3\n"),
        )
        .await
        .unwrap();
    let mut ctx = context(artifacts.clone());
    ctx.attachments = vec![input];
    let session = ctx.session_id;
    let out = tool
        .execute(
            ctx,
            json!({
                "language": "python",
                "code": "total = sum(int(l) for l in open('numbers.txt'))\nprint(total)\nopen('/work/out/total.csv', 'w').write(f'total\\n{total}\\n')\n"
            }),
        )
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(out.content.contains("--- stdout:\n6\n"), "{}", out.content);
    assert_eq!(out.attachments.len(), 1);
    assert_eq!(out.attachments[0].content_type, "text/csv");
    assert_eq!(
        artifacts.bytes(&out.attachments[0].storage_key).unwrap(),
        Bytes::from_static(b"total\n6\n")
    );
    sandbox.release(session).await;
    h.assert_none_left().await;
}
