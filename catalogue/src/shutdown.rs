//! SHUT: graceful shutdown of both frameworks — the drain on SIGTERM and SIGINT, its deadline,
//! what a second signal or a disabled metrics server changes, and the edges around it (signals
//! before the listener binds, spans at exit, a failing startup hook, server deadlines).
//!
//! Every drain clause runs the one generic scenario in [`drain`]: a table of cases per clause
//! (signal, requests in flight, request length against the deadline, expectation), with the
//! framework's deadline variable and documented default taken from the profile and the candidate's
//! knobs. The clause functions below only choose cases and add what is specific to one promise
//! (a log line, an exit code), so SIGTERM and SIGINT, GoFastr and GoFr are the same code.

mod drain;
mod edges;

use std::time::Duration;

use harness::running::Signal;
use harness::verdict::{Failure, Level};

use drain::{Deadline, DrainCase, Expect};
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::Cx;

/// Length of a slow request that a drain must let finish: long enough to be clearly in flight
/// when the signal lands, short enough to keep the area fast.
const DRAIN_REQUEST: Duration = Duration::from_secs(2);

/// The deadline set for force-path cases: short, so a forced exit is quick to observe.
const SHORT_DEADLINE: Duration = Duration::from_secs(2);

/// A request longer than [`SHORT_DEADLINE`] plus the exit margin, so only a forced close ends it.
const FORCED_REQUEST: Duration = Duration::from_secs(8);

/// A drain of three requests of [`DRAIN_REQUEST`] under the documented default deadline.
const fn full_drain(name: &'static str, signal: Signal) -> DrainCase {
    DrainCase {
        name,
        signal,
        second_signal: None,
        in_flight: 3,
        request: DRAIN_REQUEST,
        stream: false,
        deadline: Deadline::Default,
        metrics_off: false,
        expect: Expect::Drain,
    }
}

/// GF-SHUT-1, GR-SHUT-3: either signal drains.
const DRAIN_BOTH_SIGNALS: [DrainCase; 2] = [
    full_drain("SIGTERM", Signal::SIGTERM),
    full_drain("SIGINT", Signal::SIGINT),
];

/// GR-SHUT-1: either signal stops the process with code 0.
const STOP_BOTH_SIGNALS: [DrainCase; 2] = [
    DrainCase {
        expect: Expect::Stop,
        in_flight: 1,
        ..full_drain("SIGTERM", Signal::SIGTERM)
    },
    DrainCase {
        expect: Expect::Stop,
        in_flight: 1,
        ..full_drain("SIGINT", Signal::SIGINT)
    },
];

/// GF-SHUT-2 (with the stream), GR-SHUT-4: the short deadline cuts requests still open.
const fn forced(stream: bool) -> DrainCase {
    DrainCase {
        in_flight: 2,
        request: FORCED_REQUEST,
        stream,
        deadline: Deadline::Set(SHORT_DEADLINE),
        expect: Expect::Force,
        ..full_drain("SIGTERM past the deadline", Signal::SIGTERM)
    }
}

/// GF-SHUT-5, GR-SHUT-7: a second signal during the drain.
const SECOND_SIGNALS: [DrainCase; 2] = [
    DrainCase {
        second_signal: Some(Signal::SIGTERM),
        in_flight: 1,
        expect: Expect::Observe,
        ..full_drain("SIGTERM then SIGTERM", Signal::SIGTERM)
    },
    DrainCase {
        second_signal: Some(Signal::SIGINT),
        in_flight: 1,
        expect: Expect::Observe,
        ..full_drain("SIGTERM then SIGINT", Signal::SIGTERM)
    },
];

/// GR-SHUT-6: the drain with the metrics server disabled.
const METRICS_OFF: DrainCase = DrainCase {
    metrics_off: true,
    ..full_drain("SIGTERM, METRICS_PORT=0", Signal::SIGTERM)
};

const GF_DEPLOY: DocRef = DocRef::at("deploy.md", "TLS & graceful shutdown");

const GR_SHUTDOWN: DocRef = DocRef::at("guides/graceful-shutdown", "How GoFr handles signals");

