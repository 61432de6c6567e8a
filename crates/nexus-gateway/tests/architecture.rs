//! The crate list is the architecture: dependencies between our crates point inward
//! (core ← store/llm/channels/tools/security/testkit ← runtime ← gateway ← cli). This test reads every
//! crate's manifest and fails when a crate depends on one it must not.

use std::collections::BTreeMap;
use std::path::Path;

/// For each crate, the workspace crates it may depend on (normal and build dependencies).
fn allowed() -> BTreeMap<&'static str, &'static [&'static str]> {
    BTreeMap::from([
        ("nexus-core", &[][..]),
        ("nexus-store", &["nexus-core"][..]),
        ("nexus-security", &["nexus-core"][..]),
        ("nexus-llm", &["nexus-core"][..]),
        ("nexus-channels", &["nexus-core"][..]),
        ("nexus-tools", &["nexus-core"][..]),
        ("nexus-testkit", &["nexus-core"][..]),
        (
            "nexus-runtime",
            &["nexus-core", "nexus-store", "nexus-tools"][..],
        ),
        (
            "nexus-gateway",
            &[
                "nexus-core",
                "nexus-store",
                "nexus-security",
                "nexus-llm",
                "nexus-channels",
                "nexus-tools",
                "nexus-runtime",
            ][..],
        ),
        (
            "nexus-cli",
            &[
                "nexus-core",
                "nexus-store",
                "nexus-security",
                "nexus-runtime",
                "nexus-gateway",
            ][..],
        ),
        ("nexus-bench", &["nexus-gateway", "nexus-testkit"][..]),
    ])
}

fn our_deps(table: Option<&toml::Value>) -> Vec<String> {
    table
        .and_then(toml::Value::as_table)
        .map(|t| {
            t.keys()
                .filter(|k| k.starts_with("nexus-"))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn crate_dependencies_point_inward() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed = allowed();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let manifest = entry.unwrap().path().join("Cargo.toml");
        if !manifest.exists() {
            continue;
        }
        let doc: toml::Value =
            toml::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
        let name = doc["package"]["name"].as_str().unwrap().to_owned();
        let Some(permitted) = allowed.get(name.as_str()) else {
            panic!(
                "crate {name} is not in the architecture test: add it with its allowed dependencies"
            );
        };
        let mut deps = our_deps(doc.get("dependencies"));
        deps.extend(our_deps(doc.get("build-dependencies")));
        for dep in deps {
            assert!(
                permitted.contains(&dep.as_str()),
                "{name} must not depend on {dep} (allowed: {permitted:?})"
            );
        }
        seen.push(name);
    }
    assert!(
        seen.len() >= allowed.len(),
        "every crate was checked: {seen:?}"
    );
}
