#![allow(clippy::unwrap_used, reason = "test code")]

use super::*;

const ANSWER: &str = "# Plan\n\nUse **bold**, *italic*, ~~gone~~ and `x < y && z`.\n\n\
- one\n- two with [docs](https://example.com/a?b=1&c=\"2\")\n\n\
1. first\n2. second\n\n\
> quoted <tag> & more\n\n\
```rust\nfn main() { println!(\"<hi>\"); }\n```\n\n\
| a | bb |\n|---|---|\n| 1 | 2 |\n";

#[test]
fn telegram_html_escapes_text_and_uses_only_supported_tags() {
    let html = Platform::Telegram.render(ANSWER);
    assert!(html.starts_with("<b>Plan</b>\n\n"), "{html}");
    assert!(
        html.contains("<b>bold</b>, <i>italic</i>, <s>gone</s>"),
        "{html}"
    );
    assert!(
        html.contains("<code>x &lt; y &amp;&amp; z</code>"),
        "{html}"
    );
    assert!(
        html.contains(
            "• one\n• two with <a href=\"https://example.com/a?b=1&amp;c=&quot;2&quot;\">docs</a>"
        ),
        "{html}"
    );
    assert!(html.contains("1. first\n2. second"), "{html}");
    assert!(
        html.contains("<blockquote>quoted &lt;tag&gt; &amp; more</blockquote>"),
        "{html}"
    );
    assert!(
        html.contains("<pre><code class=\"language-rust\">fn main() { println!(\"&lt;hi&gt;\"); }</code></pre>"),
        "{html}"
    );
    assert!(html.contains("<pre>a | bb\n1 | 2</pre>"), "{html}");
    // Every tag is one Telegram knows.
    let mut rest = html.as_str();
    while let Some(at) = rest.find('<') {
        let tag_end = rest[at..].find('>').unwrap();
        let tag = &rest[at + 1..at + tag_end];
        let name = tag
            .trim_start_matches('/')
            .split([' ', '>'])
            .next()
            .unwrap();
        assert!(
            ["b", "i", "s", "code", "pre", "a", "blockquote"].contains(&name),
            "unexpected tag <{tag}> in {html}"
        );
        rest = &rest[at + tag_end..];
    }
}

#[test]
fn raw_html_from_the_model_is_shown_not_interpreted() {
    let html = Platform::Telegram.render("Click <a href=\"x\">here</a> or <script>");
    assert!(!html.contains("<a href=\"x\">"), "{html}");
    assert!(html.contains("&lt;a href=\"x\"&gt;"), "{html}");
}

#[test]
fn slack_mrkdwn_uses_its_own_markers_and_escapes_angle_brackets() {
    let text = Platform::Slack.render(ANSWER);
    assert!(text.starts_with("*Plan*"), "{text}");
    assert!(text.contains("*bold*, _italic_, ~gone~"), "{text}");
    assert!(text.contains("`x &lt; y &amp;&amp; z`"), "{text}");
    assert!(
        text.contains("<https://example.com/a?b=1&amp;c=\"2\"|docs>"),
        "{text}"
    );
    assert!(text.contains("> quoted &lt;tag&gt; &amp; more"), "{text}");
    assert!(
        text.contains("```\nfn main() { println!(\"&lt;hi&gt;\"); }\n```"),
        "{text}"
    );
    assert!(
        !text.contains("**") && !text.contains("](") && !text.contains("# "),
        "{text}"
    );
}

#[test]
fn discord_keeps_markdown_and_turns_tables_into_code_blocks() {
    let text = Platform::Discord.render(ANSWER);
    assert!(text.contains("**bold**, *italic*, ~~gone~~"), "{text}");
    assert!(text.contains("[docs](https://example.com"), "{text}");
    assert!(text.contains("```\na | bb\n1 | 2\n```"), "{text}");
    assert!(!text.contains("|---|"), "{text}");
}

#[test]
fn plain_text_keeps_words_and_link_targets() {
    let text = plain_text("See **this** [page](https://e.x/p) and <https://e.x/q>.");
    assert_eq!(text, "See this page (https://e.x/p) and https://e.x/q.");
}

#[test]
fn the_plain_fallback_splits_like_the_markup_and_carries_no_markup() {
    let paragraph = format!("**Bold** <x> & `code` {}", "word ".repeat(120));
    let answer = vec![paragraph; 20].join("\n\n");
    let html = Platform::Telegram.messages(&answer);
    let plain = Platform::Telegram.plain_messages(&answer);
    assert_eq!(plain.len(), html.len());
    for m in &plain {
        assert!(m.starts_with("Bold <x> & code word"), "{}", &m[..40]);
        assert!(!m.contains("**") && !m.contains("&lt;") && !m.contains('`'));
        assert!(m.encode_utf16().count() <= 4096);
    }
}

