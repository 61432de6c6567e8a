//! Server configuration: a TOML file plus `NEXUS_*` environment variables, validated once at
//! start into [`Settings`]. An unknown key or an invalid value fails with a message naming the
//! key and the fix. No other crate reads configuration.
//!
//! Precedence, lowest to highest: built-in defaults, the TOML file, environment variables,
//! command-line flags (applied by the caller through [`Overrides`]).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration problem, naming the key and how to fix it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration `{key}`: {problem}. {fix}")]
pub struct ConfigError {
    /// The key (`server.grpc_addr`) or environment variable (`NEXUS_GRPC_ADDR`).
    pub key: String,
    /// What is wrong.
    pub problem: String,
    /// How to fix it.
    pub fix: String,
}

impl ConfigError {
    pub(crate) fn new(key: &str, problem: impl Into<String>, fix: impl Into<String>) -> Self {
        ConfigError {
            key: key.to_owned(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// The configuration file as written. Every field is optional; see [`Settings`] for defaults.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Directory for the SQLite database, blobs, the master key and the admin key.
    pub data_dir: Option<PathBuf>,
    /// Listeners and request limits.
    #[serde(default)]
    pub server: ServerSection,
    /// The database.
    #[serde(default)]
    pub database: DatabaseSection,
    /// Object storage for attachments, exports and artifacts.
    #[serde(default)]
    pub storage: StorageSection,
    /// Secrets at rest.
    #[serde(default)]
    pub security: SecuritySection,
    /// The agent runtime.
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// Defaults for new agents.
    #[serde(default)]
    pub agents: AgentsSection,
    /// Logging.
    #[serde(default)]
    pub log: LogSection,
    /// Channels kept in line with this file at every start.
    #[serde(default)]
    pub channels: Vec<crate::channel_config::ChannelSection>,
    /// `[tools]`: built-in tools, the code sandbox, MCP servers.
    #[serde(default)]
    pub tools: crate::tool_config::ToolsSection,
    /// `[[models]]`: models added to the built-in catalog or overriding its entries (context
    /// window, tool support, prices), in the catalog's format.
    #[serde(default)]
    pub models: Vec<nexus_llm::CatalogEntry>,
    /// `[providers.NAME]`: OpenAI-compatible servers (Ollama, vLLM, llama.cpp, LiteLLM, LM
    /// Studio…), addressed as `NAME/model`.
    #[serde(default)]
    pub providers: std::collections::BTreeMap<String, ProviderSection>,
}

/// `[providers.NAME]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    /// `openai-compatible`.
    pub kind: String,
    /// The API base, including its version segment, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// The environment variable holding the server's API key; none for a keyless server.
    pub api_key_env: Option<String>,
    /// The models it serves, the first being its default.
    #[serde(default)]
    pub models: Vec<ProviderModel>,
}

/// `[[providers.NAME.models]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderModel {
    /// The model's name at the server (`llama3.2`).
    pub name: String,
    /// Whether it can call tools. Default true; false gives it no tools (chat only).
    pub tools: Option<bool>,
    /// Its context window in tokens.
    pub context_window: Option<u32>,
}

/// An OpenAI-compatible server of the configuration, checked.
#[derive(Debug, Clone)]
pub struct CompatibleProvider {
    /// Its name, the prefix of its model addresses.
    pub name: String,
    /// The API base.
    pub base_url: String,
    /// The variable holding its key, when it wants one (set: checked at start).
    pub api_key_env: Option<String>,
    /// Its models.
    pub models: Vec<ProviderModel>,
}

/// `[server]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// gRPC listen address. Default `127.0.0.1:50051`; env `NEXUS_GRPC_ADDR`.
    pub grpc_addr: Option<String>,
    /// HTTP listen address. Default `127.0.0.1:8080`; env `NEXUS_HTTP_ADDR`.
    pub http_addr: Option<String>,
    /// Largest chat message accepted, in bytes. Default 65536.
    pub max_message_bytes: Option<usize>,
    /// Base URL under which the HTTP API is reachable, for download links.
    /// Default `http://<http_addr>`; env `NEXUS_PUBLIC_URL`.
    pub public_url: Option<String>,
}

