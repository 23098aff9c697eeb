//! The Docker engine, as the docker provider uses it: one checked connection per process, the
//! labels every conform container carries, and the three ways those containers are removed.
//!
//! Containers are started by `testcontainers` (host networking: all traffic stays on the host's
//! loopback), and cleaned up three ways, so that none outlives its run:
//! - **normally and on a panicking scenario** by their owner's `Drop` (testcontainers removes a
//!   dropped container) or explicit stop;
//! - **on Ctrl-C / SIGTERM / SIGHUP of the runner** by the [`reaper`]: the first connection
//!   registers [`remove_run_containers`], which removes every container labelled with this run's
//!   id, including one whose start was still in flight (its id not yet known to anyone);
//! - **after a crash** (SIGKILL, power loss) by the sweep at the first connection of the next run:
//!   containers labelled `dev.conform=1` whose owning process is gone are removed.
//!
//! Why not testcontainers' `watchdog` feature: it installs its own SIGINT/SIGTERM/SIGQUIT handler
//! that, once any container has been registered, stops and removes *its* containers and then
//! re-raises the signal with the default action. That kills the runner from under the reaper,
//! which is still killing candidate process groups and removing scratch directories (they would
//! leak), and turns the documented exit status 130 into death by signal; and when the reaper has
//! already removed a container, the watchdog's `expect`s panic in its thread. The reaper does
//! everything the watchdog would, in order (processes, containers, directories), so the feature
//! stays off.
//!
//! The run id is `<pid>-<process start time>`: unique per process for the machine's uptime, and
//! it lets the sweep tell a crashed run (its pid gone, or reused by a process that started later)
//! from a live one running beside us, whose containers it must not touch.

use std::collections::HashMap;
use std::sync::OnceLock;

use testcontainers::bollard::Docker;
use testcontainers::bollard::query_parameters::{ListContainersOptionsBuilder, RemoveContainerOptionsBuilder};
use testcontainers::{ContainerRequest, Image, ImageExt};
use tokio::sync::OnceCell;

use crate::{reaper, timeouts};

/// Label every conform container carries (`dev.conform=1`).
pub const LABEL: &str = "dev.conform";
/// Label naming the run that owns a container (`dev.conform.run=<pid>-<start time>`).
pub const RUN_LABEL: &str = "dev.conform.run";

/// Label naming one container among its run's (`<run id>-<what>-<n>`), so that a start which
/// failed part-way can remove exactly what it may have created.
pub const INSTANCE_LABEL: &str = "dev.conform.instance";

/// Where the engine is expected when `DOCKER_HOST` does not say.
const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// Why the Docker engine could not do what was asked. Every message names the engine address or
/// the image.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DockerError {
    /// No engine answered at the address.
    #[error(
        "the Docker engine at {host} is not reachable: {reason}. Start one (for example \
         `dockerd --bridge=none --iptables=false --ip-masq=false &`, as .ci/run does), or use \
         `--provider native`"
    )]
    Unreachable {
        /// `DOCKER_HOST`, or the default socket.
        host: String,
        /// What the connection attempt said.
        reason: String,
    },
    /// The image is not on the engine.
    #[error("the image {image} is not present on the Docker engine at {host}{hint}")]
    ImageMissing {
        /// The image reference.
        image: String,
        /// The engine address.
        host: String,
        /// How to get it.
        hint: String,
    },
    /// An API call failed.
    #[error("Docker ({host}): {action} failed: {reason}")]
    Api {
        /// The engine address.
        host: String,
        /// What was being done.
        action: String,
        /// The engine's answer.
        reason: String,
    },
}

/// The engine address the provider uses: `DOCKER_HOST`, or the default unix socket.
pub fn host() -> String {
    std::env::var("DOCKER_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

/// Whether the docker provider must be available here: under CI (`CI` set, and not `false` or
/// `0`), whose set-up installs and starts an engine and builds the images. Tests that need Docker
/// fail there when it is missing, and elsewhere skip, saying why.
pub fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// This process's run id, `<pid>-<start time in clock ticks since boot>`.
pub fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let pid = std::process::id();
        format!("{pid}-{}", start_ticks(pid).unwrap_or(0))
    })
}

