//! The `code` tool: runs Python or shell code the model writes in a [`Sandbox`], with the
//! user's files in the working directory and the files the code leaves in `/work/out`
//! returned to the user.
//!
//! The tool knows no backend: it speaks to `dyn Sandbox` (Docker, Firecracker…), which
//! enforces the limits. It owns argument checks, the files crossing the boundary (names,
//! sizes, media types) and the text the model reads. It must never contain backend code.
//!
//! - `config`: [`CodeConfig`], the operator's limits, validated.
//! - `files`: input file names and caps, output media types.
//! - `render`: the result text.

mod config;
mod files;
mod render;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use nexus_core::{
    ExecRequest, Language, Sandbox, SandboxError, Tool, ToolContext, ToolError, ToolOutput,
};
use serde_json::{Value, json};

use config::CodeSettings;
pub use config::{CodeConfig, CodeConfigError};
use render::Returned;

/// The tool's name.
pub const TOOL_NAME: &str = "code";

/// Time kept after the sandbox's deadline to collect files and answer before the call's own
/// deadline.
const COLLECT_MARGIN: Duration = Duration::from_secs(2);

/// Runs code in a sandbox. Register it with `ToolRegistry::register(Arc::new(tool))`.
#[derive(Debug)]
pub struct CodeTool {
    sandbox: Arc<dyn Sandbox>,
    settings: CodeSettings,
    description: String,
    schema: Value,
}

impl CodeTool {
    /// A tool running code in `sandbox` under the limits of `config`.
    pub fn new(sandbox: Arc<dyn Sandbox>, config: CodeConfig) -> Result<Self, CodeConfigError> {
        let settings = CodeSettings::try_from(&config)?;
        let limits = settings.limits;
        let description = format!(
            "Runs a Python 3 or POSIX shell program in an isolated sandbox and returns its exit \
             code, stdout and stderr. Use it to compute, parse or convert data and to make \
             files. The working directory is /work; the files the user sent with the message \
             are in it. Files the program writes to /work/out/ are returned to the user. Each \
             call starts from an empty working directory (nothing is kept between calls). \
             Limits: {} s, {} memory, {} cores, {} of stdout and of stderr kept. The network is \
             off unless the agent's policy allows it. Python has its standard library only.",
            limits.wall_time.as_secs(),
            files::human_bytes(limits.memory_bytes),
            limits.cpus,
            files::human_bytes(limits.output_bytes as u64),
        );
        let schema = json!({
            "type": "object",
            "properties": {
                "language": {
                    "type": "string",
                    "enum": ["python", "shell"],
                    "description": "python (python3) or shell (sh)."
                },
                "code": {
                    "type": "string",
                    "description": "The program text."
                },
                "timeout_secs": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": limits.wall_time.as_secs(),
                    "description": format!("Seconds before the run is killed (at most {}, the default).", limits.wall_time.as_secs())
                }
            },
            "required": ["language", "code"],
            "additionalProperties": false
        });
        Ok(CodeTool {
            sandbox,
            settings,
            description,
            schema,
        })
    }

    /// The sandbox the tool runs code in.
    pub fn sandbox(&self) -> &Arc<dyn Sandbox> {
        &self.sandbox
    }
}

/// Arguments of one call, checked.
#[derive(Debug)]
struct Args {
    language: Language,
    code: String,
    timeout: Duration,
}

fn invalid(message: impl Into<String>) -> ToolError {
    ToolError::InvalidArguments {
        message: message.into(),
    }
}

fn parse_args(params: &Value, settings: &CodeSettings) -> Result<Args, ToolError> {
    let language = match params.get("language").and_then(Value::as_str) {
        Some("python") => Language::Python,
        Some("shell") => Language::Shell,
        Some(other) => {
            return Err(invalid(format!(
                "`language` must be \"python\" or \"shell\", not {other:?}"
            )));
        }
        None => return Err(invalid("`language` (\"python\" or \"shell\") is required")),
    };
    let Some(code) = params.get("code").and_then(Value::as_str) else {
        return Err(invalid("`code` (the program text) is required"));
    };
    if code.trim().is_empty() {
        return Err(invalid("`code` is empty"));
    }
    if code.len() > settings.max_code_bytes {
        return Err(invalid(format!(
            "`code` is {} bytes; at most {} are accepted: write less code, or generate it",
            code.len(),
            settings.max_code_bytes
        )));
    }
    if code.contains('\0') {
        return Err(invalid("`code` must not contain NUL characters"));
    }
    let max = settings.limits.wall_time;
    let timeout = match params.get("timeout_secs") {
        None | Some(Value::Null) => max,
        Some(v) => match v.as_u64() {
            Some(secs) if secs >= 1 => Duration::from_secs(secs).min(max),
            _ => {
                return Err(invalid(format!(
                    "`timeout_secs` must be an integer from 1 to {}",
                    max.as_secs()
                )));
            }
        },
    };
    Ok(Args {
        language,
        code: code.to_owned(),
        timeout,
    })
}

fn map_error(err: SandboxError) -> ToolError {
    match err {
        SandboxError::Unavailable { message } => ToolError::Failed {
            message: format!("the code sandbox is unavailable: {message}"),
        },
        SandboxError::Invalid { message } => ToolError::InvalidArguments { message },
        SandboxError::Cancelled => ToolError::Cancelled,
        SandboxError::Failed { message } => ToolError::Failed {
            message: format!("the code sandbox failed: {message}"),
        },
        other => ToolError::Failed {
            message: other.to_string(),
        },
    }
}

#[async_trait]
impl Tool for CodeTool {
    fn name(&self) -> &str {
        TOOL_NAME
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn schema(&self) -> &Value {
        &self.schema
    }

    async fn execute(&self, ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let args = parse_args(&params, &self.settings)?;
        // Leave time to collect files and answer before the call's own deadline.
        let available = ctx.remaining().saturating_sub(COLLECT_MARGIN);
        if available < Duration::from_secs(1) {
            return Err(ToolError::Timeout {
                after: Duration::ZERO,
            });
        }
        let mut limits = self.settings.limits;
        limits.wall_time = args.timeout.min(available);

        let inputs = files::gather_inputs(
            ctx.artifacts.as_ref(),
            &ctx.attachments,
            self.settings.input_files_bytes,
        )
        .await?;
        let mut notes = inputs.notes;
        let request = ExecRequest {
            language: args.language,
            code: args.code,
            files: inputs.files,
            network: ctx.policy.network,
            limits,
            session: self.settings.warm.then_some(ctx.session_id),
        };
        let result = self
            .sandbox
            .run(request, ctx.cancel.clone())
            .await
            .map_err(map_error)?;

        let mut returned = Vec::new();
        let mut attachments = Vec::new();
        for file in &result.files {
            let content_type = files::content_type(&file.path);
            let name = files::output_filename(&file.path);
            let size = file.bytes.len() as u64;
            match ctx
                .artifacts
                .put(Some(&name), content_type, file.bytes.clone())
                .await
            {
                Ok(attachment) => {
                    attachments.push(attachment);
                    returned.push(Returned {
                        path: file.path.clone(),
                        content_type,
                        size,
                    });
                }
                Err(err) => notes.push(format!(
                    "/work/out/{} could not be returned to the user: {err}",
                    file.path
                )),
            }
        }
        Ok(ToolOutput {
            content: render::render(&result, &limits, &returned, &notes),
            is_error: render::is_error(&result),
            attachments,
        })
    }
}
