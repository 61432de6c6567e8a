//! A SearXNG answer as text for the model: direct answers and infoboxes first, then numbered
//! results (`title`, `url`, `snippet`), then suggestions; "No results for …" when there is
//! nothing, with the corrections, suggestions and engines that did not answer.

use std::fmt::Write;

use serde_json::Value;

use super::searxng::{SearchResponse, SearchResult};

/// Characters of a snippet or infobox shown at most.
const SNIPPET_CHARS: usize = 400;

/// Formats `response` to `query`, showing at most `max_results` results.
pub(crate) fn format(query: &str, response: &SearchResponse, max_results: usize) -> String {
    let results: Vec<&SearchResult> = response
        .results
        .iter()
        .filter(|r| r.url.as_deref().is_some_and(|u| !u.trim().is_empty()))
        .take(max_results)
        .collect();
    let answers: Vec<String> = response.answers.iter().filter_map(answer_text).collect();
    let mut out = String::new();
    if results.is_empty() && answers.is_empty() && response.infoboxes.is_empty() {
        let _ = write!(out, "No results for \"{query}\".");
        list(&mut out, "Did you mean", &response.corrections);
        list(&mut out, "Suggestions", &response.suggestions);
        let engines: Vec<String> = response
            .unresponsive_engines
            .iter()
            .filter_map(|e| match e {
                Value::Array(parts) => {
                    let parts: Vec<&str> = parts.iter().filter_map(Value::as_str).collect();
                    (!parts.is_empty()).then(|| parts.join(": "))
                }
                other => other.as_str().map(str::to_owned),
            })
            .collect();
        if !engines.is_empty() {
            let _ = write!(out, "\nEngines that did not answer: {}", engines.join(", "));
        }
        return out;
    }
    let _ = writeln!(out, "Search results for \"{query}\":");
    for answer in &answers {
        let _ = writeln!(out, "\nAnswer: {answer}");
    }
    for infobox in &response.infoboxes {
        let title = infobox.infobox.as_deref().unwrap_or("Infobox");
        let _ = writeln!(out, "\nInfobox: {}", clean(title, 200));
        if let Some(content) = infobox.content.as_deref().filter(|c| !c.trim().is_empty()) {
            let _ = writeln!(out, "{}", clean(content, SNIPPET_CHARS));
        }
        let url = infobox
            .id
            .as_deref()
            .filter(|u| u.starts_with("http"))
            .or_else(|| {
                infobox
                    .urls
                    .iter()
                    .find_map(|u| u.get("url").and_then(Value::as_str))
            });
        if let Some(url) = url {
            let _ = writeln!(out, "{url}");
        }
    }
    for (n, result) in results.iter().enumerate() {
        let url = result.url.as_deref().unwrap_or_default().trim();
        let title = result
            .title
            .as_deref()
            .map(|t| clean(t, 200))
            .filter(|t| !t.is_empty())
            .unwrap_or_else(|| url.to_owned());
        let _ = write!(out, "\n{}. {title}\n{url}\n", n + 1);
        if let Some(date) = result.published_date.as_deref().filter(|d| !d.is_empty()) {
            let _ = writeln!(out, "Published: {date}");
        }
        let snippet = result.content.as_deref().map(|c| clean(c, SNIPPET_CHARS));
        if let Some(snippet) = snippet.filter(|s| !s.is_empty()) {
            let _ = writeln!(out, "{snippet}");
        }
    }
    list(&mut out, "Suggestions", &response.suggestions);
    out.trim_end().to_owned()
}

/// An answer: a string, or an object with `answer` (and maybe `url`).
fn answer_text(answer: &Value) -> Option<String> {
    let (text, url) = match answer {
        Value::String(s) => (s.as_str(), None),
        Value::Object(o) => (
            o.get("answer").and_then(Value::as_str)?,
            o.get("url").and_then(Value::as_str),
        ),
        _ => return None,
    };
    let text = clean(text, SNIPPET_CHARS);
    if text.is_empty() {
        return None;
    }
    Some(match url {
        Some(url) => format!("{text} ({url})"),
        None => text,
    })
}

fn list(out: &mut String, label: &str, values: &[Value]) {
    let items: Vec<String> = values
        .iter()
        .filter_map(Value::as_str)
        .map(|s| clean(s, 100))
        .filter(|s| !s.is_empty())
        .take(8)
        .collect();
    if !items.is_empty() {
        out.truncate(out.trim_end().len());
        let _ = write!(out, "\n\n{label}: {}", items.join(", "));
    }
}

/// Whitespace collapsed, at most `max` characters (with `…` when cut).
fn clean(text: &str, max: usize) -> String {
    let mut out = String::new();
    for (i, word) in text.split_whitespace().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(word);
    }
    if out.chars().count() > max {
        out = out
            .chars()
            .take(max)
            .collect::<String>()
            .trim_end()
            .to_owned();
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(json: &str) -> SearchResponse {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn results_are_numbered_title_url_snippet() {
        let r = response(
            r#"{"results":[
                {"url":"https://a.example/","title":"A  title","content":"first\n snippet"},
                {"url":"https://b.example/","title":"B","content":""},
                {"url":"https://c.example/","title":"C"}],
               "answers":[],"infoboxes":[],"suggestions":["rust lang"]}"#,
        );
        assert_eq!(
            format("rust", &r, 2),
            "Search results for \"rust\":\n\n1. A title\nhttps://a.example/\nfirst snippet\n\n\
             2. B\nhttps://b.example/\n\nSuggestions: rust lang"
        );
    }

    #[test]
    fn answers_and_infoboxes_come_first() {
        let r = response(
            r#"{"results":[],"answers":["42",{"answer":"forty-two","url":"https://x/"}],
               "infoboxes":[{"infobox":"Rust","content":"A language.","id":"https://en.wikipedia.org/wiki/Rust"}]}"#,
        );
        let text = format("answer", &r, 5);
        assert!(text.contains("Answer: 42\n"), "{text}");
        assert!(text.contains("Answer: forty-two (https://x/)"), "{text}");
        assert!(
            text.contains("Infobox: Rust\nA language.\nhttps://en.wikipedia.org/wiki/Rust"),
            "{text}"
        );
    }

    #[test]
    fn no_results_says_so_with_hints() {
        let r = response(
            r#"{"results":[],"corrections":["rust"],"unresponsive_engines":[["google","timeout"]]}"#,
        );
        assert_eq!(
            format("rsut", &r, 5),
            "No results for \"rsut\".\n\nDid you mean: rust\nEngines that did not answer: \
             google: timeout"
        );
    }
}
