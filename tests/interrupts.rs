//! Interrupts that leave nothing: a full certification of both reference candidates, interrupted
//! with SIGINT at a random moment, must exit 130 and leave no process, no container, no temp
//! directory and no build scratch behind, whatever it was doing (building, booting Postgres or a
//! container, running a clause, spawning a candidate at that very instant).
//!
//! One trial per (provider, moment), named `interrupt::<provider>::<n>`. The moments are drawn from
//! a seeded generator over the first [`SPAN`] of the run; the seed is printed, and
//! `CONFORM_INTERRUPT_SEED` replays a run exactly. `CONFORM_INTERRUPTS` moments per provider are
//! tried (default [`DEFAULT_MOMENTS`]; `cargo xtask stress` runs 10 per provider, 20 in all).
//!
//! Leftover processes are found without guessing their names: this test process makes itself a
//! child subreaper (`PR_SET_CHILD_SUBREAPER`), so every process conform started and did not stop
//! is re-parented to it when conform exits, and shows up as its descendant. The trials run one
//! at a time, so every descendant is the current trial's.
//!
//! Docker trials need an engine with `conform/postgres:15`; under `CI` they fail without one,
//! elsewhere they are ignored with the reason.

#![allow(
    clippy::disallowed_methods,
    reason = "the test drives conform and docker as a user would and polls /proc from a plain thread"
)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use libtest_mimic::{Arguments, Failed, Trial};
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

const CONFORM: &str = env!("CARGO_BIN_EXE_conform");

/// Moments per provider in the default test command.
const DEFAULT_MOMENTS: usize = 2;

/// The stretch of a run the moments are drawn from: a full certification of both references
/// with cached builds takes about 80 s on a 2-core machine.
const SPAN: Duration = Duration::from_secs(80);

/// How long conform may take to stop once interrupted: the reaper's polite grace for Postgres
/// (5 s), its wait for a container being created (30 s), and margin.
const STOP_CEILING: Duration = Duration::from_secs(60);

/// How long the kernel may take to end what was killed before a survivor counts as leaked.
const SETTLE: Duration = Duration::from_secs(10);

/// A small deterministic generator (xorshift64*): the moments only need to be spread, and a seed
/// must replay them.
struct Moments(u64);

impl Moments {
    fn next(&mut self, span: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        Duration::from_millis(200 + x % (span.as_millis() as u64 - 200))
    }
}

fn main() {
    let mut args = Arguments::from_args();
    // Every descendant must be the running trial's.
    args.test_threads = Some(1);
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        eprintln!("cannot become a child subreaper: {err}");
        std::process::exit(2);
    }
    let seed = std::env::var("CONFORM_INTERRUPT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64 | 1)
        });
    let per_provider: usize = std::env::var("CONFORM_INTERRUPTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_MOMENTS);
    eprintln!("interrupts: seed {seed} (CONFORM_INTERRUPT_SEED={seed} replays these moments)");
    let mut moments = Moments(seed);
    let docker = support::docker_image_ready();
    let mut trials = Vec::new();
    for n in 0..per_provider {
        for provider in ["native", "docker"] {
            let at = moments.next(SPAN);
            let trial = Trial::test(format!("interrupt::{provider}::{n}"), move || {
                interrupt_at(provider, at)
            });
            trials.push(match (provider, &docker) {
                ("docker", Err(why)) => trial.with_ignored_flag(true).with_kind(why.clone()),
                _ => trial,
            });
        }
    }
    libtest_mimic::run(&args, trials).exit();
}

