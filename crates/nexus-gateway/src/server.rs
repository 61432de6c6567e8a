//! Wiring: settings → store, master key, vault, object storage, runtime, gRPC and HTTP
//! listeners; graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use nexus_core::{Tool, UserId};
use nexus_runtime::{Metrics, ModelResolver, Runtime, RuntimeConfig, ToolLimits};
use nexus_security::{
    KeyOrigin, MasterKey, MasterKeySource, SecurityError, Vault, WrappedKeyStore,
};
use nexus_store::blob::{BlobConfig, BlobStore, LinkSigner, S3Config};
use nexus_store::{Backend, OpenOptions, Store};
use prometheus_client::registry::Registry;
use secrecy::SecretString;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::TcpIncoming;
use tracing::{error, info, warn};

use crate::auth::Authenticator;
use crate::bootstrap::{Bootstrapped, bootstrap};
use crate::channels::{
    AdapterFactory, BlobMedia, ChannelDeps, ChannelService, ChannelServiceConfig, LazyHttp,
};
use crate::config::{Settings, StorageSettings};
use crate::grpc::{ApiSettings, GatewayService};
use crate::pb;

/// Default pool size on SQLite: writes are serialized anyway, and each connection keeps a
/// thread and a page cache.
const SQLITE_CONNECTIONS: u32 = 4;
/// Default pool size on PostgreSQL.
const POSTGRES_CONNECTIONS: u32 = 16;

/// What the caller supplies beyond settings: model providers and tools.
#[derive(Debug)]
pub struct ServerOptions {
    /// Builds channel adapters (the real ones unless a test substitutes its own).
    pub adapters: Arc<dyn AdapterFactory>,
    /// Channel run-time settings.
    pub channels: ChannelServiceConfig,
    /// Resolves `provider/model` addresses.
    pub models: Arc<dyn ModelResolver>,
    /// Model of agents created without one (and of the default agent).
    pub default_model: String,
    /// Tools offered to agents beyond the built-in ones of the configuration (tests add
    /// their own).
    pub tools: Vec<Arc<dyn Tool>>,
}