#[test]
fn a_short_answer_is_one_message() {
    for platform in [Platform::Telegram, Platform::Discord, Platform::Slack] {
        assert_eq!(platform.messages("Hello **there**").len(), 1);
    }
}

#[test]
fn long_answers_split_at_paragraphs_within_each_limit() {
    let paragraph = "word ".repeat(60); // 300 characters
    let answer = (0..40)
        .map(|i| format!("Paragraph {i}: {paragraph}"))
        .collect::<Vec<_>>()
        .join("\n\n");
    for platform in [Platform::Telegram, Platform::Discord, Platform::Slack] {
        let messages = platform.messages(&answer);
        assert!(messages.len() > 1, "{platform:?}");
        for m in &messages {
            assert!(
                platform.measure_rendered(m) <= platform.limit(),
                "{platform:?}: {} > {}",
                platform.measure_rendered(m),
                platform.limit()
            );
            // Cut between paragraphs: every message starts a paragraph.
            assert!(m.starts_with("Paragraph "), "{platform:?}: {}", &m[..40]);
        }
        let all: String = messages.join(" ");
        assert!(all.contains("Paragraph 0:") && all.contains("Paragraph 39:"));
    }
}

#[test]
fn a_long_code_block_is_reopened_in_every_piece() {
    let code: String = (0..400)
        .map(|i| format!("let value_{i} = compute({i});\n"))
        .collect();
    let answer = format!("Here:\n\n```rust\n{code}```\n\nDone.");
    let messages = Platform::Discord.messages(&answer);
    assert!(messages.len() > 2);
    for m in &messages {
        assert!(m.chars().count() <= 2000, "{}", m.chars().count());
        assert_eq!(m.matches("```").count() % 2, 0, "fences balanced in: {m}");
    }
    let code_pieces: Vec<&String> = messages
        .iter()
        .filter(|m| m.contains("let value_"))
        .collect();
    assert!(code_pieces.iter().all(|m| m.starts_with("```rust\n")));
    // Nothing lost, nothing repeated.
    for i in [0, 199, 399] {
        let line = format!("let value_{i} = compute({i});");
        assert_eq!(
            messages.iter().filter(|m| m.contains(&line)).count(),
            1,
            "{line}"
        );
    }
    let telegram = Platform::Telegram.messages(&answer);
    assert!(
        telegram
            .iter()
            .all(|m| m.matches("<pre>").count() == m.matches("</pre>").count())
    );
}

#[test]
fn an_unbroken_run_of_text_is_cut_anyway() {
    let answer = "x".repeat(9000);
    let messages = Platform::Discord.messages(&answer);
    assert_eq!(messages.len(), 5);
    assert_eq!(messages.iter().map(|m| m.len()).sum::<usize>(), 9000);
}

#[test]
fn telegram_counts_utf16_units_of_the_visible_text() {
    // Each emoji is two UTF-16 units; markup does not count.
    let answer = format!("**{}**", "😀".repeat(3000));
    let messages = Platform::Telegram.messages(&answer);
    assert!(messages.len() >= 2);
    for m in &messages {
        let visible = plain_text(m);
        assert!(visible.encode_utf16().count() <= 4096);
    }
}

#[test]
fn an_unterminated_code_block_still_splits_cleanly() {
    let answer = format!("```\n{}", "line of code\n".repeat(400));
    let messages = Platform::Discord.messages(&answer);
    assert!(messages.len() > 1);
    assert!(
        messages
            .iter()
            .all(|m| m.starts_with("```\n") && m.ends_with("```"))
    );
}

impl Platform {
    /// What the platform counts of a message already rendered.
    fn measure_rendered(self, message: &str) -> usize {
        match self {
            Platform::Telegram => {
                // Strip tags and entities: what remains is what Telegram counts.
                let mut text = String::new();
                let mut in_tag = false;
                for c in message.chars() {
                    match c {
                        '<' => in_tag = true,
                        '>' if in_tag => in_tag = false,
                        c if !in_tag => text.push(c),
                        _ => {}
                    }
                }
                text.replace("&lt;", "<")
                    .replace("&gt;", ">")
                    .replace("&quot;", "\"")
                    .replace("&amp;", "&")
                    .encode_utf16()
                    .count()
            }
            Platform::Discord | Platform::Slack => message.chars().count(),
        }
    }
}
