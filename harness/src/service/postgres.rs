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
//! This module knows nothing about clauses: it hands out addresses and credentials.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{AssertSqlSafe, Connection};

use crate::poll::{self, Poll, PollError};
use crate::{ports, reaper, timeouts};

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
    /// The server did not exit after the fast-shutdown signal and was killed.
    #[error("Postgres (pid {pid}) did not stop: {reason}")]
    Stop {
        /// The postmaster's pid.
        pid: u32,
        /// What went wrong.
        reason: String,
    },
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

/// One running Postgres server, private to this run. See the module docs.
///
/// Dropping it without [`stop`](PostgresServer::stop) kills the server and its children and
/// removes its data directory. `Debug` never shows the password.
pub struct PostgresServer {
    postmaster: Postmaster,
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
            .field("pid", &self.postmaster.child.id())
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

        let parent = scratch_parent();
        let scratch = tempfile::Builder::new()
            .prefix(&format!("conform-{}-", std::process::id()))
            .tempdir_in(&parent)
            .map_err(io_error(format!("create a scratch directory in {}", parent.display())))?;
        let dir_ticket = reaper::register_dir(scratch.path());
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

        let password = crate::redact::new_secret(24).map_err(io_error("read /dev/urandom for the role password"))?;
        let mut last_tail = String::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = ports::free_port().map_err(io_error("find a free loopback port"))?;
            match launch(&binaries, &root, &data, port, run_as).await? {
                Launch::Ready {
                    postmaster,
                    startup_time,
                } => {
                    let server = PostgresServer {
                        postmaster,
                        port,
                        socket_dir: root.clone(),
                        password,
                        startup_time,
                        initdb_time,
                        next_database: AtomicU64::new(1),
                        scratch: Some(scratch),
                        dir_ticket: Some(dir_ticket),
                    };
                    // On failure `server` drops here, which kills it and removes the directory.
                    server.bootstrap().await?;
                    return Ok(server);
                }
                Launch::PortTaken { log_tail } => last_tail = log_tail,
            }
        }
        Err(PostgresError::NoFreePort {
            attempts: PORT_ATTEMPTS,
            log_tail: last_tail,
        })
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

    /// The postmaster's pid (its process group has the same id). For evidence and leak checks.
    pub fn pid(&self) -> u32 {
        self.postmaster.child.id()
    }

    /// The scratch directory holding the data directory, the logs and the unix socket.
    pub fn dir(&self) -> &Path {
        &self.socket_dir
    }

    /// How long the server took from spawn to accepting connections and answering `SELECT 1`
    /// (excluding `initdb`, which is [`initdb_time`](PostgresServer::initdb_time)).
    pub fn startup_time(&self) -> Duration {
        self.startup_time
    }

    /// How long `initdb` took.
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
    /// bounded wait for it to exit, then SIGKILL to it and anything it forked whatever happened;
    /// finally remove the scratch directory. Reports a server that had to be killed (or had
    /// already died) as an error, after cleaning up all the same.
    pub async fn stop(mut self) -> Result<(), PostgresError> {
        let pid = self.postmaster.child.id();
        let mut outcome = Ok(());
        match self.postmaster.child.try_wait() {
            Ok(Some(status)) => {
                outcome = Err(PostgresError::Stop {
                    pid,
                    reason: format!("it had already exited ({status}) before stop"),
                });
            }
            Ok(None) => {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
                let waited = wait_exit(
                    &mut self.postmaster.child,
                    format!("Postgres (pid {pid}) to exit after SIGINT"),
                    timeouts::SERVICE_STOP,
                )
                .await;
                if let Err(err) = waited {
                    outcome = Err(PostgresError::Stop {
                        pid,
                        reason: err.to_string(),
                    });
                }
            }
            Err(err) => {
                outcome = Err(PostgresError::Stop {
                    pid,
                    reason: format!("cannot wait for it: {err}"),
                });
            }
        }
        self.postmaster.kill();
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

/// The running `postmaster` (our child, leader of its own process group) and its reaper
/// registration. Dropping it kills the server, so no path (error, panic, a cancelled `start`)
/// can leave one running.
#[derive(Debug)]
struct Postmaster {
    child: Child,
    /// The data directory, whose `postmaster.pid` names the server's System V segment.
    data: PathBuf,
    _ticket: reaper::Ticket,
}

impl Postmaster {
    /// Kill the postmaster and everything it forked, reap it, and remove the shared memory it
    /// could not. Idempotent.
    fn kill(&mut self) {
        kill_postmaster(&mut self.child, &self.data);
    }
}

impl Drop for Postmaster {
    fn drop(&mut self) {
        self.kill();
    }
}

/// SIGKILL a postmaster and all its children, reap it, and remove its System V segment.
///
/// Killing the process group is not enough: every process the postmaster forks calls `setsid()`
/// and leads its own group, so `killpg` reaches only the postmaster. Its children are found by
/// parent pid while it is frozen with SIGSTOP (so it can fork no new one), killed, and then the
/// postmaster itself is killed.
///
/// A killed postmaster also cannot release its small System V "interlock" segment, which would
/// outlive the run (Postgres only ever reclaims a stale segment of its *own* data directory,
/// and ours is deleted). Its id is read from the `postmaster.pid` a dead server left behind and
/// the segment is removed with `ipcrm`. (Dynamic shared memory lives in the data directory,
/// see `dynamic_shared_memory_type=mmap` in [`launch`], so it goes with the directory.)
///
/// Also cleans up after a postmaster that died by itself; harmless after a clean exit.
#[expect(
    clippy::disallowed_methods,
    reason = "ipcrm removes the shared memory a killed server left behind"
)]
fn kill_postmaster(child: &mut Child, data: &Path) {
    let pid = child.id();
    if let Ok(None) = child.try_wait() {
        let postmaster = Pid::from_raw(pid as i32);
        let _ = kill(postmaster, Signal::SIGSTOP);
        for forked in children_of(pid) {
            let _ = kill(Pid::from_raw(forked as i32), Signal::SIGKILL);
        }
        let _ = killpg(postmaster, Signal::SIGKILL);
        let _ = kill(postmaster, Signal::SIGKILL);
    }
    // The kernel ends a SIGKILLed process at once; this only collects its exit status.
    let _ = child.wait();
    // A postmaster that exits cleanly deletes `postmaster.pid`; if ours is still there, the
    // server died without cleaning up (killed here, by the reaper, or by the kernel) and its
    // segment is still allocated.
    if let Some(shmid) = sysv_segment(data, pid) {
        // The kernel defers removal until the last (dying) child has detached.
        let _ = Command::new("ipcrm")
            .args(["-m", &shmid.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
    }
}

/// The System V shared memory id recorded in `postmaster.pid` (line 7: key, then id), if the
/// file belongs to postmaster `pid`.
fn sysv_segment(data: &Path, pid: u32) -> Option<i64> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim().parse::<u32>().ok()? != pid {
        return None;
    }
    let shmem = lines.nth(5)?;
    shmem.split_whitespace().nth(1)?.parse().ok()
}

/// Pids of the processes whose parent is `parent`, read from `/proc`.
fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                return false;
            };
            // After the parenthesised command name: state, ppid, ...
            let Some((_, rest)) = stat.rsplit_once(')') else {
                return false;
            };
            rest.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) == Some(parent)
        })
        .collect()
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // The server must be gone before its directory is removed.
        self.postmaster.kill();
        if let Some(scratch) = self.scratch.take() {
            let _ = scratch.close();
        }
        self.dir_ticket.take();
    }
}

