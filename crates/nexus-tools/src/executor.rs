//! The tool registry and the execution of one tool call: lookup, argument checks, deadline,
//! cancellation and output cap. Every failure becomes a tool result the model can read; a tool
//! never crashes a turn.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use nexus_core::{ArtifactStore, Tool, ToolContext, ToolError, ToolOutput, ToolSpec};
use serde_json::Value;

/// Tools that come and go at run time, all named `{name}__{tool}` (an MCP server's tools).
/// An agent allows all of them with the entry `mcp:{name}`, or one by its full name.
pub trait ToolSource: Send + Sync + std::fmt::Debug {
    /// The source's name, the prefix of its tools' names (`[a-z0-9_-]`, no `__`).
    fn name(&self) -> &str;

    /// The tools offered right now (none while the source is down).
    fn tools(&self) -> Vec<Arc<dyn Tool>>;

    /// One line on the source's health for operators (`ready, 4 tools`; `failed: … (retry
    /// at …)`).
    fn status(&self) -> String;

    /// The tool called `name` (a full `{name}__{tool}` name), to run a call of it. A source
    /// that is down may return a stand-in whose calls say why, so that the model reads the
    /// reason instead of "unknown tool". By default, the tool of that name offered now.
    fn tool(&self, name: &str) -> Option<Arc<dyn Tool>> {
        self.tools().into_iter().find(|t| t.name() == name)
    }
}

/// The prefix of agent tool entries that allow every tool of a source.
pub const SOURCE_PREFIX: &str = "mcp:";

/// The separator between a source's name and the name of one of its tools.
pub const SOURCE_SEPARATOR: &str = "__";

/// The tools a runtime knows, by name, and the object storage their files go to.
#[derive(Debug, Clone)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
    sources: BTreeMap<String, Arc<dyn ToolSource>>,
    artifacts: Arc<dyn ArtifactStore>,
}

impl ToolRegistry {
    /// An empty registry whose tools keep their files in `artifacts`.
    pub fn new(artifacts: Arc<dyn ArtifactStore>) -> Self {
        ToolRegistry {
            tools: BTreeMap::new(),
            sources: BTreeMap::new(),
            artifacts,
        }
    }

    /// Where tools keep the files they produce.
    pub fn artifacts(&self) -> &Arc<dyn ArtifactStore> {
        &self.artifacts
    }

    /// Adds a tool, replacing one of the same name.
    pub fn register(&mut self, tool: Arc<dyn Tool>) {
        self.tools.insert(tool.name().to_owned(), tool);
    }

    /// Adds a source of tools, replacing one of the same name.
    pub fn register_source(&mut self, source: Arc<dyn ToolSource>) {
        self.sources.insert(source.name().to_owned(), source);
    }

    /// Names of the fixed tools, then `mcp:{name}` of each source.
    pub fn names(&self) -> Vec<String> {
        self.tools
            .keys()
            .cloned()
            .chain(self.sources.keys().map(|s| format!("{SOURCE_PREFIX}{s}")))
            .collect()
    }

    /// The fixed tools, by name.
    pub fn tools(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.values()
    }

    /// The sources of tools.
    pub fn sources(&self) -> impl Iterator<Item = &Arc<dyn ToolSource>> {
        self.sources.values()
    }

    /// Whether an agent's tool entry names something that exists: a tool, `mcp:{source}`, or
    /// `{source}__{tool}` of a known source (whose tools may be down right now).
    pub fn contains(&self, entry: &str) -> bool {
        if let Some(source) = entry.strip_prefix(SOURCE_PREFIX) {
            return self.sources.contains_key(source);
        }
        self.tools.contains_key(entry) || self.source_of(entry).is_some()
    }

    fn source_of(&self, name: &str) -> Option<&Arc<dyn ToolSource>> {
        let (source, tool) = name.split_once(SOURCE_SEPARATOR)?;
        (!tool.is_empty())
            .then(|| self.sources.get(source))
            .flatten()
    }

