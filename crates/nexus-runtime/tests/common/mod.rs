//! Shared set-up of the runtime tests: a SQLite store in a temporary directory, the OpenAI
//! provider pointed at the fake, a tool defined here, and helpers to drive turns.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use nexus_core::{
    Agent, AgentId, ChannelKind, LlmError, LlmProvider, Metadata, Session, SessionId, Tool,
    ToolContext, ToolError, ToolOutput, TurnEvent, User, UserId, UserRole,
};
use nexus_runtime::{
    EventReceiver, Metrics, ModelResolver, Runtime, RuntimeConfig, Submission, ToolRegistry,
    TurnHandle,
};
use nexus_store::{DedupeKey, OpenOptions, Store};
use nexus_testkit::openai::FakeOpenAi;
use serde_json::{Value, json};

/// Resolves `openai/*` to the provider under test and nothing else, in a real model chain.
#[derive(Debug)]
pub struct OneProvider(pub Arc<dyn LlmProvider>);

impl OneProvider {
    fn resolve(&self, address: &str) -> Result<(Arc<dyn LlmProvider>, String), LlmError> {
        match address.split_once('/') {
            Some(("openai", model)) => Ok((Arc::clone(&self.0), model.to_owned())),
            Some((provider, _)) => Err(LlmError::NotConfigured {
                provider: provider.to_owned(),
                env_var: format!("{}_API_KEY", provider.to_uppercase()),
            }),
            None => Err(LlmError::BadRequest {
                message: format!("bad model address {address}"),
            }),
        }
    }
}

impl ModelResolver for OneProvider {
    fn chain(&self, addresses: &[String]) -> Arc<dyn LlmProvider> {
        let candidates = addresses
            .iter()
            .map(|address| {
                let resolved = self.resolve(address);
                nexus_llm::Candidate {
                    address: address.clone(),
                    model: resolved
                        .as_ref()
                        .map(|(_, m)| m.clone())
                        .unwrap_or_default(),
                    provider: resolved.map(|(p, _)| p),
                    context_window: None,
                }
            })
            .collect();
        Arc::new(nexus_llm::ModelChain::new(
            candidates,
            Arc::new(nexus_llm::Breakers::default()),
        ))
    }
}

/// Adds two integers; defined by the test to exercise the tool path.
#[derive(Debug)]
pub struct AddTool {
    schema: Value,
}

impl AddTool {
    pub fn new() -> Self {
        AddTool {
            schema: json!({
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"]
            }),
        }
    }
}

#[async_trait]
impl Tool for AddTool {
    fn name(&self) -> &str {
        "add"
    }
    fn description(&self) -> &str {
        "Adds two integers."
    }
    fn schema(&self) -> &Value {
        &self.schema
    }
    async fn execute(&self, _ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let a = params["a"].as_i64().ok_or(ToolError::InvalidArguments {
            message: "a".into(),
        })?;
        let b = params["b"].as_i64().ok_or(ToolError::InvalidArguments {
            message: "b".into(),
        })?;
        Ok(ToolOutput::text((a + b).to_string()))
    }
}

/// Reports what a tool call sees of its surroundings: `network=… attachments=…`.
#[derive(Debug)]
pub struct ProbeTool {
    schema: Value,
}

impl ProbeTool {
    pub fn new() -> Self {
        ProbeTool {
            schema: json!({"type": "object", "properties": {}}),
        }
    }
}

#[async_trait]
impl Tool for ProbeTool {
    fn name(&self) -> &str {
        "probe"
    }
    fn description(&self) -> &str {
        "Reports the tool context."
    }
    fn schema(&self) -> &Value {
        &self.schema
    }
    async fn execute(&self, ctx: ToolContext, params: Value) -> Result<ToolOutput, ToolError> {
        let mut out = ToolOutput::text(format!(
            "network={} attachments={}",
            ctx.policy.network,
            ctx.attachments.len()
        ));
        if params.get("file").and_then(Value::as_bool) == Some(true) {
            let file = ctx
                .artifacts
                .put(Some("probe.txt"), "text/plain", "probed".into())
                .await?;
            out.attachments.push(file);
        }
        Ok(out)
    }
}

/// Waits a minute unless its call is cancelled; counts calls that ended, whether they saw the
/// cancellation or were dropped by the executor.
#[derive(Debug, Default)]
pub struct SlowTool {
    pub stopped: std::sync::atomic::AtomicUsize,
}

/// Counts one stop of a [`SlowTool`] call when dropped.
struct Stopped<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl Tool for SlowTool {
    fn name(&self) -> &str {
        "slow"
    }
    fn description(&self) -> &str {
        "Takes a minute."
    }
    fn schema(&self) -> &Value {
        static SCHEMA: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
        SCHEMA.get_or_init(|| json!({"type": "object", "properties": {}}))
    }
    async fn execute(&self, ctx: ToolContext, _params: Value) -> Result<ToolOutput, ToolError> {
        let _stopped = Stopped(&self.stopped);
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(60)) => Ok(ToolOutput::text("done")),
            () = ctx.cancel.cancelled() => Err(ToolError::Cancelled),
        }
    }
}

