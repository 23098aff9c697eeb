//! The remote log level (GR-LOG-5) and its edges (GR-LOG-6, observed): a harness-owned loopback
//! [`HttpStub`] plays the level endpoint a deployment would run, and the candidate is pointed at
//! it with `REMOTE_LOG_URL` and `REMOTE_LOG_FETCH_INTERVAL=1`.
//!
//! Whether the level in force is DEBUG is asked of the candidate itself, one request at a time:
//! a request to the log endpoint wrote its DEBUG line or not, decided once its WARN line (written
//! after the DEBUG one, on the same stream) has been read. Waiting for a level change is polling
//! that question, with a ceiling a few fetch intervals long.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use harness::output::Output;
use harness::poll::{self, Poll, PollError};
use harness::probe::{Exchange, Http};
use harness::service::stub::HttpStub;
use harness::timeouts::{CRASH_WATCH, LEVEL_FOLLOWS, LEVEL_PROBE_PACE, REMOTE_LEVEL_POLLS};
use harness::verdict::Failure;

use super::*;
use engine::cx::{App, Cx};

/// The path of the level endpoint on the stub.
const LEVEL_PATH: &str = "/level";

/// The candidate's `APP_NAME` in these scenarios, and the `serviceName` the endpoint answers.
const SERVICE: &str = "conform-logging";

/// `REMOTE_LOG_FETCH_INTERVAL`: the smallest whole number of seconds, to keep the area fast.
const INTERVAL_SECS: u64 = 1;

/// Accepted spacing of two consecutive polls at a 1 s interval: the ticker is exact, so this
/// only absorbs scheduling on a loaded machine and the 25 ms resolution of watching the stub.
const GAP_RANGE: (Duration, Duration) = (Duration::from_millis(500), Duration::from_millis(2500));

/// The documented answer of a level endpoint.
fn answer(service: &str, level: &str) -> String {
    serde_json::json!({"data": {"serviceName": service, "logLevel": level}}).to_string()
}

/// A stub whose level endpoint answers `status` with `body`.
async fn level_stub(status: u16, body: &str) -> Result<HttpStub, Failure> {
    let stub = HttpStub::start().await?;
    stub.set(LEVEL_PATH, status, body);
    Ok(stub)
}

/// Point a launch at `stub` with `interval`, under [`SERVICE`].
fn point_at(spec: &mut engine::cx::Spec, stub: &HttpStub, interval: &str) {
    spec.set("REMOTE_LOG_URL", format!("{}{LEVEL_PATH}", stub.url()));
    spec.set("REMOTE_LOG_FETCH_INTERVAL", interval);
    spec.set("APP_NAME", SERVICE);
}

/// Wait until `stub` has been polled `n` times in all, returning when each poll was first seen
/// (to the watch's resolution). Ends early if the app exits.
async fn wait_polls(app: &mut App, stub: &HttpStub, n: usize) -> Result<Vec<Instant>, PollError> {
    let seen = Mutex::new(Vec::<Instant>::new());
    app.running
        .wait_until(
            &format!("the level endpoint to be polled {n} times"),
            REMOTE_LEVEL_POLLS,
            || {
                let hits = stub.hits().len();
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                while seen.len() < hits {
                    seen.push(Instant::now());
                }
                let ready = (hits >= n).then(|| seen.clone());
                async move {
                    match ready {
                        Some(at) => Poll::Ready(at),
                        None => Poll::NotYet(format!("{hits} poll(s)")),
                    }
                }
            },
        )
        .await
}

/// Ask the candidate whether DEBUG is in force: one request to the log endpoint, judged once its
/// WARN line has been read. `Err` is the reason the question could not be answered.
async fn debug_in_force(http: &Http, app: &App, path: &str) -> Result<(bool, Exchange), String> {
    let addr = app.addr().ok_or("the app has no known port")?;
    let output: &Output = app.running.output();
    let debug_before = count(output, Stream::Stdout, DEBUG_MSG);
    let warn_before = count(output, Stream::Stdout, WARN_MSG);
    let ex = http.get(addr, path).await.map_err(|e| e.to_string())?;
    if ex.status() != Some(200) {
        return Err(format!("the log endpoint answered {}", ex.summary()));
    }
    wait_count(output, Stream::Stdout, WARN_MSG, warn_before + 1)
        .await
        .map_err(|e| format!("the log endpoint's WARN line never came: {e}"))?;
    Ok((count(output, Stream::Stdout, DEBUG_MSG) > debug_before, ex))
}