/// The SHUT clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-SHUT-1",
            level: Level::Must,
            promise: "SIGTERM or SIGINT drains in-flight requests: each completes, new connections are refused, the process exits 0.",
            doc: GF_DEPLOY,
            method: "For SIGTERM and SIGINT: 3 requests of 2 s in flight (accepted connections read from /proc), signal, probe new connects until refused, await full responses and the exit within the documented 15 s default (+2 s).",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(gofastr_drain),
        },
        Clause {
            id: "GF-SHUT-2",
            level: Level::Must,
            promise: "The drain is bounded by ShutdownTimeout: connections still open at the deadline are force-closed and the process exits.",
            doc: GF_DEPLOY,
            method: "ShutdownTimeout 2 s (candidate knob); two 8 s requests and the SSE stream in flight; SIGTERM; the process must exit between 1.75 s and 4 s after it, and no request may get a complete response.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint, Knob::ShutdownTimeoutEnv],
                ..Needs::NONE
            },
            check: check!(forced_drain),
        },
        Clause {
            id: "GF-SHUT-3",
            level: Level::Info,
            promise: "Stop ordering: HTTP drain, then OnStop hooks (the candidate's flushes its spans) before Start returns.",
            doc: DocRef::at("observability.md", "Exporting traces"),
            method: "OTLP over HTTP to the harness receiver with the default 5 s batch delay; one request, SIGTERM at once; count that request's spans received by the time the process exited.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(edges::spans_at_shutdown),
        },
        Clause {
            id: "GF-SHUT-4",
            level: Level::Info,
            promise: "A signal before the listener binds (boot blocked on the database) gets Go's default action: no drain, killed by the signal.",
            doc: GF_DEPLOY,
            method: "Boot against Postgres through a blackholed proxy, so boot migration hangs before the bind; once the candidate has connected, SIGTERM; record how it ended and its log.",
            needs: Needs::POSTGRES,
            check: check!(edges::signal_before_bind),
        },
        Clause {
            id: "GF-SHUT-5",
            level: Level::Info,
            promise: "A second SIGTERM or SIGINT during the drain is swallowed: the in-flight request still completes.",
            doc: GF_DEPLOY,
            method: "SIGTERM with a 2 s request in flight; once new connections are refused, a second SIGTERM (or SIGINT); record the request's outcome, the exit and the drain time.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(second_signal),
        },
        Clause {
            id: "GF-SHUT-6",
            level: Level::Info,
            promise: "With DisableSignalHandling, SIGTERM takes Go's default action unless the app handles it.",
            doc: GF_DEPLOY,
            method: "Boot with the app's signal-handling-off knob; SIGTERM; record how the process ended and whether it logged a drain.",
            needs: Needs {
                knobs: &[Knob::SignalHandlingOffEnv],
                ..Needs::NONE
            },
            check: check!(edges::signal_handling_off),
        },
        Clause {
            id: "GF-SHUT-7",
            level: Level::Must,
            promise: "Server deadlines: a connection sending partial headers is closed at ReadHeaderTimeout (10 s default); a handler past RequestTimeout is cut.",
            doc: DocRef::at("deploy.md", "HTTP server timeouts; security.md › The default stack"),
            method: "A slowloris connection (headers never finished) must be closed 9.75–12 s after it opened; with RequestTimeout 1 s (candidate knob), a 5 s /slow request must end with a response other than the handler's 200 within 3 s.",
            needs: Needs {
                knobs: &[Knob::RequestTimeoutEnv, Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(edges::server_deadlines),
        },
        Clause {
            id: "GR-SHUT-1",
            level: Level::Must,
            promise: "SIGTERM and SIGINT each trigger shutdown; the process exits with status 0.",
            doc: GR_SHUTDOWN,
            method: "For SIGTERM and SIGINT: one request in flight, signal, await the exit within the documented 30 s default (+2 s); exit code 0.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr_stop),
        },
        Clause {
            id: "GR-SHUT-2",
            level: Level::Must,
            promise: "SHUTDOWN_GRACE_PERIOD (a Go duration, default 30s) sets the shutdown deadline.",
            doc: DocRef::at("guides/graceful-shutdown", "FAQ; Verification"),
            method: "Unset: the shutdown log must say `timeout of 30s`. Set to 2s: the log must say `timeout of 2s` and an 8 s request is cut with the exit at 2 s. Set to `30` and `abc` (not durations): what happens is recorded.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr_grace_period),
        },
        Clause {
            id: "GR-SHUT-3",
            level: Level::Must,
            promise: "The drain finishes in-flight requests and refuses new connections, then the process exits.",
            doc: DocRef::at(
                "guides/graceful-shutdown",
                "answer; How GoFr handles signals (step 1); deploying-to-kubernetes › Graceful shutdown",
            ),
            method: "For SIGTERM and SIGINT: 3 requests of 2 s in flight, signal, probe new connects until refused, await full responses and an exit 0 within the 30 s default (+2 s).",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr_drain),
        },
        Clause {
            id: "GR-SHUT-4",
            level: Level::Must,
            promise: "When SHUTDOWN_GRACE_PERIOD expires, remaining connections are force-closed and the process exits.",
            doc: DocRef::at("guides/graceful-shutdown", "answer; FAQ"),
            method: "SHUTDOWN_GRACE_PERIOD=2s; two 8 s requests in flight; SIGTERM; exit between 1.75 s and 4 s after it, no complete response.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(forced_drain),
        },
        Clause {
            id: "GR-SHUT-5",
            level: Level::Must,
            promise: "A clean shutdown logs `Shutting down server with a timeout of …` followed by `Application shutdown complete`.",
            doc: DocRef::at("guides/graceful-shutdown", "Verification"),
            method: "Clean SIGTERM drains (one 1 s request each), each of which must log both lines, in that order, before the process exits. The last line races the exit, so one run would be a coin flip: a bounded repetition, failing at the first miss and passing after 66 clean runs (a miss rate of 10 % or more passes with probability below 0.1 %).",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(edges::gofr_final_log),
        },
        Clause {
            id: "GR-SHUT-6",
            level: Level::Must,
            promise: "With the metrics server disabled (METRICS_PORT=0, documented), SIGTERM still drains in-flight requests.",
            doc: DocRef::at(
                "guides/graceful-shutdown",
                "answer; quick-start/introduction (METRICS_PORT: set to 0 to disable)",
            ),
            method: "METRICS_PORT=0; 3 requests of 2 s in flight; SIGTERM; the full drain expectations of GR-SHUT-3.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr_drain_metrics_off),
        },
        Clause {
            id: "GR-SHUT-7",
            level: Level::Info,
            promise: "A second SIGTERM or SIGINT during the drain is swallowed: the in-flight request still completes.",
            doc: GR_SHUTDOWN,
            method: "SIGTERM with a 2 s request in flight; once new connections are refused, a second SIGTERM (or SIGINT); record the request's outcome, the exit and the drain time.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(second_signal),
        },
        Clause {
            id: "GR-SHUT-8",
            level: Level::Info,
            promise: "Spans still buffered at shutdown are not flushed (no TracerProvider shutdown).",
            doc: DocRef::at("guides/graceful-shutdown", "How GoFr handles signals"),
            method: "TRACE_EXPORTER=otlp to the harness's gRPC receiver with the default 5 s batch delay; one request, SIGTERM at once; count that request's spans received by the time the process exited.",
            needs: Needs {
                services: &[Service::Otlp],
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(edges::spans_at_shutdown),
        },
        Clause {
            id: "GR-SHUT-9",
            level: Level::Must,
            promise: "An OnStart hook error makes the app log it and refuse to start: no listener, and a failure exit.",
            doc: DocRef::at("advanced-guide/startup-hooks", "Usage"),
            method: "Boot with the candidate's failing OnStart hook (knob fail_on_start_env); the process must log the error, never listen and exit on its own with a non-zero code.",
            needs: Needs {
                knobs: &[Knob::FailOnStartEnv],
                ..Needs::NONE
            },
            check: check!(edges::gofr_onstart_failure),
        },
    ]
}

