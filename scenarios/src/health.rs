//! HEALTH: liveness and readiness probes, including readiness while the database is away and
//! after it comes back.
//!
//! The database is taken away without touching any other scenario: the candidate reaches its
//! Postgres database through a harness-owned loopback proxy, and the scenario cuts that proxy
//! (every live connection reset, every new one refused), then restores it. Every probe is
//! recorded; "comes back" is a polled condition with a ceiling, never a sleep.

use std::time::Duration;

use harness::poll::{self, Poll};
use harness::probe::{Exchange, Http};
use harness::service::proxy::Fault;
use harness::timeouts;
use harness::verdict::{Failure, Level};
use serde_json::Value;

use crate::check;
use crate::clause::{Clause, DocRef, Need};
use crate::cx::{App, Attached, Cx, Db};
use crate::profile::Framework;

/// How long a candidate may take to notice its database went away or came back. GoFastr pings
/// on every readiness request; GoFr's SQL ping times out after 1 s and it reconnects on a 10 s
/// cycle, so 30 s covers both with margin.
const DB_STATE_CHANGE: Duration = Duration::from_secs(30);

/// Pace of probes while waiting for a state change: a few per second is what orchestrators do.
const PROBE_INTERVAL: Duration = Duration::from_millis(200);

/// The HEALTH clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-HEALTH-1",
            framework: Framework::GoFastr,
            area: "HEALTH",
            level: Level::Must,
            promise: "GET /healthz answers 200 `ok`, unconditionally, with Cache-Control: no-store.",
            doc: DocRef {
                page: "health-checks.md",
                heading: "Liveness",
            },
            method: "Boot on SQLite and Postgres; GET /healthz; with Postgres cut, GET /healthz again.",
            needs: &[Need::Postgres],
            check: check!(gofastr_liveness),
        },
        Clause {
            id: "GF-HEALTH-2",
            framework: Framework::GoFastr,
            area: "HEALTH",
            level: Level::Must,
            promise: "GET /readyz answers 200 JSON {status: ready} with an ok `db` check when the database is up.",
            doc: DocRef {
                page: "health-checks.md",
                heading: "Readiness",
            },
            method: "Boot on SQLite and on Postgres; GET /readyz; parse the JSON.",
            needs: &[Need::Postgres],
            check: check!(gofastr_ready_when_healthy),
        },
        Clause {
            id: "GF-HEALTH-3",
            framework: Framework::GoFastr,
            area: "HEALTH",
            level: Level::Must,
            promise: "With the database down, /readyz answers 503 not_ready with a redacted error; it recovers when the database returns.",
            doc: DocRef {
                page: "health-checks.md",
                heading: "Readiness; Verbose error reporting",
            },
            method: "Boot on Postgres through the fault proxy; cut it; poll /readyz until it changes; check status, body and redaction; restore; poll until 200 ready.",
            needs: &[Need::Postgres],
            check: check!(gofastr_ready_tracks_database),
        },
        Clause {
            id: "GF-HEALTH-4",
            framework: Framework::GoFastr,
            area: "HEALTH",
            level: Level::Should,
            promise: "A check ignoring its ctx is a `timeout` row within the readiness deadline; a panicking check is an `error` row and the process survives.",
            doc: DocRef {
                page: "health-checks.md",
                heading: "Timeouts and ctx-ignoring checks",
            },
            method: "Boot with the app's harness readiness check set to hang (with a 1 s readiness timeout), then to panic; GET /readyz each time.",
            needs: &[],
            check: check!(gofastr_readiness_deadline_and_panic),
        },
        Clause {
            id: "GF-HEALTH-5",
            framework: Framework::GoFastr,
            area: "HEALTH",
            level: Level::Must,
            promise: "/healthz and /readyz sit ahead of the default middleware chain.",
            doc: DocRef {
                page: "health-checks.md",
                heading: "Health and readiness",
            },
            method: "GET /healthz and /readyz; look for the default chain's marks (X-Request-ID, Content-Security-Policy) on the response, and for the probe routes in /metrics.",
            needs: &[],
            check: check!(gofastr_probes_ahead_of_middleware),
        },
        Clause {
            id: "GR-HLTH-1",
            framework: Framework::GoFr,
            area: "HEALTH",
            level: Level::Must,
            promise: "GET /.well-known/alive answers 200 {\"data\":{\"status\":\"UP\"}}.",
            doc: DocRef {
                page: "advanced-guide/monitoring-service-health",
                heading: "1. Aliveness",
            },
            method: "Boot on SQLite and Postgres; GET /.well-known/alive; with Postgres cut, again.",
            needs: &[Need::Postgres],
            check: check!(gofr_alive),
        },
        Clause {
            id: "GR-HLTH-2",
            framework: Framework::GoFr,
            area: "HEALTH",
            level: Level::Must,
            promise: "GET /.well-known/health answers 200 with status UP and the SQL datasource UP when the database is up.",
            doc: DocRef {
                page: "advanced-guide/monitoring-service-health",
                heading: "2. Health-Check",
            },
            method: "Boot on SQLite and on Postgres; GET /.well-known/health; parse the JSON.",
            needs: &[Need::Postgres],
            check: check!(gofr_health_when_healthy),
        },
        Clause {
            id: "GR-HLTH-3",
            framework: Framework::GoFr,
            area: "HEALTH",
            level: Level::Must,
            promise: "/.well-known/health returns 200 only when the service and its dependencies are reachable; it recovers when they return.",
            doc: DocRef {
                page: "deployment/deploying-to-kubernetes",
                heading: "Probes",
            },
            method: "Boot on Postgres through the fault proxy; cut it; poll health until the SQL datasource is reported DOWN; check the HTTP status; restore; poll until UP.",
            needs: &[Need::Postgres],
            check: check!(gofr_health_tracks_database),
        },
        Clause {
            id: "GR-HLTH-4",
            framework: Framework::GoFr,
            area: "HEALTH",
            level: Level::Must,
            promise: "/.well-known/health reports each registered HTTP service UP or DOWN, from the service's /.well-known/alive.",
            doc: DocRef {
                page: "advanced-guide/monitoring-service-health",
                heading: "2. Health-Check",
            },
            method: "Register a harness-owned loopback service with the candidate; with its /.well-known/alive answering 200, then 503, then 200 again, poll /.well-known/health for the service's status.",
            needs: &[],
            check: check!(gofr_dependent_service),
        },
        Clause {
            id: "GR-HLTH-5",
            framework: Framework::GoFr,
            area: "HEALTH",
            level: Level::Must,
            promise: "With auth enabled, /.well-known/health and /.well-known/alive answer without credentials.",
            doc: DocRef {
                page: "advanced-guide/authentication",
                heading: "Exempted Paths",
            },
            method: "Boot with basic auth and with API-key auth; the protected endpoint must answer 401, the probes 200.",
            needs: &[],
            check: check!(gofr_probes_exempt_from_auth),
        },
        Clause {
            id: "GR-HLTH-6",
            framework: Framework::GoFr,
            area: "HEALTH",
            level: Level::Should,
            promise: "LOG_DISABLE_PROBES=true stops request logs for the probe paths.",
            doc: DocRef {
                page: "references/configs",
                heading: "LOG_DISABLE_PROBES",
            },
            method: "Boot with LOG_DISABLE_PROBES=true; GET both probes, then /hello; once /hello's request log appears, no probe request log may exist.",
            needs: &[],
            check: check!(gofr_probe_logs_disabled),
        },
    ]
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

