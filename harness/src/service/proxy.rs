//! The loopback fault proxy: take a dependency (a database) away from one scenario without
//! touching the others, and give it back.
//!
//! Every scenario shares the run's one Postgres server, so a scenario that needs "the database
//! went away" cannot stop the server. Instead the candidate is given the database's URL *through*
//! a [`FaultProxy`] of its own (see `Database::url_via`), and the scenario cuts that proxy:
//!
//! - [`Fault::Reset`] is a crashed or restarted server: every live connection is reset now
//!   (`SO_LINGER` 0, so the candidate sees `ECONNRESET`, not a polite EOF), and every new one is
//!   accepted and reset at once, so reconnecting fails fast.
//! - [`Fault::Blackhole`] is a partition: connections are still accepted but no byte moves in
//!   either direction, so the candidate's timeout paths run. Connections held this way resume
//!   when the proxy is restored, as they would when a partition heals.
//!
//! Bytes are pumped by hand rather than with `tokio::io::copy_bidirectional`, because a
//! blackhole must be able to stop a connection mid-stream and restore must resume it; the pump
//! holds whatever it has read until forwarding is allowed again.
//!
//! The proxy listens on `127.0.0.1:0` (traffic stays on loopback, and no port is ever written
//! down), keeps counters for evidence, and stops and closes every connection when dropped.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a [`FaultProxy`] breaks its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fault {
    /// Reset every live connection now and accept-then-reset every new one.
    Reset,
    /// Accept connections but forward nothing either way, so reads go unanswered.
    Blackhole,
}

/// Whether a [`FaultProxy`] forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "mode", content = "fault")]
pub enum ProxyMode {
    /// Bytes flow both ways.
    Forwarding,
    /// Cut with this fault.
    Cut(Fault),
}

/// What a [`FaultProxy`] is doing and has done, for evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProxyState {
    /// Forwarding or cut.
    pub mode: ProxyMode,
    /// Client connections accepted, in any mode.
    pub accepted: u64,
    /// Client connections joined to a new upstream connection.
    pub forwarded: u64,
    /// Client connections reset on arrival because the proxy was cut with [`Fault::Reset`].
    pub refused: u64,
    /// Live connections reset by a [`Fault::Reset`] cut.
    pub reset: u64,
    /// Client connections accepted while the proxy was cut with [`Fault::Blackhole`].
    pub blackholed: u64,
    /// Client connections reset because the upstream could not be reached.
    pub upstream_failed: u64,
    /// Client connections open right now.
    pub live: u64,
}

/// What the connection tasks watch. `resets` counts Reset cuts, so that a connection notices a
/// reset even if the proxy was restored before the task looked.
#[derive(Debug, Clone, Copy)]
struct Control {
    mode: ProxyMode,
    resets: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    forwarded: AtomicU64,
    refused: AtomicU64,
    reset: AtomicU64,
    blackholed: AtomicU64,
    upstream_failed: AtomicU64,
    live: AtomicU64,
}

/// A TCP proxy on loopback in front of one upstream address, which a scenario can cut and
/// restore. Dropping it stops it and closes every connection.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    upstream: SocketAddr,
    control: watch::Sender<Control>,
    counters: Arc<Counters>,
    accept_loop: JoinHandle<()>,
}

impl FaultProxy {
    /// Listen on `127.0.0.1:0` and forward every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?;
        let addr = listener.local_addr()?;
        let (control, _) = watch::channel(Control {
            mode: ProxyMode::Forwarding,
            resets: 0,
        });
        let counters = Arc::new(Counters::default());
        let accept_loop = tokio::spawn(accept_loop(listener, upstream, control.subscribe(), counters.clone()));
        Ok(FaultProxy {
            addr,
            upstream,
            control,
            counters,
            accept_loop,
        })
    }

    /// The address to give the candidate instead of the upstream's.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// Break connections with `fault`, effective immediately for every connection task.
    pub fn cut(&self, fault: Fault) {
        self.control.send_modify(|control| {
            control.mode = ProxyMode::Cut(fault);
            if fault == Fault::Reset {
                control.resets += 1;
            }
        });
    }

    /// Forward again: new connections reach the upstream, and connections held by a blackhole
    /// resume. Connections already reset stay reset.
    pub fn restore(&self) {
        self.control.send_modify(|control| control.mode = ProxyMode::Forwarding);
    }

    /// The current mode and the counters.
    pub fn state(&self) -> ProxyState {
        let c = &self.counters;
        ProxyState {
            mode: self.control.borrow().mode,
            accepted: c.accepted.load(Ordering::Relaxed),
            forwarded: c.forwarded.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            reset: c.reset.load(Ordering::Relaxed),
            blackholed: c.blackholed.load(Ordering::Relaxed),
            upstream_failed: c.upstream_failed.load(Ordering::Relaxed),
            live: c.live.load(Ordering::Relaxed),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Stop accepting; the listener closes with the task.
        self.accept_loop.abort();
        // Every connection task resets its client and finishes; dropping the sender right after
        // (with `self`) closes the channel, which the tasks treat the same way.
        self.cut(Fault::Reset);
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    control: watch::Receiver<Control>,
    counters: Arc<Counters>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            // Accept errors (for example running out of descriptors) are transient; the
            // connection they concern is lost, the proxy is not.
            continue;
        };
        counters.accepted.fetch_add(1, Ordering::Relaxed);
        let now = *control.borrow();
        match now.mode {
            ProxyMode::Cut(Fault::Reset) => {
                counters.refused.fetch_add(1, Ordering::Relaxed);
                abort(client);
            }
            mode => {
                if mode == ProxyMode::Cut(Fault::Blackhole) {
                    counters.blackholed.fetch_add(1, Ordering::Relaxed);
                }
                tokio::spawn(connection(
                    client,
                    upstream,
                    control.clone(),
                    now.resets,
                    counters.clone(),
                ));
            }
        }
    }
}

