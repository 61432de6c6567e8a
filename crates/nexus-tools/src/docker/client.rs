//! The Docker engine as this backend uses it: connecting (with API version negotiation),
//! classifying its errors once, and containers that are always removed — explicitly, or by a
//! drop guard when a run is dropped mid-way (cancelled future, panic).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, RemoveContainerOptions,
};
use nexus_core::{SandboxError, SessionId};

use super::config::Settings;
use super::spec::{self, LABEL_INSTANCE, Shape};

/// Seconds a request to the engine may take (streams excepted).
const REQUEST_TIMEOUT_SECS: u64 = 60;

/// Longest wait for a container another call is removing.
const REMOVAL_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// The fix named when the engine cannot be reached.
const ENGINE_FIX: &str = "start the Docker engine (in a Nexus checkout: `scripts/services/docker.sh`; \
     elsewhere the docker service) and check that this server may use its socket";

/// Connects to the engine at `settings.host` and negotiates the API version (the lower of
/// this client's and the engine's, so old engines such as 20.10 and new ones such as 29 both
/// work).
pub(crate) async fn connect(settings: &Settings) -> Result<Docker, SandboxError> {
    let docker = if settings.host.starts_with("unix://") {
        Docker::connect_with_unix(
            &settings.host,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
    } else {
        Docker::connect_with_http(
            &settings.host,
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
    }
    .map_err(|e| unreachable_engine(&settings.host, &e))?;
    docker
        .negotiate_version()
        .await
        .map_err(|e| unreachable_engine(&settings.host, &e))
}

fn unreachable_engine(host: &str, err: &DockerError) -> SandboxError {
    SandboxError::Unavailable {
        message: format!("no Docker engine answers at {host} ({err}): {ENGINE_FIX}"),
    }
}

/// The error of a missing image, with the fix.
pub(crate) fn image_missing(image: &str) -> SandboxError {
    SandboxError::Unavailable {
        message: format!(
            "the sandbox image `{image}` is not in the Docker engine: build it with \
             `scripts/services/docker.sh` (debootstrap --variant=minbase … | docker import - {image})"
        ),
    }
}

/// HTTP status of an engine error answer, if it is one.
pub(crate) fn status(err: &DockerError) -> Option<u16> {
    match err {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// Classifies an engine error met while running: transport failures mean the engine went
/// away (unavailable), answers are failures of the backend.
pub(crate) fn classify(host: &str, what: &str, err: &DockerError) -> SandboxError {
    match err {
        DockerError::SocketNotFoundError(_)
        | DockerError::HyperLegacyError { .. }
        | DockerError::IOError { .. } => unreachable_engine(host, err),
        _ => SandboxError::Failed {
            message: format!("{what}: {err}"),
        },
    }
}

/// Names of the containers this process has and will remove; anything else carrying its
/// instance label is an orphan (a crash, a dropped create) that the sweep removes.
#[derive(Debug, Default)]
pub(crate) struct Live(Mutex<HashSet<String>>);

impl Live {
    fn insert(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned());
    }

    fn remove(&self, name: &str) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    pub(crate) fn contains(&self, name: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(name)
    }
}

/// A sandbox container, removed by [`Container::remove`] or, failing that, when dropped.
#[derive(Debug)]
pub(crate) struct Container {
    docker: Docker,
    live: Arc<Live>,
    /// The container's name (`nexus-sbx-<uuid>`), used as its id.
    pub(crate) name: String,
    /// What it was made with.
    pub(crate) shape: Shape,
    /// The cgroup's OOM-kill count after the last run (0 when new).
    pub(crate) oom_kills: u64,
    armed: bool,
}

impl Container {
    /// Creates and starts a container. The name is registered as live before the engine is
    /// asked, so a create dropped mid-way is removed by the guard or, at worst, by the sweep.
    pub(crate) async fn start(
        docker: &Docker,
        live: &Arc<Live>,
        settings: &Settings,
        shape: Shape,
        session: Option<SessionId>,
    ) -> Result<Container, SandboxError> {
        let name = spec::container_name();
        live.insert(&name);
        let container = Container {
            docker: docker.clone(),
            live: Arc::clone(live),
            name,
            shape,
            oom_kills: 0,
            armed: true,
        };
        let options = CreateContainerOptions {
            name: Some(container.name.clone()),
            ..CreateContainerOptions::default()
        };
        let body = spec::create_body(settings, &shape, session);
        if let Err(err) = docker.create_container(Some(options), body).await {
            let error = match status(&err) {
                Some(404) => image_missing(&settings.image),
                _ => classify(&settings.host, "creating the sandbox container", &err),
            };
            container.remove().await;
            return Err(error);
        }
        if let Err(err) = docker.start_container(&container.name, None).await {
            let error = classify(&settings.host, "starting the sandbox container", &err);
            container.remove().await;
            return Err(error);
        }
        Ok(container)
    }

    /// The engine client.
    pub(crate) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Removes the container (killing what runs in it) and waits for the engine.
    pub(crate) async fn remove(mut self) {
        self.armed = false;
        remove(&self.docker, &self.name).await;
        self.live.remove(&self.name);
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        self.live.remove(&self.name);
        let docker = self.docker.clone();
        let name = std::mem::take(&mut self.name);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                handle.spawn(async move { remove(&docker, &name).await });
            }
            Err(_) => tracing::warn!(
                container = %name,
                "Sandbox container dropped outside a runtime; the next sweep removes it"
            ),
        }
    }
}

/// Force-removes a container and its anonymous volumes, and returns once it is gone. One
/// already gone (404) counts as removed; one being removed by another call (409) is waited
/// for, up to [`REMOVAL_WAIT`].
pub(crate) async fn remove(docker: &Docker, name: &str) {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..RemoveContainerOptions::default()
    };
    match docker.remove_container(name, Some(options)).await {
        Ok(()) => {}
        Err(err) if status(&err) == Some(404) => {}
        Err(err) if status(&err) == Some(409) => {
            let give_up = tokio::time::Instant::now() + REMOVAL_WAIT;
            loop {
                match docker.inspect_container(name, None).await {
                    Err(e) if status(&e) == Some(404) => return,
                    _ if tokio::time::Instant::now() >= give_up => {
                        tracing::warn!(container = %name, error = %err, "Sandbox container still there");
                        return;
                    }
                    _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
                }
            }
        }
        Err(err) => {
            tracing::warn!(container = %name, error = %err, "Sandbox container not removed")
        }
    }
}

/// Names of every container (running or not) labelled with `instance`.
pub(crate) async fn list(docker: &Docker, instance: &str) -> Result<Vec<String>, DockerError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{LABEL_INSTANCE}={instance}")],
    )]);
    let options = ListContainersOptions {
        all: true,
        filters: Some(filters),
        ..ListContainersOptions::default()
    };
    let containers = docker.list_containers(Some(options)).await?;
    Ok(containers
        .into_iter()
        .filter_map(|c| c.names?.into_iter().next())
        .map(|n| n.trim_start_matches('/').to_owned())
        .collect())
}

/// Removes every container labelled with `instance`, except those this process holds when
/// `live` is given.
pub(crate) async fn sweep(docker: &Docker, instance: &str, live: Option<&Live>) {
    match list(docker, instance).await {
        Ok(names) => {
            for name in names
                .iter()
                .filter(|n| !live.is_some_and(|l| l.contains(n)))
            {
                tracing::info!(container = %name, "Removing a sandbox container left behind");
                remove(docker, name).await;
            }
        }
        Err(err) => tracing::warn!(error = %err, "Sandbox containers could not be listed"),
    }
}