/// Poll a probe every [`PROBE_INTERVAL`] until `done` accepts its response. The first look and
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
    let result = poll::wait_for(what, DB_STATE_CHANGE, PROBE_INTERVAL, || {
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

async fn gofastr_liveness(cx: &mut Cx) -> Result<(), Failure> {
    let liveness = cx.profile().liveness;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx.boot(Some(&attached)).await?;
        let ex = cx.get(&app, liveness).await?;
        cx.expect_status(&format!("GET {liveness} on {}", db.name()), &ex, 200)?;
        if ex.body().map(str::trim) != Some("ok") {
            return Err(Failure::violation("body `ok`", ex.summary()));
        }
        expect_header("liveness", &ex, "cache-control", "no-store")?;
        if db == Db::Postgres {
            postgres_proxy(&attached).cut(Fault::Reset);
            cx.note("postgres", "cut");
            let ex = cx.get(&app, liveness).await?;
            cx.expect_status("liveness is unconditional: with the database cut", &ex, 200)?;
        }
    }
    Ok(())
}

/// The readiness body's check rows, by name.
fn check_row<'a>(body: &'a Value, name: &str) -> Option<&'a Value> {
    body.get("checks")?
        .as_array()?
        .iter()
        .find(|c| c.get("name").and_then(Value::as_str) == Some(name))
}

