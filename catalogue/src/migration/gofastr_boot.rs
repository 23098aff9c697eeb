//! GoFastr's boot-migration failure and concurrency clauses (gofastr.md §D): one transaction for
//! all boot DDL, the Postgres advisory lock across replicas, and the fail-closed dialect probe.
//!
//! Each provokes the failure from outside the candidate, through the database it is given: an
//! object that makes one entity's DDL fail, a lock the harness holds, a database that cannot be
//! reached. The candidate's build and entities stay those of the reference; only the versioned
//! runner of the scaffold is switched off (`HARNESS_NO_VERSIONED_MIGRATIONS=1`) where it would
//! otherwise meet the database first and hide what `App.Start` does.

use harness::poll::Poll;
use harness::probe::{self, Connect};
use harness::running::ExitStatus;
use harness::service::proxy::Fault;
use harness::service::schema::Schema;
use harness::timeouts;
use harness::timeouts::LOCKED_CONNECT_PROBE;
use harness::verdict::{Failure, Level};

use super::gofastr::{fmt_cols, items_table, missing_table};
use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::{Cx, Db};
use engine::repeat;

/// GoFastr's boot-migration advisory lock key (migrations.md › Production safety: "keyed on a
/// fixed constant"; the constant is core/migrate `AdvisoryLockKey`).
const MIGRATION_LOCK: i64 = 6724469554113028193;

/// The candidate variable that leaves the scaffold's versioned runner out (see the candidate README).
const NO_VERSIONED: &str = "HARNESS_NO_VERSIONED_MIGRATIONS";

/// The scaffold's second entity, migrated after `items` (entities are migrated in name order).
const LATER_ENTITY: &str = "posts";

/// GoFastr's MIG clauses about failures and replicas.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-MIG-7",
            level: Level::Must,
            promise: "All boot DDL runs in one transaction: when a later entity's DDL fails, the tables created before it are rolled back and Start fails.",
            doc: DocRef::at("migrations.md", "Production safety"),
            method: "Pre-create `posts` as a view, so its ALTER TABLE ADD COLUMN fails; boot on a fresh database; the process must exit non-zero and `items` (migrated before posts) must not exist.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(one_transaction),
        },
        Clause {
            id: "GF-MIG-8",
            level: Level::Must,
            promise: "Boot migration is serialized by a Postgres advisory lock: a replica waits for it without serving, and replicas booting at once all come up having applied nothing twice.",
            doc: DocRef::at("migrations.md", "Production safety"),
            method: "Hold the lock key from the harness, boot, see the candidate poll for it while its port is closed and nothing is created, release, expect it to serve; then boot two replicas on one fresh database, lined up so their first DDL runs at the same moment (the harness holds the schema in an open transaction until both wait on it), and expect both to serve and one schema. The first deploy is a bounded repetition: fail at the first bad round, pass after 66 clean rounds (a miss rate of 10 % or more passes with probability below 0.1 %).",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(advisory_lock),
        },
        Clause {
            id: "GF-MIG-9",
            level: Level::Must,
            promise: "The dialect probe fails closed: an unreachable database makes Start fail with the probe error instead of guessing SQLite.",
            doc: DocRef::at("migrations.md", "Auto-migrate path"),
            method: "Boot (versioned runner off) against a Postgres proxy that resets every connection and a SQLite path that cannot be opened; expect a non-zero exit and `dialect probe failed ... DATABASE_URL`.",
            needs: Needs::POSTGRES,
            check: check!(probe_fails_closed),
        },
    ]
}

async fn one_transaction(cx: &mut Cx) -> Result<(), Failure> {
    let table = items_table(cx)?;
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let mut conn = inspector(&attached, true).await?;
        // A view with only `id`: the live schema reads its columns, and the ADD COLUMN for the
        // others fails on both engines (a view cannot be altered).
        conn.execute(&format!("CREATE VIEW {LATER_ENTITY} AS SELECT CAST('x' AS TEXT) AS id"))
            .await?;
        conn.close().await?;
        cx.note(
            format!("{LATER_ENTITY} on {}", db.name()),
            "pre-created as a view with only an id column",
        );
        let spec = cx.spec(Some(&attached))?;
        let mut app = cx.start(spec)?;
        let (exit, line) = refused_boot(cx, &mut app, |l| l.contains("auto-migrate")).await?;
        cx.note("boot error", line.as_deref().unwrap_or("(no line naming auto-migrate)"));
        let schema = snapshot(cx, &attached, &format!("after the failed boot on {}", db.name())).await?;
        match exit {
            Some(e) if e.status != ExitStatus::Code(0) => {}
            other => {
                return Err(Failure::violation(
                    format!("Start fails when {LATER_ENTITY}'s DDL fails on {}", db.name()),
                    other.map_or("still running".into(), |e| e.status.to_string()),
                ));
            }
        }
        if let Some(cols) = schema.table(&table) {
            return Err(Failure::violation(
                format!(
                    "{table}, migrated before {LATER_ENTITY} in the same boot, is rolled back on {}",
                    db.name()
                ),
                format!("{table}({}) exists", fmt_cols(cols)),
            ));
        }
    }
    Ok(())
}