/// Close with `SO_LINGER` 0, which sends RST instead of FIN.
fn abort(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

/// Decrements `live` however the connection task ends (including by abort at runtime shutdown).
struct LiveGuard(Arc<Counters>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One client connection, from accept to close.
async fn connection(
    mut client: TcpStream,
    upstream: SocketAddr,
    mut control: watch::Receiver<Control>,
    resets_at_start: u64,
    counters: Arc<Counters>,
) {
    counters.live.fetch_add(1, Ordering::Relaxed);
    let _live = LiveGuard(counters.clone());
    let mut reset_watch = control.clone();
    let outcome = tokio::select! {
        // Biased: once a Reset cut has been made, no further byte is forwarded on this
        // connection, however the other branch's wakeups are ordered.
        biased;
        _ = reset_watch.wait_for(|c| c.resets != resets_at_start) => Outcome::Reset,
        outcome = forward(&mut client, upstream, &mut control, &counters) => outcome,
    };
    match outcome {
        Outcome::Reset => {
            counters.reset.fetch_add(1, Ordering::Relaxed);
            abort(client);
        }
        Outcome::UpstreamFailed => {
            counters.upstream_failed.fetch_add(1, Ordering::Relaxed);
            abort(client);
        }
        Outcome::Closed => {}
    }
}

enum Outcome {
    /// A Reset cut (or the proxy's drop) ended the connection.
    Reset,
    /// The upstream refused or could not be reached.
    UpstreamFailed,
    /// One side closed or failed; the other side has been closed too.
    Closed,
}

/// Wait until the proxy forwards; `false` if the proxy is gone.
async fn until_forwarding(control: &mut watch::Receiver<Control>) -> bool {
    control.wait_for(|c| c.mode == ProxyMode::Forwarding).await.is_ok()
}

async fn forward(
    client: &mut TcpStream,
    upstream: SocketAddr,
    control: &mut watch::Receiver<Control>,
    counters: &Counters,
) -> Outcome {
    // A connection accepted during a blackhole does not reach the upstream until restored.
    if !until_forwarding(control).await {
        return Outcome::Reset;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return Outcome::UpstreamFailed;
    };
    counters.forwarded.fetch_add(1, Ordering::Relaxed);
    let (client_read, client_write) = client.split();
    let (server_read, server_write) = server.split();
    let up = pump(client_read, server_write, control.clone());
    let down = pump(server_read, client_write, control.clone());
    match tokio::try_join!(up, down) {
        Ok(((), ())) => Outcome::Closed,
        Err(Gone::ProxyDropped) => Outcome::Reset,
        Err(Gone::Io) => Outcome::Closed,
    }
}

enum Gone {
    ProxyDropped,
    Io,
}

/// Copy `from` to `to` while the proxy forwards; hold what was read while it is blackholed.
/// On EOF, half-close `to` so the other direction can finish.
async fn pump(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    mut control: watch::Receiver<Control>,
) -> Result<(), Gone> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if !until_forwarding(&mut control).await {
            return Err(Gone::ProxyDropped);
        }
        let n = from.read(&mut buf).await.map_err(|_| Gone::Io)?;
        if n == 0 {
            let _ = to.shutdown().await;
            return Ok(());
        }
        if !until_forwarding(&mut control).await {
            return Err(Gone::ProxyDropped);
        }
        to.write_all(&buf[..n]).await.map_err(|_| Gone::Io)?;
    }
}
