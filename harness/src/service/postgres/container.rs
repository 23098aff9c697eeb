//! The docker provider's Postgres: the same server as the native one, run from an image by
//! testcontainers, so that [`PostgresServer`] keeps one interface whichever provider served it.
//!
//! What makes it the *same* server:
//! - **Administration over a unix socket, as natively.** The run's scratch directory on the host
//!   is bind-mounted into the container as the server's socket directory, so the harness reaches
//!   the `postgres` superuser through a socket file with `local trust`, exactly like the native
//!   server, and the superuser needs no password on TCP at all.
//! - **TCP needs a password.** The cluster is initialised with `--auth-host=scram-sha-256`
//!   (baked so in `conform/postgres`, `POSTGRES_INITDB_ARGS` for upstream images), so the
//!   `conform` role's random password is enforced over TCP.
//! - **Same settings.** Host networking, `listen_addresses=127.0.0.1`, a unique port per container
//!   (retried when taken, as natively), durability off, PGDATA on a tmpfs mount.
//!
//! Images: `conform/postgres:15` (built by `cargo xtask images`, see `images/postgres/`) by
//! default; `CONFORM_POSTGRES_IMAGE` (or `--postgres-image`) names another, such as upstream
//! `postgres:16` on a host that can pull. Both entrypoints take `postgres` options as arguments,
//! and upstream images read `POSTGRES_PASSWORD`/`POSTGRES_INITDB_ARGS`, which ours ignores.
//!
//! Readiness is two real conditions: the server's own "ready to accept connections" log line
//! (testcontainers' wait), then the same poll as the native server (TCP connect, superuser
//! `SELECT 1` over the socket), which an upstream image's temporary init-time server (socket
//! only) cannot satisfy.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use testcontainers::bollard::errors::Error as BollardError;
use testcontainers::bollard::query_parameters::KillContainerOptionsBuilder;
use testcontainers::core::error::ClientError;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt, TestcontainersError};

use crate::poll::{self, Poll};
use crate::service::docker::{self, Engine};
use crate::{reaper, timeouts};

use super::*;

/// The image used when none is configured (built locally by `cargo xtask images`).
pub const DEFAULT_IMAGE: &str = "conform/postgres:15";
/// Where the host's scratch directory appears in the container: the server's socket directory.
const SOCKET_DIR: &str = "/conform-run";
/// The tmpfs mount holding PGDATA.
const DATA_MOUNT: &str = "/pgtmp";
/// The line both the local and the upstream images print once the server accepts connections.
const READY_LINE: &str = "database system is ready to accept connections";
/// How many log lines of a container are kept for error messages.
const LOG_LINES: usize = 200;

/// Which image the docker provider runs Postgres from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerOptions {
    /// An image reference, `name[:tag]`.
    pub image: String,
}

impl Default for ContainerOptions {
    /// `CONFORM_POSTGRES_IMAGE`, else [`DEFAULT_IMAGE`].
    fn default() -> Self {
        let image = std::env::var("CONFORM_POSTGRES_IMAGE")
            .ok()
            .filter(|i| !i.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_IMAGE.to_string());
        ContainerOptions { image }
    }
}

impl ContainerOptions {
    /// How to get the image when it is missing, for the error message.
    pub fn hint(&self) -> String {
        if self.image == DEFAULT_IMAGE {
            "; build it with `cargo xtask images` (no registry is needed)".into()
        } else {
            format!("; pull or build it first (`docker pull {}`)", self.image)
        }
    }

    /// `(name, tag)`: the tag follows the last `:` after the last `/`, default `latest`.
    fn name_and_tag(&self) -> (String, String) {
        let image = self.image.trim();
        let last = image.rsplit('/').next().unwrap_or(image);
        match last.rsplit_once(':') {
            Some((_, tag)) => {
                let name = &image[..image.len() - tag.len() - 1];
                (name.to_string(), tag.to_string())
            }
            None => (image.to_string(), "latest".to_string()),
        }
    }
}

/// The Postgres container of a running server, and its captured log.
pub(super) struct PgContainer {
    /// `None` once removed.
    container: Option<ContainerAsync<GenericImage>>,
    id: String,
    image: String,
    log: Log,
}

impl std::fmt::Debug for PgContainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgContainer")
            .field("id", &self.id)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

