//! Channels at run time: every active channel (Telegram, Discord, Slack) gets an adapter, a
//! router for its inbound stream and a supervisor for its connection; replies stream back
//! through the adapter and the outbox delivers what a live reply could not.
//!
//! Every replica builds the adapters of all active channels and routes what they receive, so
//! a webhook (Telegram webhook mode, Slack Events API) can land on any replica; only the
//! replica holding a channel's lease runs its connection (long poll, gateway socket, Socket
//! Mode). A periodic resync picks up channels added, changed, paused or removed elsewhere.

mod build;
mod manage;
mod media;
mod outbox;
mod pairing;
mod reply;
mod router;
mod supervisor;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_channels::{ChannelContext, ChannelSecrets, ChannelSettings, Limits, MediaStore};
use nexus_core::{
    ChannelAdapter, ChannelCredential, ChannelCredentialId, ChannelError, ChannelStatus,
};
use nexus_runtime::Runtime;
use nexus_security::Vault;
use nexus_store::{ChannelHealth, ChannelState, Store, StoreError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};

pub use build::{AdapterFactory, PlatformAdapters};
pub use manage::approve;
pub use manage::{Applied, ChannelInput, ManageError};
pub use media::BlobMedia;

use outbox::OutboxSettings;
use reply::Replier;
use router::ChannelRouter;
use supervisor::{Supervisor, SupervisorSettings};

/// The HTTP client the adapters share, built on first use: building one loads the TLS root
/// certificates, which costs a server without channels milliseconds at start and memory for
/// nothing.
#[derive(Debug, Clone, Default)]
pub struct LazyHttp {
    client: Arc<std::sync::OnceLock<reqwest::Client>>,
}

