//! MIG: migrations at boot, both catalogues (GF-MIG: GoFastr's additive auto-migration; GR-MIG:
//! GoFr's versioned `app.Migrate` with its `gofr_migrations` table and lock).
//!
//! Every verdict here rests on what the database says after a boot, read from outside the
//! candidate ([`harness::service::schema`]): a snapshot of tables and columns before and after,
//! their diff, and the rows cast to text. Candidate logs are recorded and sometimes required, but a
//! log line never stands in for the schema. The two frameworks migrate so differently (entity
//! declarations converged at `App.Start` versus numbered Go functions) that their scenarios live
//! apart in `gofastr.rs` and `gofr.rs`; what they share (opening the database a candidate used,
//! snapshotting it into the evidence, reading the candidate's last words after it exits) is here.

mod gofastr;
mod gofastr_boot;
mod gofr;

pub(crate) use gofastr_boot::waits_for_held_lock;

use harness::output::Line;
use harness::running::Signal;
use harness::service::schema::{Inspector, Schema};
use harness::timeouts::{EXITED_OUTPUT, STOP_BETWEEN_BOOTS};
use harness::verdict::Failure;

use engine::clause::Clause;
use engine::cx::{App, Attached, Cx};

/// The MIG clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    // GoFastr's are in two files (the schema clauses, and those about the boot itself), merged
    // back into the catalogue's numbering.
    let mut all = gofastr::clauses();
    all.extend(gofastr_boot::clauses());
    all.sort_by_key(|c| c.id.trim_start_matches("GF-MIG-").parse::<u32>().unwrap_or(0));
    all.extend(gofr::clauses());
    all
}

/// A connection to the database `db` that the candidate uses.
pub(crate) async fn inspector(db: &Attached, create: bool) -> Result<Inspector, Failure> {
    let inspector = match db {
        Attached::Sqlite(file) => Inspector::sqlite(file.path(), create).await,
        Attached::Postgres { db, .. } => Inspector::postgres(&db.connect_options()).await,
    };
    inspector.map_err(|e| Failure::harness(format!("opening the candidate's database for inspection: {e}")))
}

/// Snapshot the schema of `db` and record it as `schema <label>`.
pub(crate) async fn snapshot(cx: &mut Cx, db: &Attached, label: &str) -> Result<Schema, Failure> {
    let mut conn = inspector(db, false).await?;
    let schema = conn.schema().await?;
    conn.close().await?;
    cx.note(format!("schema {label}"), &schema);
    Ok(schema)
}

/// The rows of `table` (`columns` only, cast to text, ordered by `order_by`), recorded as
/// `rows <label>`.
pub(crate) async fn rows(
    cx: &mut Cx,
    db: &Attached,
    label: &str,
    table: &str,
    columns: &[&str],
    order_by: &str,
) -> Result<Vec<Vec<Option<String>>>, Failure> {
    let rows = rows_of(db, table, columns, order_by).await?;
    cx.note(
        format!("rows {label}"),
        format!("{table}({}): {}", columns.join(", "), fmt_rows(&rows)),
    );
    Ok(rows)
}

/// The rows of `table` as [`rows`] reads them, without noting them (for a caller that notes them
/// as a sample).
pub(crate) async fn rows_of(
    db: &Attached,
    table: &str,
    columns: &[&str],
    order_by: &str,
) -> Result<Vec<Vec<Option<String>>>, Failure> {
    let mut conn = inspector(db, false).await?;
    let rows = conn.rows(table, columns, order_by).await?;
    conn.close().await?;
    Ok(rows)
}

