//! The last line of defence against leaks: every process group and scratch directory the harness
//! creates is registered here, so that a Ctrl-C (or SIGTERM, or SIGHUP) on the runner can kill and
//! remove all of them before the runner exits. Resources that are neither (the docker provider's
//! containers) register a cleanup function, run between the two.
//!
//! Normal cleanup is RAII (`Running`, `PostgresServer` and `TempDir` all clean up on drop, which
//! also covers a panicking scenario). Drop does not run when the runner is killed by a signal,
//! which is why this registry exists: [`install_signal_handler`] turns the runner's own signals
//! into an orderly [`reap_all`] followed by exit status 130.
//!
//! Creating a resource and registering it is one step, ordered against the reaper: a process is
//! spawned ([`spawn_group`]) and a directory created ([`temp_dir`]) while the registry's lock is
//! held, and [`reap_all`] closes the registry under the same lock before it kills anything. So a
//! resource is either registered before the reaper looks, or never created: once shutdown has
//! begun, every further spawn or directory fails with [`shutting_down`], and scenarios still
//! running at that moment end with a harness error instead of starting something nobody will
//! stop. Resources the registry cannot create itself (a container, created over the Docker API)
//! are created under a [`Pass`]: the reaper waits, bounded, for the passes out to come back before
//! it runs the cleanups that remove them.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::timeouts;

/// What to do with one registered resource when reaping.
#[derive(Debug, Clone)]
enum Resource {
    /// A process group, killed with the given signal.
    Group { pgid: i32, signal: Signal },
    /// A directory, removed recursively.
    Dir(PathBuf),
    /// A blocking cleanup (it must bound itself), run after the groups and before the directories.
    Cleanup(fn()),
}

static NEXT: AtomicU64 = AtomicU64::new(1);
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    closed: false,
    resources: BTreeMap::new(),
    passes: 0,
});

/// The registered resources, and whether the reaper has closed the registry.
struct Registry {
    /// Set by [`reap_all`]: nothing may be created from then on.
    closed: bool,
    resources: BTreeMap<u64, Resource>,
    /// [`Pass`]es out: creations the reaper must wait for before its cleanups run.
    passes: usize,
}

/// A registration; dropping it forgets the resource (its owner has cleaned it up).
#[derive(Debug)]
#[must_use = "dropping the ticket forgets the resource"]
pub struct Ticket(u64);