/// One database on the run's server, private to one scenario.
///
/// `Debug` never shows the password.
#[derive(Clone)]
pub struct Database {
    /// `conform_<n>`.
    pub name: String,
    /// Always `127.0.0.1`.
    pub host: String,
    /// The server's TCP port.
    pub port: u16,
    /// Always `conform`, the database's owner.
    pub user: String,
    password: String,
    created_in: Duration,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .field("created_in", &self.created_in)
            .finish()
    }
}

impl Database {
    /// `postgres://conform:<password>@127.0.0.1:<port>/<name>?sslmode=disable`.
    pub fn url(&self) -> String {
        self.url_via(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port)))
    }

    /// The same URL, but reaching the server through `addr` (a [`FaultProxy`](super::proxy::FaultProxy)).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        format!(
            "postgres://{}:{}@{addr}/{}?sslmode=disable",
            self.user, self.password, self.name
        )
    }

    /// The password in the URL; the harness records it as a secret to redact from evidence.
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Connection options for this database over TCP with the password, built field by field
    /// so that no `PG*` variable of the runner's environment changes where they point.
    pub fn connect_options(&self) -> PgConnectOptions {
        PgConnectOptions::new_without_pgpass()
            .host(&self.host)
            .port(self.port)
            .username(&self.user)
            .password(&self.password)
            .database(&self.name)
            .ssl_mode(PgSslMode::Disable)
    }

    /// Connect to this database as `conform` over TCP, for inspecting what a candidate did.
    pub async fn connect(&self) -> Result<PgConnection, PostgresError> {
        PgConnection::connect_with(&self.connect_options())
            .await
            .map_err(sql_error(format!(
                "connecting to database {} as {} at {}:{}",
                self.name, self.user, self.host, self.port
            )))
    }

    /// How long `CREATE DATABASE ... TEMPLATE` took for this database.
    pub fn created_in(&self) -> Duration {
        self.created_in
    }
}

