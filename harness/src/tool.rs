//! Framework tools: a command-line program that ships inside the pinned framework module (GoFastr's
//! `gofastr` CLI), built from exactly that module version, and run once, bounded and recorded.
//!
//! A tool is judged like a candidate, so it is built the same way: the local toolchain, no cgo,
//! `-trimpath`, the user's `GOPROXY`/`GOMODCACHE`, and a module proxy that refuses the framework is
//! [`BuildError::ModuleNotServed`], distinct from a broken build. `go install <package>@<version>`
//! builds the package from the module's own `go.mod` (no local module is involved, so nothing can
//! pin a different framework version by accident); the binary is kept in the build cache under a
//! key of package, version and Go version, so a run builds it at most once and later runs reuse it.
//!
//! `go install pkg@version` checks the module against the checksum database, which does not vouch
//! for a module the public proxy refuses (the frameworks, served here from a mirror). So when the
//! caller has `go.sum` lines for `module@version` (a candidate's own, see [`sums_for`]), the tool
//! is built instead in a throwaway module that requires only `module@version` and carries those
//! lines: the same package, the same versions of everything (the module's own requirements decide
//! them, as `go install` would), and the module verified against the lines instead.
//!
//! Running a tool goes through the same audited spawn as a candidate ([`Launch`]: cleared and
//! recorded environment, own process group, no stdin), but a tool is a one-shot: [`run`] waits for
//! it to exit within a ceiling, collects its whole stdout and stderr, and kills its group if it
//! overstays, so a hung tool is a harness error with its command line, never a hung scenario.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use crate::candidate::{BuildCache, BuildError, classify_go_failure, go_version, run_go};
use crate::process::{self, Launch, LaunchRecord};
use crate::running::ExitStatus;

/// A built tool executable.
#[derive(Debug, Clone)]
pub struct Tool {
    /// Absolute path of the executable.
    pub binary: PathBuf,
    /// What it was built from, `package@version`.
    pub source: String,
    /// True when the binary came from the cache.
    pub cached: bool,
    /// Time spent (near zero when cached).
    pub took: Duration,
}

/// Serialises tool builds inside one process: parallel scenarios asking for the same tool wait
/// for the first build and then find it in the cache instead of building it again.
static BUILD_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Build `package` (a full import path inside `module`, e.g.
/// `github.com/DonaldMurillo/gofastr/cmd/gofastr`) at `module@version` into `cache`, or return the
/// cached binary. `owner` names who needs it (the candidate), for error messages.
///
/// This blocks for the length of a `go install` (minutes on a cold module cache): call it from
/// `tokio::task::spawn_blocking` in async code.
///
/// `sums`: the `go.sum` lines for `module@version` (see [`sums_for`]); empty to let `go install`
/// ask the checksum database.
pub fn build(
    owner: &str,
    module: &str,
    version: &str,
    package: &str,
    sums: &[String],
    cache: &BuildCache,
) -> Result<Tool, BuildError> {
    let _serial = BUILD_LOCK.lock().unwrap_or_else(|p| p.into_inner());
    let started = Instant::now();
    let io = |detail: String| BuildError::Io {
        candidate: owner.to_string(),
        detail,
    };
    let go = go_version().map_err(|detail| BuildError::GoMissing {
        candidate: owner.to_string(),
        detail,
    })?;
    let source = format!("{package}@{version}");
    let ldflags = "-s -w";
    let key: String = Sha256::digest(format!("{go}\n{source}\n{ldflags}\n").as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let name = package.rsplit('/').next().unwrap_or(package);
    let dir = cache.root().join("tools");
    let binary = dir.join(format!("{name}-{version}-{}", &key[..16]));
    if binary.is_file() {
        return Ok(Tool {
            binary,
            source,
            cached: true,
            took: started.elapsed(),
        });
    }
    std::fs::create_dir_all(&dir).map_err(|e| io(format!("creating {}: {e}", dir.display())))?;
    // GOBIN is private to this build, so a half-written binary is never seen under the final name
    // and two processes building at once cannot interleave their writes.
    let (gobin, _reaped) = crate::reaper::temp_dir(
        tempfile::Builder::new().prefix(&format!(".{name}-partial-")),
        Some(&dir),
    )
    .map_err(|e| io(format!("creating a GOBIN under {}: {e}", dir.display())))?;
    let (mut cmd, shown);
    if sums.is_empty() {
        cmd = process::go_command(gobin.path());
        cmd.env("GOBIN", gobin.path())
            .args(["install", "-trimpath", "-ldflags", ldflags, &source]);
        shown =
            format!("CGO_ENABLED=0 GOTOOLCHAIN=local GOBIN=<dir> go install -trimpath -ldflags '{ldflags}' {source}");
    } else {
        let module_dir = gobin.path().join("module");
        std::fs::create_dir_all(&module_dir)
            .and_then(|()| {
                std::fs::write(
                    module_dir.join("go.mod"),
                    format!("module conform.invalid/tool\n\nrequire {module} {version}\n"),
                )
            })
            .and_then(|()| std::fs::write(module_dir.join("go.sum"), sums.join("\n") + "\n"))
            .map_err(|e| io(format!("writing the tool module in {}: {e}", module_dir.display())))?;
        cmd = process::go_command(&module_dir);
        cmd.args(["build", "-trimpath", "-ldflags", ldflags, "-o"])
            .arg(gobin.path().join(name))
            .arg(package);
        shown = format!(
            "CGO_ENABLED=0 GOTOOLCHAIN=local go build -trimpath -ldflags '{ldflags}' -o <dir> {package} \
             (in a module requiring only {module} {version}, verified by the candidate's go.sum)"
        );
    }
    let (succeeded, text) = run_go(cmd, owner, &dir.join(format!("{name}-{version}-{}.log", &key[..16])))?;
    if !succeeded {
        return Err(classify_go_failure(owner, module, version, shown, &text));
    }
    std::fs::rename(gobin.path().join(name), &binary)
        .map_err(|e| io(format!("moving the {name} binary into {}: {e}", binary.display())))?;
    Ok(Tool {
        binary,
        source,
        cached: false,
        took: started.elapsed(),
    })
}

/// The lines of the `go.sum` at `path` that vouch for `module@version` (the module and its
/// `go.mod`), for [`build`]; empty when the file or the lines are missing.
pub fn sums_for(path: &Path, module: &str, version: &str) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(module)
                && words
                    .next()
                    .is_some_and(|v| v == version || v == format!("{version}/go.mod"))
        })
        .map(str::to_string)
        .collect()
}

