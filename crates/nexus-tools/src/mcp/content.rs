//! From an MCP `tools/call` result to a [`ToolOutput`]: text blocks joined, images, audio and
//! binary resources stored as attachments (with a line saying so), structured content as JSON
//! text, `isError` kept.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use nexus_core::{ArtifactStore, ToolError, ToolOutput};
use rmcp::model::{CallToolResult, ContentBlock, ResourceContents};
use serde_json::Value;

/// Largest file taken from one content block, decoded.
const MAX_FILE_BYTES: usize = 16 * 1024 * 1024;

/// Turns `result` into an output, storing its files in `artifacts`.
pub(crate) async fn to_output(
    result: CallToolResult,
    artifacts: &dyn ArtifactStore,
) -> Result<ToolOutput, ToolError> {
    let mut parts: Vec<String> = Vec::new();
    let mut attachments = Vec::new();
    let mut texts: Vec<&str> = Vec::new();
    let mut files = 0usize;
    for block in &result.content {
        let file = match block {
            ContentBlock::Text(text) => {
                texts.push(&text.text);
                parts.push(text.text.clone());
                None
            }
            ContentBlock::Image(image) => Some(("image", &image.data, image.mime_type.as_str())),
            ContentBlock::Audio(audio) => Some(("audio", &audio.data, audio.mime_type.as_str())),
            ContentBlock::Resource(resource) => match &resource.resource {
                ResourceContents::TextResourceContents { uri, text, .. } => {
                    parts.push(format!("[resource {uri}]\n{text}"));
                    None
                }
                ResourceContents::BlobResourceContents {
                    blob, mime_type, ..
                } => Some((
                    "file",
                    blob,
                    mime_type.as_deref().unwrap_or("application/octet-stream"),
                )),
                _ => {
                    parts.push("[resource of a kind this client does not read]".to_owned());
                    None
                }
            },
            ContentBlock::ResourceLink(link) => {
                parts.push(format!("[resource link: {} <{}>]", link.name, link.uri));
                None
            }
            // A content type newer than this client: say so rather than drop it silently.
            _ => {
                parts.push("[content of a type this client does not read]".to_owned());
                None
            }
        };
        let Some((kind, data, content_type)) = file else {
            continue;
        };
        files += 1;
        match decode(data) {
            Ok(bytes) => {
                let filename = format!("{kind}-{files}.{}", extension(content_type));
                let size = bytes.len();
                let attachment = artifacts.put(Some(&filename), content_type, bytes).await?;
                parts.push(format!(
                    "[{kind} {content_type}, {size} bytes, attached as {filename}]"
                ));
                attachments.push(attachment);
            }
            Err(why) => parts.push(format!("[{kind} {content_type} dropped: {why}]")),
        }
    }
    if let Some(structured) = &result.structured_content
        && !texts.iter().any(|t| same_json(t, structured))
    {
        parts.push(structured.to_string());
    }
    Ok(ToolOutput {
        content: parts.join("\n"),
        is_error: result.is_error.unwrap_or(false),
        attachments,
    })
}

/// Whether `text` is JSON equal to `value` (servers often send structured content twice).
fn same_json(text: &str, value: &Value) -> bool {
    serde_json::from_str::<Value>(text).is_ok_and(|v| &v == value)
}

fn decode(data: &str) -> Result<Bytes, String> {
    // Base64 grows data by a third: refuse before decoding what would be too large.
    if data.len() / 4 * 3 > MAX_FILE_BYTES {
        return Err(format!("larger than {MAX_FILE_BYTES} bytes"));
    }
    STANDARD
        .decode(data.trim())
        .map(Bytes::from)
        .map_err(|e| format!("invalid base64 ({e})"))
}

/// A file extension for a MIME type.
fn extension(content_type: &str) -> &'static str {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match essence.as_str() {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        "image/svg+xml" => "svg",
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/mpeg" => "mp3",
        "audio/ogg" => "ogg",
        "application/pdf" => "pdf",
        "application/json" => "json",
        "text/plain" => "txt",
        "text/csv" => "csv",
        _ => "bin",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::MemoryArtifacts;
    use serde_json::json;

    fn result(value: Value) -> CallToolResult {
        serde_json::from_value(value).unwrap()
    }

    #[tokio::test]
    async fn text_is_joined_and_images_become_attachments() {
        let artifacts = MemoryArtifacts::new();
        let png = STANDARD.encode(b"\x89PNG fake");
        let out = to_output(
            result(json!({"content":[
                {"type":"text","text":"first"},
                {"type":"image","data":png,"mimeType":"image/png"},
                {"type":"text","text":"second"}
            ]})),
            artifacts.as_ref(),
        )
        .await
        .unwrap();
        assert!(!out.is_error);
        assert!(
            out.content
                .starts_with("first\n[image image/png, 9 bytes, attached as image-1.png]\nsecond"),
            "{}",
            out.content
        );
        assert_eq!(out.attachments.len(), 1);
        assert_eq!(out.attachments[0].content_type, "image/png");
        assert_eq!(
            artifacts
                .bytes(&out.attachments[0].storage_key)
                .unwrap()
                .as_ref(),
            b"\x89PNG fake"
        );
    }

    #[tokio::test]
    async fn structured_content_is_added_once_and_is_error_is_kept() {
        let artifacts = MemoryArtifacts::new();
        let out = to_output(
            result(json!({"content":[{"type":"text","text":"{\"a\": 1}"}],"structuredContent":{"a":1},"isError":true})),
            artifacts.as_ref(),
        )
        .await
        .unwrap();
        assert!(out.is_error);
        assert_eq!(out.content, "{\"a\": 1}");
        let out = to_output(
            result(json!({"content":[],"structuredContent":{"a":1}})),
            artifacts.as_ref(),
        )
        .await
        .unwrap();
        assert_eq!(out.content, "{\"a\":1}");
    }

    #[tokio::test]
    async fn bad_base64_is_reported_not_fatal() {
        let artifacts = MemoryArtifacts::new();
        let out = to_output(
            result(json!({"content":[{"type":"image","data":"***","mimeType":"image/png"}]})),
            artifacts.as_ref(),
        )
        .await
        .unwrap();
        assert!(
            out.content.contains("dropped: invalid base64"),
            "{}",
            out.content
        );
        assert!(artifacts.is_empty());
    }
}