fn superuser_options(socket_dir: &Path, port: u16) -> PgConnectOptions {
    PgConnectOptions::new_without_pgpass()
        .socket(socket_dir)
        .port(port)
        .username(SUPERUSER)
        .database("postgres")
        .ssl_mode(PgSslMode::Disable)
}

/// Where scratch directories go: tmpfs if there is one.
fn scratch_parent() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Root cannot run Postgres; run it as the `postgres` system user instead.
fn run_as() -> Result<Option<RunAs>, PostgresError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    match nix::unistd::User::from_name(SUPERUSER) {
        Ok(Some(user)) => Ok(Some(RunAs {
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
        })),
        Ok(None) => Err(PostgresError::NoPostgresUser),
        Err(errno) => Err(PostgresError::Io {
            action: "look up the postgres system user".into(),
            source: std::io::Error::from(errno),
        }),
    }
}

/// Find a directory holding both `initdb` and `postgres`.
async fn find_binaries(search_dirs: Option<&[PathBuf]>) -> Result<Binaries, PostgresError> {
    let candidates = match search_dirs {
        Some(dirs) => dirs.to_vec(),
        None => default_search_dirs().await,
    };
    for dir in &candidates {
        let initdb = dir.join("initdb");
        let postgres = dir.join("postgres");
        if is_executable(&initdb) && is_executable(&postgres) {
            return Ok(Binaries { initdb, postgres });
        }
    }
    Err(PostgresError::NotInstalled { searched: candidates })
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// `/usr/lib/postgresql/<version>/bin`, newest first; then `pg_config --bindir`; then `PATH`.
async fn default_search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let version = name
                .split('.')
                .map(|part| part.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    if versions.is_empty() {
        dirs.push(debian.join("<version>/bin"));
    }
    dirs.extend(versions.into_iter().rev().map(|(_, path)| path));
    if let Some(bindir) = pg_config_bindir().await {
        dirs.push(bindir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    let mut seen = std::collections::HashSet::new();
    dirs.retain(|d| seen.insert(d.clone()));
    dirs
}

/// `pg_config --bindir`, if `pg_config` is on `PATH` and answers within the ceiling.
#[expect(
    clippy::disallowed_methods,
    reason = "pg_config is a read-only lookup of the install layout"
)]
async fn pg_config_bindir() -> Option<PathBuf> {
    let mut command = Command::new("pg_config");
    command
        .arg("--bindir")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let finished = run_bounded(command, "pg_config --bindir", timeouts::POSTGRES_START)
        .await
        .ok()?;
    if !finished.status.success() {
        return None;
    }
    let mut out = String::new();
    finished.stdout?.read_to_string(&mut out).ok()?;
    let dir = PathBuf::from(out.trim());
    (!out.trim().is_empty()).then_some(dir)
}

/// A finished short-lived process.
struct Finished {
    status: ExitStatus,
    stdout: Option<std::process::ChildStdout>,
}

/// Run `command` in its own process group (registered with the reaper) and wait, bounded by
/// `ceiling`, for it to exit. On timeout the group is killed.
async fn run_bounded(mut command: Command, what: &str, ceiling: Duration) -> Result<Finished, String> {
    command.process_group(0);
    let child = command.spawn().map_err(|err| format!("cannot run {what}: {err}"))?;
    let _ticket = reaper::register_group(child.id() as i32, Signal::SIGKILL);
    let mut group = Group { child, _ticket };
    let waited = wait_exit(&mut group.child, format!("{what} to finish"), ceiling)
        .await
        .map_err(|err| err.to_string())?;
    Ok(Finished {
        status: waited,
        stdout: group.child.stdout.take(),
    })
}

/// A short-lived process leading its own group. Dropping it before it exits (a timeout or a
/// cancelled wait) kills the whole group; either way the leader is reaped.
struct Group {
    child: Child,
    _ticket: reaper::Ticket,
}

impl Drop for Group {
    fn drop(&mut self) {
        // Once the leader is reaped its pid (and so the group id) may be reused: signal only
        // while it is still ours.
        if let Ok(None) = self.child.try_wait() {
            let _ = killpg(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// Wait (polled, bounded by `ceiling`) for `child` to exit.
async fn wait_exit(child: &mut Child, what: String, ceiling: Duration) -> Result<ExitStatus, PollError> {
    poll::wait_for(what, ceiling, timeouts::POLL_INTERVAL, || {
        let seen = child.try_wait();
        async move {
            match seen {
                Ok(Some(status)) => Poll::Ready(status),
                Ok(None) => Poll::NotYet("still running".into()),
                Err(err) => Poll::Abort(format!("cannot wait for it: {err}")),
            }
        }
    })
    .await
}

#[expect(
    clippy::disallowed_methods,
    reason = "the server runs as its own tool with a chosen environment, recorded in the server log"
)]
fn server_command(program: &Path, root: &Path, run_as: Option<RunAs>) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(root)
        .env_clear()
        .env("LANG", "C.UTF-8")
        .stdin(Stdio::null());
    if let Some(path) = std::env::var_os("PATH") {
        command.env("PATH", path);
    }
    if let Some(user) = run_as {
        command.uid(user.uid).gid(user.gid);
    }
    command
}

async fn initdb(binaries: &Binaries, root: &Path, data: &Path, run_as: Option<RunAs>) -> Result<(), PostgresError> {
    let log_path = root.join("initdb.log");
    let log = File::create(&log_path).map_err(io_error(format!("create {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(io_error(format!("duplicate {}", log_path.display())))?;
    let mut command = server_command(&binaries.initdb, root, run_as);
    command
        .arg("-D")
        .arg(data)
        .args([
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ])
        .args(["--locale=C.UTF-8", "--no-sync"])
        .stdout(log)
        .stderr(log_err);
    let failed = |reason: String| PostgresError::Initdb {
        program: binaries.initdb.clone(),
        reason,
        log_tail: log_tail(&log_path),
    };
    let finished = run_bounded(command, "initdb", timeouts::POSTGRES_START)
        .await
        .map_err(failed)?;
    if !finished.status.success() {
        return Err(failed(finished.status.to_string()));
    }
    Ok(())
}

/// How one attempt to start the server on a port ended (other than with an error).
enum Launch {
    Ready {
        postmaster: Postmaster,
        startup_time: Duration,
    },
    PortTaken {
        log_tail: String,
    },
}

async fn launch(
    binaries: &Binaries,
    root: &Path,
    data: &Path,
    port: u16,
    run_as: Option<RunAs>,
) -> Result<Launch, PostgresError> {
    let log_path = root.join("postgres.log");
    let log = File::create(&log_path).map_err(io_error(format!("create {}", log_path.display())))?;
    let log_err = log
        .try_clone()
        .map_err(io_error(format!("duplicate {}", log_path.display())))?;
    let mut command = server_command(&binaries.postgres, root, run_as);
    command
        .arg("-D")
        .arg(data)
        .arg("-p")
        .arg(port.to_string())
        .arg("-k")
        .arg(root)
        .args([
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
        ])
        .args(["-c", "full_page_writes=off", "-c", "max_connections=300"])
        // Dynamic shared memory as files in the data directory (tmpfs), not in /dev/shm where a
        // killed server would leave them behind.
        .args(["-c", "dynamic_shared_memory_type=mmap"])
        .stdout(log)
        .stderr(log_err)
        .process_group(0);
    let spawned = Instant::now();
    let child = command
        .spawn()
        .map_err(io_error(format!("run {}", binaries.postgres.display())))?;
    let _ticket = reaper::register_group(child.id() as i32, Signal::SIGINT);
    let mut postmaster = Postmaster {
        child,
        data: data.to_path_buf(),
        _ticket,
    };

    let ceiling = timeouts::POSTGRES_START;
    let deadline = tokio::time::Instant::now() + ceiling;
    let options = superuser_options(root, port);
    let waited = {
        let child = &mut postmaster.child;
        poll::wait_for(
            format!("Postgres to accept connections on 127.0.0.1:{port} and answer SELECT 1"),
            ceiling,
            timeouts::POLL_INTERVAL,
            || {
                let exited = child.try_wait();
                let options = options.clone();
                async move {
                    match exited {
                        Ok(Some(status)) => {
                            return Poll::Abort(format!("postgres exited ({status})"));
                        }
                        Err(err) => return Poll::Abort(format!("cannot wait for postgres: {err}")),
                        Ok(None) => {}
                    }
                    // Each look is bounded by the overall deadline, so a server that accepts
                    // and then hangs cannot stretch the wait past its ceiling.
                    let look = tokio::time::timeout_at(deadline, async {
                        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
                            .await
                            .map_err(|err| format!("TCP connect: {err}"))?;
                        let mut conn = PgConnection::connect_with(&options)
                            .await
                            .map_err(|err| format!("connect over the unix socket: {err}"))?;
                        sqlx::raw_sql("SELECT 1")
                            .execute(&mut conn)
                            .await
                            .map_err(|err| format!("SELECT 1: {err}"))?;
                        let _ = conn.close().await;
                        Ok::<(), String>(())
                    })
                    .await;
                    match look {
                        Ok(Ok(())) => Poll::Ready(()),
                        Ok(Err(seen)) => Poll::NotYet(seen),
                        Err(_) => Poll::NotYet("a connection attempt did not finish".into()),
                    }
                }
            },
        )
        .await
    };
    match waited {
        Ok(()) => Ok(Launch::Ready {
            postmaster,
            startup_time: spawned.elapsed(),
        }),
        Err(source) => {
            drop(postmaster);
            let log_tail = log_tail(&log_path);
            if log_tail.contains("Address already in use") {
                return Ok(Launch::PortTaken { log_tail });
            }
            Err(PostgresError::Start {
                program: binaries.postgres.clone(),
                port,
                source: Box::new(source),
                log_tail,
            })
        }
    }
}

/// The last few kilobytes of a log, for an error message.
fn log_tail(path: &Path) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(no log at {})", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let start = len.saturating_sub(LOG_TAIL_BYTES);
    let mut bytes = Vec::new();
    if file.seek(SeekFrom::Start(start)).is_err() || file.read_to_end(&mut bytes).is_err() {
        return format!("(could not read {})", path.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = if start > 0 {
        text.split_once('\n').map_or(&*text, |(_, rest)| rest)
    } else {
        &text
    };
    if text.trim().is_empty() {
        "(empty log)".into()
    } else {
        text.trim_end().to_string()
    }
}
