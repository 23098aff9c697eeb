//! SQL: GoFr's SQL datasource configured from the environment (gofr.md §1.8, GR-SQL).
//!
//! GoFr opens its SQL datasource inside `gofr.New()` from `DB_DIALECT` and `DB_*`; what a
//! deployment can see of it is the connect line it logs, the `sql` entry of
//! `/.well-known/health` (status and pool statistics) and, for SQLite, the file it creates. The
//! clauses drive only the environment and judge those three. The database is taken away through
//! the harness's fault proxy, never by stopping the shared Postgres server.

use harness::poll::{self, Poll};
use harness::probe::Http;
use harness::service::proxy::Fault;
use harness::timeouts::{DB_STATE_CHANGE, RECONNECT_PROBE_INTERVAL};
use harness::verdict::{Failure, Level};
use serde_json::Value;

use engine::check;
use engine::clause::{Clause, DocRef, Needs};
use engine::cx::{App, Cx, Db};
use engine::profile::DbTarget;

/// The pool limits set for GR-SQL-4 (distinct from both defaults: unlimited and 2).
const MAX_OPEN: i64 = 3;
const MAX_IDLE: &str = "1";

/// The SQL clauses (GoFr only: GoFastr's database is opened by the app, not the framework).
pub fn clauses() -> Vec<Clause> {
    const SQL: &str = "advanced-guide/dealing-with-sql";
    vec![
        Clause {
            id: "GR-SQL-1",
            level: Level::Must,
            promise: "DB_DIALECT=postgres with DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME connects to Postgres (DB_SSL_MODE defaulting to disable) and health reports sql UP.",
            doc: DocRef::at(SQL, "Usage for PostgreSQL and MySQL"),
            method: "Boot with the Postgres variables and DB_SSL_MODE unset; expect the INFO `connected to '<user>' user to '<db>' database at '<host>:<port>'` and data.sql.status UP.",
            needs: Needs::POSTGRES,
            check: check!(postgres_from_env),
        },
        Clause {
            id: "GR-SQL-2",
            level: Level::Must,
            promise: "DB_DIALECT=sqlite with DB_NAME=<file> uses that file, creating it (relative to the working directory) when missing.",
            doc: DocRef::at(SQL, "Usage for SQLite"),
            method: "Boot with DB_DIALECT=sqlite DB_NAME=conform.db in an empty working directory; expect ./conform.db, the INFO `connected to 'conform.db' database` and data.sql.status UP.",
            needs: Needs::POSTGRES,
            check: check!(sqlite_from_env),
        },
        Clause {
            id: "GR-SQL-3",
            level: Level::Info,
            promise: "With the database down at boot (and no migrations), the app still starts degraded and reconnects when the database returns.",
            doc: DocRef::at("pkg/gofr/datasource/sql/sql.go", "retryConnection"),
            method: "Cut the Postgres proxy, boot with CONF_SKIP_MIGRATIONS=1; record liveness, health and the connect error; restore; poll health until sql is UP (30 s ceiling) and record how long it took.",
            needs: Needs::POSTGRES,
            check: check!(starts_degraded_and_reconnects),
        },
        Clause {
            id: "GR-SQL-4",
            level: Level::Must,
            promise: "DB_MAX_OPEN_CONNECTION and DB_MAX_IDLE_CONNECTION set the connection pool.",
            doc: DocRef::at(SQL, "Setting Max open and Idle Connections"),
            method: "Boot on SQLite and on Postgres with DB_MAX_OPEN_CONNECTION=3 DB_MAX_IDLE_CONNECTION=1; health's data.sql.details.stats.maxOpenConnections must be 3.",
            needs: Needs::POSTGRES,
            check: check!(pool_settings),
        },
        Clause {
            id: "GR-SQL-5",
            level: Level::Info,
            promise: "An unsupported DB_DIALECT is logged as an ERROR and the app runs without SQL.",
            doc: DocRef::at("pkg/gofr/datasource/sql/sql.go", "NewSQL"),
            method: "Boot with DB_DIALECT=postgresql and the Postgres variables; record the ERROR line, liveness and the health body.",
            needs: Needs::POSTGRES,
            check: check!(unsupported_dialect),
        },
    ]
}