/// Rows as `[a, b, NULL]; [...]`.
pub(crate) fn fmt_rows(rows: &[Vec<Option<String>>]) -> String {
    if rows.is_empty() {
        return "(none)".into();
    }
    rows.iter()
        .map(|r| {
            let cells: Vec<&str> = r.iter().map(|v| v.as_deref().unwrap_or("NULL")).collect();
            format!("[{}]", cells.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Stop an app with SIGTERM between two boots, recording how it ended.
pub(crate) async fn stop(cx: &mut Cx, app: &mut App) -> Result<(), Failure> {
    let exit = cx.stop(app, Signal::SIGTERM, STOP_BETWEEN_BOOTS).await?;
    if exit.killed_after_grace {
        return Err(Failure::harness(format!(
            "the candidate did not exit within {STOP_BETWEEN_BOOTS:?} of SIGTERM, so the next boot could not start cleanly"
        )));
    }
    Ok(())
}

/// Wait for an app that is expected to refuse to boot to exit, then for the line its pipes carry
/// that satisfies `last_words` (if it printed one). Returns the exit (`None` if it still runs at
/// the ceiling) and that line.
pub(crate) async fn refused_boot(
    cx: &mut Cx,
    app: &mut App,
    last_words: impl Fn(&str) -> bool,
) -> Result<(Option<harness::running::Exit>, Option<String>), Failure> {
    let exit = cx.wait_exit(app, harness::timeouts::REFUSE_TO_BOOT).await?;
    cx.note(
        "exit",
        exit.map(|e| e.status.to_string())
            .unwrap_or_else(|| format!("still running after {:?}", harness::timeouts::REFUSE_TO_BOOT)),
    );
    let line = app
        .running
        .output()
        .wait_for_line("explaining the refusal", EXITED_OUTPUT, |l| last_words(&l.plain()))
        .await
        .ok()
        .map(|l: Line| l.plain());
    Ok((exit, line))
}

/// Every output line of `app` (ANSI removed), in the order printed.
pub(crate) fn lines(app: &App) -> Vec<String> {
    app.running.output().lines().iter().map(Line::plain).collect()
}

/// Start replicas (`start` returns them) against a fresh Postgres database so that their first
/// DDL statements run at the same moment, as on a first deploy where pods start together.
/// Instead of hoping the timing lines up, the harness holds `DROP SCHEMA public` in an open
/// transaction (rolled back afterwards, so nothing is dropped): every statement that creates
/// something in the schema waits on it. Once two backends of the replicas wait on a lock, the
/// transaction is rolled back and they go together.
pub(crate) async fn lined_up(
    cx: &mut Cx,
    attached: &Attached,
    start: impl FnOnce(&mut Cx) -> Result<Vec<App>, Failure>,
) -> Result<Vec<App>, Failure> {
    let Attached::Postgres { db: database, .. } = attached else {
        return Err(Failure::harness("lining replicas up needs Postgres"));
    };
    let mut holder = database.connect().await?;
    let holder_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(&mut holder)
        .await?;
    sqlx::raw_sql("BEGIN; DROP SCHEMA public CASCADE")
        .execute(&mut holder)
        .await?;
    let replicas = start(cx)?;
    let watcher = std::sync::Arc::new(tokio::sync::Mutex::new(database.connect().await?));
    let dbname = database.name.clone();
    let waiting = harness::poll::wait_for(
        "two replicas to wait on the schema with their first DDL statement",
        harness::timeouts::boot(),
        harness::timeouts::POLL_INTERVAL,
        || {
            let (watcher, dbname) = (watcher.clone(), dbname.clone());
            async move {
                let mut conn = watcher.lock().await;
                let waiting = sqlx::query_scalar::<_, String>(
                    "SELECT query FROM pg_stat_activity WHERE datname = $1 AND pid NOT IN ($2, pg_backend_pid()) AND wait_event_type = 'Lock'",
                )
                .bind(dbname)
                .bind(holder_pid)
                .fetch_all(&mut *conn)
                .await;
                match waiting {
                    Ok(q) if q.len() >= 2 => harness::poll::Poll::Ready(q),
                    Ok(q) => harness::poll::Poll::NotYet(format!("{} waiting: {q:?}", q.len())),
                    Err(e) => harness::poll::Poll::Abort(e.to_string()),
                }
            }
        },
    )
    .await;
    sqlx::raw_sql("ROLLBACK").execute(&mut holder).await?;
    let queries = waiting.map_err(|e| Failure::harness(format!("could not line the replicas up: {e}")))?;
    let queries: Vec<String> = queries
        .iter()
        .map(|q| q.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    // Which statements the replicas were waiting with depends on how far each got: a sample.
    cx.note_sample(
        "replicas lined up",
        format!("released together from: {}", queries.join(" | ")),
    );
    Ok(replicas)
}
