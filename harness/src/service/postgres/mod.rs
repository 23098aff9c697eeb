//! The native Postgres provider: one throwaway Postgres server per run, built from the system's
//! `initdb` and `postgres` binaries, and a fresh database per scenario.
//!
//! Why it is shaped this way:
//! - **One server, many databases.** `initdb` costs about half a second, `CREATE DATABASE ...
//!   TEMPLATE` under a tenth of one (see `shared/notes/containers-and-services.md` §2), so a run
//!   starts one server and every scenario gets its own database cloned from `conform_template`.
//!   Scenarios never share a database, so one scenario's schema can never leak into another's
//!   verdict.
//! - **tmpfs and no durability.** The data directory lives under `/dev/shm` and the server runs
//!   with `fsync`, `synchronous_commit` and `full_page_writes` off: nothing here must survive a
//!   crash, and the slow disk would otherwise dominate every `CREATE DATABASE`.
//! - **`postgres` directly, not `pg_ctl`.** The server runs as our child in its own process
//!   group, so we know its pid, can wait for it, and see it exit during start-up (and say why,
//!   from its log). `pg_ctl -w` would also add about 80 ms of polling granularity. Note that
//!   every process the postmaster forks calls `setsid()`, so the group holds the postmaster
//!   alone: a hard kill finds its children by parent pid (see `kill_postmaster`).
//! - **Root.** Postgres refuses to run as root, so when the harness is root (CI containers) both
//!   binaries run as the `postgres` system user and the scratch directory is handed to it.
//! - **Credentials.** Local (unix socket) connections are trusted and used only by the harness for
//!   administration ([`PostgresServer::superuser`]); TCP needs a password, so a candidate gets
//!   the unprivileged `conform` role with a random password that the harness records as a secret.
//! - **No leaks.** The process group and the scratch directory are registered with the
//!   [`reaper`] (Ctrl-C on the runner), and [`Drop`] kills the server with all
//!   its children and removes the directory when [`PostgresServer::stop`] was not called (a
//!   panicking scenario). When the reaper kills only the postmaster, its children notice its
//!   death and exit on their own within milliseconds (Linux parent-death signal); what such a
//!   kill does leave is the server's 56-byte System V segment, which only [`Drop`] and
//!   [`PostgresServer::stop`] know how to remove (see `kill_postmaster`).
//!
//! - **Docker, behind the same handle.** With the docker provider the server runs in a container
//!   ([`container`]): the scratch directory then holds only the unix socket (bind-mounted into
//!   the container), and everything above the process (the `conform` role, the template, fresh
//!   databases, superuser administration over the socket) is this same code. A scenario holds a
//!   [`PostgresServer`] either way and cannot tell which provider served it.
//!
//! This module knows nothing about clauses: it hands out addresses and credentials.

mod container;
mod database;
mod install;
mod process;

pub use container::{ContainerOptions, DEFAULT_IMAGE};
pub use database::Database;

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{AssertSqlSafe, Connection};

use crate::poll::PollError;
use crate::service::Provider;
use crate::service::docker::{self, DockerError};
use crate::{ports, reaper};

use container::*;
use install::*;
use process::*;
/// The unprivileged role candidates log in as.
const ROLE: &str = "conform";
/// The database every fresh database is cloned from.
const TEMPLATE: &str = "conform_template";
/// The superuser `initdb` creates (reached over the unix socket only).
const SUPERUSER: &str = "postgres";
/// How many ports to try when the one we picked is taken before Postgres binds it.
const PORT_ATTEMPTS: usize = 5;
/// How much of a log to quote in an error.
const LOG_TAIL_BYTES: u64 = 4096;