async fn advisory_lock(cx: &mut Cx) -> Result<(), Failure> {
    cx.note(
        "sqlite",
        "takes no lock (migrations.md); not observable from outside, not judged",
    );
    waits_for_held_lock(cx).await?;
    replicas_at_once(cx).await
}

/// Hold the lock, boot, and see the candidate wait for it: asking for it, not serving, creating
/// nothing; release it and see the candidate serve. Also GF-PORT-4's scenario: the listener binds
/// only after boot migration. Reads the `entity_table` knob, so every clause running it declares
/// that knob (and Postgres).
pub(crate) async fn waits_for_held_lock(cx: &mut Cx) -> Result<(), Failure> {
    let table = items_table(cx)?;
    let attached = cx.database(Db::Postgres).await?;
    let Attached::Postgres { db: database, .. } = &attached else {
        unreachable!("asked for Postgres")
    };
    let mut holder = database.connect().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut holder)
        .await?;
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await?;
    cx.note(
        "advisory lock",
        format!("key {MIGRATION_LOCK} held by the harness (backend {holder_pid})"),
    );
    let mut spec = cx.spec(Some(&attached))?;
    spec.set(NO_VERSIONED, "1");
    let mut app = cx.start(spec)?;
    let watcher = std::sync::Arc::new(tokio::sync::Mutex::new(database.connect().await?));
    let dbname = database.name.clone();
    let seen = app
        .running
        .wait_until(
            "the candidate to ask for the migration advisory lock",
            timeouts::boot(),
            || {
                let (watcher, dbname) = (watcher.clone(), dbname.clone());
                async move {
                    let mut conn = watcher.lock().await;
                    let query = sqlx::query_scalar::<_, String>(
                        "SELECT query FROM pg_stat_activity WHERE datname = $1 AND pid NOT IN (pg_backend_pid(), $2) AND query ILIKE '%advisory_lock%' LIMIT 1",
                    )
                    .bind(dbname)
                    .bind(holder_pid)
                    .fetch_optional(&mut *conn)
                    .await;
                    match query {
                        Ok(Some(q)) => Poll::Ready(q),
                        Ok(None) => Poll::NotYet("no backend of the candidate has asked for the lock yet".into()),
                        Err(e) => Poll::NotYet(format!("pg_stat_activity: {e}")),
                    }
                }
            },
        )
        .await;
    let seen = match seen {
        Ok(q) => q,
        Err(err) => {
            return Err(Failure::violation(
                "App.Start asks for the migration advisory lock while another session holds it",
                err.to_string(),
            ));
        }
    };
    cx.note("candidate asking", seen.trim());
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let connect = probe::tcp_connect(addr, LOCKED_CONNECT_PROBE).await?;
    let during = snapshot(cx, &attached, "while the lock is held").await?;
    cx.note("connect while waiting", format!("{connect:?}"));
    if connect != Connect::Refused {
        return Err(Failure::violation(
            "a replica waiting for the migration lock does not serve",
            format!("connect to {addr}: {connect:?}"),
        ));
    }
    if let Some(cols) = during.table(&table) {
        return Err(Failure::violation(
            "nothing is migrated while another session holds the lock",
            format!("{table}({}) exists", fmt_cols(cols)),
        ));
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_LOCK)
        .execute(&mut holder)
        .await?;
    cx.note("advisory lock", "released by the harness");
    cx.wait_live(&mut app).await?;
    stop(cx, &mut app).await?;
    let after = snapshot(cx, &attached, "after the lock was released").await?;
    if after.table(&table).is_none() {
        return Err(missing_table(&table, Db::Postgres, &after));
    }
    Ok(())
}