/// Field 22 of `/proc/<pid>/stat`: when the process started. `None` when it does not exist.
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command start at field 3 (state); start time is field 22.
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the run that labelled a container is still alive (its pid exists and started then).
fn run_alive(run: &str) -> bool {
    let Some((pid, ticks)) = run.split_once('-') else {
        return false;
    };
    let (Ok(pid), Ok(ticks)) = (pid.parse::<u32>(), ticks.parse::<u64>()) else {
        return false;
    };
    start_ticks(pid) == Some(ticks)
}

/// A request with what every conform container needs: host networking (the host's loopback is
/// the only network there is) and the conform and run labels.
pub fn conform_request<I: Image>(request: impl Into<ContainerRequest<I>>) -> ContainerRequest<I> {
    request
        .into()
        .with_network("host")
        .with_label(LABEL, "1")
        .with_label(RUN_LABEL, run_id())
}

/// Connect and require `image` on the engine: what the docker provider checks before it starts
/// anything. `hint` says how to get the image when it is missing.
pub async fn ready_for(image: &str, hint: &str) -> Result<Engine, DockerError> {
    let engine = Engine::connect().await?;
    engine.require_image(image, hint).await?;
    Ok(engine)
}

/// A checked connection to the engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
}

/// The process's engine, connected (and the sweep done, the reaper cleanup registered) once.
static ENGINE: OnceCell<Result<Engine, DockerError>> = OnceCell::const_new();

impl Engine {
    /// Connect to the engine and ping it (bounded). The first successful connection of the
    /// process sweeps stale containers of crashed runs and registers this run's containers with
    /// the reaper; later calls return the same engine (or the same error).
    pub async fn connect() -> Result<Engine, DockerError> {
        ENGINE
            .get_or_init(|| async {
                let engine = Engine::ping().await?;
                static TICKET: OnceLock<reaper::Ticket> = OnceLock::new();
                TICKET.get_or_init(|| reaper::register_cleanup(remove_run_containers));
                if let Err(err) = engine.sweep_stale().await {
                    eprintln!("conform: sweeping containers of crashed runs: {err}");
                }
                Ok(engine)
            })
            .await
            .clone()
    }

