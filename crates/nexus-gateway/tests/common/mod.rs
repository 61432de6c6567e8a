//! An in-process server on ephemeral ports with a fresh data directory and the OpenAI fake.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use nexus_gateway::config::{Overrides, Settings};
use nexus_gateway::models;
use nexus_gateway::pb;
use nexus_gateway::pb::gateway_client::GatewayClient;
use nexus_gateway::server::{RunningServer, ServerOptions, start};
use nexus_llm::{OpenAiConfig, OpenAiProvider, ProviderRegistry};
use nexus_testkit::openai::FakeOpenAi;
use secrecy::ExposeSecret;
use tonic::transport::Channel;

pub struct TestServer {
    pub dir: tempfile::TempDir,
    pub server: RunningServer,
    pub fake: FakeOpenAi,
    pub admin_key: String,
}

pub fn settings(dir: &Path) -> Settings {
    settings_with(dir, None)
}

/// Settings of a test server from the configuration file `config` (TOML), if any.
pub fn settings_with(dir: &Path, config: Option<&str>) -> Settings {
    let file = config.map(|text| {
        let path = dir.join("nexus.toml");
        std::fs::write(&path, text).unwrap();
        path
    });
    Settings::load_with_env(
        file.as_deref(),
        &Overrides {
            data_dir: Some(dir.to_owned()),
        },
        &|key| match key {
            "NEXUS_GRPC_ADDR" | "NEXUS_HTTP_ADDR" => Some("127.0.0.1:0".to_owned()),
            "NEXUS_LOG" => Some("warn".to_owned()),
            _ => None,
        },
    )
    .unwrap()
}

pub fn registry_for(fake: &FakeOpenAi) -> ProviderRegistry {
    let config = OpenAiConfig::new(fake.api_key())
        .with_base_url(&fake.base_url())
        .unwrap();
    let mut registry = ProviderRegistry::new();
    registry.register_with_default(
        Arc::new(OpenAiProvider::new(config).unwrap()),
        "gpt-4o-mini",
    );
    registry
}

impl TestServer {
    pub async fn start() -> TestServer {
        let fake = FakeOpenAi::start().await;
        let registry = registry_for(&fake);
        Self::start_with(fake, registry).await
    }

    pub async fn start_with(fake: FakeOpenAi, registry: ProviderRegistry) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let settings = settings(dir.path());
        Self::start_in(dir, settings, fake, registry).await
    }

    /// A server configured by the TOML file `config`.
    pub async fn start_with_config(config: &str) -> TestServer {
        let fake = FakeOpenAi::start().await;
        let registry = registry_for(&fake);
        let dir = tempfile::tempdir().unwrap();
        let settings = settings_with(dir.path(), Some(config));
        Self::start_in(dir, settings, fake, registry).await
    }

    async fn start_in(
        dir: tempfile::TempDir,
        settings: Settings,
        fake: FakeOpenAi,
        registry: ProviderRegistry,
    ) -> TestServer {
        let providers = models::from_registry(registry, None, nexus_llm::Catalog::default());
        let server = start(
            settings,
            ServerOptions {
                models: providers.resolver,
                default_model: providers.default_model,
                tools: Vec::new(),
                adapters: std::sync::Arc::new(nexus_gateway::channels::PlatformAdapters),
                channels: nexus_gateway::channels::ChannelServiceConfig::default(),
            },
        )
        .await
        .unwrap();
        let admin_key = server
            .bootstrapped
            .admin_key
            .as_ref()
            .expect("first start creates the admin key")
            .expose_secret()
            .to_owned();
        TestServer {
            dir,
            server,
            fake,
            admin_key,
        }
    }

    pub async fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.server.grpc_addr))
            .unwrap()
            .connect()
            .await
            .unwrap()
    }

    pub async fn client(&self) -> GatewayClient<Channel> {
        GatewayClient::new(self.channel().await)
    }

    pub fn http(&self, path: &str) -> String {
        format!("http://{}{}", self.server.http_addr, path)
    }
}

/// A request carrying `key` as its bearer token.
pub fn authed<T>(key: &str, body: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

pub fn chat(agent: &str, session: &str, text: &str) -> pb::ChatRequest {
    pb::ChatRequest {
        agent: agent.into(),
        session_id: session.into(),
        text: text.into(),
        client_message_id: String::new(),
    }
}

/// Runs a chat to its end: the streamed text and the final event.
pub async fn run_chat(
    client: &mut GatewayClient<Channel>,
    key: &str,
    request: pb::ChatRequest,
) -> Result<(String, pb::chat_event::Event), tonic::Status> {
    use pb::chat_event::Event;
    let mut stream = client.chat(authed(key, request)).await?.into_inner();
    let mut text = String::new();
    while let Some(event) = stream.message().await? {
        match event.event {
            Some(Event::TextDelta(d)) => text.push_str(&d.text),
            Some(e @ (Event::Done(_) | Event::Error(_))) => return Ok((text, e)),
            _ => {}
        }
    }
    panic!("chat stream ended without done or error");
}
