//! The one audited way to start any child process, and [`Group`], the one type that owns one.
//!
//! Every child of conform (a candidate, a tool run, a `go` build, Postgres and its utilities, the
//! OpenTelemetry Collector) is spawned here, and nowhere else (`clippy.toml` forbids
//! `Command::new`, `spawn`, `output` and `status` outside this module):
//! - in a process group of its own, so the whole tree can be signalled or killed;
//! - registered with the [`reaper`] in the same step as the spawn, under the registry's lock, so
//!   an interrupt either finds it or prevents it (see the reaper's docs);
//! - owned by a [`Group`], which kills the group when dropped unless the leader has exited;
//! - waited on with a ceiling ([`output`] for a one-shot command, the owners' polled waits for
//!   long-lived ones).
//!
//! A candidate must also see exactly the environment the scenario chose, in a working directory
//! the scenario owns, with no stdin: `Command::new` gets that wrong by default (it inherits env
//! and cwd), so candidates and tools start from a [`Launch`], and what was launched is kept as a
//! [`LaunchRecord`] for the evidence, with secrets redacted. Builds inherit the user's
//! environment on purpose ([`toolchain_command`]).

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// What was launched, as shown in evidence: a plain record, defined in [`crate::record`].
pub use crate::record::LaunchRecord;
use crate::{reaper, redact, timeouts};

/// A child process leading its own process group, registered with the reaper.
///
/// Dropping it kills the whole group (SIGKILL) unless the leader has already exited and been
/// reaped (then its pid, and so the group id, may belong to someone else), and reaps the leader.
/// `C` is the child handle: `tokio::process::Child` for processes awaited in async code,
/// `std::process::Child` for processes waited on from blocking code or from `Drop`.
#[derive(Debug)]
pub struct Group<C: Child> {
    child: C,
    pid: u32,
    _reaper: reaper::Ticket,
}

/// What [`Group`] needs of a child handle.
pub trait Child {
    /// True once the leader has exited (and has been reaped by this handle).
    fn exited(&mut self) -> bool;
    /// Collect the leader's exit after its group was killed.
    fn reap(&mut self);
}

impl Child for std::process::Child {
    fn exited(&mut self) -> bool {
        matches!(self.try_wait(), Ok(Some(_)))
    }
    fn reap(&mut self) {
        // SIGKILL has been sent: the kernel ends the process at once; this only collects it.
        let _ = self.wait();
    }
}

impl Child for tokio::process::Child {
    fn exited(&mut self) -> bool {
        matches!(self.try_wait(), Ok(Some(_)))
    }
    fn reap(&mut self) {
        // Tokio collects a killed child in the background.
        let _ = self.start_kill();
    }
}

impl<C: Child> Group<C> {
    /// The leader's pid, which is also the group id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The leader's handle.
    pub fn child(&mut self) -> &mut C {
        &mut self.child
    }

    /// Send SIGKILL to the whole group now (whether or not the leader has exited: a leader's
    /// children must not outlive it). The leader is reaped when the group is dropped.
    pub fn kill_group(&self) {
        let _ = killpg(Pid::from_raw(self.pid as i32), Signal::SIGKILL);
    }
}

impl<C: Child> Drop for Group<C> {
    fn drop(&mut self) {
        if !self.child.exited() {
            self.kill_group();
        }
        self.child.reap();
    }
}

/// Spawn `cmd` (a blocking-style child) as the leader of a new process group, registered with the
/// reaper: `polite` is the signal the reaper sends first when the runner is interrupted
/// (SIGKILL for anything that needs no orderly stop).
#[expect(clippy::disallowed_methods, reason = "this is the one audited spawn path")]
pub fn spawn(cmd: &mut std::process::Command, polite: Signal) -> std::io::Result<Group<std::process::Child>> {
    cmd.process_group(0);
    let (child, ticket) = reaper::spawn_group(polite, || {
        let child = cmd.spawn()?;
        let pid = child.id();
        Ok((child, pid))
    })?;
    Ok(Group {
        pid: child.id(),
        child,
        _reaper: ticket,
    })
}