    /// A fresh connection, pinged, with no side effects.
    async fn ping() -> Result<Engine, DockerError> {
        let host = host();
        let unreachable = |reason: String| DockerError::Unreachable {
            host: host.clone(),
            reason,
        };
        let docker = Docker::connect_with_defaults().map_err(|e| unreachable(e.to_string()))?;
        match tokio::time::timeout(timeouts::DOCKER_API, docker.ping()).await {
            Ok(Ok(_)) => Ok(Engine { docker, host }),
            Ok(Err(err)) => Err(unreachable(err.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer to ping within {:?}",
                timeouts::DOCKER_API
            ))),
        }
    }

    /// The engine address, for messages.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The bollard client, for calls this module does not wrap.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    fn api_error(&self, action: impl Into<String>) -> impl FnOnce(String) -> DockerError {
        let (host, action) = (self.host.clone(), action.into());
        move |reason| DockerError::Api { host, action, reason }
    }

    /// Whether `image` is present on the engine (never pulls).
    pub async fn has_image(&self, image: &str) -> Result<bool, DockerError> {
        let failed = self.api_error(format!("inspecting image {image}"));
        match tokio::time::timeout(timeouts::DOCKER_API, self.docker.inspect_image(image)).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => {
                Ok(false)
            }
            Ok(Err(err)) => Err(failed(err.to_string())),
            Err(_) => Err(failed(format!("no answer within {:?}", timeouts::DOCKER_API))),
        }
    }

    /// Fail with [`DockerError::ImageMissing`] unless `image` is present. `hint` says how to get it.
    pub async fn require_image(&self, image: &str, hint: &str) -> Result<(), DockerError> {
        if self.has_image(image).await? {
            return Ok(());
        }
        Err(DockerError::ImageMissing {
            image: image.to_string(),
            host: self.host.clone(),
            hint: hint.to_string(),
        })
    }

    /// Ids of every container (running or not) carrying `label=value`.
    pub async fn containers_labelled(&self, label: &str, value: &str) -> Result<Vec<(String, String)>, DockerError> {
        list_labelled(&self.docker, &format!("{label}={value}"))
            .await
            .map_err(self.api_error(format!("listing containers labelled {label}={value}")))
    }

    /// Remove a container whatever its state (and its anonymous volumes).
    pub async fn remove(&self, id: &str) -> Result<(), DockerError> {
        remove(&self.docker, id)
            .await
            .map_err(self.api_error(format!("removing container {id}")))
    }

    /// Remove the containers of runs that no longer exist. Returns how many were removed.
    pub async fn sweep_stale(&self) -> Result<usize, DockerError> {
        let mut removed = 0;
        for (id, run) in self.containers_labelled(LABEL, "1").await? {
            if run != run_id() && !run_alive(&run) {
                self.remove(&id).await?;
                eprintln!("conform: removed container {id} left by crashed run {run}");
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Remove every container carrying `label=value`. Returns how many were removed.
    pub async fn remove_labelled(&self, label: &str, value: &str) -> Result<usize, DockerError> {
        let ids = self.containers_labelled(label, value).await?;
        for (id, _) in &ids {
            self.remove(id).await?;
        }
        Ok(ids.len())
    }

    /// Remove every container of this run. Returns how many were removed.
    pub async fn remove_run(&self) -> Result<usize, DockerError> {
        self.remove_labelled(RUN_LABEL, run_id()).await
    }
}

/// `(id, run label)` of every container matching the label filter, bounded.
async fn list_labelled(docker: &Docker, filter: &str) -> Result<Vec<(String, String)>, String> {
    let filters = HashMap::from([("label", vec![filter])]);
    let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
    let listed = tokio::time::timeout(timeouts::DOCKER_API, docker.list_containers(Some(options)))
        .await
        .map_err(|_| format!("no answer within {:?}", timeouts::DOCKER_API))?
        .map_err(|e| e.to_string())?;
    Ok(listed
        .into_iter()
        .filter_map(|c| {
            let run = c
                .labels
                .as_ref()
                .and_then(|l| l.get(RUN_LABEL))
                .cloned()
                .unwrap_or_default();
            Some((c.id?, run))
        })
        .collect())
}

/// Force-remove one container, bounded; a container already gone counts as removed.
async fn remove(docker: &Docker, id: &str) -> Result<(), String> {
    let options = RemoveContainerOptionsBuilder::new().force(true).v(true).build();
    match tokio::time::timeout(timeouts::DOCKER_API, docker.remove_container(id, Some(options))).await {
        Err(_) => Err(format!("no answer within {:?}", timeouts::DOCKER_API)),
        Ok(Ok(())) => Ok(()),
        Ok(Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 404, .. })) => Ok(()),
        // 409: a removal of the same container is already in progress (its owner's Drop).
        Ok(Err(testcontainers::bollard::errors::Error::DockerResponseServerError { status_code: 409, .. })) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
    }
}

/// The reaper's cleanup: remove every container of this run. Runs on the signal thread, so the
/// work happens on a thread of its own with its own runtime, each call bounded.
pub fn remove_run_containers() {
    let worker = std::thread::Builder::new()
        .name("conform-docker-reap".into())
        .spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                let Ok(docker) = Docker::connect_with_defaults() else {
                    return;
                };
                match list_labelled(&docker, &format!("{RUN_LABEL}={}", run_id())).await {
                    Ok(ids) => {
                        for (id, _) in ids {
                            if let Err(err) = remove(&docker, &id).await {
                                eprintln!("conform: could not remove container {id}: {err}");
                            }
                        }
                    }
                    Err(err) => eprintln!("conform: could not list this run's containers: {err}"),
                }
            });
        });
    if let Ok(worker) = worker {
        let _ = worker.join();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_id_names_this_live_process_and_a_dead_one_is_stale() {
        let id = run_id();
        assert!(id.starts_with(&format!("{}-", std::process::id())), "{id}");
        assert!(run_alive(id), "{id} should be alive");
        // Same pid, another start time: a reused pid is a different (dead) run.
        let (pid, ticks) = id.split_once('-').unwrap();
        let other = format!("{pid}-{}", ticks.parse::<u64>().unwrap() + 1);
        assert!(!run_alive(&other));
        assert!(!run_alive("not-a-run"));
        assert!(!run_alive("4194305-1"), "pid above pid_max is never alive");
    }
}
