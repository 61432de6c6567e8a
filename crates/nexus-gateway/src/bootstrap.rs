//! First start: an admin user with an API key (printed once and written to
//! `<data-dir>/admin.key`, mode 0600) and a default agent `assistant`.
//!
//! Safe when several replicas start at once on an empty database: the user name is unique,
//! so only one replica's admin is created and only that replica writes the key.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::Utc;
use nexus_core::{
    Agent, AgentId, ApiKey, ApiKeyId, DEFAULT_MAX_STEPS, ToolPolicy, User, UserId, UserRole,
};
use nexus_security::generate_api_key;
use nexus_store::{Store, StoreError};
use secrecy::{ExposeSecret, SecretString};
use tracing::info;

/// Name of the bootstrap admin user.
pub const ADMIN_USER: &str = "admin";
/// Name of the default agent.
pub const DEFAULT_AGENT: &str = "assistant";
/// The default agent's system prompt. Byte-stable (no dates, ids or counters) so provider
/// prompt caches stay warm.
pub const DEFAULT_SYSTEM_PROMPT: &str =
    "You are a helpful assistant. Answer clearly and concisely.";

/// What the first start created.
#[derive(Debug)]
pub struct Bootstrapped {
    /// The admin's API key; `Some` only on the start that created it.
    pub admin_key: Option<SecretString>,
    /// Where the admin key is kept.
    pub admin_key_file: PathBuf,
}

/// The admin key file of a data directory.
pub fn admin_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("admin.key")
}

/// Creates the admin user, its key and the default agent if the database has no user.
pub async fn bootstrap(
    store: &dyn Store,
    data_dir: &Path,
    default_model: &str,
) -> Result<Bootstrapped, BootstrapError> {
    let admin_key_file = admin_key_path(data_dir);
    if store.count_users().await? > 0 {
        return Ok(Bootstrapped {
            admin_key: None,
            admin_key_file,
        });
    }
    let now = Utc::now();
    let admin = User {
        id: UserId::new(),
        name: ADMIN_USER.to_owned(),
        role: UserRole::Admin,
        created_at: now,
    };
    match store.create_user(&admin).await {
        Ok(()) => {}
        // Another replica bootstrapped at the same moment.
        Err(StoreError::Conflict { .. }) => {
            return Ok(Bootstrapped {
                admin_key: None,
                admin_key_file,
            });
        }
        Err(err) => return Err(err.into()),
    }
    let generated = generate_api_key();
    store
        .create_api_key(&ApiKey {
            id: ApiKeyId::new(),
            user_id: admin.id,
            name: "bootstrap".to_owned(),
            prefix: generated.prefix.clone(),
            hash: generated.hash.clone(),
            created_at: now,
            last_used_at: None,
            revoked_at: None,
        })
        .await?;
    write_secret_file(&admin_key_file, generated.plaintext.expose_secret())?;
    store
        .create_agent(&Agent {
            id: AgentId::new(),
            owner_id: admin.id,
            name: DEFAULT_AGENT.to_owned(),
            description: "The default agent, created on first start.".to_owned(),
            system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            model: default_model.to_owned(),
            fallback_models: Vec::new(),
            tools: Vec::new(),
            tool_policy: ToolPolicy::default(),
            max_steps: DEFAULT_MAX_STEPS,
            max_output_tokens: None,
            temperature: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    info!(
        model = default_model,
        "Created the admin user and the default agent `assistant`"
    );
    Ok(Bootstrapped {
        admin_key: Some(generated.plaintext),
        admin_key_file,
    })
}

/// Writes `secret` to `path` readable by the owner only (0600), replacing it atomically.
pub fn write_secret_file(path: &Path, secret: &str) -> Result<(), BootstrapError> {
    let io = |source| BootstrapError::Io {
        path: path.to_owned(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(secret.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

/// A failed bootstrap.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The key file could not be written.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
