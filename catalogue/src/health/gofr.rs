//! GoFr's HEALTH clauses (gofr.md §1.4): `/.well-known/alive` and `/.well-known/health`, the
//! SQL datasource and registered HTTP services in it, auth exemption, and probe logging.

use harness::probe::Exchange;
use harness::timeouts;
use harness::verdict::{Failure, Level};
use serde_json::Value;

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::{Cx, Db};

/// GoFr's HEALTH clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GR-HLTH-1",
            level: Level::Must,
            promise: "GET /.well-known/alive answers 200 {\"data\":{\"status\":\"UP\"}}.",
            doc: DocRef::at("advanced-guide/monitoring-service-health", "1. Aliveness"),
            method: "Boot on SQLite and Postgres; GET /.well-known/alive; with Postgres cut, again.",
            needs: Needs::POSTGRES,
            check: check!(gofr_alive),
        },
        Clause {
            id: "GR-HLTH-2",
            level: Level::Must,
            promise: "GET /.well-known/health answers 200 with status UP and the SQL datasource UP when the database is up.",
            doc: DocRef::at("advanced-guide/monitoring-service-health", "2. Health-Check"),
            method: "Boot on SQLite and on Postgres; GET /.well-known/health; parse the JSON.",
            needs: Needs::POSTGRES,
            check: check!(gofr_health_when_healthy),
        },
        Clause {
            id: "GR-HLTH-3",
            level: Level::Must,
            promise: "/.well-known/health returns 200 only when the service and its dependencies are reachable; it recovers when they return.",
            doc: DocRef::at("guides/deploying-to-kubernetes", "Probes"),
            method: "Boot on Postgres through the fault proxy; cut it; poll health until the SQL datasource is reported DOWN; check the HTTP status; restore; poll until UP.",
            needs: Needs::POSTGRES,
            check: check!(gofr_health_tracks_database),
        },
        Clause {
            id: "GR-HLTH-4",
            level: Level::Must,
            promise: "/.well-known/health reports each registered HTTP service UP or DOWN, from the service's /.well-known/alive.",
            doc: DocRef::at("advanced-guide/monitoring-service-health", "2. Health-Check"),
            method: "Register a harness-owned loopback service with the candidate; with its /.well-known/alive answering 200, then 503, then 200 again, poll /.well-known/health for the service's status.",
            needs: Needs {
                knobs: &[Knob::DependencyUrlEnv],
                ..Needs::NONE
            },
            check: check!(gofr_dependent_service),
        },
        Clause {
            id: "GR-HLTH-5",
            level: Level::Must,
            promise: "With auth enabled, /.well-known/health and /.well-known/alive answer without credentials.",
            doc: DocRef::at("advanced-guide/authentication", "Exempted Paths"),
            method: "Boot with basic auth and with API-key auth; the protected endpoint must answer 401, the probes 200.",
            needs: Needs {
                knobs: &[Knob::AuthModeEnv, Knob::ProtectedEndpoint],
                ..Needs::NONE
            },
            check: check!(gofr_probes_exempt_from_auth),
        },
        Clause {
            id: "GR-HLTH-6",
            level: Level::Should,
            promise: "LOG_DISABLE_PROBES=true stops request logs for the probe paths.",
            doc: DocRef::at("references/configs", "LOG_DISABLE_PROBES"),
            method: "Boot with LOG_DISABLE_PROBES=true; GET both probes, then /hello; once /hello's request log appears, no probe request log may exist.",
            needs: Needs::NONE,
            check: check!(gofr_probe_logs_disabled),
        },
    ]
}

async fn gofr_alive(cx: &mut Cx) -> Result<(), Failure> {
    liveness_is_unconditional(cx, |what, ex| {
        let body = json(what, ex)?;
        if body == serde_json::json!({"data": {"status": "UP"}}) {
            Ok(())
        } else {
            Err(Failure::violation(
                format!("{what}: {{\"data\":{{\"status\":\"UP\"}}}}"),
                body.to_string(),
            ))
        }
    })
    .await
}

async fn gofr_health_when_healthy(cx: &mut Cx) -> Result<(), Failure> {
    readiness_when_healthy(cx, |what, ex| {
        let body = json(what, ex)?;
        for (pointer, field) in [("/data/sql/status", "data.sql.status"), ("/data/status", "data.status")] {
            if gofr_status(&body, pointer) != Some("UP") {
                return Err(Failure::violation(format!("{what}: {field} UP"), body.to_string()));
            }
        }
        Ok(())
    })
    .await
}

/// The status at `pointer` in a response's JSON body, if any.
fn body_status(ex: &Exchange, pointer: &str) -> Option<String> {
    let body: Value = serde_json::from_str(ex.body()?).ok()?;
    gofr_status(&body, pointer).map(str::to_owned)
}

async fn gofr_health_tracks_database(cx: &mut Cx) -> Result<(), Failure> {
    readiness_tracks_database(
        cx,
        Tracking {
            is_down: |ex| ex.status() != Some(200) || body_status(ex, "/data/sql/status").as_deref() == Some("DOWN"),
            judge_down: |_, ex| {
                if ex.status() == Some(200) {
                    return Err(Failure::violation(
                        "with the database unreachable, /.well-known/health does not answer 200",
                        ex.summary(),
                    ));
                }
                Ok(())
            },
            is_up: |ex| ex.status() == Some(200) && body_status(ex, "/data/status").as_deref() == Some("UP"),
            judge_up: |_, _| Ok(()),
        },
    )
    .await
}

fn gofr_status<'a>(body: &'a Value, pointer: &str) -> Option<&'a str> {
    body.pointer(pointer).and_then(Value::as_str)
}

async fn gofr_dependent_service(cx: &mut Cx) -> Result<(), Failure> {
    let dep_env = cx.knob(Knob::DependencyUrlEnv)?;
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
    let auth_env = cx.knob(Knob::AuthModeEnv)?;
    let protected = cx.knob(Knob::ProtectedEndpoint)?;
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
