use super::*;

fn convert(html: &str) -> PageText {
    let base = Url::parse("https://example.com/docs/page.html").unwrap();
    html_to_text(html, Some(&base))
}

#[test]
fn headings_paragraphs_and_lists_become_markdown() {
    let page = convert(
        "<html><head><title> The\n Title </title></head><body>\
         <h1>Main</h1><p>First   paragraph\nwith  spaces.</p><p>Second &amp; last.</p>\
         <h2>List</h2><ul><li>one</li><li>two<ul><li>nested</li></ul></li></ul>\
         <ol start=3><li>three</li><li>four</li></ol></body></html>",
    );
    assert_eq!(page.title.as_deref(), Some("The Title"));
    assert_eq!(
        page.text,
        "# Main\n\nFirst paragraph with spaces.\n\nSecond & last.\n\n## List\n\n- one\n- two\n  \
         - nested\n\n3. three\n4. four"
    );
}

#[test]
fn links_are_resolved_against_the_page_and_empty_ones_dropped() {
    let page = convert(
        "<p>See <a href=\"/about\">the about page</a>, <a href=\"other.html\"> the other </a>\
         and <a href=\"https://rust-lang.org/\">Rust</a>.</p>\
         <p><a href=\"#top\">top</a> <a href=\"javascript:void(0)\">click</a> \
         <a href=\"/x\"><img src=a.png></a></p>",
    );
    assert_eq!(
        page.text,
        "See [the about page](https://example.com/about), \
         [the other](https://example.com/docs/other.html) and [Rust](https://rust-lang.org/).\n\n\
         top click"
    );
}

#[test]
fn a_base_element_changes_where_links_point() {
    let page =
        convert("<head><base href=\"https://cdn.example.org/v2/\"></head><a href=\"x\">x</a>");
    assert_eq!(page.text, "[x](https://cdn.example.org/v2/x)");
}

#[test]
fn scripts_styles_navigation_and_hidden_elements_are_dropped() {
    let page = convert(
        "<head><style>p { color: red }</style><script>var x = '<p>not text</p>';</script></head>\
         <body><nav><a href=/>Home</a></nav><noscript>Enable JS</noscript>\
         <p>Visible</p><div hidden>secret</div><span aria-hidden=\"true\">icon</span>\
         <button>Click</button><footer>© 2024</footer></body>",
    );
    assert_eq!(page.text, "Visible");
}

#[test]
fn code_blocks_keep_their_whitespace_and_inline_code_gets_backticks() {
    let page = convert(
        "<p>Run <code>cargo  test</code> now.</p><pre>\nfn main() {\n    println!(\"&lt;hi&gt;\");\n}\n</pre><p>after</p>",
    );
    assert_eq!(
        page.text,
        "Run `cargo test` now.\n\n```\nfn main() {\n    println!(\"<hi>\");\n}\n```\n\nafter"
    );
}

#[test]
fn tables_become_rows_of_cells() {
    let page = convert(
        "<table><tr><th>Name</th><th>Age</th></tr><tr><td><p>Ada</p></td><td>36</td></tr>\
         <tr><td>Alan</td><td>41</td></tr></table>",
    );
    assert_eq!(
        page.text,
        "| Name | Age |\n| --- | --- |\n| Ada | 36 |\n| Alan | 41 |"
    );
}

#[test]
fn quotes_breaks_and_rules() {
    let page = convert("<blockquote><p>quoted</p><p>twice</p></blockquote>a<br>b<hr>c");
    assert_eq!(page.text, "> quoted\n\n> twice\n\na\nb\n\n---\n\nc");
}

#[test]
fn broken_markup_still_yields_text() {
    let page = convert("<p>unclosed <b>bold <i>both</p><div>next &copy; &#x263A; &nosuchentity;");
    assert_eq!(page.text, "unclosed bold both\n\nnext © ☺ &nosuchentity;");
}

#[test]
fn xml_feeds_become_lines_of_text() {
    let text = xml_to_text(
        "<?xml version=\"1.0\"?><rss><channel><title>Feed</title>\
         <item><title>First &amp; best</title><link>https://e.com/1</link>\
         <description><![CDATA[Some <b>html</b>]]></description></item></channel></rss>",
    );
    assert_eq!(
        text,
        "Feed\n\nFirst & best\nhttps://e.com/1\nSome <b>html</b>"
    );
}
