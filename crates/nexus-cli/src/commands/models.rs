//! `nexus models`: the model catalog as the server would use it.

use std::process::ExitCode;

use nexus_gateway::models::{ModelCard, ModelKind};
use serde_json::json;

use crate::args::ModelsArgs;
use crate::commands::serve::settings;
use crate::output;

pub(crate) fn run(args: &ModelsArgs) -> anyhow::Result<ExitCode> {
    let settings = settings(&args.config)?;
    let prefix = args.provider.as_ref().map(|p| format!("{p}/"));
    let models: Vec<&ModelCard> = settings
        .catalog
        .models()
        .into_iter()
        .filter(|m| prefix.as_ref().is_none_or(|p| m.id.starts_with(p.as_str())))
        .collect();
    if args.json {
        let list: Vec<serde_json::Value> = models
            .iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "kind": match m.kind { ModelKind::Chat => "chat", ModelKind::Embedding => "embedding" },
                    "context_window": m.context_window,
                    "max_output_tokens": m.max_output_tokens,
                    "tools": m.tools,
                    "vision": m.vision,
                    "dimensions": m.dimensions,
                    "prices_usd_per_million_tokens": m.prices.map(|p| json!({
                        "input": p.input,
                        "output": p.output,
                        "cache_write": p.cache_write,
                        "cache_read": p.cache_read,
                    })),
                })
            })
            .collect();
        output::json(&serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = models.iter().map(|m| row(m)).collect();
    output::table(
        &[
            "MODEL",
            "CONTEXT",
            "TOOLS",
            "IMAGES",
            "INPUT $/M",
            "OUTPUT $/M",
            "CACHE READ $/M",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

fn row(m: &ModelCard) -> Vec<String> {
    let price = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.3}"));
    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
    let (tools, images) = match m.kind {
        ModelKind::Chat => (yes(m.tools), yes(m.vision)),
        ModelKind::Embedding => ("embedding".to_owned(), "-".to_owned()),
    };
    vec![
        m.id.clone(),
        m.context_window
            .map_or_else(|| "-".to_owned(), |w| w.to_string()),
        tools,
        images,
        price(m.prices.map(|p| p.input)),
        price(m.prices.map(|p| p.output)),
        price(m.prices.and_then(|p| p.cache_read)),
    ]
}