/// Poll the log endpoint every [`LEVEL_PROBE_PACE`] until DEBUG is (or is no longer) in force; returns
/// how long that took. Not within [`LEVEL_FOLLOWS`] is a violation of `promise`.
async fn level_becomes(cx: &mut Cx, app: &App, path: &str, debug: bool, promise: &str) -> Result<Duration, Failure> {
    let http = Http::new()?;
    let looks = Mutex::new(Vec::new());
    let start = Instant::now();
    let what = if debug {
        "DEBUG lines to appear"
    } else {
        "DEBUG lines to stop"
    };
    let result = poll::wait_for(what, LEVEL_FOLLOWS, LEVEL_PROBE_PACE, || {
        let (http, looks) = (&http, &looks);
        async move {
            match debug_in_force(http, app, path).await {
                Ok((now, ex)) => {
                    looks.lock().unwrap_or_else(|p| p.into_inner()).push(ex);
                    if now == debug {
                        Poll::Ready(())
                    } else {
                        Poll::NotYet(format!("DEBUG in force: {now}"))
                    }
                }
                Err(why) => Poll::Abort(why),
            }
        }
    })
    .await;
    let mut looks = looks.into_inner().unwrap_or_else(|p| p.into_inner());
    // How many looks it took is when, in its fetch cycle, the candidate picked the level up
    // (graded: within LEVEL_FOLLOWS, below); the count itself varies by nature: a sample.
    cx.note_sample(format!("waiting for {what}: requests made"), looks.len());
    if looks.len() > 3 {
        looks.drain(1..looks.len() - 2);
    }
    cx.record_exchanges(looks);
    match result {
        Ok(()) => Ok(start.elapsed()),
        Err(e @ PollError::TimedOut { .. }) => Err(Failure::violation(promise.to_string(), e.to_string())),
        Err(e @ PollError::Aborted { .. }) => Err(Failure::harness(e.to_string())),
    }
}

/// GR-LOG-5: the candidate polls the endpoint at the interval and follows its level both ways.
pub(super) async fn level_follows_endpoint(cx: &mut Cx) -> Result<(), Failure> {
    let path = log_endpoint(cx)?;
    let stub = level_stub(200, &answer(SERVICE, "INFO")).await?;
    let interval = INTERVAL_SECS.to_string();
    let mut app = cx
        .boot_with(None, |spec| {
            spec.unset("LOG_LEVEL");
            point_at(spec, &stub, &interval);
            Ok(())
        })
        .await?;
    cx.note(
        "endpoint",
        format!("{}{LEVEL_PATH} answers {}", stub.url(), answer(SERVICE, "INFO")),
    );

    let polls = wait_polls(&mut app, &stub, 3).await.map_err(|e| {
        Failure::violation(
            format!("REMOTE_LOG_URL is fetched every REMOTE_LOG_FETCH_INTERVAL={INTERVAL_SECS} s"),
            e.to_string(),
        )
    })?;
    let gaps: Vec<Duration> = polls.windows(2).map(|w| w[1] - w[0]).collect();
    cx.note("requests received", stub.hits().join(", "));
    cx.note("gaps between polls", format!("{gaps:?}"));
    if let Some(bad) = gaps.iter().find(|g| **g < GAP_RANGE.0 || **g > GAP_RANGE.1) {
        return Err(Failure::violation(
            format!(
                "polls {INTERVAL_SECS} s apart (accepted {:?}..{:?})",
                GAP_RANGE.0, GAP_RANGE.1
            ),
            format!("a gap of {bad:?} (all gaps: {gaps:?})"),
        ));
    }

    let http = Http::new()?;
    let (debug, ex) = debug_in_force(&http, &app, &path).await.map_err(Failure::harness)?;
    cx.record_exchanges([ex]);
    if debug {
        return Err(Failure::violation(
            "while the endpoint answers INFO, no DEBUG line is written",
            "the log endpoint wrote its DEBUG line",
        ));
    }

    stub.set(LEVEL_PATH, 200, &answer(SERVICE, "DEBUG"));
    cx.note("endpoint", "now answers logLevel DEBUG");
    let took = level_becomes(
        cx,
        &app,
        &path,
        true,
        "after the endpoint answers DEBUG, DEBUG lines are written within a few fetch intervals",
    )
    .await?;
    cx.note("DEBUG in force after", format!("{took:?}"));
    if let Some(line) = parsed(&app)
        .into_iter()
        .find(|l| l.message_text().is_some_and(|m| m.starts_with("LOG_LEVEL updated")))
    {
        cx.note("level change line", line.shown());
    }

    stub.set(LEVEL_PATH, 200, &answer(SERVICE, "INFO"));
    cx.note("endpoint", "answers logLevel INFO again");
    let took = level_becomes(
        cx,
        &app,
        &path,
        false,
        "after the endpoint answers INFO again, DEBUG lines stop within a few fetch intervals",
    )
    .await?;
    cx.note("INFO back in force after", format!("{took:?}"));
    Ok(())
}

