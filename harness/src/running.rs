//! A started candidate: the RAII owner of its process group.
//!
//! [`Running`] is what a scenario holds while a candidate is up. It can wait for readiness (a
//! [`Ready`], or any polled condition, failing fast if the process exits), send a signal, shut down with a grace
//! period and report how the process ended ([`Exit`]), and it kills the whole process group when
//! dropped, so a scenario that panics or returns early never leaks a process. The group is a
//! [`Group`], registered with the [`reaper`](crate::reaper) as it is spawned, which covers the
//! runner itself being killed.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub use nix::sys::signal::Signal;
use nix::sys::signal::kill;
use nix::unistd::Pid;

use crate::output::Output;
use crate::poll::{self, Poll, PollError};
use crate::process::{Group, Launch, LaunchRecord};
use crate::ready::{self, Condition, Reached, Ready};
/// How a process ended: plain records, defined in [`crate::record`].
pub use crate::record::{Exit, ExitStatus};
use crate::sockets::{self, ListenSocket};
use crate::timeouts;
use crate::workdir::Workdir;

/// Why a process could not be started or controlled.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    /// The executable could not be spawned.
    #[error("could not start {program}: {source}")]
    Spawn {
        /// The executable.
        program: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A signal could not be delivered.
    #[error("could not send {signal} to pid {pid}: {source}")]
    Signal {
        /// Which signal.
        signal: Signal,
        /// To whom.
        pid: u32,
        /// The OS error.
        source: nix::Error,
    },
    /// Waiting for the process failed at the OS level.
    #[error("could not wait for pid {pid}: {source}")]
    Wait {
        /// Which process.
        pid: u32,
        /// The OS error.
        source: std::io::Error,
    },
    /// The process did not exit even after SIGKILL.
    #[error("pid {pid} did not exit within {ceiling:?} of SIGKILL")]
    Unkillable {
        /// Which process.
        pid: u32,
        /// How long was waited.
        ceiling: Duration,
    },
}

impl From<ProcessError> for crate::verdict::Failure {
    fn from(err: ProcessError) -> Self {
        crate::verdict::Failure::harness(err.to_string())
    }
}

/// A candidate process that has been started.
#[derive(Debug)]
pub struct Running {
    group: Group<tokio::process::Child>,
    pid: u32,
    started: Instant,
    output: Output,
    record: LaunchRecord,
    exit: Option<Exit>,
    // Dropped after the process is killed (fields drop in declaration order after Drop::drop).
    workdir: Workdir,
}

impl Running {
    /// Start `launch` in `workdir`, capturing its output into `workdir`'s log directory.
    pub fn spawn(launch: &Launch, workdir: Workdir) -> Result<Running, ProcessError> {
        let started = Instant::now();
        let mut group = launch.spawn().map_err(|source| ProcessError::Spawn {
            program: launch.program.display().to_string(),
            source,
        })?;
        // The child is the leader of its own group: its pgid is its pid.
        let pid = group.pid();
        let stdout = group.child().stdout.take().expect("stdout is piped by Launch::spawn");
        let stderr = group.child().stderr.take().expect("stderr is piped by Launch::spawn");
        let output = Output::capture(stdout, stderr, workdir.logs(), started);
        Ok(Running {
            group,
            pid,
            started,
            output,
            record: launch.record(),
            exit: None,
            workdir,
        })
    }

    /// The process id (also the process group id).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The captured output.
    pub fn output(&self) -> &Output {
        &self.output
    }

    /// What was launched, secrets redacted.
    pub fn record(&self) -> &LaunchRecord {
        &self.record
    }

    /// The working directory the candidate runs in.
    pub fn workdir(&self) -> &Workdir {
        &self.workdir
    }

    /// Time since spawn.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// The exit, if the process has ended (does not block).
    pub fn try_exit(&mut self) -> Result<Option<Exit>, ProcessError> {
        if self.exit.is_none() {
            let status = self
                .group
                .child()
                .try_wait()
                .map_err(|source| ProcessError::Wait { pid: self.pid, source })?;
            if let Some(status) = status {
                self.exit = Some(Exit {
                    status: status.into(),
                    after: self.started.elapsed(),
                    killed_after_grace: false,
                });
            }
        }
        Ok(self.exit)
    }

    /// Poll `probe` until it is ready, aborting at once if the process exits meanwhile.
    ///
    /// This is readiness as a condition: the ceiling bounds a hung boot, and a crash at boot is
    /// reported as soon as it happens, with the exit status in the error.
    pub async fn wait_until<T, F, Fut>(&mut self, what: &str, ceiling: Duration, mut probe: F) -> Result<T, PollError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Poll<T>>,
    {
        let pid = self.pid;
        // try_exit needs &mut self while the probe borrows nothing of ours: split the borrow.
        let child = self.group.child();
        let started = self.started;
        let exit = &mut self.exit;
        poll::wait_for(what, ceiling, timeouts::POLL_INTERVAL, || {
            let exited = match child.try_wait() {
                Ok(Some(status)) => {
                    let e = Exit {
                        status: status.into(),
                        after: started.elapsed(),
                        killed_after_grace: false,
                    };
                    *exit = Some(e);
                    Some(format!("pid {pid} exited ({}) after {:?}", e.status, e.after))
                }
                Ok(None) => None,
                Err(err) => Some(format!("pid {pid} could not be waited on: {err}")),
            };
            let probed = probe();
            async move {
                if let Some(reason) = exited {
                    return Poll::Abort(reason);
                }
                probed.await
            }
        })
        .await
    }