async fn gofastr_ready_when_healthy(cx: &mut Cx) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx.boot(Some(&attached)).await?;
        let what = format!("GET {readiness} on {}", db.name());
        let ex = cx.get(&app, readiness).await?;
        cx.expect_status(&what, &ex, 200)?;
        expect_header(&what, &ex, "cache-control", "no-store")?;
        if !ex
            .header("content-type")
            .is_some_and(|ct| ct.starts_with("application/json"))
        {
            return Err(Failure::violation(
                format!("{what}: JSON content type"),
                format!("{:?}", ex.header("content-type")),
            ));
        }
        let body = json(&what, &ex)?;
        if body.get("status").and_then(Value::as_str) != Some("ready") {
            return Err(Failure::violation(format!("{what}: status ready"), body.to_string()));
        }
        match check_row(&body, "db") {
            Some(row) if row.get("status").and_then(Value::as_str) == Some("ok") && row.get("durationMs").is_some() => {
            }
            _ => {
                return Err(Failure::violation(
                    format!("{what}: a `db` check row with status ok and durationMs"),
                    body.to_string(),
                ));
            }
        }
    }
    Ok(())
}

async fn gofastr_ready_tracks_database(cx: &mut Cx) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    let attached = cx.database(Db::Postgres).await?;
    let app = cx.boot(Some(&attached)).await?;
    let before = cx.get(&app, readiness).await?;
    cx.expect_status("readiness before the cut", &before, 200)?;

    postgres_proxy(&attached).cut(Fault::Reset);
    cx.note("postgres", "cut (connections reset, new ones refused)");
    let down = poll_probe(cx, &app, readiness, "readiness to report the database down", |ex| {
        ex.status() != Some(200)
    })
    .await?;
    cx.expect_status("readiness with the database down", &down, 503)?;
    expect_header("readiness with the database down", &down, "cache-control", "no-store")?;
    let body = json("readiness with the database down", &down)?;
    if body.get("status").and_then(Value::as_str) != Some("not_ready") {
        return Err(Failure::violation("status not_ready", body.to_string()));
    }
    let row = check_row(&body, "db").ok_or_else(|| Failure::violation("a `db` check row", body.to_string()))?;
    let status = row.get("status").and_then(Value::as_str).unwrap_or("");
    if status != "error" && status != "timeout" {
        return Err(Failure::violation(
            "the db row has status error or timeout",
            row.to_string(),
        ));
    }
    if row.get("error").and_then(Value::as_str) != Some("check failed") {
        return Err(Failure::violation(
            "the db row's error is redacted to `check failed` by default",
            row.to_string(),
        ));
    }

    postgres_proxy(&attached).restore();
    cx.note("postgres", "restored");
    let back = poll_probe(cx, &app, readiness, "readiness to recover", |ex| {
        ex.status() == Some(200)
    })
    .await?;
    let body = json("readiness after the database returned", &back)?;
    if body.get("status").and_then(Value::as_str) != Some("ready") {
        return Err(Failure::violation(
            "status ready after the database returned",
            body.to_string(),
        ));
    }
    cx.note("proxy", format!("{:?}", postgres_proxy(&attached).state()));
    Ok(())
}

async fn gofastr_readiness_deadline_and_panic(cx: &mut Cx) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    let db = cx.database(Db::Sqlite).await?;
    for (mode, expected_status) in [("hang", "timeout"), ("panic", "error")] {
        let app = cx
            .boot_with(Some(&db), |spec| {
                spec.set("HARNESS_READINESS", mode);
                spec.set("HARNESS_READINESS_TIMEOUT", "1s");
                Ok(())
            })
            .await?;
        let ex = cx.get(&app, readiness).await?;
        let what = format!("readiness with a check that {mode}s");
        cx.expect_status(&what, &ex, 503)?;
        if ex.elapsed > Duration::from_secs(3) {
            return Err(Failure::violation(
                format!("{what}: answers within the 1 s deadline"),
                ex.summary(),
            ));
        }
        let body = json(&what, &ex)?;
        let row =
            check_row(&body, "harness").ok_or_else(|| Failure::violation("a `harness` check row", body.to_string()))?;
        if row.get("status").and_then(Value::as_str) != Some(expected_status) {
            return Err(Failure::violation(
                format!("{what}: the row has status {expected_status}"),
                row.to_string(),
            ));
        }
        let live = cx.get(&app, cx.profile().liveness).await?;
        cx.expect_status(&format!("{what}: the process survives"), &live, 200)?;
    }
    Ok(())
}

