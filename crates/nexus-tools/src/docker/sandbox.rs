//! [`DockerSandbox`]: the [`Sandbox`] trait over the Docker engine. Runs go cold (a container
//! made and removed for the run) or warm (the session's container, reset between runs); a
//! reaper task removes idle warm containers and sweeps orphans.

use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bytes::Bytes;
use nexus_core::{ExecRequest, ExecResult, Sandbox, SandboxError, SessionId};
use tokio::sync::OwnedMutexGuard;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::archive;
use super::client::{self, Container, Live, classify, image_missing, status};
use super::config::{DockerConfig, DockerConfigError, Settings};
use super::run;
use super::spec::Shape;
use super::warm::{Pool, Slot, SlotState};

/// Most bytes of program text: it is passed as one argument, which Linux caps at 128 KiB.
const MAX_CODE_BYTES: usize = 131_000;
/// Least memory the engine accepts for a container.
const MIN_MEMORY_BYTES: u64 = 6 * 1024 * 1024;

/// Runs code in Docker containers. Cheap to clone (clones share the containers).
#[derive(Debug, Clone)]
pub struct DockerSandbox {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    settings: Settings,
    /// Connected on first use (a server starts without a running engine).
    docker: tokio::sync::OnceCell<Docker>,
    live: Arc<Live>,
    pool: Pool,
    /// Stops the reaper (shutdown).
    stop: CancellationToken,
}