/// The `message` of every JSON log line of `app`.
fn messages(app: &App) -> Vec<String> {
    app.running
        .output()
        .lines()
        .iter()
        .map(|l| {
            let text = l.plain();
            serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or(text)
        })
        .collect()
}

/// GET the readiness probe and parse its body.
async fn health(cx: &mut Cx, app: &App) -> Result<Value, Failure> {
    let readiness = cx.profile().readiness;
    let ex = cx.get(app, readiness).await?;
    serde_json::from_str(ex.body().unwrap_or_default())
        .map_err(|e| Failure::violation(format!("{readiness} answers JSON"), format!("{e}: {}", ex.summary())))
}

fn sql_status(body: &Value) -> Option<&str> {
    body.pointer("/data/sql/status").and_then(Value::as_str)
}

/// Health must report the SQL datasource UP.
fn expect_sql_up(what: &str, body: &Value) -> Result<(), Failure> {
    if sql_status(body) == Some("UP") {
        Ok(())
    } else {
        Err(Failure::violation(
            format!("{what}: data.sql.status UP"),
            body.to_string(),
        ))
    }
}

/// A message containing `text`, or a violation saying it was expected.
fn expect_message(app: &App, what: &str, text: &str) -> Result<String, Failure> {
    let all = messages(app);
    all.iter().find(|m| m.contains(text)).cloned().ok_or_else(|| {
        let sql: Vec<&String> = all
            .iter()
            .filter(|m| m.contains("connect") || m.contains("database"))
            .collect();
        Failure::violation(format!("{what}: a log line containing {text:?}"), format!("{sql:?}"))
    })
}

async fn postgres_from_env(cx: &mut Cx) -> Result<(), Failure> {
    let attached = cx.database(Db::Postgres).await?;
    let DbTarget::Postgres {
        host, port, user, name, ..
    } = attached.target()
    else {
        unreachable!("asked for Postgres")
    };
    let app = cx
        .boot_with(Some(&attached), |spec| {
            spec.unset("DB_SSL_MODE");
            Ok(())
        })
        .await?;
    cx.note("DB_SSL_MODE", "unset (documented default: disable)");
    let expected = format!("connected to '{user}' user to '{name}' database at '{host}:{port}'");
    let line = expect_message(&app, "after boot on Postgres", &expected)?;
    cx.note("connect line", line);
    let body = health(cx, &app).await?;
    expect_sql_up("health on Postgres", &body)
}

async fn sqlite_from_env(cx: &mut Cx) -> Result<(), Failure> {
    const FILE: &str = "conform.db";
    let mut spec = cx.spec(None)?;
    spec.set("DB_DIALECT", "sqlite").set("DB_NAME", FILE);
    let path = spec.workdir.cwd().join(FILE);
    let mut app = cx.start(spec)?;
    cx.wait_live(&mut app).await?;
    if !path.is_file() {
        return Err(Failure::violation(
            format!("DB_NAME={FILE} creates ./{FILE} in the working directory"),
            format!("{} does not exist", path.display()),
        ));
    }
    cx.note("database file", path.display());
    let line = expect_message(&app, "after boot on SQLite", &format!("connected to '{FILE}' database"))?;
    cx.note("connect line", line);
    let body = health(cx, &app).await?;
    expect_sql_up("health on SQLite", &body)
}

