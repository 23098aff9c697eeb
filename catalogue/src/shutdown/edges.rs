//! The shutdown clauses that are not a drain: spans at exit, a signal before the listener binds,
//! the final log lines, a failing startup hook, and the HTTP server's own deadlines.
//!
//! Each waits on a real event (a proxy connection, a log line, a socket closing, the exit) with a
//! named ceiling; none of them sleeps.

use std::time::{Duration, Instant};

use harness::poll::Poll;
use harness::probe::Outcome;
use harness::running::{ExitStatus, Signal};
use harness::service::otlp::Transport;
use harness::service::proxy::Fault;
use harness::timeouts;
use harness::timeouts::{EXIT_MARGIN, IDLE_EXIT, SIGNAL_DEFAULT_ACTION, SPAN_ARRIVAL};
use harness::verdict::Failure;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::drain::{self, FORCE_EARLY};
use engine::clause::Knob;
use engine::cx::{Cx, Db};
use engine::repeat;

/// GoFastr's documented ReadHeaderTimeout default (deploy.md › HTTP server timeouts).
const READ_HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The per-request deadline set for GF-SHUT-7's request-timeout check, and how long the
/// response may take after it (the middleware answers as soon as the context ends).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
const REQUEST_TIMEOUT_MARGIN: Duration = Duration::from_secs(2);

/// The batch delay of the control run (ms): short, so export is quick to confirm.
const CONTROL_BATCH_DELAY: &str = "200";

/// GF-SHUT-3, GR-SHUT-8: one traced request, SIGTERM at once, and how many of its spans reached
/// the collector by the time the process was gone. The SDK's default 5 s batch delay applies (the
/// profile's shorter one is removed), so only a flush at shutdown can deliver them. A control run
/// with a 200 ms batch delay first proves that spans reach the receiver at all; without that, "no
/// spans at exit" would mean nothing.
pub(super) async fn spans_at_shutdown(cx: &mut Cx) -> Result<(), Failure> {
    let path = drain::slow_path(cx, Duration::ZERO)?;
    let db = cx.database(Db::Sqlite).await?;
    for control in [true, false] {
        let receiver = cx.otlp().await?;
        // gRPC: the one OTLP transport both frameworks' exporters speak.
        let env = cx
            .profile()
            .trace_env(&receiver, Transport::Grpc)
            .ok_or_else(|| Failure::harness("the profile cannot point this framework at an OTLP gRPC receiver"))?;
        let mut app = cx
            .boot_with(Some(&db), |spec| {
                spec.unset("OTEL_BSP_SCHEDULE_DELAY");
                if control {
                    spec.set("OTEL_BSP_SCHEDULE_DELAY", CONTROL_BATCH_DELAY);
                }
                for (k, v) in &env {
                    spec.set(k, v.clone());
                }
                Ok(())
            })
            .await?;
        let ex = cx.get(&app, &path).await?;
        cx.expect_status(&format!("GET {path}"), &ex, 200)?;
        if control {
            let seen = receiver
                .wait_for_spans("the control run's spans (200 ms batch delay)", SPAN_ARRIVAL, |s| !s.is_empty())
                .await
                .map_err(|e| {
                    Failure::harness(format!(
                        "spans never reach the receiver even with a 200 ms batch delay, so a flush at shutdown cannot be observed: {e}"
                    ))
                })?;
            // The count of pool `sql.conn.reset_session` spans depends on connection reuse.
            cx.note_sample("control: spans exported while running", span_names(&seen));
            cx.stop(&mut app, Signal::SIGTERM, IDLE_EXIT).await?;
            continue;
        }
        let before = receiver.spans().len();
        let exit = cx.stop(&mut app, Signal::SIGTERM, IDLE_EXIT).await?;
        let spans = receiver.spans();
        cx.note("default batch delay: spans received before the signal", before);
        cx.note("default batch delay: spans received by the exit", span_names(&spans));
        cx.note("exit", format!("{} after {:?}", exit.status, exit.after));
    }
    Ok(())
}

fn span_names(spans: &[harness::service::otlp::ReceivedSpan]) -> String {
    if spans.is_empty() {
        return "none".into();
    }
    let names: Vec<String> = spans.iter().map(|s| format!("{:?} ({:?})", s.name, s.kind)).collect();
    format!("{}: {}", spans.len(), names.join(", "))
}