/// A failure to start the server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The data directory could not be created.
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] nexus_store::StoreError),
    /// The master key could not be loaded.
    #[error("master key: {0}")]
    Security(#[from] SecurityError),
    /// Object storage is misconfigured.
    #[error("object storage: {0}")]
    Storage(String),
    /// A tool refused its settings.
    #[error(transparent)]
    Tools(#[from] crate::tools::ToolsError),
    /// First-start bootstrap failed.
    #[error("bootstrap: {0}")]
    Bootstrap(#[from] crate::bootstrap::BootstrapError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// A started server.
#[derive(Debug)]
pub struct RunningServer {
    /// The gRPC listener's address (the real port when 0 was asked for).
    pub grpc_addr: SocketAddr,
    /// The HTTP listener's address.
    pub http_addr: SocketAddr,
    /// What the first start created (the admin key is shown once).
    pub bootstrapped: Bootstrapped,
    /// The vault sealing credentials.
    pub vault: Arc<Vault>,
    /// The store.
    pub store: Arc<dyn Store>,
    /// Object storage.
    pub blobs: Arc<BlobStore>,
    /// Signs download links served by the HTTP API.
    pub links: Arc<LinkSigner>,
    /// Base URL of the HTTP API, for download links.
    pub public_url: url::Url,
    /// How long the start took, until both listeners accepted connections.
    pub startup: std::time::Duration,
    /// The channels (Telegram, Discord, Slack) this replica runs.
    pub channels: ChannelService,
    /// The tools, their sandbox, browser and MCP servers.
    pub tools: Arc<crate::tools::ServerTools>,
    runtime: Runtime,
    cancel: CancellationToken,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningServer {
    /// The agent runtime serving the turns.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Stops accepting, lets running turns finish within the grace period, and closes.
    pub async fn shutdown(self) {
        info!("Shutting down");
        self.cancel.cancel();
        self.runtime.shutdown().await;
        self.channels.shutdown().await;
        self.tools.shutdown().await;
        for task in self.tasks {
            if let Err(err) = task.await {
                warn!(error = %err, "A listener task ended abnormally");
            }
        }
        self.store.close().await;
        info!("Stopped");
    }
}

/// Adapts the store's per-user wrapped keys to the vault.
#[derive(Debug)]
struct StoreKeys(Arc<dyn Store>);

#[async_trait]
impl WrappedKeyStore for StoreKeys {
    async fn get_wrapped_key(&self, user: UserId) -> Result<Option<Vec<u8>>, SecurityError> {
        self.0
            .get_user_data_key(user)
            .await
            .map_err(SecurityError::storage)
    }

    async fn put_wrapped_key_if_absent(
        &self,
        user: UserId,
        wrapped: &[u8],
    ) -> Result<Vec<u8>, SecurityError> {
        self.0
            .put_user_data_key(user, wrapped)
            .await
            .map_err(SecurityError::storage)
    }
}

fn blob_config(settings: &Settings) -> Result<BlobConfig, ServerError> {
    let mut config = match &settings.storage {
        StorageSettings::Local { path } => BlobConfig::local(path.clone()),
        StorageSettings::S3 {
            endpoint,
            region,
            bucket,
            access_key_id_env,
            secret_access_key_env,
            allow_http,
        } => {
            let var = |name: &str| {
                std::env::var(name).map_err(|_| {
                    ServerError::Storage(format!(
                        "storage.kind is s3 but {name} is not set; set it to the bucket's \
                         credentials"
                    ))
                })
            };
            let mut s3 = S3Config::new(
                region.clone(),
                bucket.clone(),
                var(access_key_id_env)?,
                SecretString::from(var(secret_access_key_env)?),
            );
            s3.endpoint = endpoint.clone();
            s3.allow_http = *allow_http;
            BlobConfig::s3(s3)
        }
    };
    config.limits.max_object_bytes = settings.max_object_bytes;
    config.limits.max_read_bytes = settings.max_object_bytes;
    Ok(config)
}

/// Starts a server: opens and migrates the store, loads the master key, bootstraps on first
/// start, recovers unanswered messages, and listens. Returns once both listeners accept.
pub async fn start(
    settings: Settings,
    options: ServerOptions,
) -> Result<RunningServer, ServerError> {
    let started = Instant::now();
    std::fs::create_dir_all(&settings.data_dir).map_err(|source| ServerError::DataDir {
        path: settings.data_dir.clone(),
        source,
    })?;

    let store = nexus_store::open(
        &settings.database_url,
        &OpenOptions {
            max_connections: settings.max_connections.unwrap_or(
                if settings.database_url.starts_with("sqlite:") {
                    SQLITE_CONNECTIONS
                } else {
                    POSTGRES_CONNECTIONS
                },
            ),
            migrate: true,
        },
    )
    .await?;

    let (master, origin) = MasterKey::load(
        &MasterKeySource::from_env(settings.master_key_file.clone()),
        &settings.data_dir,
    )?;
    if let KeyOrigin::Generated { path } = &origin {
        warn!(
            path = %path.display(),
            "GENERATED A NEW MASTER KEY. Back this file up: without it, every stored credential \
             is lost. In production set NEXUS_MASTER_KEY or security.master_key_file instead."
        );
    }
    let signer = Arc::new(LinkSigner::new(*master.derive_subkey("blob-links")));
    let vault = Arc::new(Vault::new(master, Arc::new(StoreKeys(Arc::clone(&store)))));
    let blobs = Arc::new(
        BlobStore::from_config(&blob_config(&settings)?)
            .map_err(|e| ServerError::Storage(e.to_string()))?,
    );

    let bootstrapped =
        bootstrap(store.as_ref(), &settings.data_dir, &options.default_model).await?;

    let tools = Arc::new(
        crate::tools::ServerTools::build(&settings.tools, &blobs, options.tools)
            .map_err(ServerError::Tools)?,
    );

    let metrics = Metrics::default();
    let mut registry = Registry::default();
    metrics.register(&mut registry);
    let runtime = Runtime::new(
        Arc::clone(&store),
        options.models,
        tools.registry.clone(),
        RuntimeConfig {
            use_leases: settings
                .use_leases
                .unwrap_or(store.backend() == Backend::Postgres),
            lease_ttl: settings.lease_ttl,
            history_limit: settings.history_limit,
            max_attempts: settings.max_attempts,
            shutdown_grace: settings.shutdown_grace,
            tool_limits: ToolLimits {
                timeout: settings.tools.timeout,
                max_output_bytes: settings.tools.max_output_bytes,
            },
            ..RuntimeConfig::default()
        },
        metrics,
    );

    // Recover before taking messages: start-up recovery takes every pending item.
    let recovered = runtime.start().await?;

    let grpc_listener = TcpListener::bind(settings.grpc_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: settings.grpc_addr,
            source,
        })?;
    let http_listener = TcpListener::bind(settings.http_addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: settings.http_addr,
            source,
        })?;
    let grpc_addr = local_addr(&grpc_listener, settings.grpc_addr)?;
    let http_addr = local_addr(&http_listener, settings.http_addr)?;

    // A default public URL names the configured HTTP address; with port 0, use the real one.
    let mut public_url = settings.public_url.clone();
    if public_url.port() == Some(0) && public_url.set_port(Some(http_addr.port())).is_err() {
        warn!("Could not set the port of the public URL");
    }

    let mut channel_config = options.channels.clone();
    channel_config.max_message_bytes = settings.max_message_bytes;
    let channels = ChannelService::new(
        ChannelDeps {
            store: Arc::clone(&store),
            runtime: runtime.clone(),
            vault: Arc::clone(&vault),
            media: Arc::new(BlobMedia::new(Arc::clone(&blobs))),
            http: LazyHttp::default(),
            factory: Arc::clone(&options.adapters),
        },
        channel_config,
    );

    let cancel = CancellationToken::new();
    let service = GatewayService::new(
        Arc::clone(&store),
        runtime.clone(),
        Arc::new(Authenticator::new(Arc::clone(&store))),
        Arc::clone(&vault),
        ApiSettings {
            max_message_bytes: settings.max_message_bytes,
            default_model: options.default_model.clone(),
            links: crate::grpc::DownloadLinks {
                signer: Arc::clone(&signer),
                public_url: public_url.clone(),
                ttl: settings.link_ttl,
            },
        },
        channels.clone(),
        public_url.clone(),
    );
    let grpc_task = tokio::spawn(serve_grpc(grpc_listener, service, cancel.clone()));
    let router = crate::http::router(
        Arc::clone(&store),
        Arc::new(registry),
        Arc::clone(&blobs),
        Arc::clone(&signer),
        channels.clone(),
    );
    let http_task = tokio::spawn(serve_http(http_listener, router, cancel.clone()));

    // After the HTTP listener: webhooks registered by starting channels can be answered.
    for (name, outcome) in channels
        .apply_configured(&settings.channels, Some(&public_url))
        .await
    {
        match outcome {
            Ok(applied) => info!(channel = %name, outcome = ?applied, "Configured channel applied"),
            Err(err) => {
                error!(channel = %name, error = %err, "Configured channel not applied; fix [[channels]] and restart")
            }
        }
    }
    let started_channels = channels.start().await?;

    let startup = started.elapsed();
    info!(
        channels = started_channels,
        grpc = %grpc_addr,
        http = %http_addr,
        database = ?store.backend(),
        recovered_sessions = recovered,
        startup_us = u64::try_from(startup.as_micros()).unwrap_or(u64::MAX),
        "Nexus is ready"
    );
    Ok(RunningServer {
        grpc_addr,
        http_addr,
        bootstrapped,
        vault,
        store,
        blobs,
        links: signer,
        public_url,
        startup,
        channels,
        tools,
        runtime,
        cancel,
        tasks: vec![grpc_task, http_task],
    })
}

fn local_addr(listener: &TcpListener, asked: SocketAddr) -> Result<SocketAddr, ServerError> {
    listener.local_addr().map_err(|source| ServerError::Bind {
        addr: asked,
        source,
    })
}

async fn serve_grpc(listener: TcpListener, service: GatewayService, cancel: CancellationToken) {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_serving::<pb::gateway_server::GatewayServer<GatewayService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .inspect_err(
            |err| error!(error = %err, "Could not build gRPC reflection; serving without it"),
        )
        .ok();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let result = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_optional_service(reflection)
        .add_service(pb::gateway_server::GatewayServer::new(service))
        .serve_with_incoming_shutdown(incoming, cancel.cancelled_owned())
        .await;
    if let Err(err) = result {
        error!(error = %err, "gRPC server failed");
    }
}

async fn serve_http(listener: TcpListener, router: axum::Router, cancel: CancellationToken) {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        if let Err(err) = tcp.set_nodelay(true) {
            warn!(error = %err, "Could not set TCP_NODELAY on an HTTP connection");
        }
    });
    if let Err(err) = axum::serve(listener, router)
        .with_graceful_shutdown(cancel.cancelled_owned())
        .await
    {
        error!(error = %err, "HTTP server failed");
    }
}
