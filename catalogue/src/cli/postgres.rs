//! Postgres-only CLI promises: the advisory lock the CLI shares with app boot, and `--create-db`.

use harness::poll::{self, Poll};
use harness::timeouts;
use harness::timeouts::CLI_LOCK_TAKEN;
use harness::verdict::Failure;

use super::*;
use engine::cx::{Cx, Db};

/// How long the lock-holding migration sleeps inside Postgres. Long enough that a candidate that
/// ignored the lock would certainly bind meanwhile (GoFastr apps bind within a second of spawn),
/// short enough to keep the scenario fast.
const HOLD_SECONDS: u32 = 3;

/// GF-CLI-7.
pub(super) async fn lock_shared_with_boot(cx: &mut Cx) -> Result<(), Failure> {
    let attached = cx.database(Db::Postgres).await?;
    let Attached::Postgres { db, .. } = &attached else {
        return Err(Failure::harness("a Postgres database was asked for"));
    };
    let project = Project::new(cx).await?;
    project.migration(
        "9001_hold_lock.sql",
        // A version far above any the candidate registers itself: the candidate shares
        // `_migrations` with the CLI, and a clash of versions would be drift, not locking.
        &Migration::new(
            9001,
            "hold_lock",
            &format!("CREATE TABLE cli_locked (id INTEGER);\nSELECT pg_sleep({HOLD_SECONDS});"),
            "DROP TABLE cli_locked;",
        ),
    )?;
    let url = database_url(cx, &attached)?;
    let launch = tool::launch(
        &project.cli,
        project.path(),
        &["migrate", "up", "--driver=postgres"],
        [("DATABASE_URL".to_string(), url)],
    );
    let cli = tokio::spawn(async move { tool::run(&launch, CLI_RUN).await });

    // The CLI holds the advisory lock for the whole run; the sleep proves it is mid-migration.
    let name = db.name.clone();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .connect_with(db.connect_options())
        .await?;
    let seen = poll::wait_for(
        "the CLI's migration to be sleeping in Postgres",
        CLI_LOCK_TAKEN,
        timeouts::POLL_INTERVAL,
        || {
            let active = sqlx::query_scalar::<_, i64>(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' \
                 AND query ILIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
            )
            .bind(name.clone())
            .fetch_one(&pool);
            async move {
                match active.await {
                    Ok(n) if n > 0 => Poll::Ready(()),
                    Ok(_) => Poll::NotYet("no sleeping migration yet".into()),
                    Err(e) => Poll::Abort(format!("reading pg_stat_activity: {e}")),
                }
            }
        },
    )
    .await;
    if let Err(err) = seen {
        let run = cli
            .await
            .map_err(|e| Failure::harness(format!("the CLI task failed: {e}")))?;
        if let Ok(run) = &run {
            cx.record_tool_run(run);
        }
        return Err(Failure::harness(format!("the CLI never reached its migration: {err}")));
    }
    let locks: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted \
         AND database = (SELECT oid FROM pg_database WHERE datname = $1)",
    )
    .bind(&name)
    .fetch_one(&pool)
    .await?;
    pool.close().await;
    cx.note("advisory locks held while the CLI migrates", locks);

    let spec = cx.spec(Some(&attached))?;
    let mut app = cx.start(spec)?;
    let watched = poll::wait_for(
        "the CLI to finish, watching whether the candidate binds meanwhile",
        CLI_RUN,
        timeouts::POLL_INTERVAL,
        || {
            let outcome = if cli.is_finished() {
                Poll::Ready(None)
            } else {
                match app.running.listening() {
                    Ok(sockets) if !sockets.is_empty() => Poll::Ready(Some(format!("{sockets:?}"))),
                    Ok(_) => Poll::NotYet("the CLI is running and the candidate is not listening".into()),
                    Err(e) => Poll::NotYet(format!("could not read the candidate's sockets: {e}")),
                }
            };
            async move { outcome }
        },
    )
    .await
    .map_err(|e| Failure::harness(e.to_string()))?;
    let run = cli
        .await
        .map_err(|e| Failure::harness(format!("the CLI task failed: {e}")))?
        .map_err(|e| Failure::harness(e.to_string()))?;
    cx.record_tool_run(&run);
    if let Some(sockets) = watched {
        return Err(Failure::violation(
            "the candidate does not listen while `migrate up` holds the migration lock",
            format!("it listened on {sockets} while the CLI was still migrating"),
        ));
    }
    expect_success("migrate up holding the lock", &run)?;
    cx.note("the CLI finished after", format!("{:?}", run.took));
    cx.wait_live(&mut app).await?;
    Ok(())
}

/// GF-CLI-9.
pub(super) async fn create_db(cx: &mut Cx) -> Result<(), Failure> {
    let attached = cx.database(Db::Postgres).await?;
    let Attached::Postgres { db, .. } = &attached else {
        return Err(Failure::harness("a Postgres database was asked for"));
    };
    let project = Project::new(cx).await?;
    project.migration(
        "0001_create_items.sql",
        &Migration::new(
            1,
            "create_items",
            "CREATE TABLE cli_items (id INTEGER);",
            "DROP TABLE cli_items;",
        ),
    )?;
    let created = format!("{}_created", db.name);
    let url = database_url(cx, &attached)?.replacen(&format!("/{}?", db.name), &format!("/{created}?"), 1);
    if !url.contains(&created) {
        return Err(Failure::harness("could not rewrite the database name in the URL"));
    }
    let args = ["migrate", "up", "--create-db", "--driver=postgres"];
    let what = "migrate up --create-db --driver=postgres against a missing database";
    let run = project.run(cx, &args, &[("DATABASE_URL", &url)]).await?;
    expect_success(what, &run)?;
    expect_text(what, &run, "Created database")?;
    let options = db.connect_options().database(&created);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(|e| Failure::violation(format!("{what}: database {created} exists"), e.to_string()))?;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM _migrations")
        .fetch_one(&mut conn)
        .await
        .map_err(|e| Failure::violation(format!("{what}: {created} holds _migrations"), e.to_string()))?;
    conn.close().await?;
    if n != 1 {
        return Err(Failure::violation(
            format!("{what}: one _migrations row in {created}"),
            format!("{n} rows"),
        ));
    }

    let what = "a second migrate up --create-db (the database exists)";
    let run = project.run(cx, &args, &[("DATABASE_URL", &url)]).await?;
    expect_success(what, &run)?;
    if run.text().contains("Created database") {
        return Err(Failure::violation(format!("{what}: no-op"), run.summary()));
    }

    let sqlite = cx.database(Db::Sqlite).await?;
    let what = "migrate up --create-db on SQLite";
    let run = migrate(cx, &project, &sqlite, &["up", "--create-db"]).await?;
    expect_success(what, &run)?;
    if run.text().contains("Created database") {
        return Err(Failure::violation(format!("{what}: no-op"), run.summary()));
    }
    expect_table(what, &sqlite, "cli_items", true).await?;
    Ok(())
}
