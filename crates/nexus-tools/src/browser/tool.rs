//! The `browser` tool: arguments, the deadline of each action, and results for the model.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::actions::{self, Outcome};
use super::cdp::CdpError;
use super::config::{BrowserConfig, BrowserConfigError, BrowserSettings};
use super::engine::{Engine, EngineError};
use super::guard;
use crate::net::NetworkGuard;

const NAME: &str = "browser";
const DESCRIPTION: &str = "Use a headless web browser (JavaScript runs, cookies persist for this \
conversation). Actions: `navigate` to an http(s) `url` (returns the final URL, title and the \
start of the text); `click` the element a CSS `selector` matches; `type` `text` into the field \
a `selector` matches (replacing its content; end the text with a newline to press Enter); \
`extract` the visible text of the page or of a `selector`; `screenshot` the page as a PNG \
(`full_page` for the whole page). Only public addresses can be reached.";

/// One action, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Navigate { url: String },
    Click { selector: String },
    Type { selector: String, text: String },
    Extract { selector: Option<String> },
    Screenshot { full_page: bool },
}

fn invalid(message: &str) -> ToolError {
    ToolError::InvalidArguments {
        message: message.to_owned(),
    }
}

fn parse(params: &Value) -> Result<Action, ToolError> {
    let string = |key: &str| -> Result<Option<String>, ToolError> {
        match params.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(invalid(&format!("{key} must be a string"))),
        }
    };
    let action = string("action")?.ok_or_else(|| {
        invalid("action is required: navigate, click, type, extract or screenshot")
    })?;
    let selector = string("selector")?;
    Ok(match action.as_str() {
        "navigate" => Action::Navigate {
            url: string("url")?.ok_or_else(|| invalid("navigate needs url"))?,
        },
        "click" => Action::Click {
            selector: selector.ok_or_else(|| invalid("click needs selector"))?,
        },
        "type" => Action::Type {
            selector: selector.ok_or_else(|| invalid("type needs selector"))?,
            text: match params.get("text") {
                Some(Value::String(text)) => text.clone(),
                _ => return Err(invalid("type needs text")),
            },
        },
        "extract" => Action::Extract { selector },
        "screenshot" => Action::Screenshot {
            full_page: match params.get("full_page") {
                None | Some(Value::Null) => false,
                Some(Value::Bool(b)) => *b,
                Some(_) => return Err(invalid("full_page must be true or false")),
            },
        },
        other => {
            return Err(invalid(&format!(
                "unknown action `{other}`: use navigate, click, type, extract or screenshot"
            )));
        }
    })
}

fn schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "action": {
                "type": "string",
                "enum": ["navigate", "click", "type", "extract", "screenshot"],
                "description": "What to do."
            },
            "url": { "type": "string", "description": "navigate: an http or https URL." },
            "selector": {
                "type": "string",
                "description": "A CSS selector. click and type: required; extract: optional (default: the whole page)."
            },
            "text": {
                "type": "string",
                "description": "type: the text to put in the field; a final newline presses Enter."
            },
            "full_page": {
                "type": "boolean",
                "description": "screenshot: the whole page instead of the visible part. Default false."
            }
        },
        "required": ["action"],
        "additionalProperties": false
    })
}

/// The `browser` tool over one shared headless Chromium. Register it like any tool
/// (`registry.register(Arc::new(tool))`) and call [`BrowserTool::shutdown`] when the server
/// stops (dropping it also kills the browser, without closing contexts first).
#[derive(Debug)]
pub struct BrowserTool {
    engine: Arc<Engine>,
    schema: Value,
}

impl BrowserTool {
    /// A tool whose pages may reach what `guard` allows. Chromium starts on first use.
    pub fn new(config: BrowserConfig, guard: NetworkGuard) -> Result<Self, BrowserConfigError> {
        let settings = BrowserSettings::try_from(config)?;
        Ok(BrowserTool {
            engine: Engine::new(settings, guard),
            schema: schema(),
        })
    }

    /// Closes every session's context and stops Chromium (its whole process group); the
    /// profile directory is removed. Calls after it fail.
    pub async fn shutdown(&self) {
        self.engine.shutdown().await;
    }

    /// How many sessions have an open browser context.
    pub fn open_contexts(&self) -> usize {
        self.engine.open_pages()
    }

    /// The Chromium process id (also its process group id), while it runs.
    pub async fn browser_pid(&self) -> Option<u32> {
        self.engine.pid().await
    }

