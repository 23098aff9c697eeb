//! The server processes: initdb, the postmaster (started, watched, killed with its children and
//! shared memory), and bounded one-shot tool runs.

use std::fs::File;
use std::future::Future;
use std::io::{Read, Seek, SeekFrom};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use crate::poll::{self, Poll, PollError};
use crate::process::{self, Group};
use crate::timeouts;

use super::*;

/// The running `postmaster` (our child, leader of its own process group) and its reaper
/// registration. Dropping it kills the server, so no path (error, panic, a cancelled `start`)
/// can leave one running.
#[derive(Debug)]
pub(super) struct Postmaster {
    pub(super) group: Group<Child>,
    /// The data directory, whose `postmaster.pid` names the server's System V segment.
    data: PathBuf,
}

impl Postmaster {
    /// Fast shutdown: SIGINT (which ends its backends and waits for them), a bounded wait for it
    /// to exit, then [`kill`](Postmaster::kill) whatever happened. Reports a server that had to be
    /// killed (or had already died) as an error, after cleaning up all the same.
    pub(super) async fn stop(&mut self) -> Result<(), PostgresError> {
        let pid = self.group.pid();
        let mut outcome = Ok(());
        match self.group.child().try_wait() {
            Ok(Some(status)) => {
                outcome = Err(PostgresError::Stop {
                    pid,
                    reason: format!("it had already exited ({status}) before stop"),
                });
            }
            Ok(None) => {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
                let waited = wait_exit(
                    self.group.child(),
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
        self.kill();
        outcome
    }

    /// Kill the postmaster and everything it forked, reap it, and remove the shared memory it
    /// could not. Idempotent.
    pub(super) fn kill(&mut self) {
        kill_postmaster(self.group.child(), &self.data);
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
pub(super) fn kill_postmaster(child: &mut Child, data: &Path) {
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
        let _ = process::output(
            process::command("ipcrm").args(["-m", &shmid.to_string()]),
            timeouts::LOCAL_TOOL,
        );
        let _ = std::fs::remove_file(data.join("postmaster.pid"));
    }
}

/// The System V shared memory id recorded in `postmaster.pid` (line 7: key, then id), if the
/// file belongs to postmaster `pid`.
pub(super) fn sysv_segment(data: &Path, pid: u32) -> Option<i64> {
    let text = std::fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let mut lines = text.lines();
    if lines.next()?.trim().parse::<u32>().ok()? != pid {
        return None;
    }
    let shmem = lines.nth(5)?;
    shmem.split_whitespace().nth(1)?.parse().ok()
}

/// Pids of the processes whose parent is `parent`, read from `/proc`.
pub(super) fn children_of(parent: u32) -> Vec<u32> {
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

/// A finished short-lived process.
pub(super) struct Finished {
    pub(super) status: ExitStatus,
    pub(super) stdout: Option<std::process::ChildStdout>,
}

/// Run `command` in its own process group (registered with the reaper) and wait, bounded by
/// `ceiling`, for it to exit. On timeout the group is killed.
pub(super) async fn run_bounded(mut command: Command, what: &str, ceiling: Duration) -> Result<Finished, String> {
    let mut group = process::spawn(&mut command, Signal::SIGKILL).map_err(|err| format!("cannot run {what}: {err}"))?;
    let waited = wait_exit(group.child(), format!("{what} to finish"), ceiling)
        .await
        .map_err(|err| err.to_string())?;
    Ok(Finished {
        status: waited,
        stdout: group.child().stdout.take(),
    })
}

/// Wait (polled, bounded by `ceiling`) for `child` to exit.
pub(super) async fn wait_exit(child: &mut Child, what: String, ceiling: Duration) -> Result<ExitStatus, PollError> {
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

/// A command of a Postgres program with a chosen environment (recorded in the server log).
pub(super) fn server_command(program: &Path, root: &Path, run_as: Option<RunAs>) -> Command {
    let mut command = process::command(program);
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

pub(super) async fn initdb(
    binaries: &Binaries,
    root: &Path,
    data: &Path,
    run_as: Option<RunAs>,
) -> Result<(), PostgresError> {
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

pub(super) async fn launch(
    binaries: &Binaries,
    root: &Path,
    data: &Path,
    port: u16,
    run_as: Option<RunAs>,
) -> Result<Attempt, PostgresError> {
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
        .stderr(log_err);
    let spawned = Instant::now();
    // SIGINT first when the runner is interrupted: a fast shutdown that also frees shared memory.
    let group = process::spawn(&mut command, Signal::SIGINT)
        .map_err(io_error(format!("run {}", binaries.postgres.display())))?;
    let mut postmaster = Postmaster {
        group,
        data: data.to_path_buf(),
    };

    let waited = {
        let child = postmaster.group.child();
        wait_accepting(port, root, timeouts::POSTGRES_START, || {
            let exited = match child.try_wait() {
                Ok(Some(status)) => Some(format!("postgres exited ({status})")),
                Err(err) => Some(format!("cannot wait for postgres: {err}")),
                Ok(None) => None,
            };
            async move { exited }
        })
        .await
    };
    match waited {
        Ok(()) => Ok(Attempt::Ready {
            pid: postmaster.group.pid(),
            backend: Backend::Native(postmaster),
            startup_time: spawned.elapsed(),
        }),
        Err(source) => {
            drop(postmaster);
            let log_tail = log_tail(&log_path);
            if log_tail.contains("Address already in use") {
                return Ok(Attempt::PortTaken { log_tail });
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

/// Wait (polled, bounded by `ceiling`) until the server on `port` accepts a TCP connection and
/// answers `SELECT 1` to the superuser over the unix socket in `socket_dir`. `exited` says why the
/// server can no longer come up (it exited), ending the wait early; `None` while it runs.
pub(super) async fn wait_accepting<F, Fut>(
    port: u16,
    socket_dir: &Path,
    ceiling: Duration,
    mut exited: F,
) -> Result<(), PollError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    let deadline = tokio::time::Instant::now() + ceiling;
    let options = superuser_options(socket_dir, port);
    poll::wait_for(
        format!("Postgres to accept connections on 127.0.0.1:{port} and answer SELECT 1"),
        ceiling,
        timeouts::POLL_INTERVAL,
        || {
            let exited = exited();
            let options = options.clone();
            async move {
                if let Some(reason) = exited.await {
                    return Poll::Abort(reason);
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
}

/// The last few kilobytes of a log, for an error message.
pub(super) fn log_tail(path: &Path) -> String {
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