impl LazyHttp {
    /// The client, built now if it was not yet.
    pub fn get(&self) -> Result<reqwest::Client, ChannelError> {
        if let Some(client) = self.client.get() {
            return Ok(client.clone());
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("nexus/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .build()
            .map_err(|e| ChannelError::Transport {
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        // Two first uses at once build two clients; one is kept, both work.
        Ok(self.client.get_or_init(|| client).clone())
    }
}

/// Channel settings of the server.
#[derive(Debug, Clone)]
pub struct ChannelServiceConfig {
    /// This replica's name in leases and health reports.
    pub holder: String,
    /// How long a channel's connection lease lasts.
    pub lease_ttl: Duration,
    /// How often the list of channels is re-read.
    pub resync_interval: Duration,
    /// How often the outbox looks for undelivered replies.
    pub outbox_interval: Duration,
    /// How old an undelivered reply must be before the outbox takes it.
    pub outbox_grace: Duration,
    /// How long a DM pairing code stays valid.
    pub pairing_ttl: chrono::Duration,
    /// Limits on what adapters take in.
    pub limits: Limits,
    /// Longest inbound text accepted, in bytes.
    pub max_message_bytes: usize,
    /// First restart delay of a failed channel.
    pub restart_base: Duration,
    /// Longest restart delay.
    pub restart_max: Duration,
    /// Scales the platforms' edit intervals (1.0 in production; tests shorten it).
    pub edit_interval_scale: f64,
}

impl Default for ChannelServiceConfig {
    fn default() -> Self {
        ChannelServiceConfig {
            holder: format!("nexus-{}", uuid::Uuid::new_v4()),
            lease_ttl: Duration::from_secs(30),
            resync_interval: Duration::from_secs(10),
            outbox_interval: Duration::from_secs(2),
            outbox_grace: Duration::from_secs(10),
            pairing_ttl: chrono::Duration::hours(1),
            limits: Limits::default(),
            max_message_bytes: 64 * 1024,
            restart_base: Duration::from_secs(1),
            restart_max: Duration::from_secs(300),
            edit_interval_scale: 1.0,
        }
    }
}

/// A channel this replica runs.
#[derive(Debug)]
struct Running {
    /// What it was started from; any change (agent, settings, status, secret) restarts it.
    source: ChannelCredential,
    adapter: Arc<dyn ChannelAdapter>,
    replier: Replier,
    cancel: CancellationToken,
}

#[derive(Debug)]
struct Inner {
    store: Arc<dyn Store>,
    runtime: Runtime,
    vault: Arc<Vault>,
    media: Arc<dyn MediaStore>,
    http: LazyHttp,
    factory: Arc<dyn AdapterFactory>,
    config: ChannelServiceConfig,
    holder: Arc<str>,
    running: Mutex<HashMap<ChannelCredentialId, Running>>,
    /// Whether any channel was started since this service began.
    ran_channels: std::sync::atomic::AtomicBool,
    /// One sync at a time (a sync started by an API call and the periodic one would
    /// otherwise both start a new channel).
    syncing: tokio::sync::Mutex<()>,
    cancel: CancellationToken,
    tracker: TaskTracker,
}

/// The channels of this replica.
#[derive(Debug, Clone)]
pub struct ChannelService {
    inner: Arc<Inner>,
}

/// What the channel service is built from.
#[derive(Debug)]
pub struct ChannelDeps {
    /// The store.
    pub store: Arc<dyn Store>,
    /// The runtime turns are submitted to.
    pub runtime: Runtime,
    /// Opens sealed channel secrets.
    pub vault: Arc<Vault>,
    /// Where files people send are kept.
    pub media: Arc<dyn MediaStore>,
    /// The HTTP client adapters share, built when the first channel needs it.
    pub http: LazyHttp,
    /// Builds adapters (the real ones: [`PlatformAdapters`]).
    pub factory: Arc<dyn AdapterFactory>,
}

impl ChannelService {
    /// A service; nothing runs until [`ChannelService::start`].
    pub fn new(deps: ChannelDeps, config: ChannelServiceConfig) -> Self {
        ChannelService {
            inner: Arc::new(Inner {
                holder: Arc::from(config.holder.as_str()),
                store: deps.store,
                runtime: deps.runtime,
                vault: deps.vault,
                media: deps.media,
                http: deps.http,
                factory: deps.factory,
                config,
                running: Mutex::new(HashMap::new()),
                ran_channels: std::sync::atomic::AtomicBool::new(false),
                syncing: tokio::sync::Mutex::new(()),
                cancel: CancellationToken::new(),
                tracker: TaskTracker::new(),
            }),
        }
    }

    /// Starts every active channel, the periodic resync and the outbox.
    pub async fn start(&self) -> Result<usize, StoreError> {
        self.sync().await?;
        let started = self.lock().len();
        let this = self.clone();
        self.inner.tracker.spawn(async move {
            let mut tick = tokio::time::interval(this.inner.config.resync_interval);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = tick.tick() => {
                        if let Err(err) = this.sync().await {
                            warn!(error = %err, "Channel resync failed");
                        }
                    }
                    () = this.inner.cancel.cancelled() => return,
                }
            }
        });
        let this = self.clone();
        let ran = Arc::clone(&self.inner);
        let settings = OutboxSettings {
            interval: self.inner.config.outbox_interval,
            grace: self.inner.config.outbox_grace,
        };
        self.inner.tracker.spawn(outbox::run(
            Arc::clone(&self.inner.store),
            move || this.repliers(),
            move || ran.ran_channels.load(std::sync::atomic::Ordering::Acquire),
            settings,
            self.inner.cancel.clone(),
        ));
        Ok(started)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelCredentialId, Running>> {
        // Each operation on the map is a single insert/remove/lookup: a poisoned lock cannot
        // leave it inconsistent.
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn repliers(&self) -> HashMap<ChannelCredentialId, Replier> {
        self.lock()
            .iter()
            .map(|(id, r)| (*id, r.replier.clone()))
            .collect()
    }

    /// The running adapter of a channel (webhooks are routed to it).
    pub fn adapter(&self, id: ChannelCredentialId) -> Option<Arc<dyn ChannelAdapter>> {
        self.lock().get(&id).map(|r| Arc::clone(&r.adapter))
    }

    /// Brings the running channels in line with the store: starts active ones, restarts
    /// changed ones, stops paused and removed ones.
    pub async fn sync(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.inner.syncing.lock().await;
        if self.inner.cancel.is_cancelled() {
            return Ok(());
        }
        let channels = self.inner.store.list_channel_credentials(None).await?;
        let wanted: HashMap<ChannelCredentialId, &ChannelCredential> = channels
            .iter()
            .filter(|c| c.status == ChannelStatus::Active)
            .map(|c| (c.id, c))
            .collect();
        let stale: Vec<ChannelCredentialId> = self
            .lock()
            .iter()
            .filter(|(id, r)| wanted.get(id).is_none_or(|c| **c != r.source))
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            self.stop(id);
        }
        for (id, channel) in wanted {
            if self.lock().contains_key(&id) {
                continue;
            }
            if let Err(err) = self.launch(channel).await {
                warn!(channel_id = %id, error = %err, "Channel could not start");
                let health = ChannelHealth {
                    channel_id: id,
                    state: ChannelState::Failed,
                    last_error: Some(err.to_string()),
                    holder: Some(self.inner.holder.to_string()),
                    updated_at: chrono::Utc::now(),
                };
                if let Err(err) = self.inner.store.put_channel_health(&health).await {
                    warn!(channel_id = %id, error = %err, "Could not record channel health");
                }
            }
        }
        Ok(())
    }

    /// Stops a channel on this replica (its tasks end; its lease is released).
    fn stop(&self, id: ChannelCredentialId) {
        if let Some(running) = self.lock().remove(&id) {
            info!(channel_id = %id, "Channel stopping");
            running.cancel.cancel();
        }
    }

    /// Opens a channel's secrets and settings and builds its adapter.
    async fn open(
        &self,
        channel: &ChannelCredential,
    ) -> Result<(ChannelSettings, ChannelSecrets), ChannelError> {
        let settings: ChannelSettings =
            serde_json::from_value(channel.settings.clone()).map_err(|e| ChannelError::Fatal {
                message: format!("the channel's settings are invalid: {e}"),
            })?;
        let plain = self
            .inner
            .vault
            .open_for(
                channel.user_id,
                channel.id.as_uuid().as_bytes(),
                &channel.sealed_secret,
            )
            .await
            .map_err(|e| ChannelError::Fatal {
                message: format!("the channel's secret cannot be opened: {e}"),
            })?;
        let secrets: ChannelSecrets =
            serde_json::from_slice(&plain).map_err(|e| ChannelError::Fatal {
                message: format!("the channel's secret is malformed: {e}"),
            })?;
        Ok((settings, secrets))
    }

    fn context(&self, id: ChannelCredentialId) -> Result<ChannelContext, ChannelError> {
        Ok(ChannelContext {
            account_id: id,
            http: self.inner.http.get()?,
            media: Arc::clone(&self.inner.media),
            limits: self.inner.config.limits,
        })
    }

    async fn launch(&self, channel: &ChannelCredential) -> Result<(), ChannelError> {
        let inner = &self.inner;
        let (settings, secrets) = self.open(channel).await?;
        let adapter =
            inner
                .factory
                .build(channel.kind, &settings, &secrets, self.context(channel.id)?)?;
        let inbound = adapter.messages()?;
        let cancel = inner.cancel.child_token();
        let replier = Replier {
            store: Arc::clone(&inner.store),
            adapter: Arc::clone(&adapter),
            channel_id: channel.id,
            holder: Arc::clone(&inner.holder),
            tracker: inner.tracker.clone(),
            cancel: cancel.clone(),
            edit_interval_scale: inner.config.edit_interval_scale,
        };
        let router = ChannelRouter {
            store: Arc::clone(&inner.store),
            runtime: inner.runtime.clone(),
            channel: channel.clone(),
            settings: Arc::new(settings),
            replier: replier.clone(),
            pairing_ttl: inner.config.pairing_ttl,
            max_message_bytes: inner.config.max_message_bytes,
        };
        inner.tracker.spawn(router.run(inbound, cancel.clone()));
        let supervisor = Supervisor {
            store: Arc::clone(&inner.store),
            adapter: Arc::clone(&adapter),
            channel_id: channel.id,
            holder: Arc::clone(&inner.holder),
            settings: SupervisorSettings {
                lease_ttl: inner.config.lease_ttl,
                backoff_base: inner.config.restart_base,
                backoff_max: inner.config.restart_max,
            },
        };
        inner.tracker.spawn(supervisor.run(cancel.clone()));
        info!(channel_id = %channel.id, channel = %channel.kind, name = %channel.name, "Channel started");
        inner
            .ran_channels
            .store(true, std::sync::atomic::Ordering::Release);
        self.lock().insert(
            channel.id,
            Running {
                source: channel.clone(),
                adapter,
                replier,
                cancel,
            },
        );
        Ok(())
    }

    /// Stops every channel and waits for their tasks (live replies included).
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.lock().clear();
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}