    async fn run(&self, ctx: &ToolContext, action: Action) -> Result<ToolOutput, ToolError> {
        let budget = self.engine.settings().action_timeout.min(ctx.remaining());
        let timeout = ToolError::Timeout { after: budget };
        // Time kept after the action's own deadline to stop what the page still loads.
        let reserve = (budget / 10).min(Duration::from_millis(500));
        let deadline = Instant::now() + budget;
        let work_deadline = deadline - reserve;
        if budget.is_zero() {
            return Err(timeout);
        }

        if let Action::Navigate { url } = &action {
            let checked = bounded(
                ctx,
                work_deadline,
                check_navigation(self.engine.guard(), url),
            );
            if let Err(refusal) = checked.await.map_err(|stop| stop.into_error(&timeout))? {
                return Ok(error_output(refusal));
            }
        }
        let lease = bounded(ctx, work_deadline, self.engine.lease(ctx.session_id))
            .await
            .map_err(|stop| stop.into_error(&timeout))?
            .map_err(engine_failed)?;
        let Some(page) = lease.page() else {
            return Err(ToolError::Failed {
                message: "browser page missing".to_owned(),
            });
        };
        let max = self.engine.settings().max_text_bytes;
        let act = async {
            match &action {
                Action::Navigate { url } => actions::navigate(page, url, max, work_deadline).await,
                Action::Click { selector } => {
                    actions::click(page, selector, max, work_deadline).await
                }
                Action::Type { selector, text } => {
                    actions::type_text(page, selector, text, max, work_deadline).await
                }
                Action::Extract { selector } => {
                    actions::extract(page, selector.as_deref(), max).await
                }
                Action::Screenshot { full_page } => {
                    let width = self.engine.settings().viewport_width;
                    actions::screenshot(page, *full_page, width).await
                }
            }
        };
        match bounded(ctx, work_deadline, act).await {
            Ok(Ok(outcome)) => {
                drop(lease);
                output(ctx, outcome).await
            }
            Ok(Err(err)) => {
                // The page may be unusable: the session's next action gets a fresh context.
                lease.discard();
                Err(cdp_failed(err))
            }
            Err(stop) => {
                // Whatever the page still loads is stopped before the next action of the
                // session; a page that does not even answer that is closed.
                let until = deadline.min(Instant::now() + Duration::from_millis(500));
                let stopped =
                    tokio::time::timeout_at(until, page.call("Page.stopLoading", json!({}))).await;
                if !matches!(stopped, Ok(Ok(_))) {
                    lease.discard();
                }
                Err(stop.into_error(&timeout))
            }
        }
    }
}

/// Why an action stopped before its end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancelled,
    Deadline,
}

impl Stop {
    fn into_error(self, timeout: &ToolError) -> ToolError {
        match self {
            Stop::Cancelled => ToolError::Cancelled,
            Stop::Deadline => timeout.clone(),
        }
    }
}

/// Runs `work` until it ends, the call is cancelled or `until` passes.
async fn bounded<T>(
    ctx: &ToolContext,
    until: Instant,
    work: impl Future<Output = T>,
) -> Result<T, Stop> {
    tokio::select! {
        biased;
        () = ctx.cancel.cancelled() => Err(Stop::Cancelled),
        done = tokio::time::timeout_at(until, work) => done.map_err(|_| Stop::Deadline),
    }
}

/// Checks a URL the model asked for: http(s) only, and a host the guard allows.
async fn check_navigation(guard: &NetworkGuard, url: &str) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    if !matches!(scheme.as_deref(), Some("http" | "https")) {
        return Err(format!(
            "refused: only http and https URLs can be opened, not {url:.100}"
        ));
    }
    guard::check(guard, url).await
}

fn error_output(content: String) -> ToolOutput {
    ToolOutput {
        content,
        is_error: true,
        attachments: Vec::new(),
    }
}

async fn output(ctx: &ToolContext, outcome: Outcome) -> Result<ToolOutput, ToolError> {
    let mut attachments = Vec::new();
    if let Some(png) = outcome.png {
        attachments.push(
            ctx.artifacts
                .put(Some("screenshot.png"), "image/png", Bytes::from(png))
                .await?,
        );
    }
    Ok(ToolOutput {
        content: outcome.text,
        is_error: outcome.is_error,
        attachments,
    })
}

fn engine_failed(err: EngineError) -> ToolError {
    match err {
        EngineError::Cdp(err) => cdp_failed(err),
        other => ToolError::Failed {
            message: other.to_string(),
        },
    }
}

fn cdp_failed(err: CdpError) -> ToolError {
    ToolError::Failed {
        message: match err {
            CdpError::Closed => {
                "the browser exited during the action; the next call starts it again".to_owned()
            }
            other => format!("browser: {other}"),
        },
    }
}

#[async_trait]
impl Tool for BrowserTool {
    fn name(&self) -> &str {
        NAME
    }

    fn description(&self) -> &str {
        DESCRIPTION
    }

    fn schema(&self) -> &Value {
        &self.schema
    }

    async fn execute(&self, ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let action = parse(&params)?;
        self.run(&ctx, action).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(params: Value) -> String {
        parse(&params).unwrap_err().to_string()
    }

    #[test]
    fn each_action_names_what_it_misses() {
        assert!(err(json!({"action": "click"})).contains("click needs selector"));
        assert!(err(json!({"action": "type", "selector": "#q"})).contains("type needs text"));
        assert!(err(json!({"action": "navigate"})).contains("navigate needs url"));
        assert!(err(json!({"action": "fly"})).contains("unknown action `fly`"));
        assert!(err(json!({"action": "screenshot", "full_page": "yes"})).contains("full_page"));
        assert_eq!(
            parse(&json!({"action": "extract"})).unwrap(),
            Action::Extract { selector: None }
        );
        assert_eq!(
            parse(&json!({"action": "type", "selector": "#q", "text": ""})).unwrap(),
            Action::Type {
                selector: "#q".to_owned(),
                text: String::new()
            }
        );
    }

    #[tokio::test]
    async fn only_web_urls_to_allowed_hosts_are_opened() {
        let guard = NetworkGuard::public_only();
        for url in [
            "file:///etc/passwd",
            "chrome://settings",
            "data:text/html,hi",
            "javascript:alert(1)",
        ] {
            let refusal = check_navigation(&guard, url).await.unwrap_err();
            assert!(
                refusal.starts_with("refused: only http and https"),
                "{refusal}"
            );
        }
        let refusal = check_navigation(&guard, "http://127.0.0.1:8080/")
            .await
            .unwrap_err();
        assert!(refusal.contains("loopback"), "{refusal}");
        let refusal = check_navigation(&guard, "http://169.254.169.254/latest/")
            .await
            .unwrap_err();
        assert!(refusal.contains("metadata"), "{refusal}");
    }
}
