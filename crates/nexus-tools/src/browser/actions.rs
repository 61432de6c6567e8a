//! What the model asks of a page: navigate, click, type, extract, screenshot. Each returns
//! an [`Outcome`] (text for the model, whether it is a failure it can act on, a PNG) or a
//! protocol error when the browser itself failed.

use std::fmt::Write as _;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::time::Instant;

use super::cdp::CdpError;
use super::guard::PROXY_FRAME;
use super::page::Page;

/// How long after a click or a typed Enter a navigation may take to start and still be waited
/// for.
const NAVIGATION_START: Duration = Duration::from_millis(500);
/// Largest full-page screenshot, in pixels (taller pages are cut): its PNG must fit in one
/// DevTools message.
const MAX_FULL_PAGE_PIXELS: f64 = 12_000_000.0;

/// The result of an action.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub(crate) text: String,
    pub(crate) is_error: bool,
    pub(crate) png: Option<Vec<u8>>,
}

impl Outcome {
    fn ok(text: String) -> Self {
        Outcome {
            text,
            ..Outcome::default()
        }
    }

    fn error(text: String) -> Self {
        Outcome {
            text,
            is_error: true,
            png: None,
        }
    }
}

/// A JavaScript string literal of `s`.
fn js(s: &str) -> String {
    Value::from(s).to_string()
}