/// GF-SHUT-4: boot migration hangs on a blackholed database, so the listener never binds; a
/// SIGTERM then meets no handler.
pub(super) async fn signal_before_bind(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Postgres).await?;
    let proxy = db.proxy().ok_or_else(|| Failure::harness("asked for Postgres"))?;
    proxy.cut(Fault::Blackhole);
    cx.note("postgres", "blackholed (connections accepted, nothing forwarded)");
    let spec = cx.spec(Some(&db))?;
    let mut app = cx.start(spec)?;
    let waited = app
        .running
        .wait_until(
            "the candidate to connect to its (blackholed) database",
            timeouts::boot(),
            || {
                let blackholed = proxy.state().blackholed;
                async move {
                    if blackholed > 0 {
                        Poll::Ready(blackholed)
                    } else {
                        Poll::NotYet("no connection yet".into())
                    }
                }
            },
        )
        .await;
    if let Err(e) = waited {
        return Err(Failure::harness(format!("boot never reached the database: {e}")));
    }
    let listening = app.running.listening()?;
    cx.note("listening while boot waits", format!("{listening:?}"));
    let exit = cx.stop(&mut app, Signal::SIGTERM, IDLE_EXIT).await?;
    cx.note(
        "SIGTERM during boot",
        format!(
            "{} after {:?}{}",
            exit.status,
            exit.after,
            if exit.killed_after_grace {
                " (killed by the harness)"
            } else {
                ""
            }
        ),
    );
    let log = app
        .running
        .output()
        .find(|l| l.text.contains(cx.profile().shutdown_log));
    cx.note(
        "shutdown log",
        log.map(|l| l.plain()).unwrap_or_else(|| "(none)".into()),
    );
    Ok(())
}

/// GF-SHUT-6: `DisableSignalHandling` hands SIGTERM back to Go's default action (death by the
/// signal, no drain), unless the app installs its own handler. Recorded, not graded.
pub(super) async fn signal_handling_off(cx: &mut Cx) -> Result<(), Failure> {
    let knob = cx.knob(Knob::SignalHandlingOffEnv)?;
    let db = cx.database(Db::Sqlite).await?;
    let mut app = cx
        .boot_with(Some(&db), |spec| {
            spec.set(&knob, "1");
            Ok(())
        })
        .await?;
    let exit = cx.stop(&mut app, Signal::SIGTERM, SIGNAL_DEFAULT_ACTION).await?;
    cx.note(
        format!("{knob}=1, SIGTERM"),
        format!(
            "{} after {} ms{}",
            exit.status,
            exit.after.as_millis(),
            if exit.killed_after_grace {
                " (killed by the harness after the grace)"
            } else {
                ""
            }
        ),
    );
    let drain_line = app
        .running
        .output()
        .find(|l| l.text.contains("shutdown signal received"));
    cx.note(
        "drain log line",
        drain_line.map(|l| l.plain()).unwrap_or_else(|| "(none)".into()),
    );
    Ok(())
}

/// GF-SHUT-7: the slowloris connection closed at ReadHeaderTimeout, and a handler cut at
/// RequestTimeout.
pub(super) async fn server_deadlines(cx: &mut Cx) -> Result<(), Failure> {
    let var = cx.knob(Knob::RequestTimeoutEnv)?;
    let slow = drain::slow_path(cx, Duration::from_secs(5))?;
    let db = cx.database(Db::Sqlite).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set(&var, drain::go_duration(REQUEST_TIMEOUT));
            Ok(())
        })
        .await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;

    // Request timeout first: it is quick.
    cx.note(
        "request timeout",
        format!("{var}={}", drain::go_duration(REQUEST_TIMEOUT)),
    );
    let ex = cx.get(&app, &slow).await?;
    cx.note("request past RequestTimeout", ex.summary());
    let handler_answered = matches!(&ex.outcome, Outcome::Response { status: 200, .. });
    if handler_answered || ex.elapsed > REQUEST_TIMEOUT + REQUEST_TIMEOUT_MARGIN {
        return Err(Failure::violation(
            format!(
                "a 5 s handler is cut at RequestTimeout {REQUEST_TIMEOUT:?} (a non-200 answer within {:?})",
                REQUEST_TIMEOUT + REQUEST_TIMEOUT_MARGIN
            ),
            ex.summary(),
        ));
    }

    // Slowloris: headers started, never finished.
    let mut conn = tokio::net::TcpStream::connect(addr).await?;
    let opened = Instant::now();
    conn.write_all(format!("GET {} HTTP/1.1\r\nHost: {addr}\r\nX-Slow: ", cx.profile().liveness).as_bytes())
        .await?;
    let ceiling = READ_HEADER_TIMEOUT + EXIT_MARGIN;
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(ceiling, async {
        loop {
            match conn.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => continue,
            }
        }
    })
    .await;
    let after = opened.elapsed();
    cx.note(
        "slowloris",
        match closed {
            Ok(()) => format!("closed by the server {after:?} after it opened"),
            Err(_) => format!("still open after {ceiling:?}"),
        },
    );
    if closed.is_err() || after + FORCE_EARLY < READ_HEADER_TIMEOUT {
        return Err(Failure::violation(
            format!(
                "a connection with unfinished headers is closed at ReadHeaderTimeout {READ_HEADER_TIMEOUT:?} (default)"
            ),
            if closed.is_err() {
                format!("still open after {ceiling:?}")
            } else {
                format!("closed after {after:?}")
            },
        ));
    }
    Ok(())
}