impl DockerSandbox {
    /// A sandbox with the settings of `config` (`DOCKER_HOST` is read when `socket` is unset).
    /// Nothing is contacted yet: the engine is connected on first use, when containers left
    /// behind by a crashed process of the same instance are removed.
    pub fn new(config: DockerConfig) -> Result<Self, DockerConfigError> {
        let settings = Settings::new(&config, std::env::var("DOCKER_HOST").ok())?;
        let max_warm = settings.max_warm;
        Ok(DockerSandbox {
            inner: Arc::new(Inner {
                settings,
                docker: tokio::sync::OnceCell::new(),
                live: Arc::new(Live::default()),
                pool: Pool::new(max_warm),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// The value of the `nexus.sandbox.instance` label on this sandbox's containers.
    pub fn instance(&self) -> &str {
        &self.inner.settings.instance
    }

    /// How many sessions hold a warm container (or the place of one).
    pub fn warm_sessions(&self) -> usize {
        self.inner.pool.len()
    }
}

fn invalid(message: impl Into<String>) -> SandboxError {
    SandboxError::Invalid {
        message: message.into(),
    }
}

fn check_request(request: &ExecRequest) -> Result<(), SandboxError> {
    if request.code.len() > MAX_CODE_BYTES {
        return Err(invalid(format!(
            "the program is {} bytes; at most {MAX_CODE_BYTES} are accepted",
            request.code.len()
        )));
    }
    if request.code.contains('\0') {
        return Err(invalid("the program must not contain NUL characters"));
    }
    let l = &request.limits;
    if l.wall_time.is_zero()
        || l.memory_bytes < MIN_MEMORY_BYTES
        || !(l.cpus.is_finite() && l.cpus > 0.0)
        || l.pids == 0
        || l.output_bytes == 0
        || l.disk_bytes == 0
    {
        return Err(invalid(format!(
            "limits out of range (time, memory of at least 6 MiB, cpus, pids, output and disk must be positive): {l:?}"
        )));
    }
    Ok(())
}

impl Inner {
    async fn docker(self: &Arc<Self>) -> Result<&Docker, SandboxError> {
        self.docker
            .get_or_try_init(|| async {
                let docker = client::connect(&self.settings).await?;
                // Start-up: what a crashed process of this instance left behind goes.
                client::sweep(&docker, &self.settings.instance, Some(&self.live)).await;
                let every = (self.settings.idle_timeout / 4)
                    .clamp(Duration::from_secs(1), Duration::from_secs(30));
                tokio::spawn(reaper(Arc::downgrade(self), self.stop.clone(), every));
                Ok(docker)
            })
            .await
    }

    async fn run_cold(
        &self,
        docker: &Docker,
        shape: Shape,
        request: &ExecRequest,
        files: Option<Bytes>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        let mut container =
            Container::start(docker, &self.live, &self.settings, shape, None).await?;
        if cancel.is_cancelled() {
            container.remove().await;
            return Err(SandboxError::Cancelled);
        }
        let outcome =
            run::run_in(&mut container, request, files, &self.settings.host, cancel).await;
        container.remove().await;
        outcome.map(|o| o.result)
    }

    async fn run_warm(
        &self,
        docker: &Docker,
        session: SessionId,
        shape: Shape,
        request: &ExecRequest,
        files: Option<Bytes>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        loop {
            let (slot, evicted) = self.pool.slot(session);
            if let Some(container) = evicted {
                container.remove().await;
            }
            let Some(slot) = slot else {
                return self.run_cold(docker, shape, request, files, cancel).await;
            };
            let state = tokio::select! {
                state = Arc::clone(&slot.state).lock_owned() => state,
                () = cancel.cancelled() => return Err(SandboxError::Cancelled),
            };
            if slot.is_retired() {
                continue;
            }
            return self
                .run_on_slot(docker, slot, state, session, shape, request, files, cancel)
                .await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn run_on_slot(
        &self,
        docker: &Docker,
        slot: Arc<Slot>,
        mut state: OwnedMutexGuard<SlotState>,
        session: SessionId,
        shape: Shape,
        request: &ExecRequest,
        files: Option<Bytes>,
        cancel: &CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        let mut container = match state.container.take() {
            Some(container) if container.shape == shape => container,
            other => {
                if let Some(container) = other {
                    container.remove().await;
                }
                Container::start(docker, &self.live, &self.settings, shape, Some(session)).await?
            }
        };
        if cancel.is_cancelled() {
            container.remove().await;
            return Err(SandboxError::Cancelled);
        }
        let outcome =
            run::run_in(&mut container, request, files, &self.settings.host, cancel).await;
        state.last_used = Some(Instant::now());
        match outcome {
            Ok(o) if o.reusable && !slot.is_retired() && !self.stop.is_cancelled() => {
                // The reset runs after the answer, holding the slot: the session's next run
                // waits for it, the caller does not.
                let stop = self.stop.clone();
                tokio::spawn(async move {
                    if run::reset(&container).await && !slot.is_retired() && !stop.is_cancelled() {
                        state.last_used = Some(Instant::now());
                        state.container = Some(container);
                    } else {
                        container.remove().await;
                    }
                });
                Ok(o.result)
            }
            other => {
                container.remove().await;
                other.map(|o| o.result)
            }
        }
    }
}

/// Removes idle warm containers and orphans every `every`, until stopped or the sandbox is
/// dropped.
async fn reaper(inner: Weak<Inner>, stop: CancellationToken, every: Duration) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let Some(inner) = inner.upgrade() else {
            return;
        };
        for container in inner.pool.reap(inner.settings.idle_timeout) {
            container.remove().await;
        }
        if let Some(docker) = inner.docker.get() {
            client::sweep(docker, &inner.settings.instance, Some(&inner.live)).await;
        }
    }
}

#[async_trait]
impl Sandbox for DockerSandbox {
    fn name(&self) -> &'static str {
        "docker"
    }

    async fn check(&self) -> Result<(), SandboxError> {
        let docker = self.inner.docker().await?;
        let host = &self.inner.settings.host;
        docker
            .ping()
            .await
            .map_err(|e| classify(host, "pinging the Docker engine", &e))?;
        let image = &self.inner.settings.image;
        match docker.inspect_image(image).await {
            Ok(_) => Ok(()),
            Err(err) if status(&err) == Some(404) => Err(image_missing(image)),
            Err(err) => Err(classify(host, "inspecting the sandbox image", &err)),
        }
    }

    async fn run(
        &self,
        request: ExecRequest,
        cancel: CancellationToken,
    ) -> Result<ExecResult, SandboxError> {
        check_request(&request)?;
        if self.inner.stop.is_cancelled() {
            return Err(SandboxError::Unavailable {
                message: "the Docker sandbox was shut down".to_owned(),
            });
        }
        let files = if request.files.is_empty() {
            None
        } else {
            Some(archive::pack(&request.files, request.limits.disk_bytes)?)
        };
        let docker = tokio::select! {
            docker = self.inner.docker() => docker?.clone(),
            () = cancel.cancelled() => return Err(SandboxError::Cancelled),
        };
        let shape = Shape::new(request.network, &request.limits);
        match request.session {
            Some(session) => {
                self.inner
                    .run_warm(&docker, session, shape, &request, files, &cancel)
                    .await
            }
            None => {
                self.inner
                    .run_cold(&docker, shape, &request, files, &cancel)
                    .await
            }
        }
    }

    /// Waits for a run or reset of the session in progress, then removes its container.
    async fn release(&self, session: SessionId) {
        if let Some(slot) = self.inner.pool.release(session) {
            let container = slot.state.lock().await.container.take();
            if let Some(container) = container {
                container.remove().await;
            }
        }
    }

    async fn shutdown(&self) {
        self.inner.stop.cancel();
        for container in self.inner.pool.drain() {
            container.remove().await;
        }
        if let Some(docker) = self.inner.docker.get() {
            client::sweep(docker, &self.inner.settings.instance, None).await;
        }
    }
}
