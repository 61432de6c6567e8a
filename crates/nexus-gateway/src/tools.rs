//! Tools as the server offers them: the artifacts port over object storage, the built-in
//! tools of `[tools]`, the MCP servers, and the registry holding them with the caller's own.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use nexus_core::{ArtifactStore, Attachment, Sandbox, Tool, ToolError};
use nexus_runtime::ToolRegistry;
use nexus_store::StoreError;
use nexus_store::blob::{BlobKind, BlobStore};
use nexus_tools::mcp::{McpServer, McpServerSettings};
use nexus_tools::web::{WebFetch, WebSearch};
use nexus_tools::{BrowserTool, CodeTool, DockerSandbox};

use crate::tool_config::{SandboxBackend, ToolSettings};

/// [`ArtifactStore`] backed by the server's object storage: tool files go under `artifacts/`.
#[derive(Debug, Clone)]
pub struct BlobArtifacts {
    blobs: Arc<BlobStore>,
}

impl BlobArtifacts {
    /// Artifacts kept in `blobs`.
    pub fn new(blobs: Arc<BlobStore>) -> Self {
        BlobArtifacts { blobs }
    }
}

fn failed(err: StoreError) -> ToolError {
    let message = match err {
        StoreError::TooLarge { size, limit } => {
            format!("file of {size} bytes is over the {limit}-byte storage limit")
        }
        other => format!("object storage: {other}"),
    };
    ToolError::Failed { message }
}

#[async_trait]
impl ArtifactStore for BlobArtifacts {
    async fn put(
        &self,
        filename: Option<&str>,
        content_type: &str,
        bytes: Bytes,
    ) -> Result<Attachment, ToolError> {
        self.blobs
            .put(BlobKind::Artifact, bytes, content_type, filename)
            .await
            .map_err(failed)
    }

    async fn get(&self, attachment: &Attachment) -> Result<Bytes, ToolError> {
        self.blobs
            .get(&attachment.storage_key)
            .await
            .map(|blob| blob.bytes)
            .map_err(failed)
    }
}

/// The sandbox backend `backend` describes; it contacts nothing yet.
fn sandbox_for(backend: &SandboxBackend) -> Result<Arc<dyn Sandbox>, String> {
    match backend {
        SandboxBackend::Docker(config) => DockerSandbox::new(config.clone())
            .map(|s| Arc::new(s) as Arc<dyn Sandbox>)
            .map_err(|e| e.to_string()),
        #[cfg(feature = "firecracker")]
        SandboxBackend::Firecracker(config) => nexus_tools::FirecrackerSandbox::new(config.clone())
            .map(|s| Arc::new(s) as Arc<dyn Sandbox>)
            .map_err(|e| e.to_string()),
    }
}

/// The tools of a running server and what must be stopped with it.
#[derive(Debug)]
pub struct ServerTools {
    /// The registry the runtime calls tools through.
    pub(crate) registry: ToolRegistry,
    sandbox: Option<Arc<dyn Sandbox>>,
    browser: Option<Arc<BrowserTool>>,
    mcp: Vec<Arc<McpServer>>,
}

/// A `[tools]` setting the tools refused when they were built.
#[derive(Debug, thiserror::Error)]
#[error("invalid tool configuration: {0}")]
pub struct ToolsError(pub String);