/// `s` cut to at most `max` bytes on a character boundary, and whether it was cut.
fn cut(s: &str, max: usize) -> (&str, bool) {
    if s.len() <= max {
        return (s, false);
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// The instant by which loading must be done, leaving time to read the page afterwards.
fn load_deadline(deadline: Instant) -> Instant {
    let left = deadline.saturating_duration_since(Instant::now());
    deadline - (left / 4).min(Duration::from_secs(2))
}

/// Goes to `url` and reports where it landed, its title and the start of its text.
pub(crate) async fn navigate(
    page: &Page,
    url: &str,
    max_text: usize,
    deadline: Instant,
) -> Result<Outcome, CdpError> {
    let mark = page.refusals.mark();
    let before = page.navigations();
    let answer = page.call("Page.navigate", json!({ "url": url })).await?;
    let failed = answer
        .get("errorText")
        .and_then(Value::as_str)
        .filter(|e| !e.is_empty());
    if let Some(error) = failed {
        if let Some(refusal) = document_refusal(page, mark) {
            return Ok(Outcome::error(refusal));
        }
        // The proxy does not know frames: what it saw during this navigation explains it.
        return Ok(Outcome::error(
            match page.refusals.since(mark, PROXY_FRAME).pop() {
                Some(seen) if seen.refused => seen.reason,
                Some(seen) => format!("navigation to {url} failed: {error} ({})", seen.reason),
                None => format!("navigation to {url} failed: {error}"),
            },
        ));
    }
    let mut notes = Vec::new();
    let same_document = answer.get("loaderId").is_none();
    if !same_document && !page.wait_loaded(before, load_deadline(deadline)).await {
        notes.push("the page was still loading; its text may be incomplete".to_owned());
    }
    if let Some(refusal) = document_refusal(page, mark) {
        return Ok(Outcome::error(refusal));
    }
    summary(page, mark, max_text, notes).await
}

/// The reason the guard gave for refusing a document of the page's main frame since `mark`.
fn document_refusal(page: &Page, mark: u64) -> Option<String> {
    page.refusals
        .since(mark, &page.target_id)
        .into_iter()
        .find(|r| r.document)
        .map(|r| r.reason)
}

/// URL, title, notes and the start of the page's text.
async fn summary(
    page: &Page,
    mark: u64,
    max_text: usize,
    mut notes: Vec<String>,
) -> Result<Outcome, CdpError> {
    let expression = format!(
        "(() => {{ const w = (s, n) => String(s ?? '').slice(0, n).toWellFormed(); \
         const root = document.body || document.documentElement; \
         return {{ url: w(location.href, 2048), title: w(document.title, 300), \
                   text: w(root ? root.innerText : '', {}) }}; }})()",
        max_text + 1
    );
    let info = match page.eval(&expression).await? {
        Ok(info) => info,
        Err(exception) => return Ok(Outcome::error(format!("cannot read the page: {exception}"))),
    };
    let field = |k: &str| info.get(k).and_then(Value::as_str).unwrap_or_default();
    let refused = page.refusals.since(mark, &page.target_id);
    if let Some(first) = refused.first() {
        notes.push(format!(
            "{} request(s) of this page were blocked, e.g. {} ({})",
            refused.len(),
            first.url,
            first.reason
        ));
    }
    notes.extend(
        page.take_dialogs()
            .into_iter()
            .map(|d| format!("dismissed a dialog: {d}")),
    );
    let mut text = format!("URL: {}\nTitle: {}\n", field("url"), field("title"));
    for note in &notes {
        let _ = writeln!(text, "Note: {note}");
    }
    let (body, was_cut) = cut(field("text"), max_text);
    let _ = write!(text, "\n{body}");
    if was_cut {
        let _ = write!(
            text,
            "\n[text cut at {max_text} bytes; use extract with a selector]"
        );
    }
    Ok(Outcome::ok(text))
}

/// Clicks the element `selector` matches, and waits for a navigation it starts.
pub(crate) async fn click(
    page: &Page,
    selector: &str,
    max_text: usize,
    deadline: Instant,
) -> Result<Outcome, CdpError> {
    let mark = page.refusals.mark();
    let before = page.navigations();
    let sel = js(selector);
    let expression = format!(
        "(() => {{ const el = document.querySelector({sel}); if (!el) return null; \
         el.scrollIntoView({{ block: 'center', inline: 'center' }}); \
         const r = el.getBoundingClientRect(); const x = r.left + r.width / 2, y = r.top + r.height / 2; \
         const at = document.elementFromPoint(x, y); \
         return {{ x, y, hit: r.width > 0 && r.height > 0 && !!at && (at === el || el.contains(at)) }}; }})()"
    );
    let target = match page.eval(&expression).await? {
        Ok(Value::Null) => return Ok(no_match(selector)),
        Ok(target) => target,
        Err(exception) => return Ok(bad_selector(selector, &exception)),
    };
    if target.get("hit").and_then(Value::as_bool) == Some(true) {
        let x = target.get("x").cloned().unwrap_or_default();
        let y = target.get("y").cloned().unwrap_or_default();
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            page.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await?;
        }
    } else if let Err(exception) = page
        .eval(&format!("document.querySelector({sel}).click()"))
        .await?
    {
        return Ok(Outcome::error(format!(
            "clicking `{selector}` failed: {exception}"
        )));
    }
    after_input(
        page,
        format!("Clicked `{selector}`."),
        mark,
        before,
        max_text,
        deadline,
    )
    .await
}

/// Replaces the content of the field `selector` matches with `text`; a final newline presses
/// Enter (submitting a form).
pub(crate) async fn type_text(
    page: &Page,
    selector: &str,
    text: &str,
    max_text: usize,
    deadline: Instant,
) -> Result<Outcome, CdpError> {
    let mark = page.refusals.mark();
    let before = page.navigations();
    let sel = js(selector);
    let expression = format!(
        "(() => {{ const el = document.querySelector({sel}); if (!el) return null; \
         el.scrollIntoView({{ block: 'center' }}); el.focus(); \
         if (typeof el.select === 'function') el.select(); \
         else if (el.isContentEditable) document.execCommand('selectAll'); \
         return document.activeElement === el; }})()"
    );
    match page.eval(&expression).await? {
        Ok(Value::Null) => return Ok(no_match(selector)),
        Ok(Value::Bool(true)) => {}
        Ok(_) => {
            return Ok(Outcome::error(format!(
                "the element `{selector}` cannot take text (it cannot be focused)"
            )));
        }
        Err(exception) => return Ok(bad_selector(selector, &exception)),
    }
    let (typed, enter) = match text.strip_suffix('\n') {
        Some(rest) => (rest.strip_suffix('\r').unwrap_or(rest), true),
        None => (text, false),
    };
    page.call("Input.insertText", json!({ "text": typed }))
        .await?;
    if enter {
        for kind in ["keyDown", "keyUp"] {
            page.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": "Enter", "code": "Enter",
                        "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13,
                        "text": if kind == "keyDown" { "\r" } else { "" } }),
            )
            .await?;
        }
    }
    let done = format!(
        "Typed {} characters into `{selector}`{}.",
        typed.chars().count(),
        if enter { " and pressed Enter" } else { "" }
    );
    after_input(page, done, mark, before, max_text, deadline).await
}

