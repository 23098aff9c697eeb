//! The one audited way to start a candidate process.
//!
//! A candidate must see exactly the environment the scenario chose, in a working directory the
//! scenario owns, in a process group of its own (so the whole tree can be signalled or killed),
//! with no stdin. `Command::new` gets all of that wrong by default (it inherits env and cwd), so
//! every candidate spawn goes through [`Launch::command`], and what was launched is kept as a
//! [`LaunchRecord`] for the evidence, with secrets redacted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::Serialize;

use crate::redact;

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

/// What was launched, as shown in evidence and reports (secrets redacted).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LaunchRecord {
    /// The command line, program first.
    pub command: Vec<String>,
    /// The whole environment the process saw, values of secrets redacted.
    pub env: BTreeMap<String, String>,
    /// The working directory.
    pub cwd: String,
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

    /// The configured command: cleared and explicit environment, own process group, no stdin,
    /// stdout and stderr piped (the caller drains both, see `output`), killed if dropped.
    #[expect(clippy::disallowed_methods, reason = "this is the one audited candidate spawn")]
    pub(crate) fn command(&self) -> tokio::process::Command {
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
        cmd
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
#[expect(
    clippy::disallowed_methods,
    reason = "the Go build deliberately inherits the user environment (GOPROXY, GOFLAGS, HOME)"
)]
pub fn toolchain_command(program: &Path, dir: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(program);
    cmd.current_dir(dir)
        .env("CGO_ENABLED", "0")
        .env("GOTOOLCHAIN", "local")
        .env("GOFLAGS", "-mod=mod")
        .stdin(Stdio::null());
    cmd
}
