//! The one drain scenario both frameworks' shutdown clauses run: requests in flight, a signal,
//! and what happened to the requests, to new connections and to the process.
//!
//! It is data-driven: a [`DrainCase`] says which signal, how many slow requests of which length,
//! which deadline (the framework's documented default, or a value set through the profile's or the
//! candidate's deadline variable) and what to expect. [`run`] only observes, [`judge`] only grades,
//! so an info clause runs the same scenario as a must clause and just keeps the notes.
//!
//! The signal is sent only once the requests are really in flight: the candidate's own process
//! holds that many accepted connections on its HTTP port (read from `/proc`, so a connection still
//! waiting in the listen backlog does not count). After the signal, new connects are probed until
//! refused, the in-flight responses are awaited to their last byte, and the exit is awaited with a
//! ceiling of the deadline plus [`EXIT_MARGIN`]. The drain time (signal to exit) is kept as a note.

use std::time::{Duration, Instant};

use harness::poll::{Poll, PollError};
use harness::probe::{self, Connect, Exchange, Http, Outcome};
use harness::running::{Exit, ExitStatus, Signal};
use harness::sockets;
use harness::timeouts::{CONNECT_PROBE, EXIT_MARGIN, IN_FLIGHT_UP};
use harness::verdict::Failure;

use engine::clause::Knob;
use engine::cx::{App, Cx, Db};

/// How much earlier than the deadline a forced exit may be observed. The framework starts its
/// timer when it receives the signal, which is after the harness sends it; this only absorbs the
/// harness's own polling granularity.
pub(super) const FORCE_EARLY: Duration = Duration::from_millis(250);

/// Which shutdown deadline a case runs with.
#[derive(Debug, Clone, Copy)]
pub(super) enum Deadline {
    /// Nothing set: the framework's documented default applies.
    Default,
    /// This value, set through the deadline variable as a Go duration.
    Set(Duration),
    /// This text, which is not a Go duration, set through the deadline variable; the documented
    /// default is the deadline assumed for the ceiling.
    Invalid(&'static str),
}

/// What a case expects; [`Expect::Observe`] grades nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Expect {
    /// The signal stops the process: it exits on its own, with code 0, within the deadline.
    Stop,
    /// A full drain: every in-flight request completes with its whole response, new connections
    /// are refused while they are still running, then the process exits 0 within the deadline.
    Drain,
    /// The deadline cuts the drain: the process exits on its own at the deadline, and the
    /// requests still open then get no complete response.
    Force,
    /// Record what happens, grade nothing.
    Observe,
}

/// One drain case.
#[derive(Debug, Clone, Copy)]
pub(super) struct DrainCase {
    /// Short label, used in notes.
    pub name: &'static str,
    /// The signal that starts the shutdown.
    pub signal: Signal,
    /// A further signal sent once new connections are refused (during the drain).
    pub second_signal: Option<Signal>,
    /// How many slow requests are in flight when the signal is sent.
    pub in_flight: usize,
    /// How long each slow request takes.
    pub request: Duration,
    /// Also hold the candidate's never-ending stream endpoint open.
    pub stream: bool,
    /// The shutdown deadline.
    pub deadline: Deadline,
    /// Disable the framework's separate metrics server (its port variable set to `0`).
    pub metrics_off: bool,
    /// What to expect.
    pub expect: Expect,
}

/// One in-flight request and how it ended.
#[derive(Debug)]
pub(super) struct InFlight {
    /// The exchange, as the client saw it.
    pub exchange: Exchange,
    /// When it ended, counted from the signal.
    pub ended_after: Duration,
}