/// `[database]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSection {
    /// `sqlite://PATH` or `postgres://…`. Default `sqlite://<data_dir>/nexus.db`;
    /// env `NEXUS_DATABASE_URL`.
    pub url: Option<String>,
    /// Connection pool size. Default: 4 for SQLite, 16 for PostgreSQL.
    pub max_connections: Option<u32>,
}

/// `[storage]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSection {
    /// `local` (default) or `s3`.
    pub kind: Option<String>,
    /// For `local`: the directory. Default `<data_dir>/blobs`.
    pub path: Option<PathBuf>,
    /// For `s3`: endpoint URL of an S3-compatible service (MinIO…); AWS when unset.
    pub endpoint: Option<String>,
    /// For `s3`: region. Default `us-east-1`.
    pub region: Option<String>,
    /// For `s3`: bucket (required).
    pub bucket: Option<String>,
    /// For `s3`: environment variable holding the access key id. Default `AWS_ACCESS_KEY_ID`.
    pub access_key_id_env: Option<String>,
    /// For `s3`: environment variable holding the secret key. Default `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key_env: Option<String>,
    /// For `s3`: allow `http://` endpoints. Default false.
    pub allow_http: Option<bool>,
    /// Largest object accepted, in bytes. Default 26214400 (25 MiB).
    pub max_object_bytes: Option<u64>,
    /// Lifetime of download links, in seconds. Default 900.
    pub link_ttl_secs: Option<u64>,
}

/// `[security]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySection {
    /// File holding the master key (base64 or hex of 32 bytes, mode 0600); env
    /// `NEXUS_MASTER_KEY_FILE`. `NEXUS_MASTER_KEY` (the key itself) wins over it. Default:
    /// `<data_dir>/master.key`, generated on first start.
    pub master_key_file: Option<PathBuf>,
}

/// `[runtime]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// Messages of history sent to the model. Default 100.
    pub history_limit: Option<u32>,
    /// Starts of a turn for one message before giving up. Default 3.
    pub max_attempts: Option<u32>,
    /// Session lease lifetime in seconds (multi-replica deployments). Default 30.
    pub lease_ttl_secs: Option<u64>,
    /// Seconds shutdown waits for running turns. Default 10.
    pub shutdown_grace_secs: Option<u64>,
    /// Seconds one tool call may run: replaced by `tools.timeout_secs`, still read when that
    /// is not set.
    pub tool_timeout_secs: Option<u64>,
    /// Whether session leases are taken in the database. Default: on for PostgreSQL, off for
    /// SQLite (one process).
    pub use_leases: Option<bool>,
}

/// `[agents]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsSection {
    /// Model of new agents that name none, as `provider/model`. Default: the first configured
    /// provider's default model; env `NEXUS_DEFAULT_MODEL`.
    pub default_model: Option<String>,
}

/// `[log]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSection {
    /// A tracing filter, e.g. `info` or `nexus_runtime=debug`. Default `info`; env `NEXUS_LOG`.
    pub level: Option<String>,
    /// `text` (default) or `json`; env `NEXUS_LOG_FORMAT`.
    pub format: Option<String>,
}

/// Values given on the command line; they win over file and environment.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
}

/// Object storage settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageSettings {
    /// Files under a directory.
    Local {
        /// The directory.
        path: PathBuf,
    },
    /// An S3-compatible bucket.
    S3 {
        /// Endpoint URL, when not AWS.
        endpoint: Option<String>,
        /// Region.
        region: String,
        /// Bucket.
        bucket: String,
        /// Environment variable with the access key id.
        access_key_id_env: String,
        /// Environment variable with the secret key.
        secret_access_key_env: String,
        /// Whether `http://` endpoints are allowed.
        allow_http: bool,
    },
}