    /// The tools `entries` allow that exist now, each once, in the order given.
    fn allowed_tools(&self, entries: &[String]) -> Vec<Arc<dyn Tool>> {
        let mut out: Vec<Arc<dyn Tool>> = Vec::new();
        let mut push = |tool: Arc<dyn Tool>| {
            if !out.iter().any(|t| t.name() == tool.name()) {
                out.push(tool);
            }
        };
        for entry in entries {
            if let Some(source) = entry.strip_prefix(SOURCE_PREFIX) {
                if let Some(source) = self.sources.get(source) {
                    source.tools().into_iter().for_each(&mut push);
                }
            } else if let Some(tool) = self.tools.get(entry) {
                push(Arc::clone(tool));
            } else if let Some(tool) = self
                .source_of(entry)
                .and_then(|source| source.tools().into_iter().find(|t| t.name() == entry))
            {
                push(tool);
            }
        }
        out
    }

    /// Specs of the tools `entries` allow that exist now, in the order given (for the model
    /// request).
    pub fn specs(&self, entries: &[String]) -> Vec<ToolSpec> {
        self.allowed_tools(entries)
            .iter()
            .map(|t| ToolSpec {
                name: t.name().to_owned(),
                description: t.description().to_owned(),
                parameters: t.schema().clone(),
            })
            .collect()
    }

    /// The tool called `name`, when `entries` allow it.
    pub fn get(&self, name: &str, entries: &[String]) -> Option<Arc<dyn Tool>> {
        let allowed = entries.iter().any(|e| e == name)
            || self.source_of(name).is_some_and(|source| {
                entries
                    .iter()
                    .filter_map(|e| e.strip_prefix(SOURCE_PREFIX))
                    .any(|s| s == source.name())
            });
        if !allowed {
            return None;
        }
        if let Some(tool) = self.tools.get(name) {
            return Some(Arc::clone(tool));
        }
        self.source_of(name)?.tool(name)
    }
}

/// The entries of an agent's tool list that a narrower list (a channel's) still allows: an entry
/// `limit` names, and for `mcp:{source}` the tools of that source `limit` names one by one.
pub fn narrow(agent: &[String], limit: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in agent {
        if limit.contains(entry) {
            out.push(entry.clone());
        } else if let Some(source) = entry.strip_prefix(SOURCE_PREFIX) {
            out.extend(
                limit
                    .iter()
                    .filter(|l| {
                        l.strip_prefix(source)
                            .and_then(|rest| rest.strip_prefix(SOURCE_SEPARATOR))
                            .is_some_and(|tool| !tool.is_empty())
                    })
                    .cloned(),
            );
        }
    }
    out.dedup();
    out
}

/// Limits applied to every tool call.
#[derive(Debug, Clone, Copy)]
pub struct ToolLimits {
    /// Wall time of one call. Default 60 s.
    pub timeout: Duration,
    /// Bytes of output given to the model; longer output is truncated with a note. Default 32 KiB.
    pub max_output_bytes: usize,
}

impl Default for ToolLimits {
    fn default() -> Self {
        ToolLimits {
            timeout: Duration::from_secs(60),
            max_output_bytes: 32 * 1024,
        }
    }
}

/// Most schema violations listed in one error.
const MAX_REPORTED_ERRORS: usize = 5;

/// Checks arguments against the tool's JSON Schema (Draft 2020-12 and earlier; `$ref` only
/// within the schema). The error lists the violations with their paths, for the model to fix.
/// A schema the validator cannot compile (a tool's bug) falls back to the basic checks.
pub fn check_arguments(schema: &Value, args: &Value) -> Result<(), String> {
    if !args.is_object() {
        return Err("arguments must be a JSON object".to_owned());
    }
    let validator = match jsonschema::validator_for(schema) {
        Ok(v) => v,
        Err(err) => {
            tracing::warn!(error = %err, "Tool schema does not compile; checking arguments loosely");
            return basic_check(schema, args);
        }
    };
    let problems: Vec<String> = validator
        .iter_errors(args)
        .take(MAX_REPORTED_ERRORS + 1)
        .map(|e| {
            let path = e.instance_path().to_string();
            if path.is_empty() {
                e.to_string()
            } else {
                format!("at {path}: {e}")
            }
        })
        .collect();
    match problems.len() {
        0 => Ok(()),
        n if n > MAX_REPORTED_ERRORS => Err(format!(
            "{}; and more",
            problems[..MAX_REPORTED_ERRORS].join("; ")
        )),
        _ => Err(problems.join("; ")),
    }
}

