//! HEALTH: liveness and readiness probes, including readiness while the database is away and
//! after it comes back.
//!
//! The database is taken away without touching any other scenario: the candidate reaches its
//! Postgres database through a harness-owned loopback proxy, and the scenario cuts that proxy
//! (every live connection reset, every new one refused), then restores it. Every probe is
//! recorded; "comes back" is a polled condition with a ceiling, never a sleep.

//!
//! `mod.rs` holds the three generic probe scenarios both frameworks share (liveness is
//! unconditional, readiness when healthy, readiness tracks the database); `gofastr.rs` and
//! `gofr.rs` hold each catalogue's clauses and what its probe bodies must say.

mod gofastr;
mod gofr;

use std::time::Duration;

use harness::poll::{self, Poll};
use harness::probe::{Exchange, Http};
use harness::service::proxy::Fault;
use harness::timeouts::{DB_STATE_CHANGE, HEALTH_PROBE_INTERVAL};
use harness::verdict::Failure;
use serde_json::Value;

use engine::clause::Clause;
use engine::cx::{App, Attached, Cx, Db};

/// The HEALTH clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    let mut all = gofastr::clauses();
    all.extend(gofr::clauses());
    all
}

/// What a framework's probe response must say beyond its status code.
type BodyCheck = fn(&str, &Exchange) -> Result<(), Failure>;

/// Liveness answers 200 (and `body`) on SQLite and on Postgres, and still 200 with Postgres cut:
/// it must not depend on the database.
async fn liveness_is_unconditional(cx: &mut Cx, body: BodyCheck) -> Result<(), Failure> {
    let liveness = cx.profile().liveness;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx.boot(Some(&attached)).await?;
        let what = format!("GET {liveness} on {}", db.name());
        let ex = cx.get(&app, liveness).await?;
        cx.expect_status(&what, &ex, 200)?;
        body(&what, &ex)?;
        if db == Db::Postgres {
            postgres_proxy(&attached).cut(Fault::Reset);
            cx.note("postgres", "cut");
            let ex = cx.get(&app, liveness).await?;
            cx.expect_status("liveness does not depend on the database: with Postgres cut", &ex, 200)?;
        }
    }
    Ok(())
}

/// Readiness answers 200 (and `body`) on SQLite and on Postgres.
async fn readiness_when_healthy(cx: &mut Cx, body: BodyCheck) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx.boot(Some(&attached)).await?;
        let what = format!("GET {readiness} on {}", db.name());
        let ex = cx.get(&app, readiness).await?;
        cx.expect_status(&what, &ex, 200)?;
        body(&what, &ex)?;
    }
    Ok(())
}

/// How one framework's readiness probe reports the database going and coming back.
struct Tracking {
    /// The response that shows the outage has been noticed.
    is_down: fn(&Exchange) -> bool,
    /// What that response must say.
    judge_down: BodyCheck,
    /// The response that shows recovery.
    is_up: fn(&Exchange) -> bool,
    /// What that response must say.
    judge_up: BodyCheck,
}

/// Boot on Postgres, cut the database away (every connection reset, new ones refused), poll
/// readiness until it notices, judge that response; restore, poll until it recovers, judge again.
async fn readiness_tracks_database(cx: &mut Cx, tracking: Tracking) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    let attached = cx.database(Db::Postgres).await?;
    let app = cx.boot(Some(&attached)).await?;
    let before = cx.get(&app, readiness).await?;
    cx.expect_status("readiness before the cut", &before, 200)?;

    postgres_proxy(&attached).cut(Fault::Reset);
    cx.note("postgres", "cut (connections reset, new ones refused)");
    let down = poll_probe(
        cx,
        &app,
        readiness,
        "readiness to notice the database is gone",
        tracking.is_down,
    )
    .await?;
    (tracking.judge_down)("readiness with the database down", &down)?;

    postgres_proxy(&attached).restore();
    cx.note("postgres", "restored");
    let back = poll_probe(cx, &app, readiness, "readiness to recover", tracking.is_up).await?;
    (tracking.judge_up)("readiness after the database returned", &back)?;
    cx.note("proxy", format!("{:?}", postgres_proxy(&attached).state()));
    Ok(())
}

/// Parse a JSON body, or fail naming the probe.
fn json(what: &str, exchange: &Exchange) -> Result<Value, Failure> {
    let body = exchange.body().unwrap_or_default();
    serde_json::from_str(body)
        .map_err(|e| Failure::violation(format!("{what} answers JSON"), format!("{e}: {}", exchange.summary())))
}

fn expect_header(what: &str, exchange: &Exchange, name: &str, expected: &str) -> Result<(), Failure> {
    match exchange.header(name) {
        Some(v) if v == expected => Ok(()),
        other => Err(Failure::violation(
            format!("{what}: header {name}: {expected}"),
            format!("{name}: {}", other.unwrap_or("(absent)")),
        )),
    }
}

/// Poll a probe every [`HEALTH_PROBE_INTERVAL`] until `done` accepts its response. The first look and
/// the last few are kept as evidence, enough to show the transition. Never seeing the awaited
/// state within [`DB_STATE_CHANGE`] is a violation: the probe does not track the database.
async fn poll_probe(
    cx: &mut Cx,
    app: &App,
    path: &str,
    what: &str,
    done: impl Fn(&Exchange) -> bool,
) -> Result<Exchange, Failure> {
    let addr = app.addr().expect("booted apps have a port");
    let http = Http::new()?;
    let looks = std::sync::Mutex::new(Vec::new());
    let result = poll::wait_for(what, DB_STATE_CHANGE, HEALTH_PROBE_INTERVAL, || {
        let (http, looks, done) = (http.clone(), &looks, &done);
        async move {
            match http.get(addr, path).await {
                Ok(ex) => {
                    let hit = done(&ex);
                    let summary = ex.summary();
                    looks.lock().unwrap_or_else(|p| p.into_inner()).push(ex.clone());
                    if hit { Poll::Ready(ex) } else { Poll::NotYet(summary) }
                }
                Err(e) => Poll::Abort(e.to_string()),
            }
        }
    })
    .await;
    let mut looks = looks.into_inner().unwrap_or_else(|p| p.into_inner());
    cx.note(format!("{what}: probes made"), looks.len());
    if looks.len() > 4 {
        looks.drain(1..looks.len() - 3);
    }
    cx.record_exchanges(looks);
    result.map_err(|err| match err {
        poll::PollError::TimedOut { .. } => Failure::violation(what.to_string(), err.to_string()),
        poll::PollError::Aborted { .. } => Failure::harness(err.to_string()),
    })
}

fn postgres_proxy(db: &Attached) -> &harness::service::proxy::FaultProxy {
    db.proxy().expect("asked for a Postgres database")
}