/// Validated settings of a server.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// gRPC listen address.
    pub grpc_addr: SocketAddr,
    /// HTTP listen address.
    pub http_addr: SocketAddr,
    /// Largest chat message, in bytes.
    pub max_message_bytes: usize,
    /// Base URL of the HTTP API.
    pub public_url: url::Url,
    /// Database URL.
    pub database_url: String,
    /// Pool size, when set.
    pub max_connections: Option<u32>,
    /// Object storage.
    pub storage: StorageSettings,
    /// Largest object, in bytes.
    pub max_object_bytes: u64,
    /// Download link lifetime.
    pub link_ttl: Duration,
    /// Master key file, when configured.
    pub master_key_file: Option<PathBuf>,
    /// Messages of history per model call.
    pub history_limit: u32,
    /// Turn attempts per message.
    pub max_attempts: u32,
    /// Session lease lifetime.
    pub lease_ttl: Duration,
    /// Shutdown grace period.
    pub shutdown_grace: Duration,
    /// Tools: which are offered and their settings.
    pub tools: crate::tool_config::ToolSettings,
    /// Whether session leases are used; `None` decides by database.
    pub use_leases: Option<bool>,
    /// Default model of new agents, when configured.
    pub default_model: Option<String>,
    /// What is known of models: the built-in catalog with `[[models]]` and the models of
    /// `[providers.*]` applied.
    pub catalog: nexus_llm::Catalog,
    /// OpenAI-compatible servers.
    pub compatible_providers: Vec<CompatibleProvider>,
    /// Log filter.
    pub log_level: String,
    /// Whether logs are JSON.
    pub log_json: bool,
    /// Channels from `[[channels]]`.
    pub channels: Vec<crate::channel_config::ConfiguredChannel>,
}

impl Settings {
    /// Reads the file (if any) and the process environment, then applies `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Settings, ConfigError> {
        Self::load_with_env(file, overrides, &|key| std::env::var(key).ok())
    }

    /// As [`Settings::load`], with the environment given as a lookup function (for tests).
    pub fn load_with_env(
        file: Option<&Path>,
        overrides: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Settings, ConfigError> {
        let config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new(
                        "--config",
                        format!("cannot read {}: {e}", path.display()),
                        "Check the path and its permissions.",
                    )
                })?;
                parse_file(&text).map_err(|mut e| {
                    e.problem = format!("{} (in {})", e.problem, path.display());
                    e
                })?
            }
            None => FileConfig::default(),
        };
        resolve(config, overrides, env)
    }
}

/// Parses configuration file text.
pub fn parse_file(text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let key = e
            .message()
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| "config file".to_owned());
        ConfigError::new(
            &key,
            e.to_string().trim().replace('\n', " "),
            "See docs/configuration.md for the accepted keys and values.",
        )
    })
}

/// Names the built-in providers answer to.
const BUILTIN_PROVIDERS: &[&str] = &["openai", "anthropic", "gemini", "google", "openrouter"];