async fn gofastr_probes_ahead_of_middleware(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    let profile = cx.profile();
    let mut marks = Vec::new();
    for path in [profile.liveness, profile.readiness] {
        let ex = cx.get(&app, path).await?;
        for header in ["x-request-id", "content-security-policy", "x-frame-options"] {
            if ex.header(header).is_some() {
                marks.push(format!("{path} carries {header}"));
            }
        }
    }
    let metrics = cx.get(&app, profile.metrics_path).await?;
    if let Some(body) = metrics.body() {
        for path in [profile.liveness, profile.readiness] {
            let route = format!("route=\"GET {path}\"");
            if body.contains(&route) {
                marks.push(format!("/metrics counts {route}"));
            }
        }
    }
    if marks.is_empty() {
        Ok(())
    } else {
        Err(Failure::violation(
            "probe responses bypass the default middleware chain (no request ID, no security headers, not counted in metrics)",
            marks.join("; "),
        ))
    }
}

async fn gofr_alive(cx: &mut Cx) -> Result<(), Failure> {
    let liveness = cx.profile().liveness;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx.boot(Some(&attached)).await?;
        let what = format!("GET {liveness} on {}", db.name());
        let ex = cx.get(&app, liveness).await?;
        cx.expect_status(&what, &ex, 200)?;
        let body = json(&what, &ex)?;
        if body != serde_json::json!({"data": {"status": "UP"}}) {
            return Err(Failure::violation(
                format!("{what}: {{\"data\":{{\"status\":\"UP\"}}}}"),
                body.to_string(),
            ));
        }
        if db == Db::Postgres {
            postgres_proxy(&attached).cut(Fault::Reset);
            cx.note("postgres", "cut");
            let ex = cx.get(&app, liveness).await?;
            cx.expect_status("aliveness checks no datasource: with the database cut", &ex, 200)?;
        }
    }
    Ok(())
}

fn gofr_status<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

async fn gofr_health_when_healthy(cx: &mut Cx) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx.boot(Some(&attached)).await?;
        let what = format!("GET {readiness} on {}", db.name());
        let ex = cx.get(&app, readiness).await?;
        cx.expect_status(&what, &ex, 200)?;
        let body = json(&what, &ex)?;
        if gofr_status(&body, "/data/sql/status") != Some("UP") {
            return Err(Failure::violation(
                format!("{what}: data.sql.status UP"),
                body.to_string(),
            ));
        }
        if gofr_status(&body, "/data/status") != Some("UP") {
            return Err(Failure::violation(format!("{what}: data.status UP"), body.to_string()));
        }
    }
    Ok(())
}

async fn gofr_health_tracks_database(cx: &mut Cx) -> Result<(), Failure> {
    let readiness = cx.profile().readiness;
    let attached = cx.database(Db::Postgres).await?;
    let app = cx.boot(Some(&attached)).await?;
    let before = cx.get(&app, readiness).await?;
    cx.expect_status("health before the cut", &before, 200)?;

    postgres_proxy(&attached).cut(Fault::Reset);
    cx.note("postgres", "cut (connections reset, new ones refused)");
    let down = poll_probe(cx, &app, readiness, "health to report the SQL datasource down", |ex| {
        ex.status() != Some(200)
            || serde_json::from_str::<Value>(ex.body().unwrap_or(""))
                .ok()
                .and_then(|b| gofr_status(&b, "/data/sql/status").map(str::to_owned))
                == Some("DOWN".into())
    })
    .await?;
    if down.status() == Some(200) {
        return Err(Failure::violation(
            "with the database unreachable, /.well-known/health does not answer 200",
            down.summary(),
        ));
    }

    postgres_proxy(&attached).restore();
    cx.note("postgres", "restored");
    let back = poll_probe(cx, &app, readiness, "health to recover", |ex| {
        ex.status() == Some(200)
            && serde_json::from_str::<Value>(ex.body().unwrap_or(""))
                .ok()
                .and_then(|b| gofr_status(&b, "/data/status").map(str::to_owned))
                == Some("UP".into())
    })
    .await?;
    cx.note("recovered", back.summary());
    Ok(())
}