/// Why the Postgres provider could not do what was asked. Every message names what failed.
#[derive(Debug, thiserror::Error)]
pub enum PostgresError {
    /// `initdb` and `postgres` were not found together in any searched directory.
    #[error(
        "PostgreSQL server binaries (initdb and postgres) not found; searched: {}. \
         Install Debian's `postgresql` package (apt-get install postgresql).",
        display_paths(searched)
    )]
    NotInstalled {
        /// Every directory that was looked in, in order.
        searched: Vec<PathBuf>,
    },
    /// The harness runs as root and there is no `postgres` user to run the server as.
    #[error(
        "Postgres refuses to run as root and there is no `postgres` system user to run it as; \
         install Debian's `postgresql` package, which creates that user"
    )]
    NoPostgresUser,
    /// A file-system or process operation failed.
    #[error("could not {action}: {source}")]
    Io {
        /// What was being done, in words.
        action: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// `initdb` failed or did not finish in time.
    #[error("initdb ({program}) failed: {reason}; its output ends with:\n{log_tail}")]
    Initdb {
        /// The `initdb` binary that was run.
        program: PathBuf,
        /// Its exit status, or why the wait ended.
        reason: String,
        /// The end of its output.
        log_tail: String,
    },
    /// The server did not come up (it exited, or was not ready within the ceiling).
    #[error("Postgres ({program}) did not start on 127.0.0.1:{port}: {source}; its log ends with:\n{log_tail}")]
    Start {
        /// The `postgres` binary that was run.
        program: PathBuf,
        /// The port it was told to listen on.
        port: u16,
        /// How the wait for readiness ended.
        #[source]
        source: Box<PollError>,
        /// The end of the server log.
        log_tail: String,
    },
    /// Every port tried was already taken by the time Postgres bound it.
    #[error("Postgres could not bind a free port in {attempts} attempts; its last log ends with:\n{log_tail}")]
    NoFreePort {
        /// How many ports were tried.
        attempts: usize,
        /// The end of the last server log.
        log_tail: String,
    },
    /// A SQL statement or connection failed. `what` never contains a password.
    #[error("{what} failed: {source}")]
    Sql {
        /// What was being done, in words.
        what: String,
        /// The driver's error.
        #[source]
        source: sqlx::Error,
    },
    /// The Docker engine could not be used (unreachable, image missing, an API call failed).
    #[error(transparent)]
    Docker(#[from] DockerError),
    /// The Postgres container did not come up.
    #[error(
        "Postgres in a container of {image} did not start on 127.0.0.1:{port}: {reason}; its log ends with:\n{log_tail}"
    )]
    Container {
        /// The image reference.
        image: String,
        /// The port it was told to listen on.
        port: u16,
        /// What went wrong.
        reason: String,
        /// The end of the container's log.
        log_tail: String,
    },
    /// The server did not exit after the fast-shutdown signal and was killed.
    #[error("Postgres (pid {pid}) did not stop: {reason}")]
    Stop {
        /// The postmaster's pid.
        pid: u32,
        /// What went wrong.
        reason: String,
    },
}

impl From<PostgresError> for crate::verdict::Failure {
    fn from(err: PostgresError) -> Self {
        crate::verdict::Failure::harness(err.to_string())
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no directories)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn io_error(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> PostgresError {
    let action = action.into();
    move |source| PostgresError::Io { action, source }
}

fn sql_error(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> PostgresError {
    let what = what.into();
    move |source| PostgresError::Sql { what, source }
}

/// How to start a server. [`Default`] is what a run uses.
#[derive(Debug, Clone, Default)]
pub struct PostgresOptions {
    /// Look for `initdb` and `postgres` only in these directories, in order. `None` searches
    /// `/usr/lib/postgresql/<newest>/bin`, then `pg_config --bindir`, then `PATH`.
    pub search_dirs: Option<Vec<PathBuf>>,
}

/// A scratch directory on tmpfs (if there is one), registered with the reaper.
fn new_scratch() -> Result<(tempfile::TempDir, reaper::Ticket), PostgresError> {
    let parent = scratch_parent();
    reaper::temp_dir(
        tempfile::Builder::new().prefix(&format!("conform-{}-", std::process::id())),
        Some(&parent),
    )
    .map_err(io_error(format!("create a scratch directory in {}", parent.display())))
}

/// The two server binaries, found in one directory.
#[derive(Debug, Clone)]
struct Binaries {
    initdb: PathBuf,
    postgres: PathBuf,
}

/// The `postgres` system user, whom the server processes run as when the harness is root.
#[derive(Debug, Clone, Copy)]
struct RunAs {
    uid: u32,
    gid: u32,
}

/// How one attempt to start the server on a port ended (other than with an error).
enum Attempt {
    Ready {
        backend: Backend,
        /// The server's pid on this host.
        pid: u32,
        startup_time: Duration,
    },
    PortTaken {
        log_tail: String,
    },
}

/// What runs the server: a native postmaster, or a container.
#[derive(Debug)]
enum Backend {
    Native(Postmaster),
    Container(Box<PgContainer>),
}

/// One running Postgres server, private to this run. See the module docs.
///
/// Dropping it without [`stop`](PostgresServer::stop) kills the server (natively with its
/// children; a container is removed) and removes its scratch directory. `Debug` never shows the
/// password.
pub struct PostgresServer {
    backend: Backend,
    /// The postmaster's pid on this host (for a container: its main process, as the host sees it).
    pid: u32,
    port: u16,
    socket_dir: PathBuf,
    password: String,
    startup_time: Duration,
    initdb_time: Duration,
    next_database: AtomicU64,
    /// The scratch directory (data dir, logs, unix socket); removed on stop or drop.
    scratch: Option<tempfile::TempDir>,
    /// Forgets the scratch directory once it is removed.
    dir_ticket: Option<reaper::Ticket>,
}

impl std::fmt::Debug for PostgresServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresServer")
            .field("provider", &self.provider())
            .field("pid", &self.pid)
            .field("port", &self.port)
            .field("dir", &self.socket_dir)
            .field("password", &"<redacted>")
            .field("startup_time", &self.startup_time)
            .field("initdb_time", &self.initdb_time)
            .finish_non_exhaustive()
    }
}

impl PostgresServer {
    /// Start a server with the default binary search. See [`PostgresServer::start_with`].
    pub async fn start() -> Result<PostgresServer, PostgresError> {
        Self::start_with(PostgresOptions::default()).await
    }