    /// Wait until `ready` holds, aborting at once if the process exits meanwhile: the one
    /// evaluation of a [`Ready`] (see [`crate::ready`]).
    pub async fn wait_ready(&mut self, ready: &Ready) -> Result<Reached, PollError> {
        let what = ready.describe();
        let clients = ready.clients().map_err(|err| PollError::Aborted {
            what: what.clone(),
            waited: Duration::ZERO,
            reason: err.to_string(),
        })?;
        let pid = self.pid;
        let (parts, clients) = (&ready.parts, &clients);
        self.wait_until(&what, ready.ceiling, || ready::look(pid, parts, clients))
            .await
    }

    /// Wait until the process listens on at least one TCP socket, returning them.
    pub async fn wait_listening(&mut self, ceiling: Duration) -> Result<Vec<ListenSocket>, PollError> {
        let reached = self.wait_ready(&Ready::new(Condition::Listening, ceiling)).await?;
        Ok(reached.sockets)
    }

    /// Wait until the process listens on `port` (a server it starts apart from its first one, such
    /// as GoFr's metrics server), returning that socket.
    pub async fn wait_listening_on(&mut self, port: u16, ceiling: Duration) -> Result<ListenSocket, PollError> {
        let reached = self
            .wait_ready(&Ready::new(Condition::ListeningOn(port), ceiling))
            .await?;
        Ok(reached
            .sockets
            .into_iter()
            .find(|s| s.port() == port)
            .expect("the condition holds only with a socket on the port"))
    }

    /// The TCP sockets the process is listening on now.
    pub fn listening(&self) -> std::io::Result<Vec<ListenSocket>> {
        sockets::listening(self.pid)
    }

    /// A loopback address that reaches the listening socket on `port`.
    pub fn loopback(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    /// Send `signal` to the process (not its group: orchestrators signal the main process).
    pub fn signal(&self, signal: Signal) -> Result<(), ProcessError> {
        kill(Pid::from_raw(self.pid as i32), signal).map_err(|source| ProcessError::Signal {
            signal,
            pid: self.pid,
            source,
        })
    }

    /// Wait up to `ceiling` for the process to exit on its own, timing from now.
    pub async fn wait_exit(&mut self, ceiling: Duration) -> Result<Option<Exit>, ProcessError> {
        if let Some(exit) = self.try_exit()? {
            self.drain_output().await;
            return Ok(Some(exit));
        }
        let since = Instant::now();
        match tokio::time::timeout(ceiling, self.group.child().wait()).await {
            Ok(Ok(status)) => {
                let exit = Exit {
                    status: status.into(),
                    after: since.elapsed(),
                    killed_after_grace: false,
                };
                self.exit = Some(exit);
                self.drain_output().await;
                Ok(Some(exit))
            }
            Ok(Err(source)) => Err(ProcessError::Wait { pid: self.pid, source }),
            Err(_) => Ok(None),
        }
    }

    /// Send `signal`, give the process `grace` to exit, then kill its group.
    ///
    /// The returned [`Exit`] times from the signal, and says whether the harness had to kill.
    pub async fn shutdown(&mut self, signal: Signal, grace: Duration) -> Result<Exit, ProcessError> {
        if let Some(exit) = self.try_exit()? {
            self.drain_output().await;
            return Ok(exit);
        }
        let sent = Instant::now();
        self.signal(signal)?;
        match tokio::time::timeout(grace, self.group.child().wait()).await {
            Ok(Ok(status)) => {
                let exit = Exit {
                    status: status.into(),
                    after: sent.elapsed(),
                    killed_after_grace: false,
                };
                self.exit = Some(exit);
                self.drain_output().await;
                Ok(exit)
            }
            Ok(Err(source)) => Err(ProcessError::Wait { pid: self.pid, source }),
            Err(_) => {
                self.group.kill_group();
                let status = tokio::time::timeout(timeouts::AFTER_KILL, self.group.child().wait())
                    .await
                    .map_err(|_| ProcessError::Unkillable {
                        pid: self.pid,
                        ceiling: timeouts::AFTER_KILL,
                    })?
                    .map_err(|source| ProcessError::Wait { pid: self.pid, source })?;
                let exit = Exit {
                    status: status.into(),
                    after: sent.elapsed(),
                    killed_after_grace: true,
                };
                self.exit = Some(exit);
                self.drain_output().await;
                Ok(exit)
            }
        }
    }

    /// Once the process has exited, wait (bounded by [`timeouts::OUTPUT_DRAIN`]) until its output
    /// has been read to the end, so that whoever judges it next sees every line. A pipe held open
    /// by a surviving grandchild is not waited on past the bound.
    pub async fn drain_output(&mut self) {
        if matches!(self.try_exit(), Ok(Some(_))) {
            let _ = self.output.wait_complete(timeouts::OUTPUT_DRAIN).await;
        }
    }

    /// Kill the process group now (SIGKILL) and wait for the leader.
    pub async fn kill(&mut self) -> Result<Exit, ProcessError> {
        self.shutdown(Signal::SIGKILL, timeouts::AFTER_KILL).await
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // Kill the whole group, whether or not the leader has exited: a candidate's children
        // (or a leader that double-forked) must not outlive the scenario. The group itself then
        // reaps the leader.
        self.group.kill_group();
    }
}
