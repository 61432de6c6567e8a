//! `[[channels]]` in the configuration: created at start, kept in line on the next start.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use nexus_channels::{AccessPolicy, ChannelSecrets, ChannelSettings, DmPolicy, ReceiveMode};
use nexus_core::ChannelKind;
use nexus_gateway::channel_config::ConfiguredChannel;
use nexus_gateway::channels::{ChannelServiceConfig, PlatformAdapters};
use nexus_gateway::server::{RunningServer, ServerOptions, start};
use nexus_testkit::chat::{ChatPlatform, UserSays};
use nexus_testkit::openai::{FakeOpenAi, Reply};
use nexus_testkit::telegram::FakeTelegram;

use common::{registry_for, settings};

fn configured(fake: &FakeTelegram, dm: DmPolicy) -> ConfiguredChannel {
    ConfiguredChannel {
        name: "support".into(),
        kind: ChannelKind::Telegram,
        agent: "assistant".into(),
        owner: None,
        settings: ChannelSettings {
            mode: ReceiveMode::Polling,
            api_base: Some(fake.base_url()),
            gateway_url: None,
            webhook_url: None,
            access: AccessPolicy {
                dm,
                ..AccessPolicy::default()
            },
        },
        secrets: ChannelSecrets {
            token: Some(fake.token().to_owned()),
            ..ChannelSecrets::default()
        },
    }
}

async fn serve(
    dir: &std::path::Path,
    llm: &FakeOpenAi,
    channel: ConfiguredChannel,
) -> RunningServer {
    let providers = nexus_gateway::models::from_registry(
        registry_for(llm),
        None,
        nexus_llm::Catalog::default(),
    );
    let mut settings = settings(dir);
    settings.channels = vec![channel];
    start(
        settings,
        ServerOptions {
            models: providers.resolver,
            default_model: providers.default_model,
            tools: Vec::new(),
            adapters: Arc::new(PlatformAdapters),
            channels: ChannelServiceConfig {
                edit_interval_scale: 0.1,
                ..ChannelServiceConfig::default()
            },
        },
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_channel_is_created_at_start_and_updated_on_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let llm = FakeOpenAi::start().await;
    let telegram = FakeTelegram::start().await;

    let server = serve(dir.path(), &llm, configured(&telegram, DmPolicy::Open)).await;
    let channels = server.store.list_channel_credentials(None).await.unwrap();
    assert_eq!(channels.len(), 1);
    assert_eq!(channels[0].name, "support");
    assert!(
        !String::from_utf8_lossy(&channels[0].sealed_secret).contains(telegram.token()),
        "the token is stored sealed"
    );
    llm.push(Reply::text("Configured and answering."));
    telegram.say(UserSays::direct("501", "hello")).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !telegram
        .bot_messages()
        .iter()
        .any(|m| m.text == "Configured and answering.")
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no answer: {:?}",
            telegram.bot_messages()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;

    // The next start with changed access updates the same channel.
    let server = serve(dir.path(), &llm, configured(&telegram, DmPolicy::Allowlist)).await;
    let channels = server.store.list_channel_credentials(None).await.unwrap();
    assert_eq!(channels.len(), 1, "updated, not added again");
    let settings: ChannelSettings = serde_json::from_value(channels[0].settings.clone()).unwrap();
    assert_eq!(settings.access.dm, DmPolicy::Allowlist);
    server.shutdown().await;
}