/// Checks `[providers.*]`.
fn compatible_providers(
    sections: std::collections::BTreeMap<String, ProviderSection>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<CompatibleProvider>, ConfigError> {
    let mut out = Vec::with_capacity(sections.len());
    for (name, section) in sections {
        let key = |field: &str| format!("providers.{name}.{field}");
        let valid_name = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if !valid_name {
            return Err(ConfigError::new(
                &format!("providers.{name}"),
                "a provider name may only have a-z, 0-9, - and _",
                "Rename the section, e.g. [providers.ollama].",
            ));
        }
        if BUILTIN_PROVIDERS.contains(&name.as_str()) {
            return Err(ConfigError::new(
                &format!("providers.{name}"),
                format!("`{name}` is a built-in provider"),
                "Configure it with its environment variables, or give this server another name.",
            ));
        }
        if section.kind != "openai-compatible" {
            return Err(ConfigError::new(
                &key("kind"),
                format!("unknown kind `{}`", section.kind),
                "Use kind = \"openai-compatible\".",
            ));
        }
        nexus_llm::OpenAiConfig::compatible(&name, &section.base_url, None).map_err(|e| {
            ConfigError::new(
                &key("base_url"),
                e.to_string(),
                "Give the API base with its version, e.g. http://127.0.0.1:11434/v1.",
            )
        })?;
        if let Some(var) = &section.api_key_env
            && env(var).is_none_or(|v| v.trim().is_empty())
        {
            return Err(ConfigError::new(
                &key("api_key_env"),
                format!("the variable `{var}` is not set"),
                format!(
                    "Set {var} to the server's API key, or remove api_key_env for a keyless server."
                ),
            ));
        }
        if let Some(m) = section.models.iter().find(|m| m.name.trim().is_empty()) {
            return Err(ConfigError::new(
                &key("models"),
                format!("a model has an empty name ({m:?})"),
                "Name each model as the server does, e.g. name = \"llama3.2\".",
            ));
        }
        out.push(CompatibleProvider {
            name,
            base_url: section.base_url,
            api_key_env: section.api_key_env,
            models: section.models,
        });
    }
    Ok(out)
}

fn env_or(env: &dyn Fn(&str) -> Option<String>, var: &str, file: Option<String>) -> Option<String> {
    env(var).filter(|v| !v.trim().is_empty()).or(file)
}

fn parse_addr(key: &str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.trim().parse().map_err(|_| {
        ConfigError::new(
            key,
            format!("`{value}` is not a socket address"),
            "Use HOST:PORT with an IP address, e.g. 127.0.0.1:50051 or 0.0.0.0:50051.",
        )
    })
}

fn positive<T: PartialOrd + Default + Copy>(key: &str, value: T) -> Result<T, ConfigError> {
    if value > T::default() {
        Ok(value)
    } else {
        Err(ConfigError::new(
            key,
            "must be greater than zero",
            "Set a positive number or remove the key to use the default.",
        ))
    }
}

fn resolve(
    config: FileConfig,
    overrides: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let data_dir = overrides
        .data_dir
        .clone()
        .or_else(|| {
            env("NEXUS_DATA_DIR")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .or(config.data_dir)
        .unwrap_or_else(|| PathBuf::from("./nexus-data"));

    let grpc = env_or(env, "NEXUS_GRPC_ADDR", config.server.grpc_addr)
        .unwrap_or_else(|| "127.0.0.1:50051".to_owned());
    let grpc_addr = parse_addr("server.grpc_addr / NEXUS_GRPC_ADDR", &grpc)?;
    let http = env_or(env, "NEXUS_HTTP_ADDR", config.server.http_addr)
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let http_addr = parse_addr("server.http_addr / NEXUS_HTTP_ADDR", &http)?;

    let public = env_or(env, "NEXUS_PUBLIC_URL", config.server.public_url)
        .unwrap_or_else(|| format!("http://{http_addr}"));
    let public_url = url::Url::parse(&public)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| {
            ConfigError::new(
                "server.public_url / NEXUS_PUBLIC_URL",
                format!("`{public}` is not an http(s) URL"),
                "Use the URL clients reach the HTTP API at, e.g. https://nexus.example.com.",
            )
        })?;

    let max_message_bytes = positive(
        "server.max_message_bytes",
        config.server.max_message_bytes.unwrap_or(64 * 1024),
    )?;

    let database_url = env_or(env, "NEXUS_DATABASE_URL", config.database.url)
        .unwrap_or_else(|| format!("sqlite://{}", data_dir.join("nexus.db").display()));
    if !["sqlite:", "postgres://", "postgresql://"]
        .iter()
        .any(|p| database_url.starts_with(p))
    {
        return Err(ConfigError::new(
            "database.url / NEXUS_DATABASE_URL",
            "unsupported database URL scheme",
            "Use sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB.",
        ));
    }
    let max_connections = config
        .database
        .max_connections
        .map(|n| positive("database.max_connections", n))
        .transpose()?;

    let storage = match config.storage.kind.as_deref().unwrap_or("local") {
        "local" => StorageSettings::Local {
            path: config
                .storage
                .path
                .unwrap_or_else(|| data_dir.join("blobs")),
        },
        "s3" => StorageSettings::S3 {
            bucket: config
                .storage
                .bucket
                .filter(|b| !b.is_empty())
                .ok_or_else(|| {
                    ConfigError::new(
                        "storage.bucket",
                        "is required when storage.kind = \"s3\"",
                        "Name the bucket, e.g. bucket = \"nexus\".",
                    )
                })?,
            endpoint: config.storage.endpoint,
            region: config
                .storage
                .region
                .unwrap_or_else(|| "us-east-1".to_owned()),
            access_key_id_env: config
                .storage
                .access_key_id_env
                .unwrap_or_else(|| "AWS_ACCESS_KEY_ID".to_owned()),
            secret_access_key_env: config
                .storage
                .secret_access_key_env
                .unwrap_or_else(|| "AWS_SECRET_ACCESS_KEY".to_owned()),
            allow_http: config.storage.allow_http.unwrap_or(false),
        },
        other => {
            return Err(ConfigError::new(
                "storage.kind",
                format!("unknown kind `{other}`"),
                "Use \"local\" or \"s3\".",
            ));
        }
    };
    let max_object_bytes = positive(
        "storage.max_object_bytes",
        config.storage.max_object_bytes.unwrap_or(25 * 1024 * 1024),
    )?;
    let link_ttl = Duration::from_secs(positive(
        "storage.link_ttl_secs",
        config.storage.link_ttl_secs.unwrap_or(900),
    )?);

    let master_key_file = env("NEXUS_MASTER_KEY_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or(config.security.master_key_file);

    let rt = config.runtime;
    let default_model = env_or(env, "NEXUS_DEFAULT_MODEL", config.agents.default_model);
    if let Some(model) = &default_model
        && !model.contains('/')
    {
        return Err(ConfigError::new(
            "agents.default_model / NEXUS_DEFAULT_MODEL",
            format!("`{model}` is not a provider/model address"),
            "Write it as provider/model, e.g. openai/gpt-4o-mini.",
        ));
    }

    let channels = crate::channel_config::resolve(config.channels, env)?;
    let tools = crate::tool_config::resolve(config.tools, rt.tool_timeout_secs, env)?;
    let compatible_providers = compatible_providers(config.providers, env)?;
    // The servers' own models first, so that `[[models]]` may still correct them.
    let server_models = compatible_providers.iter().flat_map(|p| {
        p.models.iter().map(|m| nexus_llm::CatalogEntry {
            id: format!("{}/{}", p.name, m.name),
            context_window: m.context_window,
            tools: m.tools.unwrap_or(true),
            ..nexus_llm::CatalogEntry::default()
        })
    });
    let catalog = nexus_llm::Catalog::builtin()
        .and_then(|c| c.with_entries(server_models.collect::<Vec<_>>()))
        .and_then(|c| c.with_entries(config.models))
        .map_err(|e| {
            ConfigError::new(
                "models",
                e.to_string(),
                "Each [[models]] entry needs id = \"provider/model\"; prices are USD per million \
                 tokens (input, output, cache_write, cache_read).",
            )
        })?;

    let log_format =
        env_or(env, "NEXUS_LOG_FORMAT", config.log.format).unwrap_or_else(|| "text".to_owned());
    let log_json = match log_format.as_str() {
        "text" => false,
        "json" => true,
        other => {
            return Err(ConfigError::new(
                "log.format / NEXUS_LOG_FORMAT",
                format!("unknown format `{other}`"),
                "Use \"text\" or \"json\".",
            ));
        }
    };

    Ok(Settings {
        data_dir,
        grpc_addr,
        http_addr,
        max_message_bytes,
        public_url,
        database_url,
        max_connections,
        storage,
        max_object_bytes,
        link_ttl,
        master_key_file,
        history_limit: positive("runtime.history_limit", rt.history_limit.unwrap_or(100))?,
        max_attempts: positive("runtime.max_attempts", rt.max_attempts.unwrap_or(3))?,
        lease_ttl: Duration::from_secs(positive(
            "runtime.lease_ttl_secs",
            rt.lease_ttl_secs.unwrap_or(30),
        )?),
        shutdown_grace: Duration::from_secs(rt.shutdown_grace_secs.unwrap_or(10)),
        tools,
        use_leases: rt.use_leases,
        default_model,
        catalog,
        compatible_providers,
        log_level: env_or(env, "NEXUS_LOG", config.log.level).unwrap_or_else(|| "info".to_owned()),
        log_json,
        channels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn no_configuration_at_all_gives_the_documented_defaults() {
        let s = resolve(FileConfig::default(), &Overrides::default(), &no_env).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("./nexus-data"));
        assert_eq!(s.grpc_addr.to_string(), "127.0.0.1:50051");
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.database_url, "sqlite://./nexus-data/nexus.db");
        assert_eq!(
            s.storage,
            StorageSettings::Local {
                path: PathBuf::from("./nexus-data/blobs")
            }
        );
    }

    #[test]
    fn environment_wins_over_file_and_flags_win_over_environment() {
        let file =
            parse_file("data_dir = \"/from/file\"\n[server]\ngrpc_addr = \"127.0.0.1:1\"").unwrap();
        let env = |k: &str| match k {
            "NEXUS_GRPC_ADDR" => Some("127.0.0.1:2".to_owned()),
            "NEXUS_DATA_DIR" => Some("/from/env".to_owned()),
            _ => None,
        };
        let flags = Overrides {
            data_dir: Some(PathBuf::from("/from/flag")),
        };
        let s = resolve(file, &flags, &env).unwrap();
        assert_eq!(s.grpc_addr.port(), 2);
        assert_eq!(s.data_dir, PathBuf::from("/from/flag"));
    }

    #[test]
    fn compatible_servers_are_read_and_their_models_join_the_catalog() {
        let file = parse_file(
            "[providers.ollama]\nkind = \"openai-compatible\"\n\
             base_url = \"http://127.0.0.1:11434/v1\"\n\
             [[providers.ollama.models]]\nname = \"llama3.2\"\ncontext_window = 131072\n\
             [[providers.ollama.models]]\nname = \"tinyllama\"\ntools = false\n\
             [[models]]\nid = \"ollama/tinyllama\"\ncontext_window = 2048\n",
        )
        .unwrap();
        let s = resolve(file, &Overrides::default(), &no_env).unwrap();
        assert_eq!(s.compatible_providers.len(), 1);
        assert_eq!(s.compatible_providers[0].name, "ollama");
        let llama = s.catalog.get("ollama/llama3.2").unwrap();
        assert_eq!(llama.context_window, Some(131_072));
        assert!(llama.tools);
        // [[models]] wins over the server's own list.
        let tiny = s.catalog.get("ollama/tinyllama").unwrap();
        assert_eq!(tiny.context_window, Some(2048));
    }

    #[test]
    fn bad_compatible_servers_fail_naming_the_key() {
        for (toml, key) in [
            (
                "[providers.x]\nkind = \"grpc\"\nbase_url = \"http://h/v1\"",
                "providers.x.kind",
            ),
            (
                "[providers.x]\nkind = \"openai-compatible\"\nbase_url = \"nope\"",
                "providers.x.base_url",
            ),
            (
                "[providers.openai]\nkind = \"openai-compatible\"\nbase_url = \"http://h/v1\"",
                "providers.openai",
            ),
            (
                "[providers.x]\nkind = \"openai-compatible\"\nbase_url = \"http://h/v1\"\n\
                 api_key_env = \"NOT_SET_ANYWHERE\"",
                "providers.x.api_key_env",
            ),
            (
                "[providers.Bad]\nkind = \"openai-compatible\"\nbase_url = \"http://h/v1\"",
                "providers.Bad",
            ),
        ] {
            let file = parse_file(toml).unwrap();
            let err = resolve(file, &Overrides::default(), &no_env).unwrap_err();
            assert_eq!(err.key, key, "{toml}: {err}");
        }
    }

    #[test]
    fn unknown_key_fails_naming_the_key() {
        let err = parse_file("[server]\ngrpc_adr = \"x\"").unwrap_err();
        assert_eq!(err.key, "grpc_adr");
        assert!(err.to_string().contains("docs/configuration.md"));
    }

    #[test]
    fn invalid_address_fails_naming_the_key_and_the_fix() {
        let env = |k: &str| (k == "NEXUS_HTTP_ADDR").then(|| "localhost".to_owned());
        let err = resolve(FileConfig::default(), &Overrides::default(), &env).unwrap_err();
        assert!(err.key.contains("NEXUS_HTTP_ADDR"));
        assert!(err.fix.contains("HOST:PORT"));
    }

    #[test]
    fn s3_storage_without_bucket_is_refused() {
        let file = parse_file("[storage]\nkind = \"s3\"").unwrap();
        let err = resolve(file, &Overrides::default(), &no_env).unwrap_err();
        assert_eq!(err.key, "storage.bucket");
    }

    #[test]
    fn unsupported_database_scheme_is_refused() {
        let env = |k: &str| (k == "NEXUS_DATABASE_URL").then(|| "mysql://x".to_owned());
        let err = resolve(FileConfig::default(), &Overrides::default(), &env).unwrap_err();
        assert!(err.fix.contains("postgres://"));
    }
}
