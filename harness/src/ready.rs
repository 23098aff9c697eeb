//! Readiness as data: what to wait for, and for how long at most.
//!
//! A started process is ready when a condition holds: it listens on a TCP port, on one port in
//! particular, an HTTP path answers with a status, a port accepts connections. A [`Ready`] names
//! such conditions and the ceiling of the wait, the way testcontainers' `WaitFor` does for a
//! container, and [`Running::wait_ready`](crate::running::Running::wait_ready) is the one function
//! that evaluates it on a running process: polled every [`timeouts::POLL_INTERVAL`], ended at once
//! if the process exits (with its exit status as the reason), and on timeout saying what it last
//! saw. So a boot, a service's start and a second server coming up are all waited on the same way,
//! and what each waits for can be read, compared and recorded instead of hiding in a closure.
//!
//! Conditions that are not about the process's own readiness (a database state a scenario
//! provoked, a number of requests in flight) stay polled conditions of their own
//! ([`Running::wait_until`](crate::running::Running::wait_until) or [`crate::poll::wait_for`]).

use std::net::SocketAddr;
use std::time::Duration;

use crate::poll::Poll;
use crate::probe::{self, Connect, Exchange, Http};
use crate::sockets::{self, ListenSocket};
use crate::timeouts;

/// One condition a process can be waited on for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// The process listens on at least one TCP socket.
    Listening,
    /// The process listens on this TCP port.
    ListeningOn(u16),
    /// `GET path` at `addr` (loopback) answers `status`.
    Http {
        /// Where to send the request.
        addr: SocketAddr,
        /// The path requested.
        path: String,
        /// The status that means ready.
        status: u16,
        /// The bound of one request.
        request: Duration,
        /// True when the answer counts only if this process listens on `addr`'s port: when
        /// another process took the port the harness picked (a port race), a neighbour may answer
        /// there while this one fails to bind.
        from_this_process: bool,
    },
    /// A TCP connection to `addr` (loopback) is accepted.
    Accepts {
        /// Where to connect.
        addr: SocketAddr,
        /// The bound of one connect.
        connect: Duration,
    },
}

impl Condition {
    /// `GET path` at `addr` answers `status`, from this process (see
    /// [`Condition::Http::from_this_process`](Condition::Http)), each request bounded by
    /// [`timeouts::HTTP_REQUEST`].
    pub fn answers(addr: SocketAddr, path: impl Into<String>, status: u16) -> Condition {
        Condition::Http {
            addr,
            path: path.into(),
            status,
            request: timeouts::HTTP_REQUEST,
            from_this_process: true,
        }
    }

    /// The condition in words, as the object of "waiting for".
    pub fn describe(&self) -> String {
        match self {
            Condition::Listening => "the candidate to listen on a TCP port".into(),
            Condition::ListeningOn(port) => format!("the candidate to listen on port {port}"),
            Condition::Http { addr, path, status, .. } => format!("GET {path} on {addr} to answer {status}"),
            Condition::Accepts { addr, .. } => format!("{addr} to accept a TCP connection"),
        }
    }
}

/// One condition of a [`Ready`], with the label its observations are given when there are several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Prefixed to what this condition last saw (`health check: 503`); empty for none.
    pub label: String,
    /// The condition.
    pub condition: Condition,
}

/// What to wait for, with a ceiling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ready {
    /// The conditions, all of which must hold at one look. They are looked at in order, and the
    /// first that does not hold is what was last seen (every one before it held).
    pub parts: Vec<Part>,
    /// The most the wait may take.
    pub ceiling: Duration,
    /// The whole wait in words, when the conditions' own words would not say it well.
    pub what: Option<String>,
}

impl Ready {
    /// Wait for `condition`, at most `ceiling`.
    pub fn new(condition: Condition, ceiling: Duration) -> Ready {
        Ready {
            parts: vec![Part {
                label: String::new(),
                condition,
            }],
            ceiling,
            what: None,
        }
    }

    /// Wait for every one of `parts` (label, condition) to hold at one look, at most `ceiling`.
    pub fn all(parts: impl IntoIterator<Item = (String, Condition)>, ceiling: Duration) -> Ready {
        Ready {
            parts: parts
                .into_iter()
                .map(|(label, condition)| Part { label, condition })
                .collect(),
            ceiling,
            what: None,
        }
    }

    /// The same wait, described as `what` in its messages.
    pub fn described(mut self, what: impl Into<String>) -> Ready {
        self.what = Some(what.into());
        self
    }

    /// The wait in words: its description, or its conditions' joined with "and".
    pub fn describe(&self) -> String {
        match &self.what {
            Some(what) => what.clone(),
            None => self
                .parts
                .iter()
                .map(|p| p.condition.describe())
                .collect::<Vec<_>>()
                .join(" and "),
        }
    }

    /// One HTTP client per part (`None` for parts that send no request), in order.
    pub(crate) fn clients(&self) -> Result<Vec<Option<Http>>, probe::ProbeError> {
        self.parts
            .iter()
            .map(|p| match &p.condition {
                Condition::Http { request, .. } => Http::with_timeout(*request).map(Some),
                _ => Ok(None),
            })
            .collect()
    }
}