/// The slow tool every harness registers.
pub static SLOW: std::sync::LazyLock<Arc<SlowTool>> =
    std::sync::LazyLock::new(|| Arc::new(SlowTool::default()));

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub store: Arc<dyn Store>,
    pub fake: FakeOpenAi,
    pub runtime: Runtime,
    pub user: User,
    pub agent: Agent,
}

pub fn provider_for(fake: &FakeOpenAi) -> Arc<dyn LlmProvider> {
    let config = nexus_llm::OpenAiConfig::new(fake.api_key())
        .with_base_url(&fake.base_url())
        .unwrap();
    let provider: Arc<dyn LlmProvider> = Arc::new(nexus_llm::OpenAiProvider::new(config).unwrap());
    Arc::new(nexus_llm::Retrying::new(
        provider,
        nexus_llm::RetryPolicy {
            initial_delay: Duration::from_millis(20),
            ..nexus_llm::RetryPolicy::default()
        },
    ))
}

pub fn runtime(store: &Arc<dyn Store>, fake: &FakeOpenAi, config: RuntimeConfig) -> Runtime {
    let mut tools = ToolRegistry::new(nexus_tools::testing::MemoryArtifacts::new());
    tools.register(Arc::new(AddTool::new()));
    tools.register(Arc::new(ProbeTool::new()));
    tools.register(SLOW.clone());
    Runtime::new(
        Arc::clone(store),
        Arc::new(OneProvider(provider_for(fake))),
        tools,
        config,
        Metrics::default(),
    )
}

pub fn test_config() -> RuntimeConfig {
    RuntimeConfig {
        use_leases: false,
        shutdown_grace: Duration::from_millis(200),
        ..RuntimeConfig::default()
    }
}

pub async fn open_store(dir: &tempfile::TempDir) -> Arc<dyn Store> {
    let url = format!("sqlite://{}", dir.path().join("nexus.db").display());
    nexus_store::open(&url, &OpenOptions::default())
        .await
        .unwrap()
}

impl Harness {
    pub async fn new() -> Harness {
        Self::with(test_config(), FakeOpenAi::start().await).await
    }

    pub async fn with(config: RuntimeConfig, fake: FakeOpenAi) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&dir).await;
        let user = User {
            id: UserId::new(),
            name: "tester".into(),
            role: UserRole::User,
            created_at: Utc::now(),
        };
        store.create_user(&user).await.unwrap();
        let agent = Agent {
            id: AgentId::new(),
            owner_id: user.id,
            name: "helper".into(),
            description: String::new(),
            system_prompt: "You are terse.".into(),
            model: "openai/gpt-4o-mini".into(),
            fallback_models: vec![],
            tools: vec!["add".into()],
            tool_policy: nexus_core::ToolPolicy::default(),
            max_steps: 4,
            max_output_tokens: None,
            temperature: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        store.create_agent(&agent).await.unwrap();
        let runtime = runtime(&store, &fake, config);
        runtime.start().await.unwrap();
        Harness {
            dir,
            store,
            fake,
            runtime,
            user,
            agent,
        }
    }

    pub async fn set_agent(&mut self, change: impl FnOnce(&mut Agent)) {
        change(&mut self.agent);
        self.store.update_agent(&self.agent).await.unwrap();
    }

    pub async fn new_session(&self) -> Session {
        let id = SessionId::new();
        let session = Session {
            id,
            user_id: self.user.id,
            agent_id: self.agent.id,
            channel: ChannelKind::Grpc,
            scope: id.to_string(),
            title: "test".into(),
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        self.store.create_session(&session).await.unwrap();
        session
    }

    pub async fn submit(&self, session: &Session, text: &str) -> TurnHandle {
        self.submit_with_key(session, text, None).await
    }

    pub async fn submit_with_key(
        &self,
        session: &Session,
        text: &str,
        key: Option<&str>,
    ) -> TurnHandle {
        self.runtime
            .submit(Submission {
                session: session.clone(),
                text: text.into(),
                attachments: vec![],
                metadata: Metadata::new(),
                dedupe: key.map(|k| DedupeKey {
                    channel: ChannelKind::Grpc,
                    account: self.user.id.to_string(),
                    external_id: k.into(),
                }),
            })
            .await
            .unwrap()
    }
}

/// Reads a turn's events until its terminal one (bounded: a hung turn fails the test).
pub async fn collect(events: &mut EventReceiver) -> Vec<TurnEvent> {
    let mut out = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(20), events.recv())
            .await
            .expect("turn did not finish within 20 s")
            .expect("event stream closed before a terminal event");
        let terminal = event.is_terminal();
        out.push(event);
        if terminal {
            return out;
        }
    }
}

pub fn text_of(events: &[TurnEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            TurnEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

pub fn deltas(events: &[TurnEvent]) -> usize {
    events
        .iter()
        .filter(|e| matches!(e, TurnEvent::TextDelta { .. }))
        .count()
}