/// The checks every tool schema allows: the arguments are an object, required properties are
/// present, and properties have the declared primitive type.
fn basic_check(schema: &Value, args: &Value) -> Result<(), String> {
    let Some(obj) = args.as_object() else {
        return Err("arguments must be a JSON object".to_owned());
    };
    if let Some(required) = schema.get("required").and_then(Value::as_array) {
        for name in required.iter().filter_map(Value::as_str) {
            if !obj.contains_key(name) {
                return Err(format!("missing required property `{name}`"));
            }
        }
    }
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, value) in obj {
            let Some(expected) = props
                .get(name)
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str)
            else {
                continue;
            };
            let ok = match expected {
                "string" => value.is_string(),
                "integer" => value.is_i64() || value.is_u64(),
                "number" => value.is_number(),
                "boolean" => value.is_boolean(),
                "array" => value.is_array(),
                "object" => value.is_object(),
                "null" => value.is_null(),
                _ => true,
            };
            if !ok {
                return Err(format!("property `{name}` must be of type {expected}"));
            }
        }
    }
    Ok(())
}

/// Cuts `text` to at most `max` bytes on a char boundary, with a note saying how much was cut.
pub fn cap_output(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let dropped = text.len() - cut;
    format!("{}\n[output truncated: {dropped} more bytes]", &text[..cut])
}

/// Runs one call of a tool the agent may use. Always returns an output for the model.
pub async fn execute(
    registry: &ToolRegistry,
    allowed: &[String],
    name: &str,
    args: Value,
    ctx: ToolContext,
    limits: ToolLimits,
) -> ToolOutput {
    let Some(tool) = registry.get(name, allowed) else {
        return error_output(format!("unknown tool `{name}`"));
    };
    if let Err(message) = check_arguments(tool.schema(), &args) {
        return error_output(ToolError::InvalidArguments { message }.to_string());
    }
    let cancel = ctx.cancel.clone();
    let timeout = limits.timeout.min(ctx.remaining());
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, tool.execute(ctx, args)) => match r {
            Ok(r) => r,
            Err(_) => Err(ToolError::Timeout { after: timeout }),
        },
        () = cancel.cancelled() => Err(ToolError::Cancelled),
    };
    match result {
        Ok(mut out) => {
            out.content = cap_output(out.content, limits.max_output_bytes);
            out
        }
        Err(err) => error_output(err.to_string()),
    }
}

