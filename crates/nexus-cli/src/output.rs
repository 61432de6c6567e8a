//! Printing results: aligned tables for people, JSON for scripts.

use std::io::Write;

/// Prints rows under a header with columns padded to their widest cell.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let mut out = std::io::stdout().lock();
    let line = |cells: Vec<&str>| -> String {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<width$}", width = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let _ = writeln!(out, "{}", line(header.to_vec()));
    for row in rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// Prints a JSON value on one line.
pub(crate) fn json(value: &serde_json::Value) {
    let _ = writeln!(std::io::stdout().lock(), "{value}");
}

/// Prints a line.
pub(crate) fn line(text: &str) {
    let _ = writeln!(std::io::stdout().lock(), "{text}");
}

/// One stored file as a line: `name (type, N bytes): URL`.
pub(crate) fn attachment(a: &nexus_gateway::pb::Attachment) -> String {
    let name = if a.filename.is_empty() {
        &a.id
    } else {
        &a.filename
    };
    format!("{name} ({}, {} bytes): {}", a.content_type, a.size, a.url)
}
