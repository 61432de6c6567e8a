//! Files in both directions: what people send, fetched with `getFile` and downloaded into the
//! media store (within the size cap, or skipped with a note), and attachments of replies,
//! uploaded with `sendPhoto` or `sendDocument`.

use nexus_core::{Attachment, ChannelError};
use serde_json::{Value, json};
use tracing::warn;

use super::client::{CallError, Client, FilePart};
use super::inbound::FileRef;
use super::payload::{File, SentId};
use crate::context::ChannelContext;

/// Largest image sent with `sendPhoto`; bigger ones go as documents.
const MAX_PHOTO_BYTES: usize = 10 * 1024 * 1024;

/// Image types Telegram shows as photos (others, such as SVG or GIF, go as documents).
const PHOTO_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp", "image/bmp"];

fn skipped(file: &FileRef, size: Option<u64>, reason: String) -> Value {
    json!({"name": file.name, "size": size, "reason": reason})
}

/// Downloads `files` into the media store. Returns the attachments and notes for files
/// skipped (too big, refused by Telegram). An error (a transport failure, the media store
/// failing) means the message should not be acknowledged, so Telegram delivers it again.
pub(crate) async fn fetch(
    client: &Client,
    ctx: &ChannelContext,
    files: &[FileRef],
) -> Result<(Vec<Attachment>, Vec<Value>), ChannelError> {
    let max = ctx.limits.max_file_bytes;
    let too_big = |size: u64| format!("larger than the {max}-byte limit ({size} bytes)");
    let mut attachments = Vec::new();
    let mut notes = Vec::new();
    for file in files {
        if let Some(size) = file.size.filter(|s| *s > max) {
            notes.push(skipped(file, Some(size), too_big(size)));
            continue;
        }
        let info: File = match client
            .call("getFile", &json!({"file_id": file.file_id}))
            .await
        {
            Ok(info) => info,
            Err(CallError::Channel(err @ ChannelError::Transport { .. })) => return Err(err),
            Err(err) => {
                let err = ChannelError::from(err);
                warn!(file = %file.name, error = %err, "Telegram refused a file download");
                notes.push(skipped(file, file.size, format!("not downloadable: {err}")));
                continue;
            }
        };
        let size = info.file_size.or(file.size);
        if let Some(size) = size.filter(|s| *s > max) {
            notes.push(skipped(file, Some(size), too_big(size)));
            continue;
        }
        let Some(path) = info.file_path else {
            notes.push(skipped(
                file,
                size,
                "Telegram gave no download path".to_owned(),
            ));
            continue;
        };
        let download = match client.download(&path, max).await {
            Ok(d) => d,
            Err(err @ ChannelError::Transport { .. }) => return Err(err),
            Err(err) => {
                notes.push(skipped(file, size, format!("not downloadable: {err}")));
                continue;
            }
        };
        let content_type = file
            .content_type
            .clone()
            .or(download.content_type)
            .unwrap_or_else(|| "application/octet-stream".to_owned());
        let attachment = ctx
            .media
            .put(
                ctx.account_id,
                Some(&file.name),
                &content_type,
                download.bytes,
            )
            .await?;
        attachments.push(attachment);
    }
    Ok((attachments, notes))
}

/// Where an upload goes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Target<'a> {
    pub(crate) chat_id: &'a Value,
    pub(crate) thread_id: Option<i64>,
    pub(crate) reply_to: Option<i64>,
}

/// Uploads `attachment`: `sendPhoto` for a photo type up to 10 MB, else `sendDocument`.
/// Returns the sent message's id.
pub(crate) async fn upload(
    client: &Client,
    ctx: &ChannelContext,
    target: Target<'_>,
    attachment: &Attachment,
) -> Result<i64, ChannelError> {
    let bytes = ctx.media.get(attachment).await?;
    let photo =
        PHOTO_TYPES.contains(&attachment.content_type.as_str()) && bytes.len() <= MAX_PHOTO_BYTES;
    let (method, field) = if photo {
        ("sendPhoto", "photo")
    } else {
        ("sendDocument", "document")
    };
    let chat_id = match target.chat_id {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut fields = vec![("chat_id", chat_id)];
    if let Some(t) = target.thread_id {
        fields.push(("message_thread_id", t.to_string()));
    }
    if let Some(r) = target.reply_to {
        let reply = json!({"message_id": r, "allow_sending_without_reply": true});
        fields.push(("reply_parameters", reply.to_string()));
    }
    let part = FilePart {
        field,
        filename: attachment
            .filename
            .clone()
            .unwrap_or_else(|| format!("{field}-{}", attachment.id)),
        content_type: attachment.content_type.clone(),
        bytes,
    };
    let sent: SentId = client
        .call_multipart(method, &fields, &part)
        .await
        .map_err(ChannelError::from)?;
    Ok(sent.message_id)
}
