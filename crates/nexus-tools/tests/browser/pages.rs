//! What the model does with a page: navigate, click, type, extract, screenshot.

use serde_json::json;

use crate::support::{allowing, chromium, config, failure, ok, serve_site, session, tool};

#[tokio::test]
async fn navigate_reports_url_title_and_text_and_extract_reads_a_selector() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();

    let url = format!("http://{addr}/");
    let text = ok(&tool, &ctx, json!({"action": "navigate", "url": url})).await;
    assert!(text.contains(&format!("URL: {url}")), "{text}");
    assert!(text.contains("Title: Test page"), "{text}");
    assert!(text.contains("Hello from the test page"), "{text}");

    let text = ok(&tool, &ctx, json!({"action": "extract", "selector": "h1"})).await;
    assert_eq!(text, "Hello from the test page");
    let text = ok(&tool, &ctx, json!({"action": "extract"})).await;
    assert!(
        text.contains("Hello from the test page") && text.contains("before"),
        "{text}"
    );

    let err = failure(
        &tool,
        &ctx,
        json!({"action": "extract", "selector": "#nothing"}),
    )
    .await;
    assert!(
        err.contains("no element matches the selector `#nothing`"),
        "{err}"
    );
    let err = failure(&tool, &ctx, json!({"action": "click", "selector": "##bad"})).await;
    assert!(err.contains("the selector `##bad` failed"), "{err}");

    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = failure(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{closed}/")}),
    )
    .await;
    assert!(
        err.contains(&format!("navigation to http://{closed}/ failed")),
        "{err}"
    );
    assert!(
        err.contains(&format!("cannot connect to {closed}")),
        "{err}"
    );
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/nowhere")}),
    )
    .await;
    assert!(
        text.contains("no such page"),
        "a 404 page is a page: {text}"
    );
    // Host names go to the proxy unresolved and are resolved there.
    let url = format!("http://localhost:{}/", addr.port());
    let text = ok(&tool, &ctx, json!({"action": "navigate", "url": url})).await;
    assert!(text.contains("Title: Test page"), "{text}");
    tool.shutdown().await;
}

#[tokio::test]
async fn text_beyond_max_text_bytes_is_cut() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let mut config = config(chromium);
    config.max_text_bytes = 300;
    let tool = tool(config, allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/long")}),
    )
    .await;
    assert!(text.contains("[text cut at 300 bytes"), "{text}");
    let text = ok(&tool, &ctx, json!({"action": "extract"})).await;
    assert!(text.ends_with("[text cut at 300 bytes]"), "{text}");
    assert!(text.len() < 300 + 40, "{}", text.len());
    tool.shutdown().await;
}

#[tokio::test]
async fn click_runs_the_page_script_and_extract_sees_the_change() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;

    let text = ok(
        &tool,
        &ctx,
        json!({"action": "click", "selector": "#change"}),
    )
    .await;
    assert!(text.contains("Clicked `#change`"), "{text}");
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "extract", "selector": "#out"}),
    )
    .await;
    assert_eq!(text, "after the click");

    let err = failure(
        &tool,
        &ctx,
        json!({"action": "click", "selector": "#missing"}),
    )
    .await;
    assert!(
        err.contains("no element matches the selector `#missing`"),
        "{err}"
    );
    tool.shutdown().await;
}

#[tokio::test]
async fn typed_text_is_submitted_with_the_form() {
    let Some(chromium) = chromium() else { return };
    let (addr, seen) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, _) = session();
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;

    let text = ok(
        &tool,
        &ctx,
        json!({"action": "type", "selector": "#q", "text": "rust & chromium"}),
    )
    .await;
    assert!(text.contains("Typed 15 characters into `#q`"), "{text}");
    let text = ok(&tool, &ctx, json!({"action": "click", "selector": "#send"})).await;
    assert!(text.contains("The page navigated"), "{text}");
    assert!(text.contains("Thanks, got q=rust+%26+chromium"), "{text}");
    assert_eq!(
        seen.forms.lock().unwrap().as_slice(),
        ["q=rust+%26+chromium"]
    );

    // A final newline presses Enter, which submits too.
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/")}),
    )
    .await;
    let text = ok(
        &tool,
        &ctx,
        json!({"action": "type", "selector": "#q", "text": "again\n"}),
    )
    .await;
    assert!(
        text.contains("pressed Enter") && text.contains("Thanks, got q=again"),
        "{text}"
    );
    assert_eq!(seen.forms.lock().unwrap().len(), 2);
    tool.shutdown().await;
}

#[tokio::test]
async fn screenshot_is_a_png_of_the_page() {
    let Some(chromium) = chromium() else { return };
    let (addr, _) = serve_site("127.0.0.1").await;
    let tool = tool(config(chromium), allowing(&["127.0.0.0/8"]));
    let (ctx, artifacts) = session();
    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/red")}),
    )
    .await;

    let out = crate::support::call(&tool, &ctx, json!({"action": "screenshot"}))
        .await
        .unwrap();
    assert!(!out.is_error, "{}", out.content);
    assert!(
        out.content.contains("attached as screenshot.png"),
        "{}",
        out.content
    );
    assert_eq!(out.attachments.len(), 1);
    let attachment = &out.attachments[0];
    assert_eq!(attachment.content_type, "image/png");
    assert_eq!(attachment.filename.as_deref(), Some("screenshot.png"));
    let bytes = artifacts.bytes(&attachment.storage_key).unwrap();
    assert_eq!(attachment.size, bytes.len() as u64);

    let (width, height, middle) = decode(&bytes);
    assert_eq!((width, height), (800, 600));
    assert_eq!(middle, [255, 0, 0], "the page's red background");

    ok(
        &tool,
        &ctx,
        json!({"action": "navigate", "url": format!("http://{addr}/tall")}),
    )
    .await;
    let out = crate::support::call(
        &tool,
        &ctx,
        json!({"action": "screenshot", "full_page": true}),
    )
    .await
    .unwrap();
    assert!(out.content.contains("full page"), "{}", out.content);
    let (width, height, middle) =
        decode(&artifacts.bytes(&out.attachments[0].storage_key).unwrap());
    assert_eq!((width, height), (800, 2000));
    assert_eq!(middle, [255, 0, 0]);
    tool.shutdown().await;
}

/// Width, height and the colour of the middle pixel of a PNG.
fn decode(bytes: &[u8]) -> (u32, u32, [u8; 3]) {
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes.to_vec()));
    let mut reader = decoder.read_info().unwrap();
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let frame = reader.next_frame(&mut pixels).unwrap();
    let channels = frame.line_size / frame.width as usize;
    let at =
        ((frame.height / 2) as usize * frame.width as usize + frame.width as usize / 2) * channels;
    (
        frame.width,
        frame.height,
        [pixels[at], pixels[at + 1], pixels[at + 2]],
    )
}