/// GR-SHUT-5: both documented lines, in order, on every clean shutdown. The final line races the
/// exit, so this is a bounded repetition ([`repeat::RACE`]): the first shutdown without both
/// lines fails the clause.
pub(super) async fn gofr_final_log(cx: &mut Cx) -> Result<(), Failure> {
    let first = cx.profile().shutdown_log;
    let last = "Application shutdown complete";
    let path = drain::slow_path(cx, Duration::from_secs(1))?;
    let db = cx.database(Db::Postgres).await?;
    let rule = repeat::RACE;
    rule.begin(cx);
    for run in 1..=rule.runs {
        let mut app = cx.boot(Some(&db)).await?;
        cx.get(&app, &path).await?;
        let exit = cx.stop(&mut app, Signal::SIGTERM, IDLE_EXIT).await?;
        let lines = app.running.output().lines();
        let at = |needle: &str| lines.iter().position(|l| l.text.contains(needle));
        let (started, completed) = (at(first), at(last));
        let seen = format!(
            "{}; `{first}` at line {started:?}, `{last}` at line {completed:?}",
            exit.status
        );
        // Which run (if any) misses the final line is the candidate's race: a sample.
        cx.note_sample(format!("run {run}"), &seen);
        let outcome = match (started, completed) {
            (Some(a), Some(b)) if a < b => Ok(()),
            _ => Err(Failure::violation(
                format!("every clean shutdown logs `{first} …` then `{last}`"),
                seen,
            )),
        };
        rule.after(cx, run, outcome)?;
    }
    rule.passed(cx);
    Ok(())
}

/// GR-SHUT-9: the failing OnStart hook.
pub(super) async fn gofr_onstart_failure(cx: &mut Cx) -> Result<(), Failure> {
    let var = cx.knob(Knob::FailOnStartEnv)?;
    let db = cx.database(Db::Sqlite).await?;
    let mut spec = cx.spec(Some(&db))?;
    spec.set(&var, "1");
    let mut app = cx.start(spec)?;
    let exit = cx.wait_exit(&mut app, timeouts::REFUSE_TO_BOOT).await?;
    let Some(exit) = exit else {
        let listening = app.running.listening()?;
        return Err(Failure::violation(
            "the app refuses to start: the process ends",
            format!(
                "still running after {:?}, listening on {listening:?}",
                timeouts::REFUSE_TO_BOOT
            ),
        ));
    };
    let logged = app
        .running
        .output()
        .find(|l| l.text.contains("OnStart hook failed") || l.text.contains("Startup failed"));
    let served = app
        .running
        .output()
        .find(|l| l.text.contains("Starting server on port"));
    cx.note("exit", format!("{} after {:?}", exit.status, exit.after));
    cx.note(
        "error logged",
        logged.as_ref().map(|l| l.plain()).unwrap_or_else(|| "(none)".into()),
    );
    cx.note(
        "server start logged",
        served.as_ref().map(|l| l.plain()).unwrap_or_else(|| "(none)".into()),
    );
    if logged.is_none() {
        return Err(Failure::violation(
            "the hook's error is logged",
            "no OnStart error in the output",
        ));
    }
    if let Some(line) = served {
        return Err(Failure::violation("no server starts", line.plain()));
    }
    if exit.status == ExitStatus::Code(0) {
        return Err(Failure::violation(
            "refusing to start is a failure exit (non-zero), as any supervisor reads it",
            format!("{} after {:?}", exit.status, exit.after),
        ));
    }
    Ok(())
}
