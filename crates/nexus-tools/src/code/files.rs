//! Files across the sandbox boundary: the user's attachments going in (named safely, total
//! size capped) and the files a run leaves in `/work/out` coming back as attachments.

use std::collections::HashSet;

use nexus_core::{ArtifactStore, Attachment, SandboxFile, ToolError};

/// Longest file name given to a file going in, in bytes.
const MAX_NAME_BYTES: usize = 100;

/// A safe file name for the working directory: the last component of `name` with anything but
/// letters, digits, `.`, `_` and `-` replaced by `_`, no leading dot, at most 100 bytes
/// (the extension kept), `file` when nothing is left.
pub(crate) fn sanitize_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean: String = last
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let trimmed = clean.trim_start_matches('.');
    if trimmed.len() != clean.len() {
        clean = trimmed.to_owned();
    }
    if clean.len() > MAX_NAME_BYTES {
        let ext = clean
            .rfind('.')
            .map(|i| clean[i..].to_owned())
            .filter(|e| e.len() <= 16)
            .unwrap_or_default();
        let mut cut = MAX_NAME_BYTES - ext.len();
        while !clean.is_char_boundary(cut) {
            cut -= 1;
        }
        clean = format!("{}{ext}", &clean[..cut]);
    }
    if clean.is_empty() {
        "file".to_owned()
    } else {
        clean
    }
}

/// `name`, or `stem-2.ext`, `stem-3.ext`… when taken; records the result in `taken`.
fn unique_name(name: String, taken: &mut HashSet<String>) -> String {
    if taken.insert(name.clone()) {
        return name;
    }
    let (stem, ext) = match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name.as_str(), ""),
    };
    let mut n = 2;
    loop {
        let candidate = format!("{stem}-{n}{ext}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

/// The user's files to write into the working directory, and notes on those left out.
#[derive(Debug, Default)]
pub(crate) struct Inputs {
    pub(crate) files: Vec<SandboxFile>,
    pub(crate) notes: Vec<String>,
}

/// Fetches `attachments` and names them for the working directory, up to `max_bytes` in
/// total; a file that would pass the cap is skipped with a note.
pub(crate) async fn gather_inputs(
    store: &dyn ArtifactStore,
    attachments: &[Attachment],
    max_bytes: u64,
) -> Result<Inputs, ToolError> {
    let mut inputs = Inputs::default();
    // `out` is the output directory: no input file may take its name.
    let mut taken: HashSet<String> = HashSet::from(["out".to_owned()]);
    let mut total: u64 = 0;
    for attachment in attachments {
        let wanted = attachment
            .filename
            .clone()
            .unwrap_or_else(|| format!("file-{}", attachment.id));
        let name = unique_name(sanitize_name(&wanted), &mut taken);
        if total.saturating_add(attachment.size) > max_bytes {
            inputs.notes.push(format!(
                "input file {name} ({}) skipped: the user's files may total at most {}",
                human_bytes(attachment.size),
                human_bytes(max_bytes)
            ));
            continue;
        }
        let bytes = store.get(attachment).await?;
        let len = bytes.len() as u64;
        if total.saturating_add(len) > max_bytes {
            inputs.notes.push(format!(
                "input file {name} ({}) skipped: the user's files may total at most {}",
                human_bytes(len),
                human_bytes(max_bytes)
            ));
            continue;
        }
        total += len;
        inputs.files.push(SandboxFile { path: name, bytes });
    }
    Ok(inputs)
}

/// The media type of a returned file, from its extension (`application/octet-stream` when
/// unknown).
pub(crate) fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "txt" | "log" => "text/plain",
        "md" => "text/markdown",
        "csv" => "text/csv",
        "tsv" => "text/tab-separated-values",
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "xml" => "application/xml",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "py" => "text/x-python",
        "sh" => "text/x-shellscript",
        "js" => "text/javascript",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "wav" => "audio/wav",
        "mp3" => "audio/mpeg",
        "mp4" => "video/mp4",
        _ => "application/octet-stream",
    }
}

/// A file name for a returned file: its path under `/work/out` with `/` as `_`.
pub(crate) fn output_filename(path: &str) -> String {
    path.replace('/', "_")
}

/// `1.5 MiB`, `12 KiB`, `300 B`.
pub(crate) fn human_bytes(n: u64) -> String {
    const KIB: u64 = 1024;
    const MIB: u64 = 1024 * KIB;
    if n >= MIB {
        format!("{:.1} MiB", n as f64 / MIB as f64)
    } else if n >= KIB {
        format!("{:.1} KiB", n as f64 / KIB as f64)
    } else {
        format!("{n} B")
    }
}
