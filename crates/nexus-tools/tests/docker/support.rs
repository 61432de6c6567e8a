//! The engine from the environment, a sandbox with a unique instance label per test, and
//! container counts by that label.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::ListContainersOptions;
use nexus_core::{ExecLimits, ExecRequest, ExecResult, Language, Sandbox, SessionId};
use nexus_tools::docker::{LABEL_INSTANCE, LABEL_SESSION};
use nexus_tools::{DockerConfig, DockerSandbox};
use tokio_util::sync::CancellationToken;

const SCRIPT: &str = "scripts/services/docker.sh";

/// The engine address and image, or `None` (skip) outside CI; panics in CI.
pub fn service() -> Option<(String, String)> {
    let host = std::env::var("NEXUS_TEST_DOCKER_HOST").ok();
    let image = std::env::var("NEXUS_TEST_SANDBOX_IMAGE").ok();
    match (host, image) {
        (Some(host), Some(image)) if !host.is_empty() && !image.is_empty() => Some((host, image)),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "NEXUS_TEST_DOCKER_HOST and NEXUS_TEST_SANDBOX_IMAGE are not set: run `eval \"$({SCRIPT})\"` first"
        ),
        _ => {
            eprintln!(
                "skipped: NEXUS_TEST_DOCKER_HOST / NEXUS_TEST_SANDBOX_IMAGE not set (see {SCRIPT})"
            );
            None
        }
    }
}

/// A sandbox of its own instance, and an engine client to look at its containers.
pub struct Harness {
    pub sandbox: DockerSandbox,
    pub docker: Docker,
    pub config: DockerConfig,
}

/// The settings of a test sandbox: the engine and image from the environment, a unique
/// instance.
pub fn config(host: &str, image: &str) -> DockerConfig {
    DockerConfig {
        socket: Some(host.to_owned()),
        image: image.to_owned(),
        instance: Some(format!("test-{}", uuid::Uuid::new_v4().simple())),
        ..DockerConfig::default()
    }
}

pub async fn harness() -> Option<Harness> {
    harness_with(|_| {}).await
}

pub async fn harness_with(change: impl FnOnce(&mut DockerConfig)) -> Option<Harness> {
    let (host, image) = service()?;
    let mut config = config(&host, &image);
    change(&mut config);
    Some(Harness::new(config).await)
}

impl Harness {
    pub async fn new(config: DockerConfig) -> Harness {
        let host = config.socket.clone().unwrap();
        let docker = Docker::connect_with_host(&host)
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        let sandbox = DockerSandbox::new(config.clone()).unwrap();
        Harness {
            sandbox,
            docker,
            config,
        }
    }

    async fn list(&self, label: String) -> Vec<String> {
        let options = ListContainersOptions {
            all: true,
            filters: Some(HashMap::from([("label".to_owned(), vec![label])])),
            ..ListContainersOptions::default()
        };
        self.docker
            .list_containers(Some(options))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|c| c.names?.into_iter().next())
            .collect()
    }

    /// Names of this test's containers.
    pub async fn containers(&self) -> Vec<String> {
        self.list(format!("{LABEL_INSTANCE}={}", self.sandbox.instance()))
            .await
    }

    /// Names of the warm containers of `session`.
    pub async fn session_containers(&self, session: SessionId) -> Vec<String> {
        self.list(format!("{LABEL_SESSION}={session}")).await
    }

    /// Waits up to `within` for this test's containers to be gone.
    pub async fn assert_none_left_within(&self, within: Duration) {
        let give_up = tokio::time::Instant::now() + within;
        loop {
            let left = self.containers().await;
            if left.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < give_up,
                "containers left behind: {left:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// No container of this test exists now.
    pub async fn assert_none_left(&self) {
        let left = self.containers().await;
        assert!(left.is_empty(), "containers left behind: {left:?}");
    }

    /// Runs `request`, failing the test past 90 s.
    pub async fn run(&self, request: ExecRequest) -> ExecResult {
        tokio::time::timeout(
            Duration::from_secs(90),
            self.sandbox.run(request, CancellationToken::new()),
        )
        .await
        .expect("the run did not end within 90 s")
        .unwrap()
    }
}

impl Drop for Harness {
    /// A failed test removes its containers too (on a thread of its own: the test's runtime
    /// may be gone).
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let docker = self.docker.clone();
        let label = format!("{LABEL_INSTANCE}={}", self.sandbox.instance());
        let cleanup = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let options = ListContainersOptions {
                    all: true,
                    filters: Some(HashMap::from([("label".to_owned(), vec![label])])),
                    ..ListContainersOptions::default()
                };
                for c in docker
                    .list_containers(Some(options))
                    .await
                    .unwrap_or_default()
                {
                    if let Some(id) = c.id {
                        let options = bollard::query_parameters::RemoveContainerOptions {
                            force: true,
                            ..Default::default()
                        };
                        let _ = docker.remove_container(&id, Some(options)).await;
                    }
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// Limits of test runs: 20 s, 128 MiB, 1 core, 64 processes, 64 KiB of output.
pub fn limits() -> ExecLimits {
    ExecLimits {
        wall_time: Duration::from_secs(20),
        memory_bytes: 128 * 1024 * 1024,
        ..ExecLimits::default()
    }
}

/// A cold run of `code` in `language`.
pub fn request(language: Language, code: &str) -> ExecRequest {
    ExecRequest {
        language,
        code: code.to_owned(),
        files: Vec::new(),
        network: false,
        limits: limits(),
        session: None,
    }
}

pub fn python(code: &str) -> ExecRequest {
    request(Language::Python, code)
}

pub fn shell(code: &str) -> ExecRequest {
    request(Language::Shell, code)
}