/// The last [`LOG_LINES`] lines a container wrote (both streams).
#[derive(Clone, Default)]
struct Log(Arc<Mutex<VecDeque<String>>>);

impl Log {
    fn push(&self, frame: &LogFrame) {
        let mut lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for line in String::from_utf8_lossy(frame.bytes()).lines() {
            if lines.len() == LOG_LINES {
                lines.pop_front();
            }
            lines.push_back(line.to_string());
        }
    }

    fn tail(&self) -> String {
        let lines = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if lines.is_empty() {
            return "(no output)".into();
        }
        let skip = lines.len().saturating_sub(40);
        lines.iter().skip(skip).cloned().collect::<Vec<_>>().join("\n")
    }
}

impl PgContainer {
    /// The container id.
    pub(super) fn id(&self) -> &str {
        &self.id
    }

    /// Fast shutdown (SIGINT to the server), a bounded wait for the container to stop, then its
    /// removal whatever happened. A server that had to be killed is reported, after removal.
    pub(super) async fn stop(&mut self, pid: u32) -> Result<(), PostgresError> {
        let Some(container) = self.container.take() else {
            return Ok(());
        };
        let mut outcome = Ok(());
        let stop_error = |reason: String| PostgresError::Stop { pid, reason };
        match container.is_running().await {
            Ok(false) => {
                outcome = Err(stop_error(format!(
                    "container {} had already exited before stop; its log ends with:\n{}",
                    self.id,
                    self.log.tail()
                )))
            }
            Err(err) => outcome = Err(stop_error(format!("inspecting container {}: {err}", self.id))),
            Ok(true) => {
                let sigint = KillContainerOptionsBuilder::new().signal("SIGINT").build();
                if let Ok(engine) = Engine::connect().await {
                    let _ = engine.client().kill_container(&self.id, Some(sigint)).await;
                }
                let waited = poll::wait_for(
                    format!("container {} to exit after SIGINT", self.id),
                    timeouts::SERVICE_STOP,
                    timeouts::POLL_INTERVAL,
                    || async {
                        match container.is_running().await {
                            Ok(false) => Poll::Ready(()),
                            Ok(true) => Poll::NotYet("still running".into()),
                            Err(err) => Poll::Abort(format!("cannot inspect it: {err}")),
                        }
                    },
                )
                .await;
                if let Err(err) = waited {
                    outcome = Err(stop_error(err.to_string()));
                }
            }
        }
        match container.rm().await {
            Ok(()) => {}
            // Already being removed, or gone: the reaper's cleanup (Ctrl-C) got there first.
            Err(TestcontainersError::Client(ClientError::RemoveContainer(
                BollardError::DockerResponseServerError {
                    status_code: 404 | 409, ..
                },
            ))) => {}
            Err(err) => {
                outcome = outcome.and(Err(stop_error(format!("removing container {}: {err}", self.id))));
            }
        }
        outcome
    }

    /// Remove the container now, whatever its state. Works with or without a runtime.
    pub(super) fn kill(&mut self) {
        let Some(container) = self.container.take() else {
            return;
        };
        // testcontainers removes a dropped container through the current runtime; outside one
        // (a handle dropped after its runtime), lend it a small one for the removal.
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(container);
        } else if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let _entered = rt.enter();
            drop(container);
        } else {
            // No runtime at all: the run's reaper cleanup removes it by label.
            docker::remove_run_containers();
            std::mem::forget(container);
        }
    }
}

