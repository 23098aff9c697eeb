//! Which TCP addresses a process is listening on, read from `/proc`.
//!
//! "Listens on all interfaces" is a clause, but the harness must never send traffic to a
//! non-loopback address. So instead of connecting, it reads the bound address of the process's
//! listening sockets: `/proc/<pid>/net/tcp` and `tcp6` list every socket of the network
//! namespace, and `/proc/<pid>/fd` says which socket inodes belong to the process.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

/// The TCP state code for LISTEN in `/proc/net/tcp`.
const TCP_LISTEN: &str = "0A";

/// A listening socket owned by a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ListenSocket {
    /// The bound address.
    pub addr: SocketAddr,
}

/// Where a listening socket accepts connections from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// Bound to the unspecified address (`0.0.0.0` or `::`): every interface.
    AllInterfaces,
    /// Bound to a loopback address only.
    LoopbackOnly,
    /// Bound to one specific non-loopback address.
    Specific,
}

impl ListenSocket {
    /// The port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Which interfaces this socket accepts on.
    pub fn reach(&self) -> Reach {
        let ip = match self.addr.ip() {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
            v4 => v4,
        };
        if ip.is_unspecified() {
            Reach::AllInterfaces
        } else if ip.is_loopback() {
            Reach::LoopbackOnly
        } else {
            Reach::Specific
        }
    }
}

impl std::fmt::Display for ListenSocket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.addr.fmt(f)
    }
}

/// The TCP sockets `pid` is listening on, sorted.
pub fn listening(pid: u32) -> std::io::Result<Vec<ListenSocket>> {
    let inodes = socket_inodes(pid)?;
    let mut found = BTreeSet::new();
    for table in ["tcp", "tcp6"] {
        let path = format!("/proc/{pid}/net/{table}");
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            // A kernel without IPv6 has no tcp6 table.
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        for entry in parse_table(&text) {
            if entry.state == TCP_LISTEN && inodes.contains(&entry.inode) {
                found.insert(ListenSocket { addr: entry.local });
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// The TCP state code for ESTABLISHED in `/proc/net/tcp`.
const TCP_ESTABLISHED: &str = "01";

/// How many ESTABLISHED connections `pid` holds on its local port `port`: connections it has
/// accepted there (a connection still waiting in the listen backlog has no descriptor in the
/// process yet, so it is not counted). Drain scenarios use it as "the requests are in flight".
pub fn established(pid: u32, port: u16) -> std::io::Result<usize> {
    let inodes = socket_inodes(pid)?;
    let mut count = 0;
    for table in ["tcp", "tcp6"] {
        let text = match std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) {
            Ok(text) => text,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        count += parse_table(&text)
            .iter()
            .filter(|e| e.state == TCP_ESTABLISHED && e.local.port() == port && inodes.contains(&e.inode))
            .count();
    }
    Ok(count)
}

/// Inodes of the sockets among `pid`'s open file descriptors.
fn socket_inodes(pid: u32) -> std::io::Result<BTreeSet<u64>> {
    let mut inodes = BTreeSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd"))? {
        let Ok(target) = std::fs::read_link(entry?.path()) else {
            continue;
        };
        let target = target.to_string_lossy();
        if let Some(inode) = target.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']'))
            && let Ok(inode) = inode.parse()
        {
            inodes.insert(inode);
        }
    }
    Ok(inodes)
}

#[derive(Debug, PartialEq)]
struct Entry {
    local: SocketAddr,
    state: String,
    inode: u64,
}

/// Parse `/proc/net/tcp` or `tcp6` text; malformed lines are skipped.
fn parse_table(text: &str) -> Vec<Entry> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            let local = parse_addr(fields.get(1)?)?;
            let state = fields.get(3)?.to_string();
            let inode = fields.get(9)?.parse().ok()?;
            Some(Entry { local, state, inode })
        })
        .collect()
}

/// Parse `0100007F:1F90` (IPv4) or a 32-hex-digit IPv6 address and port. The kernel prints
/// each 32-bit word of the address in host byte order (little-endian here).
fn parse_addr(field: &str) -> Option<SocketAddr> {
    let (addr, port) = field.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(u32::from_str_radix(addr, 16).ok()?.swap_bytes())),
        32 => {
            let mut bytes = [0u8; 16];
            for (i, chunk) in addr.as_bytes().chunks(8).enumerate() {
                let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word.to_le_bytes());
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ipv4_and_ipv6_listeners() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000 100 0 0 10 0\n   1: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 999 1\n";
        let entries = parse_table(v4);
        assert_eq!(entries[0].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(entries[0].inode, 12345);
        assert_eq!(entries[1].local, "0.0.0.0:80".parse().unwrap());
        let v6 = "header\n   0: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1\n   1: 00000000000000000000000001000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 778 1\n";
        let entries = parse_table(v6);
        assert_eq!(entries[0].local, "[::]:8080".parse().unwrap());
        assert_eq!(entries[1].local, "[::1]:22".parse().unwrap());
    }

    #[test]
    fn reach_classifies_addresses() {
        let reach = |s: &str| {
            ListenSocket {
                addr: s.parse().unwrap(),
            }
            .reach()
        };
        assert_eq!(reach("[::]:1"), Reach::AllInterfaces);
        assert_eq!(reach("0.0.0.0:1"), Reach::AllInterfaces);
        assert_eq!(reach("127.0.0.1:1"), Reach::LoopbackOnly);
        assert_eq!(reach("[::1]:1"), Reach::LoopbackOnly);
        assert_eq!(reach("[::ffff:127.0.0.1]:1"), Reach::LoopbackOnly);
        assert_eq!(reach("10.0.0.5:1"), Reach::Specific);
    }

    #[test]
    fn counts_accepted_connections() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _client = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        // The client socket is ours too, but its local port is ephemeral: only the accepted
        // end has `port` as its local port.
        assert_eq!(established(std::process::id(), port).unwrap(), 0);
        let (_accepted, _) = listener.accept().unwrap();
        assert_eq!(established(std::process::id(), port).unwrap(), 1);
    }

    #[test]
    fn finds_our_own_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mine = listening(std::process::id()).unwrap();
        assert!(
            mine.iter()
                .any(|s| s.port() == port && s.reach() == Reach::LoopbackOnly),
            "{mine:?}"
        );
    }
}
