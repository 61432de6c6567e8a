//! `nexus migrate`: apply pending database migrations and report.

use std::process::ExitCode;

use nexus_store::OpenOptions;

use crate::args::ServerConfigArgs;
use crate::commands::serve::settings;
use crate::output;

pub(crate) async fn run(args: ServerConfigArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args)?;
    if settings.database_url.starts_with("sqlite:") {
        std::fs::create_dir_all(&settings.data_dir)?;
    }
    let store = nexus_store::open(
        &settings.database_url,
        &OpenOptions {
            max_connections: 1,
            migrate: false,
        },
    )
    .await?;
    let before = store.migration_status().await?;
    store.migrate().await?;
    let after = store.migration_status().await?;
    store.close().await;
    let applied = before.pending.len() - after.pending.len();
    output::line(&format!(
        "Database is current: {} migrations, {applied} applied now.",
        after.applied.len()
    ));
    Ok(ExitCode::SUCCESS)
}