/// What a wait found once its conditions held.
#[derive(Debug, Clone, Default)]
pub struct Reached {
    /// The sockets the process listened on at that look (for the listening conditions).
    pub sockets: Vec<ListenSocket>,
    /// The exchanges that answered (for the HTTP conditions), in order.
    pub exchanges: Vec<Exchange>,
}

/// One look at every part of a wait on process `pid`, with the clients of [`Ready::clients`].
pub(crate) async fn look(pid: u32, parts: &[Part], clients: &[Option<Http>]) -> Poll<Reached> {
    let mut reached = Reached::default();
    for (part, client) in parts.iter().zip(clients) {
        let labelled = |text: String| {
            if part.label.is_empty() {
                text
            } else {
                format!("{}: {text}", part.label)
            }
        };
        match look_one(pid, &part.condition, client.as_ref(), &mut reached).await {
            Poll::Ready(()) => {}
            Poll::NotYet(seen) => return Poll::NotYet(labelled(seen)),
            Poll::Abort(reason) => return Poll::Abort(labelled(reason)),
        }
    }
    Poll::Ready(reached)
}

async fn look_one(pid: u32, condition: &Condition, client: Option<&Http>, reached: &mut Reached) -> Poll<()> {
    match condition {
        Condition::Listening => match sockets::listening(pid) {
            Ok(found) if !found.is_empty() => {
                reached.sockets = found;
                Poll::Ready(())
            }
            Ok(_) => Poll::NotYet("no listening socket yet".into()),
            Err(err) => Poll::NotYet(format!("could not read sockets: {err}")),
        },
        Condition::ListeningOn(port) => match sockets::listening(pid) {
            Ok(found) if found.iter().any(|s| s.port() == *port) => {
                reached.sockets = found;
                Poll::Ready(())
            }
            Ok(found) => Poll::NotYet(format!(
                "listening on [{}]",
                found.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            )),
            Err(err) => Poll::NotYet(format!("could not read sockets: {err}")),
        },
        Condition::Http {
            addr,
            path,
            status,
            from_this_process,
            ..
        } => {
            let Some(http) = client else {
                return Poll::Abort("no HTTP client for this condition".into());
            };
            match http.get(*addr, path).await {
                Ok(ex) if ex.status() == Some(*status) => {
                    if *from_this_process && listens_elsewhere(pid, addr.port()) {
                        Poll::NotYet(format!(
                            "port {} answered by a process other than pid {pid}",
                            addr.port()
                        ))
                    } else {
                        reached.exchanges.push(ex);
                        Poll::Ready(())
                    }
                }
                Ok(ex) => Poll::NotYet(ex.summary()),
                // Only a target that is not loopback or a request that cannot be built: it will
                // never succeed.
                Err(err) => Poll::Abort(err.to_string()),
            }
        }
        Condition::Accepts { addr, connect } => match probe::tcp_connect(*addr, *connect).await {
            Ok(Connect::Accepted) => Poll::Ready(()),
            Ok(other) => Poll::NotYet(format!("{other:?}")),
            Err(err) => Poll::Abort(err.to_string()),
        },
    }
}

/// True when the process `pid` demonstrably does not listen on `port` (its sockets are readable
/// and none is bound to it): whoever answered there is someone else. Unreadable sockets are not
/// taken as evidence either way.
pub fn listens_elsewhere(pid: u32, port: u16) -> bool {
    sockets::listening(pid).is_ok_and(|sockets| !sockets.iter().any(|s| s.addr.port() == port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describes_what_is_waited_for() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 8080));
        let live = Ready::new(Condition::answers(addr, "/healthz", 200), timeouts::boot());
        assert_eq!(live.describe(), "GET /healthz on 127.0.0.1:8080 to answer 200");
        assert_eq!(
            Ready::new(Condition::ListeningOn(2121), Duration::from_secs(1)).describe(),
            "the candidate to listen on port 2121"
        );
        let both = Ready::all(
            [
                ("a".to_string(), Condition::Listening),
                (
                    "b".to_string(),
                    Condition::Accepts {
                        addr,
                        connect: Duration::from_millis(1),
                    },
                ),
            ],
            Duration::from_secs(1),
        );
        assert_eq!(
            both.describe(),
            "the candidate to listen on a TCP port and 127.0.0.1:8080 to accept a TCP connection"
        );
        assert_eq!(both.clone().described("it").describe(), "it");
    }

    #[tokio::test]
    async fn a_part_not_holding_is_what_was_seen_with_its_label() {
        let port = crate::ports::free_port().unwrap();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let ready = Ready::all(
            [(
                "OTLP gRPC".to_string(),
                Condition::Accepts {
                    addr,
                    connect: Duration::from_secs(1),
                },
            )],
            Duration::from_secs(1),
        );
        let clients = ready.clients().unwrap();
        match look(std::process::id(), &ready.parts, &clients).await {
            Poll::NotYet(seen) => assert_eq!(seen, "OTLP gRPC: Refused"),
            other => panic!("{other:?}"),
        }
    }
}