/// Certify both references under `provider`, interrupt at `at`, and require that nothing is
/// left.
fn interrupt_at(provider: &str, at: Duration) -> Result<(), Failed> {
    let sandbox = tempfile::tempdir().map_err(|e| format!("sandbox: {e}"))?;
    let tmp = sandbox.path().join("tmp");
    std::fs::create_dir(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    let log = sandbox.path().join("conform.log");
    let log_file = std::fs::File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let mut child = Command::new(CONFORM)
        .args([
            "certify",
            "fixtures/candidates/gofastr",
            "fixtures/candidates/gofr",
            "--provider",
            provider,
            "--no-progress",
            "--out",
        ])
        .arg(sandbox.path().join("reports"))
        .current_dir(support::root())
        .env("TMPDIR", &tmp)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot run conform: {e}"))?;
    let pid = child.id();
    let started = Instant::now();
    let mut finished_first = None;
    while started.elapsed() < at {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            finished_first = Some(status);
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let said = || std::fs::read_to_string(&log).unwrap_or_default();
    let status = match finished_first {
        Some(status) => status,
        None => {
            kill(Pid::from_raw(pid as i32), Signal::SIGINT).map_err(|e| format!("SIGINT: {e}"))?;
            let deadline = Instant::now() + STOP_CEILING;
            loop {
                if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                    break status;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    return Err(format!(
                        "conform did not stop within {STOP_CEILING:?} of SIGINT at {at:?}; its output:\n{}",
                        said()
                    )
                    .into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    let moment = match finished_first {
        Some(_) => format!("conform finished before the moment ({at:?})"),
        None => format!("SIGINT at {at:?}"),
    };
    if finished_first.is_none() && status.code() != Some(130) {
        return Err(format!(
            "{moment}: conform exited with {status}, not 130; its output:\n{}",
            said()
        )
        .into());
    }
    let mut left = Vec::new();
    let survivors = settle_descendants();
    if !survivors.is_empty() {
        left.push(format!("processes: {survivors:?}"));
    }
    let temp: Vec<String> = entries(&tmp)
        .into_iter()
        .filter(|n| !(n.starts_with("conform-default-port-") && n.ends_with(".lock")))
        .collect();
    if !temp.is_empty() {
        left.push(format!("in TMPDIR: {temp:?}"));
    }
    let shm: Vec<String> = entries(Path::new("/dev/shm"))
        .into_iter()
        .filter(|n| n.starts_with(&format!("conform-{pid}-")))
        .collect();
    if !shm.is_empty() {
        left.push(format!("Postgres scratch in /dev/shm: {shm:?}"));
    }
    let scratch = build_scratch();
    if !scratch.is_empty() {
        left.push(format!("build scratch in the cache: {scratch:?}"));
    }
    if provider == "docker" {
        let containers = support::containers_of_run(pid);
        if !containers.is_empty() {
            left.push(format!("containers: {containers:?}"));
        }
    }
    if left.is_empty() {
        eprintln!("interrupt::{provider}: {moment}: {status}, nothing left");
        Ok(())
    } else {
        Err(format!("{moment}: left behind: {}\nconform said:\n{}", left.join("; "), said()).into())
    }
}

/// Reap the zombies re-parented to this process and return the descendants still alive after
/// [`SETTLE`] (a SIGKILLed process ends at once; this only allows for the kernel's bookkeeping).
fn settle_descendants() -> Vec<String> {
    let deadline = Instant::now() + SETTLE;
    loop {
        while let Ok(status) = waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            if status == nix::sys::wait::WaitStatus::StillAlive {
                break;
            }
        }
        let alive = descendants(std::process::id());
        if alive.is_empty() || Instant::now() > deadline {
            return alive;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Live (non-zombie) processes below `ancestor`, each as `pid command`.
fn descendants(ancestor: u32) -> Vec<String> {
    let mut parents = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((head, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let mut fields = rest.split_whitespace();
        let state = fields.next().unwrap_or("");
        let ppid: u32 = fields.next().and_then(|p| p.parse().ok()).unwrap_or(0);
        let name = head.split_once('(').map_or("", |(_, n)| n).to_string();
        parents.insert(pid, (ppid, state == "Z", name));
    }
    let mut found = Vec::new();
    for (pid, (_, zombie, name)) in &parents {
        let mut up = *pid;
        let mut below = false;
        while let Some((ppid, _, _)) = parents.get(&up) {
            if *ppid == ancestor {
                below = true;
                break;
            }
            up = *ppid;
        }
        if below && !zombie {
            found.push(format!("{pid} {name}"));
        }
    }
    found
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect()
}

/// Build copies and partial builds left in conform's build cache (`src/<stem>` directories,
/// `.*-partial-*` directories).
fn build_scratch() -> Vec<String> {
    let cache = harness::candidate::BuildCache::from_env();
    let mut found: Vec<String> = entries(&cache.root().join("src"))
        .into_iter()
        .map(|n| format!("src/{n}"))
        .collect();
    for sub in entries(cache.root()) {
        for name in entries(&cache.root().join(&sub)) {
            if name.contains("-partial-") {
                found.push(format!("{sub}/{name}"));
            }
        }
    }
    found
}
