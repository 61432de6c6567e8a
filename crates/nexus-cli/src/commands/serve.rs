//! `nexus serve`: run the server until SIGINT or SIGTERM.

use std::process::ExitCode;

use anyhow::Context;
use nexus_gateway::config::{Overrides, Settings};
use nexus_gateway::server::{ServerOptions, start};
use secrecy::ExposeSecret;
use tracing::warn;
use tracing_subscriber::EnvFilter;

use crate::args::{ServeArgs, ServerConfigArgs};

/// Loads validated settings from the file, environment and flags.
pub(crate) fn settings(args: &ServerConfigArgs) -> anyhow::Result<Settings> {
    Ok(Settings::load(
        args.config.as_deref(),
        &Overrides {
            data_dir: args.data_dir.clone(),
        },
    )?)
}

fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&settings.log_level).with_context(|| {
        format!(
            "invalid configuration `log.level / NEXUS_LOG`: `{}` is not a log filter. Use e.g. \
             info, debug, or nexus_runtime=debug",
            settings.log_level
        )
    })?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if settings.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
    Ok(())
}

async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args.config)?;
    init_logging(&settings)?;
    let providers = nexus_gateway::models::from_env(
        settings.default_model.clone(),
        settings.catalog.clone(),
        &settings.compatible_providers,
    )?;
    if providers.configured.is_empty() {
        warn!(
            "No model provider is configured. Set OPENAI_API_KEY (and OPENAI_BASE_URL for any \
             OpenAI-compatible server) and restart; until then chats answer with this hint."
        );
    }
    let data_dir = settings.data_dir.clone();
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
    .await?;
    if let Some(key) = &server.bootstrapped.admin_key {
        println!();
        println!("  First start: created the admin user and the agent `assistant`.");
        println!(
            "  Admin API key (shown once; saved to {}):",
            server.bootstrapped.admin_key_file.display()
        );
        println!();
        println!("    {}", key.expose_secret());
        println!();
        println!(
            "  Try: nexus chat -m \"hello\"   (run next to {})",
            data_dir.display()
        );
        println!();
    }
    println!(
        "Nexus ready: gRPC {} · HTTP http://{} · started in {} ms",
        server.grpc_addr,
        server.http_addr,
        server.startup.as_millis()
    );
    let give_back = tokio::spawn(crate::memory::give_back_when_idle(server.runtime().clone()));
    terminated().await;
    give_back.abort();
    server.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