/// After a click or typing: waits for a navigation it started, and says where the page is.
async fn after_input(
    page: &Page,
    done: String,
    mark: u64,
    before: u64,
    max_text: usize,
    deadline: Instant,
) -> Result<Outcome, CdpError> {
    if !page.navigation_started(before, NAVIGATION_START).await {
        let mut text = done;
        for dialog in page.take_dialogs() {
            let _ = write!(text, "\nNote: dismissed a dialog: {dialog}");
        }
        return Ok(Outcome::ok(text));
    }
    let mut notes = Vec::new();
    if !page.wait_loaded(before, load_deadline(deadline)).await {
        notes.push("the page was still loading; its text may be incomplete".to_owned());
    }
    if let Some(refusal) = document_refusal(page, mark) {
        return Ok(Outcome::error(format!(
            "{done} The navigation it started was {refusal}"
        )));
    }
    let mut outcome = summary(page, mark, max_text, notes).await?;
    outcome.text = format!("{done} The page navigated.\n{}", outcome.text);
    Ok(outcome)
}

/// The visible text of the page, or of the element `selector` matches.
pub(crate) async fn extract(
    page: &Page,
    selector: Option<&str>,
    max_text: usize,
) -> Result<Outcome, CdpError> {
    let find = match selector {
        Some(selector) => format!("document.querySelector({})", js(selector)),
        None => "(document.body || document.documentElement)".to_owned(),
    };
    let expression = format!(
        "(() => {{ const el = {find}; if (!el) return null; \
         return String(el.innerText ?? el.textContent ?? '').slice(0, {}).toWellFormed(); }})()",
        max_text + 1
    );
    let text = match page.eval(&expression).await? {
        Ok(Value::String(text)) => text,
        Ok(_) => return Ok(no_match(selector.unwrap_or("body"))),
        Err(exception) => return Ok(bad_selector(selector.unwrap_or("body"), &exception)),
    };
    let (body, was_cut) = cut(&text, max_text);
    let mut out = body.to_owned();
    if was_cut {
        let _ = write!(out, "\n[text cut at {max_text} bytes]");
    }
    if out.trim().is_empty() {
        out = "(no visible text)".to_owned();
    }
    Ok(Outcome::ok(out))
}

/// A PNG of the viewport, or of the whole page (as wide as the viewport, cut at 12 million
/// pixels).
pub(crate) async fn screenshot(
    page: &Page,
    full_page: bool,
    viewport_width: u32,
) -> Result<Outcome, CdpError> {
    let mut params = json!({ "format": "png", "fromSurface": true });
    let mut size = String::from("viewport");
    if full_page {
        let metrics = page.call("Page.getLayoutMetrics", json!({})).await?;
        let dim = |k: &str| {
            metrics
                .pointer(&format!("/cssContentSize/{k}"))
                .and_then(Value::as_f64)
                .unwrap_or(1.0)
                .ceil()
                .max(1.0)
        };
        let width = dim("width").min(f64::from(viewport_width));
        let height = dim("height").min((MAX_FULL_PAGE_PIXELS / width).floor());
        params["captureBeyondViewport"] = Value::Bool(true);
        params["clip"] = json!({ "x": 0, "y": 0, "width": width, "height": height, "scale": 1 });
        size = format!("full page, {width}x{height} CSS px");
    }
    let shot = page.call("Page.captureScreenshot", params).await?;
    let data = shot.get("data").and_then(Value::as_str).unwrap_or_default();
    let Ok(png) = base64::engine::general_purpose::STANDARD.decode(data) else {
        return Ok(Outcome::error(
            "the browser returned an unreadable screenshot".to_owned(),
        ));
    };
    let url = match page
        .eval("location.href.slice(0, 2048).toWellFormed()")
        .await?
    {
        Ok(Value::String(url)) => url,
        _ => String::new(),
    };
    Ok(Outcome {
        text: format!(
            "Screenshot of {url} ({size}, {} bytes) attached as screenshot.png.",
            png.len()
        ),
        is_error: false,
        png: Some(png),
    })
}

fn no_match(selector: &str) -> Outcome {
    Outcome::error(format!("no element matches the selector `{selector}`"))
}

fn bad_selector(selector: &str, exception: &str) -> Outcome {
    Outcome::error(format!("the selector `{selector}` failed: {exception}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary() {
        assert_eq!(cut("héllo", 2), ("h", true));
        assert_eq!(cut("héllo", 3), ("hé", true));
        assert_eq!(cut("hé", 10), ("hé", false));
    }

    #[test]
    fn selectors_are_embedded_as_string_literals() {
        assert_eq!(
            js(r#"a[href="x"]'); alert(1); ('"#),
            r#""a[href=\"x\"]'); alert(1); ('""#
        );
    }
}
