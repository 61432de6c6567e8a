//! [`WebFetch`], the `web_fetch` tool: one URL fetched through the [`GuardedClient`] and turned
//! into text. The result starts with the final URL, the status and the content type; HTTP
//! errors, refusals and binary content are error results the model can read.

use std::net::IpAddr;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::{Tool, ToolContext, ToolError, ToolOutput};
use reqwest::header::CONTENT_TYPE;
use serde_json::{Value, json};

use super::body::{ContentType, read_capped};
use super::client::{Fetched, GuardedClient, GuardedClientOptions};
use super::config::{FetchSettings, WebConfigError, WebFetchConfig};
use super::refusal::{FetchError, chain};
use super::render::{binary_refusal, binary_type, render};
use crate::executor::cap_output;
use crate::net::NetworkGuard;

/// Bytes of an error page's text shown with an HTTP error.
const ERROR_EXCERPT_BYTES: usize = 600;

/// Bytes of an error page read at most.
const ERROR_BODY_BYTES: usize = 64 * 1024;

/// The `web_fetch` tool.
#[derive(Debug)]
pub struct WebFetch {
    client: GuardedClient,
    settings: FetchSettings,
    schema: Value,
}

impl WebFetch {
    /// The tool with `config`, reaching what `guard` allows (build it with
    /// [`WebFetchConfig::network_guard`]; a guard that refuses a range `config.allow` lists is
    /// an error, so the allowlist is never silently ignored).
    pub fn new(config: WebFetchConfig, guard: NetworkGuard) -> Result<Self, WebConfigError> {
        let settings = config.settings()?;
        for range in &settings.allow {
            let text = range.to_string();
            let first = text
                .split('/')
                .next()
                .and_then(|a| a.parse::<IpAddr>().ok());
            if first.is_some_and(|ip| guard.check(ip).is_err()) {
                return Err(WebConfigError::GuardMismatch { range: text });
            }
        }
        if config.connect_timeout_secs == 0 {
            return Err(WebConfigError::OutOfRange {
                key: "tools.web_fetch.connect_timeout_secs",
                value: "0".to_owned(),
                expected: "at least 1 second",
            });
        }
        let client = GuardedClient::new(
            guard,
            GuardedClientOptions {
                user_agent: config.user_agent,
                connect_timeout: Duration::from_secs(config.connect_timeout_secs),
                max_redirects: config.max_redirects,
                ports: config.ports,
                ..GuardedClientOptions::default()
            },
        )?;
        let schema = json!({
            "type": "object",
            "properties": {
                "url": {
                    "type": "string",
                    "description": "The http:// or https:// URL to fetch."
                },
                "max_bytes": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": settings.max_bytes,
                    "description": format!(
                        "Most bytes of the response body to read (default and maximum {}).",
                        settings.max_bytes
                    )
                }
            },
            "required": ["url"],
            "additionalProperties": false
        });
        Ok(WebFetch {
            client,
            settings,
            schema,
        })
    }

    /// The guarded client the tool fetches with.
    pub fn client(&self) -> &GuardedClient {
        &self.client
    }

    async fn fetch(&self, url: &str, max_bytes: usize) -> ToolOutput {
        let Fetched {
            url: final_url,
            redirects,
            mut response,
        } = match self.client.get(url).await {
            Ok(fetched) => fetched,
            Err(err) => return error(err.to_string()),
        };
        let status = response.status();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut head = format!(
            "URL: {final_url}\nStatus: {status}\nContent-Type: {}\n",
            content_type.as_deref().unwrap_or("(none)")
        );
        if redirects > 0 {
            head.push_str(&format!("Redirects: {redirects}\n"));
        }
        let http_error = status.is_client_error() || status.is_server_error();
        let ct = ContentType::parse(content_type.as_deref().unwrap_or_default());
        if binary_type(&ct.essence) && !http_error {
            // Refused by its type: the body is not downloaded.
            return error(format!("{head}\n{}", binary_refusal(&ct.essence)));
        }
        let max_bytes = if http_error {
            max_bytes.min(ERROR_BODY_BYTES)
        } else {
            max_bytes
        };
        let body = match read_capped(&mut response, max_bytes).await {
            Ok(body) => body,
            Err(err) => {
                return error(format!(
                    "{head}\ncannot read the body of {final_url}: {}",
                    chain(&err)
                ));
            }
        };
        let rendered = render(&ct, &body.bytes, &final_url);
        if http_error {
            let excerpt = rendered.map(|r| r.text).unwrap_or_default();
            let excerpt = cap_output(excerpt.trim().to_owned(), ERROR_EXCERPT_BYTES);
            let says = if excerpt.is_empty() {
                String::new()
            } else {
                format!("; the page says:\n{excerpt}")
            };
            return error(format!("{head}\nHTTP error {status}{says}"));
        }
        let rendered = match rendered {
            Ok(r) => r,
            Err(refusal) => return error(format!("{head}\n{refusal}")),
        };
        if let Some(title) = &rendered.title {
            head.push_str(&format!("Title: {title}\n"));
        }
        if body.truncated {
            head.push_str(&format!(
                "Note: only the first {} bytes of the body were read\n",
                body.bytes.len()
            ));
        }
        if let Some(note) = &rendered.note {
            head.push_str(&format!("Note: {note}\n"));
        }
        let text = cap_output(rendered.text, self.settings.max_text_bytes);
        ToolOutput::text(format!("{head}\n{text}"))
    }
}

fn error(content: String) -> ToolOutput {
    ToolOutput {
        content,
        is_error: true,
        attachments: Vec::new(),
    }
}

/// The call's arguments.
struct Args {
    url: String,
    max_bytes: Option<usize>,
}

impl Args {
    fn parse(params: &Value) -> Result<Self, ToolError> {
        let invalid = |message: &str| ToolError::InvalidArguments {
            message: message.to_owned(),
        };
        let url = params
            .get("url")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| invalid("`url` must be a non-empty string"))?;
        let max_bytes = match params.get("max_bytes") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .filter(|&n| n >= 1)
                    .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
                    .ok_or_else(|| invalid("`max_bytes` must be a positive integer"))?,
            ),
        };
        Ok(Args {
            url: url.to_owned(),
            max_bytes,
        })
    }
}

#[async_trait]
impl Tool for WebFetch {
    fn name(&self) -> &str {
        "web_fetch"
    }

    fn description(&self) -> &str {
        "Fetches one web page (http or https) and returns its readable text: HTML as \
         markdown-like text with headings, lists and links, JSON pretty-printed, plain text, \
         Markdown, CSV and XML as text. The result starts with the final URL (after \
         redirects), the HTTP status and the content type. Only public addresses can be \
         reached; images, PDFs and other binary files are not returned."
    }

    fn schema(&self) -> &Value {
        &self.schema
    }

    async fn execute(&self, ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(&params)?;
        let max_bytes = args
            .max_bytes
            .map_or(self.settings.max_bytes, |m| m.min(self.settings.max_bytes));
        let limit = self.settings.timeout.min(ctx.remaining());
        tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
            result = tokio::time::timeout(limit, self.fetch(&args.url, max_bytes)) => {
                Ok(result.unwrap_or_else(|_| {
                    error(FetchError::Timeout { url: args.url.clone(), after: limit }.to_string())
                }))
            }
        }
    }
}