/// Why a one-shot command did not run to its end.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// It could not be started (not installed, or conform is stopping).
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It did not exit within its ceiling; its process group was killed.
    #[error("{program} did not exit within {ceiling:?}; its process group was killed")]
    TimedOut {
        /// The program.
        program: String,
        /// The bound.
        ceiling: Duration,
    },
}

/// Run `cmd` to its end (at most `ceiling`), collecting stdout and stderr, from blocking code.
/// On the ceiling the whole process group is killed.
#[expect(
    clippy::disallowed_methods,
    reason = "a bounded poll of a child's exit from blocking code, which has no runtime to await on"
)]
pub fn output(cmd: &mut std::process::Command, ceiling: Duration) -> Result<std::process::Output, RunError> {
    let program = cmd.get_program().to_string_lossy().to_string();
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut group = spawn(cmd, Signal::SIGKILL).map_err(|source| RunError::Spawn {
        program: program.clone(),
        source,
    })?;
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut bytes);
            }
            bytes
        })
    };
    let stdout = drain(group.child().stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(group.child().stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + ceiling;
    let status = loop {
        match group.child().try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(timeouts::POLL_INTERVAL),
            Ok(None) | Err(_) => {
                group.kill_group();
                return Err(RunError::TimedOut { program, ceiling });
            }
        }
    };
    Ok(std::process::Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    })
}

/// A command of `program` to configure and then start with [`spawn`] or [`output`] (never
/// directly). It inherits the runner's environment: callers that must not (a server with a
/// chosen environment) clear it themselves.
#[expect(clippy::disallowed_methods, reason = "the one place a command is created")]
pub fn command(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.stdin(Stdio::null());
    cmd
}

/// Everything needed to start one candidate process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Absolute path of the executable.
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// The complete environment: nothing else is inherited.
    pub env: BTreeMap<String, String>,
    /// Working directory.
    pub cwd: PathBuf,
}

impl Launch {
    /// A launch of `program` in `cwd` with an empty environment.
    pub fn new(program: impl Into<PathBuf>, cwd: impl Into<PathBuf>) -> Launch {
        Launch {
            program: program.into(),
            args: Vec::new(),
            env: BTreeMap::new(),
            cwd: cwd.into(),
        }
    }

    /// Set one environment variable.
    pub fn env(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.env.insert(key.into(), value.into());
        self
    }

    /// The record of this launch, secrets redacted.
    pub fn record(&self) -> LaunchRecord {
        let mut command = vec![self.program.display().to_string()];
        command.extend(self.args.iter().map(|a| redact::text(a)));
        LaunchRecord {
            command,
            env: redact::env(&self.env),
            cwd: self.cwd.display().to_string(),
        }
    }

    /// Start it: cleared and explicit environment, own process group registered with the
    /// reaper, no stdin, stdout and stderr piped (the caller drains both, see `output`).
    #[expect(clippy::disallowed_methods, reason = "this is the one audited candidate spawn")]
    pub fn spawn(&self) -> std::io::Result<Group<tokio::process::Child>> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .env_clear()
            .envs(&self.env)
            .current_dir(&self.cwd)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let (child, ticket) = reaper::spawn_group(Signal::SIGKILL, || {
            let child = cmd.spawn()?;
            let pid = child.id().unwrap_or_default();
            Ok((child, pid))
        })?;
        Ok(Group {
            pid: child.id().unwrap_or_default(),
            child,
            _reaper: ticket,
        })
    }
}

/// A `go` command for building fixtures: [`toolchain_command`] running `go` itself.
pub fn go_command(dir: &Path) -> std::process::Command {
    toolchain_command(Path::new("go"), dir)
}

/// A command of the Go toolchain (`go`, or a program that runs `go` itself, such as the
/// OpenTelemetry Collector builder) for building fixtures.
///
/// Unlike a candidate launch, a build inherits the user's environment on purpose: `GOPROXY`,
/// `GOFLAGS`, `GOMODCACHE`, `HOME` and proxies are how a user points Go at their module source.
/// What the contract requires is forced on top: no cgo (the single static binary), the local
/// toolchain only (no silent toolchain download), and module resolution allowed to complete
/// `go.sum` in the build copy.
pub fn toolchain_command(program: &Path, dir: &Path) -> std::process::Command {
    let mut cmd = command(program);
    cmd.current_dir(dir)
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .stdin(Stdio::null());
    cmd
}