/// How a one-shot tool run ended, with everything it printed.
#[derive(Debug, Clone)]
pub struct ToolRun {
    /// What was launched (secrets redacted).
    pub record: LaunchRecord,
    /// Exit code or signal.
    pub status: ExitStatus,
    /// Time from spawn to exit.
    pub took: Duration,
    /// The whole of stdout, ANSI escapes removed.
    pub stdout: String,
    /// The whole of stderr, ANSI escapes removed.
    pub stderr: String,
}

impl ToolRun {
    /// True when the tool exited with code 0.
    pub fn success(&self) -> bool {
        self.status == ExitStatus::Code(0)
    }

    /// stdout and stderr together (stdout first), for substring checks on messages.
    pub fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    /// One line for a violation's `actual`: the exit and the output, trimmed.
    pub fn summary(&self) -> String {
        let text = self.text();
        let text = text.trim();
        let shown: String = text.chars().take(1500).collect();
        format!(
            "{}; output: {}",
            self.status,
            if shown.is_empty() { "(none)" } else { &shown }
        )
    }
}

/// Why a tool run could not be judged.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The executable could not be spawned.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The executable.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// Waiting for it failed at the OS level.
    #[error("could not wait for {command}: {source}")]
    Wait {
        /// The command line.
        command: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// It did not exit within its ceiling (its process group was killed).
    #[error("`{command}` did not exit within {ceiling:?}; its process group was killed")]
    TimedOut {
        /// The command line.
        command: String,
        /// The bound.
        ceiling: Duration,
    },
}

/// Run `launch` to completion, at most `ceiling`, collecting its output. On the ceiling the
/// tool's process group is killed (by dropping its [`Group`](crate::process::Group)).
pub async fn run(launch: &Launch, ceiling: Duration) -> Result<ToolRun, ToolError> {
    use tokio::io::AsyncReadExt;
    let record = launch.record();
    let command = record.command.join(" ");
    let started = Instant::now();
    let mut group = launch.spawn().map_err(|source| ToolError::Spawn {
        program: launch.program.display().to_string(),
        source,
    })?;
    let child = group.child();
    let (mut stdout, mut stderr) = (
        child.stdout.take().expect("stdout is piped by Launch::spawn"),
        child.stderr.take().expect("stderr is piped by Launch::spawn"),
    );
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let finished = async {
        let (_, _, status) =
            tokio::try_join!(stdout.read_to_end(&mut out), stderr.read_to_end(&mut err), child.wait())?;
        Ok::<_, std::io::Error>(status)
    };
    match tokio::time::timeout(ceiling, finished).await {
        Ok(Ok(status)) => Ok(ToolRun {
            record,
            status: status.into(),
            took: started.elapsed(),
            stdout: crate::output::strip_ansi(&String::from_utf8_lossy(&out)),
            stderr: crate::output::strip_ansi(&String::from_utf8_lossy(&err)),
        }),
        Ok(Err(source)) => Err(ToolError::Wait { command, source }),
        Err(_) => Err(ToolError::TimedOut { command, ceiling }),
    }
}

/// A tool launch of `binary` in `cwd` with exactly `env` and `args`.
pub fn launch(binary: &Path, cwd: &Path, args: &[&str], env: impl IntoIterator<Item = (String, String)>) -> Launch {
    let mut launch = Launch::new(binary, cwd);
    launch.args = args.iter().map(|a| a.to_string()).collect();
    launch.env = env.into_iter().collect();
    launch
}

/// SHA-256 of `bytes` as lowercase hex (what migration tools record as checksums).
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_for_takes_only_the_module_at_that_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("go.sum");
        std::fs::write(
            &path,
            "example.com/a v1.0.0 h1:x=\nexample.com/m v1.2.0 h1:old=\nexample.com/m v1.3.0 h1:new=\n\
             example.com/m v1.3.0/go.mod h1:mod=\nexample.com/m/sub v1.3.0 h1:sub=\n",
        )
        .unwrap();
        assert_eq!(
            sums_for(&path, "example.com/m", "v1.3.0"),
            ["example.com/m v1.3.0 h1:new=", "example.com/m v1.3.0/go.mod h1:mod="]
        );
        assert!(sums_for(&path, "example.com/m", "v9.9.9").is_empty());
        assert!(sums_for(&dir.path().join("missing"), "example.com/m", "v1.3.0").is_empty());
    }
}