/// Run each case and grade it. The first failing case ends the clause, with the notes of every
/// case run so far as evidence.
async fn run_cases(cx: &mut Cx, cases: &[DrainCase]) -> Result<(), Failure> {
    for case in cases {
        let drained = drain::run(cx, case).await?;
        drain::judge(case, &drained)?;
    }
    Ok(())
}

async fn gofastr_drain(cx: &mut Cx) -> Result<(), Failure> {
    run_cases(cx, &DRAIN_BOTH_SIGNALS).await
}

async fn gofr_drain(cx: &mut Cx) -> Result<(), Failure> {
    run_cases(cx, &DRAIN_BOTH_SIGNALS).await
}

async fn gofr_stop(cx: &mut Cx) -> Result<(), Failure> {
    run_cases(cx, &STOP_BOTH_SIGNALS).await
}

async fn gofr_drain_metrics_off(cx: &mut Cx) -> Result<(), Failure> {
    run_cases(cx, &[METRICS_OFF]).await
}

async fn forced_drain(cx: &mut Cx) -> Result<(), Failure> {
    // The never-ending stream is held open too where the candidate has one (optional: without
    // it the drain is cut on the slow requests alone).
    let stream = cx.optional_knob(Knob::StreamEndpoint).is_some();
    run_cases(cx, &[forced(stream)]).await
}

async fn second_signal(cx: &mut Cx) -> Result<(), Failure> {
    run_cases(cx, &SECOND_SIGNALS).await
}

async fn gofr_grace_period(cx: &mut Cx) -> Result<(), Failure> {
    let default = cx.profile().default_shutdown_timeout;
    let cases = [
        (
            DrainCase {
                in_flight: 0,
                expect: Expect::Stop,
                ..full_drain("unset", Signal::SIGTERM)
            },
            Some(drain::go_duration(default)),
        ),
        (
            DrainCase {
                name: "2s",
                ..forced(false)
            },
            Some(drain::go_duration(SHORT_DEADLINE)),
        ),
        (
            DrainCase {
                in_flight: 0,
                deadline: Deadline::Invalid("30"),
                expect: Expect::Observe,
                ..full_drain("`30` (no unit)", Signal::SIGTERM)
            },
            None,
        ),
        (
            DrainCase {
                in_flight: 0,
                deadline: Deadline::Invalid("abc"),
                expect: Expect::Observe,
                ..full_drain("`abc`", Signal::SIGTERM)
            },
            None,
        ),
    ];
    let marker = cx.profile().shutdown_log;
    for (case, logged) in cases {
        let drained = drain::run(cx, &case).await?;
        if let Some(value) = logged {
            let want = format!("{marker} {value}");
            match &drained.shutdown_log {
                Some(line) if line.contains(&format!("{want}\"")) || line.contains(&format!("{want} ")) => {}
                other => {
                    return Err(Failure::violation(
                        format!("{}: the shutdown log says `{want}`", case.name),
                        other.clone().unwrap_or_else(|| "no shutdown log line".into()),
                    ));
                }
            }
        }
        drain::judge(&case, &drained)?;
    }
    Ok(())
}