fn error_output(message: String) -> ToolOutput {
    ToolOutput {
        content: message,
        is_error: true,
        attachments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arguments_missing_a_required_property_are_refused_with_its_name() {
        let schema =
            json!({"type":"object","properties":{"city":{"type":"string"}},"required":["city"]});
        let err = check_arguments(&schema, &json!({})).unwrap_err();
        assert!(err.contains("\"city\""), "{err}");
        assert!(check_arguments(&schema, &json!({"city": 3})).is_err());
        assert!(check_arguments(&schema, &json!({"city": "Paris"})).is_ok());
        assert!(check_arguments(&schema, &json!("Paris")).is_err());
    }

    #[test]
    fn a_narrower_list_keeps_only_what_it_names_also_inside_a_source() {
        let agent = vec![
            "code".to_owned(),
            "web_fetch".to_owned(),
            "mcp:github".to_owned(),
        ];
        let limit = |l: &[&str]| l.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(narrow(&agent, &limit(&["code", "browser"])), ["code"]);
        assert_eq!(
            narrow(&agent, &limit(&["mcp:github", "web_fetch"])),
            ["web_fetch", "mcp:github"]
        );
        assert_eq!(
            narrow(
                &agent,
                &limit(&["github__search", "gitlab__search", "github__"])
            ),
            ["github__search"]
        );
        assert!(narrow(&agent, &[]).is_empty());
    }

    #[derive(Debug)]
    struct Named(String, Value);

    #[async_trait::async_trait]
    impl Tool for Named {
        fn name(&self) -> &str {
            &self.0
        }
        fn description(&self) -> &str {
            "test"
        }
        fn schema(&self) -> &Value {
            &self.1
        }
        async fn execute(&self, _: ToolContext, _: Value) -> Result<ToolOutput, ToolError> {
            Ok(ToolOutput::text(self.0.clone()))
        }
    }

    #[derive(Debug)]
    struct Source(std::sync::Mutex<Vec<&'static str>>);

    impl ToolSource for Source {
        fn name(&self) -> &str {
            "gh"
        }
        fn status(&self) -> String {
            "ready".to_owned()
        }
        fn tools(&self) -> Vec<Arc<dyn Tool>> {
            self.0
                .lock()
                .unwrap()
                .iter()
                .map(|t| Arc::new(Named(format!("gh__{t}"), json!({}))) as Arc<dyn Tool>)
                .collect()
        }
    }

    #[test]
    fn tools_of_a_source_are_allowed_by_its_prefix_or_their_full_name_while_it_offers_them() {
        let mut registry = ToolRegistry::new(crate::testing::MemoryArtifacts::new());
        registry.register(Arc::new(Named("code".into(), json!({}))));
        let source = Arc::new(Source(std::sync::Mutex::new(vec!["search", "issue"])));
        registry.register_source(source.clone());

        assert_eq!(registry.names(), ["code", "mcp:gh"]);
        assert!(registry.contains("mcp:gh") && registry.contains("gh__anything"));
        assert!(!registry.contains("mcp:gitlab") && !registry.contains("gh__"));

        let all = vec!["code".to_owned(), "mcp:gh".to_owned()];
        let names: Vec<String> = registry.specs(&all).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["code", "gh__search", "gh__issue"]);
        assert!(registry.get("gh__issue", &all).is_some());

        let one = vec!["gh__search".to_owned()];
        assert!(registry.get("gh__search", &one).is_some());
        assert!(registry.get("gh__issue", &one).is_none());
        assert!(registry.get("code", &one).is_none());

        // A source that is down offers nothing, and its tools cannot be called.
        source.0.lock().unwrap().clear();
        assert!(registry.specs(&all).iter().all(|s| s.name == "code"));
        assert!(registry.get("gh__search", &all).is_none());
    }

    #[test]
    fn the_whole_schema_is_checked_and_every_violation_named_with_its_path() {
        let schema = json!({
            "type": "object",
            "properties": {
                "language": {"enum": ["python", "shell"]},
                "timeout_secs": {"type": "integer", "minimum": 1, "maximum": 60},
                "files": {"type": "array", "items": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}},
                    "required": ["name"]
                }}
            },
            "required": ["language"],
            "additionalProperties": false
        });
        let ok = json!({"language": "python", "timeout_secs": 5, "files": [{"name": "a"}]});
        assert!(check_arguments(&schema, &ok).is_ok());
        let bad = json!({"language": "ruby", "timeout_secs": 0, "files": [{}], "extra": 1});
        let err = check_arguments(&schema, &bad).unwrap_err();
        for needle in ["/language", "/timeout_secs", "/files/0", "extra"] {
            assert!(err.contains(needle), "{needle} missing from: {err}");
        }
    }

    #[test]
    fn a_schema_that_does_not_compile_falls_back_to_the_basic_checks() {
        let schema = json!({"type": "object", "properties": {"n": {"type": "integer"}},
            "required": ["n"], "$ref": "https://example.com/remote.json"});
        assert!(
            jsonschema::validator_for(&schema).is_err(),
            "remote references do not compile without network resolution"
        );
        assert!(check_arguments(&schema, &json!({"n": 1})).is_ok());
        assert!(check_arguments(&schema, &json!({})).is_err());
    }

    #[test]
    fn long_output_is_truncated_on_a_char_boundary_with_a_note() {
        let text = "é".repeat(10); // 20 bytes
        let capped = cap_output(text, 5);
        assert!(capped.starts_with("éé"));
        assert!(capped.contains("[output truncated: 16 more bytes]"));
    }
}
