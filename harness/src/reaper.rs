//! The last line of defence against leaks: every process group and scratch directory the harness
//! creates is registered here, so that a Ctrl-C (or SIGTERM, or SIGHUP) on the runner can kill and
//! remove all of them before the runner exits. Resources that are neither (the docker provider's
//! containers) register a cleanup function, run between the two.
//!
//! Normal cleanup is RAII (`Running`, `PostgresServer` and `TempDir` all clean up on drop, which
//! also covers a panicking scenario). Drop does not run when the runner is killed by a signal,
//! which is why this registry exists: [`install_signal_handler`] turns the runner's own signals
//! into an orderly [`reap_all`] followed by exit status 130.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

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
static REGISTRY: Mutex<BTreeMap<u64, Resource>> = Mutex::new(BTreeMap::new());

/// A registration; dropping it forgets the resource (its owner has cleaned it up).
#[derive(Debug)]
#[must_use = "dropping the ticket forgets the resource"]
pub struct Ticket(u64);

impl Drop for Ticket {
    fn drop(&mut self) {
        lock().remove(&self.0);
    }
}

fn lock() -> std::sync::MutexGuard<'static, BTreeMap<u64, Resource>> {
    // A panic while holding this lock leaves plain data behind; keep reaping.
    REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn register(resource: Resource) -> Ticket {
    let id = NEXT.fetch_add(1, Ordering::Relaxed);
    lock().insert(id, resource);
    Ticket(id)
}

/// Register a process group to kill with `signal` if the runner is interrupted.
pub fn register_group(pgid: i32, signal: Signal) -> Ticket {
    register(Resource::Group { pgid, signal })
}

/// Register a directory to remove if the runner is interrupted.
pub fn register_dir(path: impl Into<PathBuf>) -> Ticket {
    register(Resource::Dir(path.into()))
}

/// Register a cleanup to run if the runner is interrupted. It runs on the signal thread, inside
/// that thread's runtime: it must not await on it (spawn a thread for async work) and must bound
/// its own duration.
pub fn register_cleanup(cleanup: fn()) -> Ticket {
    register(Resource::Cleanup(cleanup))
}

/// How long a group asked to stop politely (Postgres: SIGINT, a fast shutdown that also removes
/// its shared memory) gets before it is killed.
const POLITE_GRACE: Duration = Duration::from_secs(5);

/// Kill every registered process group, run every registered cleanup, then remove every
/// registered directory.
///
/// Groups registered with a polite signal get it first and up to [`POLITE_GRACE`] to exit;
/// then every group, polite or not, gets SIGKILL. Directories go last, so that no process is
/// still writing into a directory being removed. Returns how many resources were reaped.
#[expect(
    clippy::disallowed_methods,
    reason = "a bounded poll of process-group existence in the signal thread, which has no runtime to await on"
)]
pub fn reap_all() -> usize {
    let resources: Vec<Resource> = std::mem::take(&mut *lock()).into_values().rev().collect();
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
    let deadline = Instant::now() + POLITE_GRACE;
    // A bounded poll of "every politely signalled group is gone" (signal 0 probes existence).
    while Instant::now() < deadline && polite.iter().any(|g| killpg(Pid::from_raw(*g), None).is_ok()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    for (pgid, _) in &groups {
        // Whatever the polite signal was, make sure nothing of the group survives.
        let _ = killpg(Pid::from_raw(*pgid), Signal::SIGKILL);
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
