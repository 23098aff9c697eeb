//! Loopback port allocation.
//!
//! Scenarios never write a port number. Where a candidate must be *told* a port (PORT, HTTP_PORT,
//! METRICS_PORT), the harness asks the kernel for a free one by binding `127.0.0.1:0` and releasing
//! it. Another process could take it in between, so callers that hand a port to a candidate treat
//! "address in use" at boot as a reason to retry with a fresh port, not as a verdict.
//!
//! A documented default port (8000, 2121, 8080) cannot be chosen fresh: a clause that checks a
//! default must have that very port. Every conform process on the machine (two worktrees, two
//! trials) takes [`claim_default`] first, a lock file per port, so they take turns instead of one
//! finding the port taken.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::time::Duration;

use nix::fcntl::{Flock, FlockArg};

use crate::poll::{self, Poll, PollError};

/// A port that was free on loopback a moment ago.
pub fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))?;
    Ok(listener.local_addr()?.port())
}

/// `n` distinct free ports (held together while choosing, so they differ).
pub fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// This process's turn on a documented default port: held until dropped (the lock is released
/// when its file closes, also when the process dies).
#[derive(Debug)]
pub struct DefaultPortClaim {
    /// The port claimed.
    pub port: u16,
    _lock: Flock<File>,
}

/// The lock file of `port`, shared by every conform process on this machine.
fn claim_path(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("conform-default-port-{port}.lock"))
}

/// Wait (polled, at most `ceiling`) until no other conform process holds `port`, and hold it.
pub async fn claim_default(port: u16, ceiling: Duration) -> Result<DefaultPortClaim, PollError> {
    let path = claim_path(port);
    poll::wait_for(
        format!("the turn on default port {port} ({})", path.display()),
        ceiling,
        crate::timeouts::POLL_INTERVAL,
        || {
            let path = path.clone();
            async move {
                let file = match File::options().create(true).truncate(false).write(true).open(&path) {
                    Ok(file) => file,
                    Err(e) => return Poll::Abort(format!("opening {}: {e}", path.display())),
                };
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => Poll::Ready(DefaultPortClaim { port, _lock: lock }),
                    Err((_, nix::errno::Errno::EWOULDBLOCK)) => Poll::NotYet("held by another conform process".into()),
                    Err((_, e)) => Poll::Abort(format!("locking {}: {e}", path.display())),
                }
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_default_port_is_held_by_one_claim_at_a_time() {
        // A port number no clause uses, so this test never waits on a real run.
        let port = 1;
        let first = claim_default(port, Duration::from_secs(5)).await.expect("first claim");
        let busy = claim_default(port, Duration::from_millis(100)).await;
        assert!(busy.is_err(), "a second claim while the first is held: {busy:?}");
        drop(first);
        claim_default(port, Duration::from_secs(5))
            .await
            .expect("claim after release");
    }
}