impl Drop for PgContainer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Start `options.image` listening on `port`, its socket in `socket_dir` (a host directory), and
/// wait until it is ready (see the module docs).
pub(super) async fn launch_container(
    engine: &Engine,
    options: &ContainerOptions,
    socket_dir: &Path,
    port: u16,
) -> Result<Attempt, PostgresError> {
    static INSTANCE: AtomicU64 = AtomicU64::new(1);
    let instance = format!(
        "{}-postgres-{}",
        docker::run_id(),
        INSTANCE.fetch_add(1, Ordering::Relaxed)
    );
    let (name, tag) = options.name_and_tag();
    // Upstream images need a superuser password to initialise; the harness never uses it (the
    // superuser is reached over the socket), but it is a secret all the same.
    let superuser_password =
        crate::redact::new_secret(24).map_err(io_error("read /dev/urandom for the superuser password"))?;
    let log = Log::default();
    let consumer = {
        let log = log.clone();
        move |frame: &LogFrame| log.push(frame)
    };
    let port_text = port.to_string();
    let request =
        docker::conform_request(GenericImage::new(name, tag).with_wait_for(WaitFor::message_on_stderr(READY_LINE)))
            .with_label(docker::INSTANCE_LABEL, &instance)
            .with_env_var("PGPORT", &port_text)
            .with_env_var("PGDATA", format!("{DATA_MOUNT}/data"))
            .with_env_var("POSTGRES_PASSWORD", superuser_password)
            .with_env_var("POSTGRES_INITDB_ARGS", "--auth-local=trust --auth-host=scram-sha-256")
            .with_mount(Mount::tmpfs_mount(DATA_MOUNT).with_size("1g").with_mode(0o1777))
            .with_mount(Mount::bind_mount(socket_dir.display().to_string(), SOCKET_DIR))
            .with_cmd([
                "-p".to_string(),
                port_text.clone(),
                "-c".into(),
                "listen_addresses=127.0.0.1".into(),
                "-c".into(),
                // Ours first (the harness's socket); the image's default too, which an upstream
                // entrypoint's own psql calls need.
                format!("unix_socket_directories={SOCKET_DIR},/var/run/postgresql"),
                "-c".into(),
                "fsync=off".into(),
                "-c".into(),
                "synchronous_commit=off".into(),
                "-c".into(),
                "full_page_writes=off".into(),
                "-c".into(),
                "max_connections=300".into(),
            ])
            .with_log_consumer(consumer)
            .with_startup_timeout(timeouts::POSTGRES_START);

    let failed = |reason: String, log_tail: String| PostgresError::Container {
        image: options.image.clone(),
        port,
        reason,
        log_tail,
    };
    let spawned = Instant::now();
    // Held until the container exists (or its start failed), so an interrupt meanwhile waits for
    // it before removing this run's containers.
    let pass = reaper::pass().map_err(|e| failed(e.to_string(), String::new()))?;
    let started = request.start().await;
    drop(pass);
    let container = match started {
        Ok(container) => container,
        Err(err) => {
            // A start that failed or timed out part-way may have left the container created.
            let _ = engine.remove_labelled(docker::INSTANCE_LABEL, &instance).await;
            let log_tail = log.tail();
            if log_tail.contains("Address already in use") {
                return Ok(Attempt::PortTaken { log_tail });
            }
            return Err(failed(err.to_string(), log_tail));
        }
    };
    let id = container.id().to_string();
    let pg = PgContainer {
        container: Some(container),
        id: id.clone(),
        image: options.image.clone(),
        log: log.clone(),
    };
    let waited = {
        let Some(container) = pg.container.as_ref() else {
            unreachable!("the container was just stored")
        };
        wait_accepting(port, socket_dir, timeouts::POSTGRES_START, || async {
            match container.is_running().await {
                Ok(true) => None,
                Ok(false) => Some(format!("container {id} exited")),
                Err(err) => Some(format!("cannot inspect container {id}: {err}")),
            }
        })
        .await
    };
    if let Err(err) = waited {
        // Dropping `pg` removes the container; the log was captured first.
        let log_tail = log.tail();
        drop(pg);
        if log_tail.contains("Address already in use") {
            return Ok(Attempt::PortTaken { log_tail });
        }
        return Err(failed(err.to_string(), log_tail));
    }
    let startup_time = spawned.elapsed();
    let pid = engine
        .client()
        .inspect_container(&id, None)
        .await
        .ok()
        .and_then(|c| c.state?.pid)
        .unwrap_or(0);
    Ok(Attempt::Ready {
        backend: Backend::Container(Box::new(pg)),
        pid: u32::try_from(pid).unwrap_or(0),
        startup_time,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_split_into_name_and_tag() {
        let split = |image: &str| {
            ContainerOptions {
                image: image.to_string(),
            }
            .name_and_tag()
        };
        assert_eq!(split("conform/postgres:15"), ("conform/postgres".into(), "15".into()));
        assert_eq!(split("postgres"), ("postgres".into(), "latest".into()));
        assert_eq!(
            split("registry.local:5000/pg/postgres:16-alpine"),
            ("registry.local:5000/pg/postgres".into(), "16-alpine".into())
        );
        assert_eq!(
            split("registry.local:5000/postgres"),
            ("registry.local:5000/postgres".into(), "latest".into())
        );
    }
}
