//! GoFastr's HEALTH clauses (gofastr.md §G): `/healthz`, `/readyz` and its JSON rows, the
//! readiness deadline, and whether the probes sit ahead of the middleware chain.

use harness::verdict::{Failure, Level};
use serde_json::Value;

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Needs};
use engine::cx::{Cx, Db};

/// GoFastr's HEALTH clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-HEALTH-1",
            level: Level::Must,
            promise: "GET /healthz answers 200 `ok`, unconditionally, with Cache-Control: no-store.",
            doc: DocRef::at("health-checks.md", "Liveness"),
            method: "Boot on SQLite and Postgres; GET /healthz; with Postgres cut, GET /healthz again.",
            needs: Needs::POSTGRES,
            check: check!(gofastr_liveness),
        },
        Clause {
            id: "GF-HEALTH-2",
            level: Level::Must,
            promise: "GET /readyz answers 200 JSON {status: ready} with an ok `db` check when the database is up.",
            doc: DocRef::at("health-checks.md", "Readiness"),
            method: "Boot on SQLite and on Postgres; GET /readyz; parse the JSON.",
            needs: Needs::POSTGRES,
            check: check!(gofastr_ready_when_healthy),
        },
        Clause {
            id: "GF-HEALTH-3",
            level: Level::Must,
            promise: "With the database down, /readyz answers 503 not_ready with a redacted error; it recovers when the database returns.",
            doc: DocRef::at("health-checks.md", "Readiness; Verbose error reporting"),
            method: "Boot on Postgres through the fault proxy; cut it; poll /readyz until it changes; check status, body and redaction; restore; poll until 200 ready.",
            needs: Needs::POSTGRES,
            check: check!(gofastr_ready_tracks_database),
        },
        Clause {
            id: "GF-HEALTH-4",
            level: Level::Should,
            promise: "A check ignoring its ctx is a `timeout` row within the readiness deadline; a panicking check is an `error` row and the process survives.",
            doc: DocRef::at("health-checks.md", "Timeouts and ctx-ignoring checks"),
            method: "Boot with the app's harness readiness check set to hang (with a 1 s readiness timeout), then to panic; GET /readyz each time.",
            needs: Needs::NONE,
            check: check!(gofastr_readiness_deadline_and_panic),
        },
        Clause {
            id: "GF-HEALTH-5",
            level: Level::Must,
            promise: "/healthz and /readyz sit ahead of the default middleware chain.",
            doc: DocRef::at("health-checks.md", "Health and readiness"),
            method: "GET /healthz and /readyz; look for the default chain's marks (X-Request-ID, Content-Security-Policy) on the response, and for the probe routes in /metrics.",
            needs: Needs::NONE,
            check: check!(gofastr_probes_ahead_of_middleware),
        },
    ]
}

async fn gofastr_liveness(cx: &mut Cx) -> Result<(), Failure> {
    liveness_is_unconditional(cx, |what, ex| {
        if ex.body().map(str::trim) != Some("ok") {
            return Err(Failure::violation(format!("{what}: body `ok`"), ex.summary()));
        }
        expect_header(what, ex, "cache-control", "no-store")
    })
    .await
}

async fn gofastr_ready_tracks_database(cx: &mut Cx) -> Result<(), Failure> {
    readiness_tracks_database(
        cx,
        Tracking {
            is_down: |ex| ex.status() != Some(200),
            judge_down: |what, ex| {
                if ex.status() != Some(503) {
                    return Err(Failure::violation(format!("{what}: HTTP 503"), ex.summary()));
                }
                expect_header(what, ex, "cache-control", "no-store")?;
                let body = json(what, ex)?;
                if body.get("status").and_then(Value::as_str) != Some("not_ready") {
                    return Err(Failure::violation(
                        format!("{what}: status not_ready"),
                        body.to_string(),
                    ));
                }
                let row =
                    check_row(&body, "db").ok_or_else(|| Failure::violation("a `db` check row", body.to_string()))?;
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
                Ok(())
            },
            is_up: |ex| ex.status() == Some(200),
            judge_up: |what, ex| {
                let body = json(what, ex)?;
                if body.get("status").and_then(Value::as_str) == Some("ready") {
                    Ok(())
                } else {
                    Err(Failure::violation(format!("{what}: status ready"), body.to_string()))
                }
            },
        },
    )
    .await
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