/// What a drain case observed.
#[derive(Debug)]
pub(super) struct Drained {
    /// The deadline in force.
    pub deadline: Duration,
    /// The in-flight requests, slow ones first, then the stream.
    pub in_flight: Vec<InFlight>,
    /// When a new connection was first refused, counted from the signal (`None`: accepted until
    /// the ceiling).
    pub refused_after: Option<Duration>,
    /// How the process ended, if it did within the ceiling on its own.
    pub exit: Option<Exit>,
    /// Signal to exit (the drain time).
    pub exit_after: Option<Duration>,
    /// The framework's shutdown log line, if it wrote one.
    pub shutdown_log: Option<String>,
}

/// The variable carrying the shutdown deadline: the framework's own, or the candidate's knob.
pub(super) fn deadline_env(cx: &Cx) -> Result<String, Failure> {
    if let Some(var) = cx.profile().shutdown_timeout_env {
        return Ok(var.to_string());
    }
    cx.knob(Knob::ShutdownTimeoutEnv)
}

/// The slow endpoint's path for a request of `length`.
pub(super) fn slow_path(cx: &Cx, length: Duration) -> Result<String, Failure> {
    let template = cx.knob(Knob::SlowEndpoint)?;
    Ok(template.replace("{ms}", &length.as_millis().to_string()))
}

/// Go's spelling of a duration the harness sets (`2s`, `1500ms`).
pub(super) fn go_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// Boot a candidate for `case`, put its requests in flight, signal it and observe.
pub(super) async fn run(cx: &mut Cx, case: &DrainCase) -> Result<Drained, Failure> {
    let profile = cx.profile();
    let deadline = match case.deadline {
        Deadline::Default | Deadline::Invalid(_) => profile.default_shutdown_timeout,
        Deadline::Set(d) => d,
    };
    let deadline_var = match case.deadline {
        Deadline::Set(d) => Some((deadline_env(cx)?, go_duration(d))),
        Deadline::Invalid(text) => Some((deadline_env(cx)?, text.to_string())),
        Deadline::Default => None,
    };
    let metrics_var = match (case.metrics_off, profile.metrics_port_env) {
        (false, _) => None,
        (true, Some(var)) => Some(var),
        (true, None) => return Err(Failure::harness("this framework has no separate metrics server")),
    };
    let slow = slow_path(cx, case.request)?;
    // The stream is optional to every clause: a case holds it open only where the candidate
    // has one (see `forced_drain`), so it is read as an optional knob here.
    let stream = if case.stream {
        Some(
            cx.optional_knob(Knob::StreamEndpoint)
                .ok_or_else(|| Failure::harness("the candidate manifest needs the knob stream_endpoint"))?,
        )
    } else {
        None
    };

    let db = cx.database(Db::Sqlite).await?;
    let mut app = cx
        .boot_with(Some(&db), |spec| {
            if let Some((var, value)) = &deadline_var {
                spec.set(var, value.clone());
            }
            if let Some(var) = metrics_var {
                spec.set(var, "0");
            }
            Ok(())
        })
        .await?;
    if let Some((var, value)) = &deadline_var {
        cx.note(format!("{}: deadline", case.name), format!("{var}={value}"));
    } else {
        cx.note(
            format!("{}: deadline", case.name),
            format!("documented default {deadline:?}"),
        );
    }
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let port = addr.port();

    // The clients outlive any legitimate outcome: the request itself, the deadline and the margin.
    let http = Http::with_timeout(case.request + deadline + EXIT_MARGIN * 2)?;
    let mut paths: Vec<String> = std::iter::repeat_n(slow.clone(), case.in_flight).collect();
    paths.extend(stream);
    let tasks: Vec<_> = paths
        .iter()
        .map(|path| {
            let (http, path) = (http.clone(), path.clone());
            tokio::spawn(async move {
                let ex = http.get(addr, &path).await;
                (ex, Instant::now())
            })
        })
        .collect();

    let wanted = paths.len();
    let pid = app.running.pid();
    app.running
        .wait_until(
            &format!("{wanted} requests in flight (accepted connections on port {port})"),
            IN_FLIGHT_UP,
            || async move {
                match sockets::established(pid, port) {
                    Ok(n) if n >= wanted => Poll::Ready(n),
                    Ok(n) => Poll::NotYet(format!("{n} accepted connections")),
                    Err(e) => Poll::NotYet(format!("could not read sockets: {e}")),
                }
            },
        )
        .await
        .map_err(|e| Failure::harness(format!("could not put the requests in flight: {e}")))?;

    let signalled = Instant::now();
    app.running.signal(case.signal)?;
    cx.note(
        format!("{}: signal", case.name),
        format!("{} with {wanted} request(s) in flight", case.signal),
    );

    let (refused_after, exited_meanwhile) = wait_refused(&mut app, addr, deadline + EXIT_MARGIN, signalled).await;
    if let Some(second) = case.second_signal
        && app.running.try_exit()?.is_none()
    {
        app.running.signal(second)?;
        cx.note(
            format!("{}: second signal", case.name),
            format!("{second} after {:?}", signalled.elapsed()),
        );
    }

    // The exit, within the deadline plus the margin counted from the signal.
    let ceiling = (deadline + EXIT_MARGIN).saturating_sub(signalled.elapsed());
    let (exit, exit_after) = match exited_meanwhile {
        Some(after) => (cx.wait_exit(&mut app, Duration::ZERO).await?, Some(after)),
        None => {
            let exit = cx.wait_exit(&mut app, ceiling).await?;
            (exit, exit.map(|_| signalled.elapsed()))
        }
    };
    if exit.is_none() {
        let killed = cx.kill(&mut app).await?;
        cx.note(
            format!("{}: exit", case.name),
            format!(
                "still running {:?} after the signal; killed by the harness ({})",
                deadline + EXIT_MARGIN,
                killed.status
            ),
        );
    }

    let mut in_flight = Vec::new();
    for task in tasks {
        let (exchange, ended) = task
            .await
            .map_err(|e| Failure::harness(format!("an in-flight request task failed: {e}")))?;
        let exchange = exchange?;
        in_flight.push(InFlight {
            exchange,
            ended_after: ended.saturating_duration_since(signalled),
        });
    }
    cx.record_exchanges(in_flight.iter().map(|r| r.exchange.clone()));

    let shutdown_log = app
        .running
        .output()
        .find(|l| l.text.contains(profile.shutdown_log))
        .map(|l| l.plain());
    let drained = Drained {
        deadline,
        in_flight,
        refused_after,
        exit,
        exit_after,
        shutdown_log,
    };
    note(cx, case, &drained);
    Ok(drained)
}