impl Drop for Ticket {
    fn drop(&mut self) {
        lock().resources.remove(&self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, Registry> {
    // A panic while holding this lock leaves plain data behind; keep reaping.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The registry, locked, for a creation: [`shutting_down`] once the reaper has closed it. Held
/// across the creation, so the reaper either sees the new resource or prevents it.
fn open() -> std::io::Result<std::sync::MutexGuard<'static, Registry>> {
    let registry = lock();
    if registry.closed {
        return Err(shutting_down());
    }
    Ok(registry)
}

/// The error every creation gets once the reaper has begun.
pub fn shutting_down() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::Interrupted,
        "conform is stopping (it received a signal): nothing new is started",
    )
}

impl Registry {
    fn insert(&mut self, resource: Resource) -> Ticket {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        self.resources.insert(id, resource);
        Ticket(id)
    }
}

/// Spawn a process leading its own group, registered to be killed with `signal` if the runner is
/// interrupted. `spawn` runs under the registry's lock and returns the child and its pid (the
/// group id); once the reaper has begun it is not called, and the error is [`shutting_down`].
/// Only [`crate::process`] calls this: it is the one audited spawn path.
pub(crate) fn spawn_group<T>(
    signal: Signal,
    spawn: impl FnOnce() -> std::io::Result<(T, u32)>,
) -> std::io::Result<(T, Ticket)> {
    let mut registry = open()?;
    let (child, pid) = spawn()?;
    let ticket = registry.insert(Resource::Group {
        pgid: pid as i32,
        signal,
    });
    Ok((child, ticket))
}

/// Create a temporary directory with `builder` (in `parent`, or the system temp directory),
/// registered to be removed if the runner is interrupted; after the reaper has begun, nothing is
/// created and the error is [`shutting_down`].
pub fn temp_dir(
    builder: &tempfile::Builder<'_, '_>,
    parent: Option<&std::path::Path>,
) -> std::io::Result<(tempfile::TempDir, Ticket)> {
    let mut registry = open()?;
    let dir = match parent {
        Some(parent) => builder.tempdir_in(parent)?,
        None => builder.tempdir()?,
    };
    let ticket = registry.insert(Resource::Dir(dir.path().to_path_buf()));
    Ok((dir, ticket))
}

/// Create the directory `path` (and its parents), registered to be removed if the runner is
/// interrupted, for scratch work at a path of the caller's choosing (a build copy in the cache);
/// the caller removes it when done, then drops the ticket. After the reaper has begun, nothing is
/// created and the error is [`shutting_down`].
pub fn scratch_dir(path: &std::path::Path) -> std::io::Result<Ticket> {
    let mut registry = open()?;
    std::fs::create_dir_all(path)?;
    Ok(registry.insert(Resource::Dir(path.to_path_buf())))
}

/// Register a cleanup to run if the runner is interrupted, after every [`Pass`] out has come back.
/// It runs on the signal thread, inside that thread's runtime: it must not await on it (spawn a
/// thread for async work) and must bound its own duration.
pub fn register_cleanup(cleanup: fn()) -> Ticket {
    lock().insert(Resource::Cleanup(cleanup))
}

/// Held while creating a resource the registry cannot create itself (a container): the reaper
/// waits for it (at most [`timeouts::REAPER_PASS_WAIT`]) before running the cleanups that remove such resources.
#[derive(Debug)]
#[must_use = "the pass covers the creation only while it is held"]
pub struct Pass(());

impl Drop for Pass {
    fn drop(&mut self) {
        lock().passes -= 1;
    }
}

/// A [`Pass`] for one creation, or [`shutting_down`] once the reaper has begun.
pub fn pass() -> std::io::Result<Pass> {
    let mut registry = open()?;
    registry.passes += 1;
    Ok(Pass(()))
}

/// Kill every registered process group, run every registered cleanup, then remove every
/// registered directory.
///
/// Groups registered with a polite signal get it first and up to [`timeouts::REAPER_POLITE_GRACE`] to exit;
/// then every group, polite or not, gets SIGKILL. Directories go last, so that no process is
/// still writing into a directory being removed. Returns how many resources were reaped.
#[expect(
    clippy::disallowed_methods,
    reason = "a bounded poll of process-group existence in the signal thread, which has no runtime to await on"
)]
pub fn reap_all() -> usize {
    let resources: Vec<Resource> = {
        let mut registry = lock();
        registry.closed = true;
        std::mem::take(&mut registry.resources).into_values().rev().collect()
    };
    let groups: Vec<(i32, Signal)> = resources
        .iter()
        .filter_map(|r| match r {
            Resource::Group { pgid, signal } => Some((*pgid, *signal)),
            Resource::Dir(_) | Resource::Cleanup(_) => None,
        })
        .collect();
    let polite: Vec<i32> = groups
        .iter()
        .filter(|(_, s)| *s != Signal::SIGKILL)
        .map(|(g, _)| *g)
        .collect();
    for (pgid, signal) in &groups {
        if *signal != Signal::SIGKILL {
            let _ = killpg(Pid::from_raw(*pgid), *signal);
        }
    }
    let deadline = Instant::now() + timeouts::REAPER_POLITE_GRACE;
    // A bounded poll of "every politely signalled group is gone" (signal 0 probes existence).
    while Instant::now() < deadline && polite.iter().any(|g| killpg(Pid::from_raw(*g), None).is_ok()) {
        std::thread::sleep(timeouts::REAPER_POLL);
    }
    for (pgid, _) in &groups {
        // Whatever the polite signal was, make sure nothing of the group survives.
        let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
    }
    // A container being created now appears only when its creation returns: wait for those.
    let deadline = Instant::now() + timeouts::REAPER_PASS_WAIT;
    while Instant::now() < deadline && lock().passes > 0 {
        std::thread::sleep(timeouts::REAPER_POLL);
    }
    for resource in &resources {
        if let Resource::Cleanup(cleanup) = resource {
            cleanup();
        }
    }
    for resource in &resources {
        if let Resource::Dir(path) = resource {
            let _ = std::fs::remove_dir_all(path);
        }
    }
    resources.len()
}

/// Held by whoever is ending the process: the signal thread from the start of its reaping until
/// its `exit(130)`, or a normal [`exit`]. So a runner whose main thread finishes while the reaper
/// is still cleaning up (its scenarios end early because their processes were just killed)
/// waits for the reaper instead of exiting first with its own status.
static EXITING: Mutex<()> = Mutex::new(());

/// End the process with `code`, unless an interrupt is being handled, in which case wait for the
/// reaper to finish and exit 130. Entry points call this instead of [`std::process::exit`].
pub fn exit(code: i32) -> ! {
    let _exiting = EXITING.lock().unwrap_or_else(|p| p.into_inner());
    std::process::exit(code)
}

/// True once the runner has received SIGINT, SIGTERM or SIGHUP: every process it started is
/// being (or has been) killed, so whatever a scenario saw from then on is the harness's doing,
/// not the candidate's.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// Reap everything and exit 130 when the runner receives SIGINT, SIGTERM or SIGHUP.
///
/// Runs on its own thread with its own small runtime, so it works under libtest-mimic's thread
/// pool as well as inside the CLI's runtime. Calling it twice is harmless.
pub fn install_signal_handler() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let spawned = std::thread::Builder::new().name("conform-reaper".into()).spawn(|| {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            rt.block_on(async {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                    signal(SignalKind::interrupt()),
                    signal(SignalKind::terminate()),
                    signal(SignalKind::hangup()),
                ) else {
                    return;
                };
                let name = tokio::select! {
                    _ = int.recv() => "SIGINT",
                    _ = term.recv() => "SIGTERM",
                    _ = hup.recv() => "SIGHUP",
                };
                INTERRUPTED.store(true, Ordering::SeqCst);
                let _exiting = EXITING.lock().unwrap_or_else(|p| p.into_inner());
                let n = reap_all();
                eprintln!("conform: {name} received; stopped and removed {n} process group(s) and directories");
                std::process::exit(130);
            });
        });
        if let Err(err) = spawned {
            eprintln!("conform: could not start the signal handler thread: {err}");
        }
    });
}
