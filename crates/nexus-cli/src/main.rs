//! `nexus`: run the server, chat with agents, administer users, keys and agents.
//!
//! This binary only parses arguments and calls the gateway (server side) or the gRPC API
//! (client side); it holds no business logic.

#![allow(
    clippy::print_stdout,
    reason = "a command-line program prints its results"
)]

mod args;
mod client;
mod commands;
mod memory;
mod output;

use clap::Parser;

use crate::args::{Cli, Command};

/// mimalloc when built with the `mimalloc` feature: somewhat less CPU per turn than glibc's
/// malloc, for more memory.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve(a) => commands::serve::run(a).await,
            Command::Chat(a) => commands::chat::run(a).await,
            Command::Agent(a) => commands::admin::agent(a).await,
            Command::Session(a) => commands::admin::session(a).await,
            Command::Tool(a) => commands::admin::tool(a).await,
            Command::User(a) => commands::admin::user(a).await,
            Command::Key(a) => commands::admin::key(a).await,
            Command::ProviderKey(a) => commands::admin::provider_key(a).await,
            Command::Channel(a) => commands::channel::run(a).await,
            Command::Usage(a) => commands::usage::run(a).await,
            Command::Models(a) => commands::models::run(&a),
            Command::Migrate(a) => commands::migrate::run(a).await,
            Command::Doctor(a) => commands::doctor::run(a).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