impl ServerTools {
    /// Builds the tools `settings` enable, plus `extra`, keeping files in `blobs`. MCP servers
    /// start connecting in the background.
    pub(crate) fn build(
        settings: &ToolSettings,
        blobs: &Arc<BlobStore>,
        extra: Vec<Arc<dyn Tool>>,
    ) -> Result<ServerTools, ToolsError> {
        let mut registry = ToolRegistry::new(Arc::new(BlobArtifacts::new(Arc::clone(blobs))));
        let err = |e: &dyn std::fmt::Display| ToolsError(e.to_string());
        let guard = settings.web_fetch.network_guard().map_err(|e| err(&e))?;
        if settings.enabled("web_search") {
            let tool = WebSearch::new(settings.web_search.clone()).map_err(|e| err(&e))?;
            registry.register(Arc::new(tool));
        }
        if settings.enabled("web_fetch") {
            let tool =
                WebFetch::new(settings.web_fetch.clone(), guard.clone()).map_err(|e| err(&e))?;
            registry.register(Arc::new(tool));
        }
        let mut sandbox = None;
        if settings.enabled("code") {
            let backend = sandbox_for(&settings.backend).map_err(ToolsError)?;
            let tool =
                CodeTool::new(Arc::clone(&backend), settings.code.clone()).map_err(|e| err(&e))?;
            registry.register(Arc::new(tool));
            sandbox = Some(backend);
        }
        let mut browser = None;
        if settings.enabled("browser") {
            let tool =
                Arc::new(BrowserTool::new(settings.browser.clone(), guard).map_err(|e| err(&e))?);
            registry.register(tool.clone());
            browser = Some(tool);
        }
        let mut mcp = Vec::new();
        for config in &settings.mcp {
            let checked = McpServerSettings::try_from(config.clone()).map_err(|e| err(&e))?;
            let server = McpServer::start(checked);
            registry.register_source(server.clone());
            mcp.push(server);
        }
        for tool in extra {
            registry.register(tool);
        }
        Ok(ServerTools {
            registry,
            sandbox,
            browser,
            mcp,
        })
    }

    /// Stops the MCP servers, closes the browser and removes every sandbox.
    pub async fn shutdown(&self) {
        for server in &self.mcp {
            server.shutdown().await;
        }
        if let Some(browser) = &self.browser {
            browser.shutdown().await;
        }
        if let Some(sandbox) = &self.sandbox {
            sandbox.shutdown().await;
        }
    }
}

/// The outcome of one check of [`check`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToolCheck {
    /// Works.
    Ok {
        /// What was checked.
        what: String,
        /// What was found.
        detail: String,
    },
    /// Will not work until fixed.
    Problem {
        /// What was checked.
        what: String,
        /// What is wrong.
        detail: String,
        /// How to fix it.
        fix: String,
    },
}

fn problem(what: &str, detail: impl Into<String>, fix: &str) -> ToolCheck {
    ToolCheck::Problem {
        what: what.to_owned(),
        detail: detail.into(),
        fix: fix.to_owned(),
    }
}

fn fine(what: &str, detail: impl Into<String>) -> ToolCheck {
    ToolCheck::Ok {
        what: what.to_owned(),
        detail: detail.into(),
    }
}

/// Checks what the enabled tools need, without starting anything lasting: the sandbox backend
/// answers and has its image, a Chromium executable exists, MCP servers are well configured
/// (`nexus doctor`).
pub async fn check(settings: &ToolSettings) -> Vec<ToolCheck> {
    let mut out = Vec::new();
    out.push(fine(
        "tools",
        format!("offered: {}", settings.enabled.join(", ")),
    ));
    if settings.enabled("code") {
        out.push(match sandbox_for(&settings.backend) {
            Err(e) => problem("code sandbox", e, "correct [tools.sandbox]"),
            Ok(sandbox) => match sandbox.check().await {
                Ok(()) => fine("code sandbox", format!("{} ready", sandbox.name())),
                Err(e) => problem(
                    "code sandbox",
                    e.to_string(),
                    "see docs/tools/code.md (Docker) or docs/tools/firecracker.md",
                ),
            },
        });
    }
    if settings.enabled("browser") {
        out.push(
            match nexus_tools::browser::find_executable(settings.browser.executable.as_deref()) {
                Ok(path) => fine("browser", format!("Chromium at {}", path.display())),
                Err(e) => problem(
                    "browser",
                    e.to_string(),
                    "install Chromium (Debian: apt-get install chromium) or set \
                     tools.browser.executable",
                ),
            },
        );
    }
    if settings.enabled("web_search") {
        out.push(match &settings.web_search.searxng_url {
            Some(url) => fine("web_search", format!("SearXNG at {url}")),
            None => problem(
                "web_search",
                "no SearXNG instance",
                "set tools.web_search.searxng_url",
            ),
        });
    }
    for server in &settings.mcp {
        let what = format!("MCP server {}", server.name);
        out.push(match McpServerSettings::try_from(server.clone()) {
            Ok(_) => fine(&what, "configured (its status shows in `nexus tool list`)"),
            Err(e) => problem(&what, e.to_string(), "correct its [[tools.mcp]] entry"),
        });
    }
    out
}
