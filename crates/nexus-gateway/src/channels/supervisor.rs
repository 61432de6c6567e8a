//! Keeps one channel connection running: only on the replica holding the channel's lease,
//! restarted with backoff after errors, stopped for good on errors a restart cannot fix
//! (rejected token, fatal close codes), with its state and last error reported to the store
//! for `nexus channel show`.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use nexus_channels::Backoff;
use nexus_core::{ChannelAdapter, ChannelCredentialId};
use nexus_store::{ChannelHealth, ChannelState, Store};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

/// Supervisor settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SupervisorSettings {
    /// How long the channel's lease lasts; renewed every third of it.
    pub(crate) lease_ttl: Duration,
    /// First restart delay.
    pub(crate) backoff_base: Duration,
    /// Longest restart delay.
    pub(crate) backoff_max: Duration,
}

/// A run that lasted this long worked; the next failure starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(60);

pub(crate) struct Supervisor {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) adapter: Arc<dyn ChannelAdapter>,
    pub(crate) channel_id: ChannelCredentialId,
    pub(crate) holder: Arc<str>,
    pub(crate) settings: SupervisorSettings,
}

impl Supervisor {
    async fn report(&self, state: ChannelState, last_error: Option<&str>) {
        let health = ChannelHealth {
            channel_id: self.channel_id,
            state,
            last_error: last_error.map(str::to_owned),
            holder: Some(self.holder.to_string()),
            updated_at: Utc::now(),
        };
        if let Err(err) = self.store.put_channel_health(&health).await {
            warn!(channel_id = %self.channel_id, error = %err, "Could not record channel health");
        }
    }

    /// Runs until `cancel` fires or the channel fails for good.
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let lease = format!("channel:{}", self.channel_id);
        let ttl = self.settings.lease_ttl;
        let mut backoff = Backoff::new(self.settings.backoff_base, self.settings.backoff_max);
        let mut last_error: Option<String> = None;
        loop {
            if cancel.is_cancelled() {
                break;
            }
            match self
                .store
                .try_acquire_lease(&lease, &self.holder, ttl)
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    // Another replica runs it; check again later.
                    if sleep_or_cancel(ttl / 3, &cancel).await {
                        break;
                    }
                    continue;
                }
                Err(err) => {
                    warn!(channel_id = %self.channel_id, error = %err, "Could not take the channel lease");
                    if sleep_or_cancel(ttl / 3, &cancel).await {
                        break;
                    }
                    continue;
                }
            }
            self.report(ChannelState::Running, last_error.as_deref())
                .await;
            info!(channel_id = %self.channel_id, channel = %self.adapter.kind(), "Channel starting");
            let started = Instant::now();
            let run_cancel = cancel.child_token();
            let result = {
                let run = self.adapter.start(run_cancel.clone());
                tokio::pin!(run);
                let mut renew = tokio::time::interval(ttl / 3);
                renew.tick().await;
                loop {
                    tokio::select! {
                        result = &mut run => break result,
                        _ = renew.tick() => {
                            let kept = self.store.try_acquire_lease(&lease, &self.holder, ttl).await;
                            if !matches!(kept, Ok(true)) {
                                warn!(channel_id = %self.channel_id, "Lost the channel lease; stopping the connection here");
                                run_cancel.cancel();
                            }
                        }
                    }
                }
            };
            match result {
                Ok(()) if cancel.is_cancelled() => break,
                Ok(()) => continue,
                Err(err) if !err.restartable() => {
                    let message = err.to_string();
                    error!(channel_id = %self.channel_id, error = %message, "Channel stopped; it needs its configuration fixed");
                    self.report(ChannelState::Failed, Some(&message)).await;
                    self.release(&lease).await;
                    return;
                }
                Err(err) => {
                    if started.elapsed() >= HEALTHY_RUN {
                        backoff.reset();
                    }
                    let delay = backoff.next_delay();
                    let message = err.to_string();
                    warn!(channel_id = %self.channel_id, error = %message, retry_in_ms = delay.as_millis() as u64, "Channel failed; restarting");
                    self.report(ChannelState::Backoff, Some(&message)).await;
                    last_error = Some(message);
                    if sleep_or_cancel(delay, &cancel).await {
                        break;
                    }
                }
            }
        }
        self.report(ChannelState::Stopped, last_error.as_deref())
            .await;
        self.release(&lease).await;
    }

    async fn release(&self, lease: &str) {
        if let Err(err) = self.store.release_lease(lease, &self.holder).await {
            warn!(channel_id = %self.channel_id, error = %err, "Could not release the channel lease");
        }
    }
}

/// Sleeps for `delay`; true if `cancel` fired first.
async fn sleep_or_cancel(delay: Duration, cancel: &CancellationToken) -> bool {
    tokio::select! {
        () = tokio::time::sleep(delay) => false,
        () = cancel.cancelled() => true,
    }
}