/// Two replicas booting at once against one fresh database both serve, and the schema is what one
/// boot makes, with each versioned migration recorded once.
async fn replicas_at_once(cx: &mut Cx) -> Result<(), Failure> {
    let table = items_table(cx)?;
    let reference = cx.database(Db::Postgres).await?;
    let mut single = cx.boot(Some(&reference)).await?;
    stop(cx, &mut single).await?;
    let one = snapshot(cx, &reference, "one replica alone").await?;

    // Which replica wins is up to the scheduler: a bounded repetition (see `repeat`).
    let rule = repeat::RACE;
    rule.begin(cx);
    for round in 1..=rule.runs {
        let outcome = match first_deploy_round(cx, &table).await {
            Ok(two) => {
                let diff = one.diff(&two);
                if !diff.is_empty() || two.table(&table).is_none() {
                    cx.note("one replica vs two", &diff);
                    Err(Failure::violation(
                        "two replicas booting at once leave the schema one boot leaves",
                        diff.to_string(),
                    ))
                } else {
                    Ok(())
                }
            }
            Err(failure) => Err(failure),
        };
        rule.after(cx, round, outcome)?;
    }
    rule.passed(cx);
    Ok(())
}

/// One lined-up boot of two replicas on a fresh database: both must serve, each versioned
/// migration is recorded once. Returns the schema they left.
async fn first_deploy_round(cx: &mut Cx, table: &str) -> Result<Schema, Failure> {
    let attached = cx.database(Db::Postgres).await?;
    let replicas = lined_up(cx, &attached, |cx| {
        let (spec_a, spec_b) = (cx.spec(Some(&attached))?, cx.spec(Some(&attached))?);
        Ok(vec![cx.start(spec_a)?, cx.start(spec_b)?])
    })
    .await?;
    for mut app in replicas {
        if let Err(failure) = cx.wait_live(&mut app).await {
            let last = lines(&app).into_iter().rev().take(2).collect::<Vec<_>>().join(" | ");
            return Err(match failure {
                Failure::Violation(v) => Failure::violation(
                    "two replicas booting at once both start",
                    format!("{}; {last}", v.actual),
                ),
                harness => harness,
            });
        }
        stop(cx, &mut app).await?;
    }
    // Noted per round as samples: how many rounds ran before a miss (and so how many of these
    // notes there are) is the race's luck; a bad round ends the repetition with a violation that
    // says what went wrong.
    let mut conn = inspector(&attached, false).await?;
    let two = conn.schema().await?;
    conn.close().await?;
    cx.note_sample(format!("schema two replicas at once ({table})"), &two);
    let versions = rows_of(&attached, "_migrations", &["version"], "version").await?;
    cx.note_sample(
        "rows versioned runs",
        format!("_migrations(version): {}", fmt_rows(&versions)),
    );
    let mut distinct = versions.clone();
    distinct.dedup();
    if distinct.len() != versions.len() {
        return Err(Failure::violation(
            "each versioned migration is recorded once",
            fmt_rows(&versions),
        ));
    }
    Ok(two)
}

async fn probe_fails_closed(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let mut spec = cx.spec(Some(&attached))?;
        spec.set(NO_VERSIONED, "1");
        match &attached {
            Attached::Postgres { proxy, .. } => {
                proxy.cut(Fault::Reset);
                cx.note("postgres", "every connection reset by the proxy");
            }
            Attached::Sqlite(file) => {
                let path = file.dir().join("missing").join("conform.db");
                spec.set("DATABASE_URL", format!("file:{}", path.display()));
                cx.note("sqlite", format!("{} (its directory does not exist)", path.display()));
            }
        }
        let mut app = cx.start(spec)?;
        // Start's own error carries its `auto-migrate:` prefix (a best-effort caller may WARN first).
        let (exit, line) = refused_boot(cx, &mut app, |l| {
            l.contains("auto-migrate") && l.contains("dialect probe failed")
        })
        .await?;
        let expected = format!(
            "on {}: Start fails with \"dialect probe failed after 3 attempts: ... (check the database connection / DATABASE_URL)\"",
            db.name()
        );
        match (exit, line) {
            (Some(e), Some(line)) if e.status != ExitStatus::Code(0) && line.contains("DATABASE_URL") => {
                cx.note(format!("boot error on {}", db.name()), line);
            }
            (exit, line) => {
                let last = lines(&app).into_iter().rev().take(3).collect::<Vec<_>>().join(" | ");
                return Err(Failure::violation(
                    expected,
                    format!(
                        "{}; {}",
                        exit.map_or("still running".into(), |e| e.status.to_string()),
                        line.unwrap_or_else(|| format!("last lines: {last}"))
                    ),
                ));
            }
        }
    }
    Ok(())
}