/// Probe new connections until one is refused. Returns when that happened (from the signal) and,
/// if the process exited first, when it exited (then new connections are refused from then on).
async fn wait_refused(
    app: &mut App,
    addr: std::net::SocketAddr,
    ceiling: Duration,
    signalled: Instant,
) -> (Option<Duration>, Option<Duration>) {
    let seen = app
        .running
        .wait_until("a new connection to be refused", ceiling, || async move {
            match probe::tcp_connect(addr, CONNECT_PROBE).await {
                Ok(Connect::Refused) => Poll::Ready(signalled.elapsed()),
                Ok(other) => Poll::NotYet(format!("connect: {other:?}")),
                Err(e) => Poll::Abort(e.to_string()),
            }
        })
        .await;
    match seen {
        Ok(after) => (Some(after), None),
        Err(PollError::Aborted { .. }) if app.running.try_exit().ok().flatten().is_some() => {
            let at = signalled.elapsed();
            (Some(at), Some(at))
        }
        Err(_) => (None, None),
    }
}

fn note(cx: &mut Cx, case: &DrainCase, d: &Drained) {
    let name = case.name;
    for (i, r) in d.in_flight.iter().enumerate() {
        cx.note(
            format!("{name}: in-flight {}", i + 1),
            format!("{} (ended {:?} after the signal)", r.exchange.summary(), r.ended_after),
        );
    }
    cx.note(
        format!("{name}: new connections"),
        match d.refused_after {
            Some(t) => format!("refused {t:?} after the signal"),
            None => "still accepted at the ceiling".into(),
        },
    );
    match (d.exit, d.exit_after) {
        (Some(exit), Some(after)) => cx.note(
            format!("{name}: drain time"),
            format!("{after:?} (signal to exit), {}", exit.status),
        ),
        _ => cx.note(format!("{name}: drain time"), "did not exit on its own"),
    }
    cx.note(
        format!("{name}: shutdown log"),
        d.shutdown_log.as_deref().unwrap_or("(none)"),
    );
}

