//! Loopback port allocation.
//!
//! Scenarios never write a port number. Where a candidate must be *told* a port (PORT, HTTP_PORT,
//! METRICS_PORT), the harness asks the kernel for a free one by binding `127.0.0.1:0` and releasing
//! it. Another process could take it in between, so callers that hand a port to a candidate treat
//! "address in use" at boot as a reason to retry with a fresh port, not as a verdict.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

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