async fn gofr_dependent_service(cx: &mut Cx) -> Result<(), Failure> {
    let Some(dep_env) = cx.target().candidate.manifest.knobs.dependency_url_env.clone() else {
        return Err(Failure::harness(
            "the candidate manifest needs the knob dependency_url_env",
        ));
    };
    let stub = harness::service::stub::HttpStub::start().await?;
    let alive = cx.profile().liveness;
    stub.set(alive, 200, r#"{"data":{"status":"UP"}}"#);
    let db = cx.database(Db::Sqlite).await?;
    let url = stub.url();
    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set(&dep_env, url.clone());
            Ok(())
        })
        .await?;
    let readiness = cx.profile().readiness;
    let dep_status = |ex: &Exchange| -> Option<String> {
        let body: Value = serde_json::from_str(ex.body()?).ok()?;
        gofr_status(&body, "/data/dep/status").map(str::to_owned)
    };
    for (status, want) in [(200, "UP"), (503, "DOWN"), (200, "UP")] {
        stub.set(
            alive,
            status,
            if status == 200 {
                r#"{"data":{"status":"UP"}}"#
            } else {
                ""
            },
        );
        cx.note("dependency", format!("{alive} answers {status}"));
        let seen = poll_probe(
            cx,
            &app,
            readiness,
            &format!("health to report the dependency {want}"),
            |ex| dep_status(ex).as_deref() == Some(want),
        )
        .await?;
        let body = json("health", &seen)?;
        cx.note(
            format!("dependency {want}: top-level status"),
            gofr_status(&body, "/data/status").unwrap_or("(none)"),
        );
    }
    cx.note("requests the dependency received", stub.hits().len());
    Ok(())
}

async fn gofr_probes_exempt_from_auth(cx: &mut Cx) -> Result<(), Failure> {
    let knobs = cx.target().candidate.manifest.knobs.clone();
    let (Some(auth_env), Some(protected)) = (knobs.auth_mode_env, knobs.protected_endpoint) else {
        return Err(Failure::harness(
            "the candidate manifest needs knobs auth_mode_env and protected_endpoint",
        ));
    };
    let db = cx.database(Db::Sqlite).await?;
    let profile = cx.profile();
    for mode in ["basic", "apikey"] {
        let app = cx
            .boot_with(Some(&db), |spec| {
                spec.set(&auth_env, mode);
                Ok(())
            })
            .await?;
        let guarded = cx.get(&app, &protected).await?;
        cx.expect_status(
            &format!("{auth_env}={mode}: {protected} without credentials"),
            &guarded,
            401,
        )?;
        for path in [profile.liveness, profile.readiness] {
            let ex = cx.get(&app, path).await?;
            cx.expect_status(&format!("{auth_env}={mode}: {path} without credentials"), &ex, 200)?;
        }
    }
    Ok(())
}

async fn gofr_probe_logs_disabled(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let profile = cx.profile();
    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set("LOG_DISABLE_PROBES", "true");
            Ok(())
        })
        .await?;
    for path in [profile.liveness, profile.readiness] {
        let ex = cx.get(&app, path).await?;
        if ex.header("x-correlation-id").is_none() {
            cx.note("note", format!("{path} carries no X-Correlation-ID"));
        }
    }
    cx.get(&app, "/hello").await?;
    let hello = app
        .running
        .output()
        .wait_for_line("logging the /hello request", timeouts::boot(), |l| {
            l.text.contains("\"uri\":\"/hello\"")
        })
        .await
        .map_err(|e| {
            Failure::harness(format!(
                "no request log line for /hello, so probe logging cannot be judged: {e}"
            ))
        })?;
    cx.note("request log", hello.plain());
    let probe_lines: Vec<String> = app
        .running
        .output()
        .lines()
        .into_iter()
        .filter(|l| l.text.contains("\"uri\":\"/.well-known/"))
        .map(|l| l.plain())
        .collect();
    if probe_lines.is_empty() {
        Ok(())
    } else {
        Err(Failure::violation(
            "no request log lines for probe paths",
            probe_lines.join("\n"),
        ))
    }
}