/// Grade `d` against `case`'s expectation.
pub(super) fn judge(case: &DrainCase, d: &Drained) -> Result<(), Failure> {
    let name = case.name;
    let limit = d.deadline + EXIT_MARGIN;
    let exited = |what: &str| -> Result<(Exit, Duration), Failure> {
        match (d.exit, d.exit_after) {
            (Some(exit), Some(after)) => Ok((exit, after)),
            _ => Err(Failure::violation(
                format!("{name}: {what}"),
                format!("still running {limit:?} after {} (killed by the harness)", case.signal),
            )),
        }
    };
    match case.expect {
        Expect::Observe => Ok(()),
        Expect::Stop => {
            let (exit, after) = exited(&format!("the process exits on its own within {limit:?}"))?;
            expect_code_zero(name, exit, after)
        }
        Expect::Drain => {
            for r in &d.in_flight {
                let complete = matches!(&r.exchange.outcome, Outcome::Response { status: 200, .. });
                if !complete {
                    return Err(Failure::violation(
                        format!(
                            "{name}: every request in flight at {} completes with its full 200 response",
                            case.signal
                        ),
                        r.exchange.summary(),
                    ));
                }
            }
            let last = d.in_flight.iter().map(|r| r.ended_after).max().unwrap_or_default();
            match d.refused_after {
                Some(t) if t <= last => {}
                other => {
                    return Err(Failure::violation(
                        format!("{name}: new connections are refused while the drain runs (before {last:?})"),
                        match other {
                            Some(t) => format!("first refused {t:?} after the signal"),
                            None => "still accepted".into(),
                        },
                    ));
                }
            }
            let (exit, after) = exited(&format!("the process exits on its own within {limit:?}"))?;
            if after > limit {
                return Err(Failure::violation(
                    format!("{name}: exit within the deadline {:?} (+{EXIT_MARGIN:?})", d.deadline),
                    format!("exited {after:?} after the signal"),
                ));
            }
            expect_code_zero(name, exit, after)
        }
        Expect::Force => {
            let (exit, after) = exited(&format!(
                "the drain is cut at the {:?} deadline and the process exits",
                d.deadline
            ))?;
            if after > limit || after + FORCE_EARLY < d.deadline {
                return Err(Failure::violation(
                    format!(
                        "{name}: the process exits at the {:?} deadline (between {:?} and {limit:?} after the signal)",
                        d.deadline,
                        d.deadline.saturating_sub(FORCE_EARLY)
                    ),
                    format!("exited {after:?} after the signal ({})", exit.status),
                ));
            }
            for r in &d.in_flight {
                if matches!(&r.exchange.outcome, Outcome::Response { .. }) {
                    return Err(Failure::violation(
                        format!("{name}: a request still open at the deadline is force-closed (no complete response)"),
                        r.exchange.summary(),
                    ));
                }
            }
            Ok(())
        }
    }
}

fn expect_code_zero(name: &str, exit: Exit, after: Duration) -> Result<(), Failure> {
    if exit.status == ExitStatus::Code(0) {
        Ok(())
    } else {
        Err(Failure::violation(
            format!("{name}: exit code 0 after a signal-triggered shutdown"),
            format!("{} after {after:?}", exit.status),
        ))
    }
}
