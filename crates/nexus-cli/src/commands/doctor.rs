//! `nexus doctor`: checks configuration, data directory, database, master key, providers and
//! the server, and says for each problem how to fix it. Changes nothing.

use std::path::Path;
use std::process::ExitCode;

use nexus_gateway::config::Settings;
use nexus_gateway::pb;
use nexus_security::{MasterKey, MasterKeySource};
use nexus_store::OpenOptions;

use crate::args::DoctorArgs;
use crate::client::connect;
use crate::commands::serve::settings;
use crate::output;

#[derive(Default)]
struct Report {
    failures: usize,
}

impl Report {
    fn ok(&mut self, what: &str, detail: &str) {
        output::line(&format!("ok    {what}: {detail}"));
    }

    fn warn(&mut self, what: &str, detail: &str, fix: &str) {
        output::line(&format!("warn  {what}: {detail}\n      fix: {fix}"));
    }

    fn fail(&mut self, what: &str, detail: &str, fix: &str) {
        self.failures += 1;
        output::line(&format!("FAIL  {what}: {detail}\n      fix: {fix}"));
    }
}

pub(crate) async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let mut report = Report::default();
    let settings = match settings(&args.config) {
        Ok(s) => {
            report.ok("configuration", "valid");
            Some(s)
        }
        Err(err) => {
            report.fail(
                "configuration",
                &err.to_string(),
                "correct the value named above",
            );
            None
        }
    };
    if let Some(settings) = &settings {
        check_data_dir(&mut report, &settings.data_dir);
        check_database(&mut report, settings).await;
        check_master_key(&mut report, settings);
        check_providers(&mut report, settings);
        check_tools(&mut report, settings).await;
    }
    check_server(&mut report, &args).await;
    if report.failures == 0 {
        output::line("\nAll checks passed.");
        Ok(ExitCode::SUCCESS)
    } else {
        output::line(&format!("\n{} problem(s) found.", report.failures));
        Ok(ExitCode::FAILURE)
    }
}

fn check_data_dir(report: &mut Report, dir: &Path) {
    if !dir.exists() {
        report.warn(
            "data directory",
            &format!("{} does not exist yet", dir.display()),
            "it is created by `nexus serve` on first start",
        );
        return;
    }
    let probe = dir.join(".doctor-probe");
    match std::fs::write(&probe, b"x").and_then(|()| std::fs::remove_file(&probe)) {
        Ok(()) => report.ok("data directory", &format!("{} is writable", dir.display())),
        Err(err) => report.fail(
            "data directory",
            &format!("{} is not writable: {err}", dir.display()),
            "give the server's user write access or pass --data-dir",
        ),
    }
}

async fn check_database(report: &mut Report, settings: &Settings) {
    let is_sqlite = settings.database_url.starts_with("sqlite:");
    if is_sqlite && !settings.data_dir.exists() {
        report.warn(
            "database",
            "SQLite database not created yet",
            "it is created by `nexus serve` on first start",
        );
        return;
    }
    let store = match nexus_store::open(
        &settings.database_url,
        &OpenOptions {
            max_connections: 1,
            migrate: false,
        },
    )
    .await
    {
        Ok(store) => store,
        Err(err) => {
            report.fail(
                "database",
                &format!("cannot open: {err}"),
                "check database.url / NEXUS_DATABASE_URL and that the server is up",
            );
            return;
        }
    };
    match store.migration_status().await {
        Ok(status) if status.is_current() => report.ok(
            "database",
            &format!("reachable, {} migrations applied", status.applied.len()),
        ),
        Ok(status) => report.fail(
            "database",
            &format!("{} migrations pending", status.pending.len()),
            "run `nexus migrate` (or start the server, which migrates)",
        ),
        Err(err) => report.fail(
            "database",
            &err.to_string(),
            "check the database URL and permissions",
        ),
    }
    store.close().await;
}

fn check_master_key(report: &mut Report, settings: &Settings) {
    let source = MasterKeySource::from_env(settings.master_key_file.clone());
    let default_file = settings.data_dir.join("master.key");
    if source.env_value.is_none() && source.key_file.is_none() && !default_file.exists() {
        report.warn(
            "master key",
            "not created yet",
            "it is generated on first start; in production set NEXUS_MASTER_KEY or \
             security.master_key_file and back it up",
        );
        return;
    }
    match MasterKey::load(&source, &settings.data_dir) {
        Ok((_, origin)) => report.ok("master key", &format!("loaded ({origin:?})")),
        Err(err) => report.fail(
            "master key",
            &err.to_string(),
            "fix the key source named above",
        ),
    }
}

fn check_providers(report: &mut Report, settings: &Settings) {
    match nexus_gateway::models::from_env(
        settings.default_model.clone(),
        settings.catalog.clone(),
        &settings.compatible_providers,
    ) {
        Ok(p) if p.configured.is_empty() => report.fail(
            "providers",
            "no model provider configured",
            "set OPENAI_API_KEY (and OPENAI_BASE_URL for an OpenAI-compatible server)",
        ),
        Ok(p) => report.ok(
            "providers",
            &format!(
                "{} configured; default model {}",
                p.configured.join(", "),
                p.default_model
            ),
        ),
        Err(err) => report.fail(
            "providers",
            &format!("{err:#}"),
            "correct the variable named above",
        ),
    }
}

async fn check_tools(report: &mut Report, settings: &Settings) {
    for check in nexus_gateway::tools::check(&settings.tools).await {
        match check {
            nexus_gateway::tools::ToolCheck::Ok { what, detail } => report.ok(&what, &detail),
            nexus_gateway::tools::ToolCheck::Problem { what, detail, fix } => {
                report.warn(&what, &detail, &fix);
            }
        }
    }
}

async fn check_server(report: &mut Report, args: &DoctorArgs) {
    let mut client = match connect(&args.client).await {
        Ok(c) => c,
        Err(err) => {
            report.warn("server", &format!("{err:#}"), "start it with `nexus serve`");
            return;
        }
    };
    match client.who_am_i(pb::WhoAmIRequest {}).await {
        Ok(user) => {
            let user = user.into_inner();
            report.ok(
                "server",
                &format!(
                    "{} answers; authenticated as {} ({})",
                    args.client.server, user.name, user.role
                ),
            );
        }
        Err(status) => report.fail(
            "server",
            &format!(
                "{} answers but the call failed: {}",
                args.client.server,
                status.message()
            ),
            "check --api-key / NEXUS_API_KEY",
        ),
    }
}