    /// Find the binaries, `initdb` a cluster on tmpfs, start `postgres` on a free loopback port,
    /// wait until it answers `SELECT 1`, then create the `conform` role and `conform_template`.
    pub async fn start_with(options: PostgresOptions) -> Result<PostgresServer, PostgresError> {
        let binaries = find_binaries(options.search_dirs.as_deref()).await?;
        let run_as = run_as()?;

        let (scratch, dir_ticket) = new_scratch()?;
        let root = scratch.path().to_path_buf();
        if let Some(user) = run_as {
            std::os::unix::fs::chown(&root, Some(user.uid), Some(user.gid)).map_err(io_error(format!(
                "hand {} to the postgres user (uid {})",
                root.display(),
                user.uid
            )))?;
        }

        let data = root.join("data");
        let initdb_started = Instant::now();
        initdb(&binaries, &root, &data, run_as).await?;
        let initdb_time = initdb_started.elapsed();

        Self::start_on_a_free_port(scratch, dir_ticket, initdb_time, |port| {
            let (binaries, root, data) = (binaries.clone(), root.clone(), data.clone());
            async move { launch(&binaries, &root, &data, port, run_as).await }
        })
        .await
    }

    /// Start a server in a container of `options.image` (docker provider): check the engine and
    /// the image, start it on a free loopback port (retried when taken), wait until it is ready,
    /// then create the `conform` role and `conform_template` exactly as natively.
    pub async fn start_in_container(options: ContainerOptions) -> Result<PostgresServer, PostgresError> {
        // testcontainers would try to pull a missing image; say plainly what is missing instead
        // (with no registry, a pull fails with a DNS error that names neither image nor fix).
        let engine = docker::ready_for(&options.image, &options.hint()).await?;
        let (scratch, dir_ticket) = new_scratch()?;
        let root = scratch.path().to_path_buf();
        // The server in the container runs as its own user and creates its socket here.
        std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(0o1777)).map_err(io_error(
            format!("open {} to the container's postgres user", root.display()),
        ))?;
        Self::start_on_a_free_port(scratch, dir_ticket, Duration::ZERO, |port| {
            let (engine, options, root) = (engine.clone(), options.clone(), root.clone());
            async move { launch_container(&engine, &options, &root, port).await }
        })
        .await
    }