/// What GR-LOG-6 does after starting a candidate with an odd interval.
#[derive(Clone, Copy)]
enum Watch {
    /// Boot it and record how it reports the value.
    Serve,
    /// Watch for an exit for [`CRASH_WATCH`].
    Exit,
}

/// GR-LOG-6, part one: interval values outside the documented positive whole seconds.
const INTERVALS: [(&str, Watch); 3] = [("abc", Watch::Serve), ("0", Watch::Exit), ("-1", Watch::Exit)];

/// GR-LOG-6, part two: answers outside the documented shape, each served with an otherwise
/// valid DEBUG answer, and whether the candidate adopts it.
fn odd_answers() -> [(&'static str, u16, String); 3] {
    [
        ("HTTP 503 with a DEBUG answer", 503, answer(SERVICE, "DEBUG")),
        ("logLevel \"debug\" (lowercase)", 200, answer(SERVICE, "debug")),
        (
            "serviceName of another service",
            200,
            answer("another-service", "DEBUG"),
        ),
    ]
}

/// GR-LOG-6 (observed).
pub(super) async fn edge_values(cx: &mut Cx) -> Result<(), Failure> {
    let path = log_endpoint(cx)?;
    for (value, watch) in INTERVALS {
        let stub = level_stub(200, &answer(SERVICE, "INFO")).await?;
        let label = format!("REMOTE_LOG_FETCH_INTERVAL={value}");
        match watch {
            Watch::Serve => {
                let app = cx
                    .boot_with(None, |spec| {
                        point_at(spec, &stub, value);
                        Ok(())
                    })
                    .await?;
                let about = parsed(&app)
                    .into_iter()
                    .filter(|l| {
                        l.message_text().is_some_and(|m| {
                            m.contains("REMOTE_LOG_FETCH_INTERVAL") || m.starts_with("Remote logger monitoring")
                        })
                    })
                    .map(|l| l.shown())
                    .collect::<Vec<_>>();
                // Lines from stdout and stderr, whose interleaving is the pipes' timing.
                cx.note_sample(format!("{label}: lines about it"), listed(&about, 4));
                cx.note(format!("{label}: serves"), "yes");
            }
            Watch::Exit => {
                let mut spec = cx.spec(None)?;
                point_at(&mut spec, &stub, value);
                let mut app = cx.start(spec)?;
                let exit = cx.wait_exit(&mut app, CRASH_WATCH).await?;
                let panic = app
                    .running
                    .output()
                    .find(|l| l.text.starts_with("panic:"))
                    .map(|l| l.plain());
                cx.note(
                    format!("{label}: exit within {CRASH_WATCH:?}"),
                    exit.map(|e| e.status.to_string())
                        .unwrap_or_else(|| "none (still running)".into()),
                );
                cx.note(format!("{label}: panic line"), panic.unwrap_or_else(|| "(none)".into()));
                cx.note(format!("{label}: polls received"), stub.hits().len());
                if exit.is_none() {
                    cx.kill(&mut app).await?;
                }
            }
        }
    }

    let mut running = Vec::new();
    for (label, status, body) in odd_answers() {
        let stub = level_stub(status, &body).await?;
        let app = cx
            .boot_with(None, |spec| {
                spec.unset("LOG_LEVEL");
                point_at(spec, &stub, &INTERVAL_SECS.to_string());
                Ok(())
            })
            .await?;
        running.push((label, body, stub, app));
    }
    let http = Http::new()?;
    for (label, body, stub, mut app) in running {
        // The second poll comes after the first answer was applied, so the level now reflects it.
        // A candidate that never polls twice is behaviour to record, not a harness fault.
        if let Err(e) = wait_polls(&mut app, &stub, 2).await {
            cx.note(format!("{label}: {body}"), format!("not polled twice: {e}"));
            continue;
        }
        let (debug, ex) = debug_in_force(&http, &app, &path).await.map_err(Failure::harness)?;
        cx.record_exchanges([ex]);
        cx.note(
            format!("{label}: {body}"),
            if debug {
                "adopted (DEBUG in force)"
            } else {
                "ignored (INFO kept)"
            },
        );
    }
    Ok(())
}
