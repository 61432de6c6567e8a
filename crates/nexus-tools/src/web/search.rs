//! [`WebSearch`], the `web_search` tool: a query sent to the operator's SearXNG instance, the
//! answer formatted for the model and cached for a while, so the same search made again does
//! not reach SearXNG. SearXNG failures are error results that say what to do.

use std::sync::Arc;

use async_trait::async_trait;
use nexus_core::{Tool, ToolContext, ToolError, ToolOutput};
use serde_json::{Value, json};

use super::cache::TtlCache;
use super::config::{MAX_RESULTS, TimeRange, WebConfigError, WebSearchConfig};
use super::results::format;
use super::searxng::{Query, SearchResponse, Searxng};

/// Characters of a query at most.
const MAX_QUERY_CHARS: usize = 500;

/// The `web_search` tool.
#[derive(Debug)]
pub struct WebSearch {
    searxng: Searxng,
    cache: TtlCache<Query, Arc<SearchResponse>>,
    schema: Value,
}

impl WebSearch {
    /// The tool with `config`; an error when `searxng_url` is missing or a value is invalid.
    pub fn new(config: WebSearchConfig) -> Result<Self, WebConfigError> {
        let settings = config.settings()?;
        let cache = TtlCache::new(settings.cache_ttl, settings.cache_entries);
        let schema = json!({
            "type": "object",
            "properties": {
                "query": {
                    "type": "string",
                    "description": "What to search the web for."
                },
                "max_results": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": MAX_RESULTS,
                    "description": format!(
                        "Results to return, 1 to {MAX_RESULTS} (default {}).",
                        settings.max_results
                    )
                },
                "time_range": {
                    "type": "string",
                    "enum": ["day", "month", "year"],
                    "description": "Only results from the last day, month or year."
                },
                "language": {
                    "type": "string",
                    "description": "Language of results, e.g. `en`, `de`, `fr-CA`, or `all`."
                }
            },
            "required": ["query"],
            "additionalProperties": false
        });
        Ok(WebSearch {
            searxng: Searxng::new(settings, &config.user_agent)?,
            cache,
            schema,
        })
    }
}

/// The call's arguments.
struct Args {
    query: Query,
    max_results: Option<usize>,
}

impl Args {
    fn parse(params: &Value) -> Result<Self, ToolError> {
        let invalid = |message: String| ToolError::InvalidArguments { message };
        let q = params
            .get("query")
            .and_then(Value::as_str)
            .map(|q| q.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|q| !q.is_empty())
            .ok_or_else(|| invalid("`query` must be a non-empty string".to_owned()))?;
        if q.chars().count() > MAX_QUERY_CHARS {
            return Err(invalid(format!(
                "`query` is longer than {MAX_QUERY_CHARS} characters"
            )));
        }
        let max_results = match params.get("max_results") {
            None | Some(Value::Null) => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|n| (1..=MAX_RESULTS).contains(n))
                    .ok_or_else(|| {
                        invalid(format!(
                            "`max_results` must be an integer from 1 to {MAX_RESULTS}"
                        ))
                    })?,
            ),
        };
        let time_range = match params.get("time_range") {
            None | Some(Value::Null) => None,
            Some(v) => Some(v.as_str().and_then(TimeRange::parse).ok_or_else(|| {
                invalid("`time_range` must be \"day\", \"month\" or \"year\"".to_owned())
            })?),
        };
        let language = match params.get("language") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let lang = v
                    .as_str()
                    .map(str::trim)
                    .filter(|l| {
                        !l.is_empty()
                            && l.len() <= 16
                            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                    })
                    .ok_or_else(|| {
                        invalid(
                            "`language` must be a language code like `en` or `pt-BR`".to_owned(),
                        )
                    })?;
                Some(lang.to_owned())
            }
        };
        Ok(Args {
            query: Query {
                q,
                time_range,
                language,
            },
            max_results,
        })
    }
}

#[async_trait]
impl Tool for WebSearch {
    fn name(&self) -> &str {
        "web_search"
    }

    fn description(&self) -> &str {
        "Searches the web and returns numbered results (title, URL, snippet), with direct \
         answers and summaries when the search engines have them. Use web_fetch to read a \
         result's page."
    }

    fn schema(&self) -> &Value {
        &self.schema
    }

    async fn execute(&self, ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let args = Args::parse(&params)?;
        let max_results = args
            .max_results
            .unwrap_or(self.searxng.settings().max_results);
        if let Some(cached) = self.cache.get(&args.query) {
            tracing::debug!(query = %args.query.q, "Web search answered from the cache");
            return Ok(ToolOutput::text(format(
                &args.query.q,
                &cached,
                max_results,
            )));
        }
        let limit = self.searxng.settings().timeout.min(ctx.remaining());
        let result = tokio::select! {
            biased;
            () = ctx.cancel.cancelled() => return Err(ToolError::Cancelled),
            result = self.searxng.search(&args.query, limit) => result,
        };
        match result {
            Ok(response) => {
                let response = Arc::new(response);
                let text = format(&args.query.q, &response, max_results);
                self.cache.insert(args.query, response);
                Ok(ToolOutput::text(text))
            }
            Err(err) => {
                tracing::warn!(error = %err, "Web search failed");
                Ok(ToolOutput {
                    content: err.to_string(),
                    is_error: true,
                    attachments: Vec::new(),
                })
            }
        }
    }
}