    /// Start a server (`attempt`) on a free loopback port, retried with another port when it
    /// was taken before the server bound it; then create the `conform` role and the template.
    /// The scratch directory belongs to the server from here on: any failure removes it.
    async fn start_on_a_free_port<F, Fut>(
        scratch: tempfile::TempDir,
        dir_ticket: reaper::Ticket,
        initdb_time: Duration,
        mut attempt: F,
    ) -> Result<PostgresServer, PostgresError>
    where
        F: FnMut(u16) -> Fut,
        Fut: Future<Output = Result<Attempt, PostgresError>>,
    {
        let password = crate::redact::new_secret(24).map_err(io_error("read /dev/urandom for the role password"))?;
        let mut last_tail = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = ports::free_port().map_err(io_error("find a free loopback port"))?;
            match attempt(port).await? {
                Attempt::Ready {
                    backend,
                    pid,
                    startup_time,
                } => {
                    let server = PostgresServer {
                        backend,
                        pid,
                        port,
                        socket_dir: scratch.path().to_path_buf(),
                        password,
                        startup_time,
                        initdb_time,
                        next_database: AtomicU64::new(1),
                        scratch: Some(scratch),
                        dir_ticket: Some(dir_ticket),
                    };
                    // On failure `server` drops here, which stops the server and removes the directory.
                    server.bootstrap().await?;
                    return Ok(server);
                }
                Attempt::PortTaken { log_tail } => last_tail = log_tail,
            }
        }
        Err(PostgresError::NoFreePort {
            attempts: PORT_ATTEMPTS,
            log_tail: last_tail,
        })
    }

    /// Which provider runs this server.
    pub fn provider(&self) -> Provider {
        match self.backend {
            Backend::Native(_) => Provider::Native,
            Backend::Container(_) => Provider::Docker,
        }
    }

    /// The container's id, when the server runs in one.
    pub fn container_id(&self) -> Option<&str> {
        match &self.backend {
            Backend::Native(_) => None,
            Backend::Container(container) => Some(container.id()),
        }
    }

    /// Create the `conform` role and the template database, as superuser over the unix socket.
    async fn bootstrap(&self) -> Result<(), PostgresError> {
        let mut admin = self.superuser().await?;
        // The password is alphanumeric (see `redact::new_secret`), so it needs no quoting.
        let create_role = format!("CREATE ROLE {ROLE} LOGIN PASSWORD '{}' CREATEDB", self.password);
        sqlx::raw_sql(AssertSqlSafe(create_role))
            .execute(&mut admin)
            .await
            .map_err(sql_error(format!("creating role {ROLE}")))?;
        sqlx::raw_sql(AssertSqlSafe(format!("CREATE DATABASE {TEMPLATE} OWNER {ROLE}")))
            .execute(&mut admin)
            .await
            .map_err(sql_error(format!("creating database {TEMPLATE}")))?;
        let _ = admin.close().await;
        Ok(())
    }

    /// The TCP port the server listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:port`: the address to hand to a candidate or a [`FaultProxy`](super::proxy::FaultProxy).
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))
    }

    /// The postmaster's pid (natively its process group has the same id; in a container, the
    /// host's pid of the container's main process). For evidence and leak checks.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The scratch directory holding the unix socket (natively also the data directory and logs).
    pub fn dir(&self) -> &Path {
        &self.socket_dir
    }

    /// How long the server took from spawn to accepting connections and answering `SELECT 1`
    /// (excluding `initdb`, which is [`initdb_time`](PostgresServer::initdb_time)).
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// How long `initdb` took (zero in a container: its cluster is baked into the image or
    /// initialised as part of its start-up).
    pub fn initdb_time(&self) -> Duration {
        self.initdb_time
    }

    /// The password of the `conform` role, which the harness records as a secret to redact.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// A superuser connection to the `postgres` database over the unix socket, for admin SQL
    /// that a scenario needs and the `conform` role may not do. Never hand this to a candidate.
    pub async fn superuser(&self) -> Result<PgConnection, PostgresError> {
        PgConnection::connect_with(&self.superuser_options())
            .await
            .map_err(sql_error(format!(
                "connecting as {SUPERUSER} over the unix socket in {}",
                self.socket_dir.display()
            )))
    }

    fn superuser_options(&self) -> PgConnectOptions {
        superuser_options(&self.socket_dir, self.port)
    }

    /// A new, empty database `conform_<n>` cloned from `conform_template` and owned by `conform`.
    pub async fn fresh_database(&self) -> Result<Database, PostgresError> {
        let n = self.next_database.fetch_add(1, Ordering::Relaxed);
        let name = format!("conform_{n}");
        let mut admin = self.superuser().await?;
        let started = Instant::now();
        sqlx::raw_sql(AssertSqlSafe(format!(
            "CREATE DATABASE {name} TEMPLATE {TEMPLATE} OWNER {ROLE}"
        )))
        .execute(&mut admin)
        .await
        .map_err(sql_error(format!("CREATE DATABASE {name} TEMPLATE {TEMPLATE}")))?;
        let created_in = started.elapsed();
        let _ = admin.close().await;
        Ok(Database {
            name,
            host: Ipv4Addr::LOCALHOST.to_string(),
            port: self.port,
            user: ROLE.to_string(),
            password: self.password.clone(),
            created_in,
        })
    }

    /// Fast shutdown: SIGINT to the postmaster (which ends its backends and waits for them), a
    /// bounded wait for it to exit, then SIGKILL to it and anything it forked whatever happened
    /// (in a container: the container is removed); finally remove the scratch directory. Reports
    /// a server that had to be killed (or had already died) as an error, after cleaning up all the
    /// same.
    pub async fn stop(mut self) -> Result<(), PostgresError> {
        let mut outcome = match &mut self.backend {
            Backend::Native(postmaster) => postmaster.stop().await,
            Backend::Container(container) => container.stop(self.pid).await,
        };
        if let Some(scratch) = self.scratch.take() {
            let path = scratch.path().to_path_buf();
            let removed = scratch.close();
            self.dir_ticket.take();
            if let Err(source) = removed {
                outcome = outcome.and(Err(PostgresError::Io {
                    action: format!("remove {}", path.display()),
                    source,
                }));
            }
        }
        outcome
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // The server must be gone before its directory is removed.
        match &mut self.backend {
            Backend::Native(postmaster) => postmaster.kill(),
            Backend::Container(container) => container.kill(),
        }
        if let Some(scratch) = self.scratch.take() {
            let _ = scratch.close();
        }
        self.dir_ticket.take();
    }
}
