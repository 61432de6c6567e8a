//! The end of a child process's stderr: the last lines, bounded in count and length, kept to
//! say why a server died. Every line is also logged at debug level.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::io::{AsyncRead, AsyncReadExt};

/// Lines kept.
const MAX_LINES: usize = 20;
/// Bytes kept of one line; the rest of a longer line is dropped.
const MAX_LINE_BYTES: usize = 512;

/// The last lines a process wrote to stderr.
#[derive(Debug, Default)]
pub(crate) struct StderrTail {
    lines: Mutex<VecDeque<String>>,
}

impl StderrTail {
    /// The lines kept, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect()
    }

    fn push(&self, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end();
        if text.is_empty() {
            return;
        }
        let mut lines = self.lines.lock().unwrap_or_else(PoisonError::into_inner);
        if lines.len() == MAX_LINES {
            lines.pop_front();
        }
        lines.push_back(text.to_owned());
    }

    /// Reads `stream` to its end, keeping its last lines; logs each line for `server`.
    pub(crate) async fn collect(
        self: Arc<Self>,
        server: String,
        mut stream: impl AsyncRead + Unpin,
    ) {
        let mut chunk = [0u8; 4096];
        let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE_BYTES);
        loop {
            let n = match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            for &byte in &chunk[..n] {
                if byte == b'\n' {
                    tracing::debug!(server = %server, line = %String::from_utf8_lossy(&line), "MCP server stderr");
                    self.push(&line);
                    line.clear();
                } else if line.len() < MAX_LINE_BYTES {
                    line.push(byte);
                }
            }
        }
        self.push(&line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keeps_the_last_lines_each_cut_to_its_limit() {
        let mut input = Vec::new();
        for i in 0..30 {
            input.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        input.extend_from_slice(&[b'x'; 2000]);
        let tail = Arc::new(StderrTail::default());
        Arc::clone(&tail)
            .collect("s".to_owned(), input.as_slice())
            .await;
        let lines = tail.lines();
        assert_eq!(lines.len(), MAX_LINES);
        assert_eq!(lines[0], "line 11");
        assert_eq!(lines[MAX_LINES - 1].len(), MAX_LINE_BYTES);
    }
}