async fn starts_degraded_and_reconnects(cx: &mut Cx) -> Result<(), Failure> {
    let attached = cx.database(Db::Postgres).await?;
    let proxy = attached.proxy().expect("asked for Postgres");
    proxy.cut(Fault::Reset);
    cx.note("postgres", "every connection reset by the proxy before boot");
    let booted = cx
        .boot_with(Some(&attached), |spec| {
            spec.set("CONF_SKIP_MIGRATIONS", "1");
            Ok(())
        })
        .await;
    let app = match booted {
        Ok(app) => app,
        Err(Failure::Violation(v)) => {
            cx.note("boot with the database down", v.actual);
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    cx.note("boot with the database down", "serves (liveness 200)");
    let failure = messages(&app).into_iter().find(|m| m.contains("could not connect"));
    cx.note("connect error line", failure.as_deref().unwrap_or("(none)"));
    let body = health(cx, &app).await?;
    cx.note("health while down", &body);
    attached.proxy().expect("asked for Postgres").restore();
    cx.note("postgres", "restored");
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let readiness = cx.profile().readiness;
    let http = Http::new()?;
    let started = std::time::Instant::now();
    let recovered = poll::wait_for(
        "health to report sql UP",
        DB_STATE_CHANGE,
        RECONNECT_PROBE_INTERVAL,
        || {
            let http = http.clone();
            async move {
                match http.get(addr, readiness).await {
                    Ok(ex) => {
                        let body: Option<Value> = ex.body().and_then(|b| serde_json::from_str(b).ok());
                        match body.as_ref().and_then(sql_status) {
                            Some("UP") => Poll::Ready(ex),
                            _ => Poll::NotYet(ex.summary()),
                        }
                    }
                    Err(e) => Poll::Abort(e.to_string()),
                }
            }
        },
    )
    .await;
    match recovered {
        Ok(ex) => {
            cx.note("reconnected after", format!("{:?}", started.elapsed()));
            cx.record_exchanges([ex]);
        }
        Err(err) => cx.note("reconnect", err.to_string()),
    }
    Ok(())
}

async fn pool_settings(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let app = cx
            .boot_with(Some(&attached), |spec| {
                spec.set("DB_MAX_OPEN_CONNECTION", MAX_OPEN.to_string())
                    .set("DB_MAX_IDLE_CONNECTION", MAX_IDLE);
                Ok(())
            })
            .await?;
        let body = health(cx, &app).await?;
        let what = format!("health on {} with DB_MAX_OPEN_CONNECTION={MAX_OPEN}", db.name());
        expect_sql_up(&what, &body)?;
        let max = body
            .pointer("/data/sql/details/stats/maxOpenConnections")
            .and_then(Value::as_i64);
        if max != Some(MAX_OPEN) {
            return Err(Failure::violation(
                format!("{what}: data.sql.details.stats.maxOpenConnections = {MAX_OPEN}"),
                format!("{max:?} in {body}"),
            ));
        }
    }
    Ok(())
}

async fn unsupported_dialect(cx: &mut Cx) -> Result<(), Failure> {
    let attached = cx.database(Db::Postgres).await?;
    let booted = cx
        .boot_with(Some(&attached), |spec| {
            spec.set("DB_DIALECT", "postgresql");
            Ok(())
        })
        .await;
    let app = match booted {
        Ok(app) => app,
        Err(Failure::Violation(v)) => {
            cx.note("boot with DB_DIALECT=postgresql", v.actual);
            return Ok(());
        }
        Err(other) => return Err(other),
    };
    let line = messages(&app)
        .into_iter()
        .find(|m| m.contains("unsupported db dialect"));
    cx.note(
        "unsupported-dialect line",
        line.as_deref().unwrap_or("(none with that text)"),
    );
    let errors: Vec<String> = app
        .running
        .output()
        .lines()
        .iter()
        .map(|l| l.plain())
        .filter(|l| l.contains("\"level\":\"ERROR\""))
        .collect();
    cx.note("ERROR lines", errors.join(" | "));
    let body = health(cx, &app).await?;
    cx.note("health", &body);
    cx.note(
        "sql in health",
        if body.pointer("/data/sql").is_some() {
            "present"
        } else {
            "absent"
        },
    );
    Ok(())
}
