//! `migrate up` and `migrate status`: what gets applied, where the database comes from, what
//! status reports, and that a failing transactional migration leaves nothing behind.

use harness::verdict::Failure;

use super::*;
use engine::cx::{Cx, Db};

/// The two-file set of GF-CLI-1 and GF-CLI-3: filename order is the reverse of version order,
/// and version 2 inserts into the table version 1 creates, so applying by filename fails.
fn ordered_pair() -> [(&'static str, Migration); 2] {
    [
        (
            "0001_add_rows.sql",
            Migration::new(
                2,
                "add_rows",
                "INSERT INTO cli_items (id, label) VALUES (1, 'one');",
                "DELETE FROM cli_items;",
            ),
        ),
        (
            "0002_create_items.sql",
            Migration::new(
                1,
                "create_items",
                "CREATE TABLE cli_items (id INTEGER PRIMARY KEY, label TEXT NOT NULL);",
                "DROP TABLE cli_items;",
            ),
        ),
    ]
}

/// GF-CLI-1 on each database.
pub(super) async fn up_applies_in_order(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let project = Project::new(cx).await?;
        let files = ordered_pair();
        for (file, m) in &files {
            project.migration(file, m)?;
        }
        let what = format!("migrate up on {}", db.name());
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_success(&what, &run)?;
        expect_text(&what, &run, "Migrations applied")?;

        let mut want: Vec<Tracked> = files
            .iter()
            .map(|(_, m)| Tracked {
                version: m.version as i64,
                name: m.name.to_string(),
                checksum: m.checksum(),
                dirty: false,
            })
            .collect();
        want.sort_by_key(|r| r.version);
        let got = rows(&attached).await?;
        cx.note(format!("_migrations on {}", db.name()), show(&got));
        if got != want {
            return Err(Failure::violation(
                format!("{what}: _migrations holds {}", show(&want)),
                show(&got),
            ));
        }
        expect_table(&what, &attached, "cli_items", true).await?;

        let again = migrate(cx, &project, &attached, &["up"]).await?;
        expect_success(&format!("a second {what}"), &again)?;
        let after = rows(&attached).await?;
        if after != want {
            return Err(Failure::violation(
                format!("a second {what} applies nothing: _migrations still {}", show(&want)),
                show(&after),
            ));
        }
    }
    Ok(())
}

/// Where the URL comes from in each step of GF-CLI-2.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Source {
    Flag,
    Env,
    DotEnv,
}

/// GF-CLI-2: flag > variable > `.env`, on SQLite; then deploy.md's Postgres command verbatim.
pub(super) async fn url_sources(cx: &mut Cx) -> Result<(), Failure> {
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
    let flag_db = cx.database(Db::Sqlite).await?;
    let env_db = cx.database(Db::Sqlite).await?;
    let dotenv_db = cx.database(Db::Sqlite).await?;
    let flag_url = database_url(cx, &flag_db)?;
    let env_url = database_url(cx, &env_db)?;
    let dotenv_url = database_url(cx, &dotenv_db)?;
    project.write(".env", &format!("DATABASE_URL={dotenv_url}\n"))?;

    // Each step removes the winning source of the step before; the winner must be the one
    // database that gains _migrations.
    let steps = [
        (Source::Flag, "--db-url, DATABASE_URL and .env all set"),
        (Source::Env, "DATABASE_URL and .env set"),
        (Source::DotEnv, "only .env set"),
    ];
    for (winner, situation) in steps {
        let flag = format!("--db-url={flag_url}");
        let mut args = vec!["migrate", "up"];
        if winner == Source::Flag {
            args.push(&flag);
        }
        let env: Vec<(&str, &str)> = if winner == Source::DotEnv {
            vec![]
        } else {
            vec![("DATABASE_URL", env_url.as_str())]
        };
        let run = project.run(cx, &args, &env).await?;
        let what = format!("migrate up with {situation}");
        expect_success(&what, &run)?;
        let migrated = [
            (Source::Flag, !rows(&flag_db).await?.is_empty()),
            (Source::Env, !rows(&env_db).await?.is_empty()),
            (Source::DotEnv, !rows(&dotenv_db).await?.is_empty()),
        ];
        cx.note(format!("migrated after: {situation}"), format!("{migrated:?}"));
        for (source, done) in migrated {
            // Sources that won an earlier step stay migrated; the winner must be migrated now,
            // and no source below the winner may have been touched.
            let expected = source_rank(source) <= source_rank(winner);
            if done != expected {
                return Err(Failure::violation(
                    format!("{what}: the {winner:?} database is migrated, lower-precedence ones untouched"),
                    format!("migrated: {migrated:?}"),
                ));
            }
        }
    }

    // deploy.md › Migrations, verbatim: `gofastr migrate up --db-url="$DATABASE_URL"`.
    let pg = cx.database(Db::Postgres).await?;
    let pg_url = database_url(cx, &pg)?;
    let flag = format!("--db-url={pg_url}");
    let run = project
        .run(cx, &["migrate", "up", &flag], &[("DATABASE_URL", &pg_url)])
        .await?;
    let what = "deploy.md's `gofastr migrate up --db-url=\"$DATABASE_URL\"` with a Postgres DATABASE_URL";
    expect_success(what, &run)?;
    let got = rows(&pg).await?;
    if got.is_empty() {
        return Err(Failure::violation(
            format!("{what}: the Postgres database gains _migrations rows"),
            "no rows".to_string(),
        ));
    }
    Ok(())
}

fn source_rank(source: Source) -> u8 {
    match source {
        Source::Flag => 0,
        Source::Env => 1,
        Source::DotEnv => 2,
    }
}

/// GF-CLI-3 on each database.
pub(super) async fn status_reports(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let project = Project::new(cx).await?;
        for (file, m) in &ordered_pair() {
            project.migration(file, m)?;
        }
        let what = format!("migrate status on a fresh {} database", db.name());
        let run = migrate(cx, &project, &attached, &["status"]).await?;
        expect_success(&what, &run)?;
        for needle in ["Applied: 0", "Pending: 2", "1 create_items", "2 add_rows"] {
            expect_text(&what, &run, needle)?;
        }
        if tracking_rows(&attached).await?.is_none() {
            return Err(Failure::violation(
                format!("{what}: _migrations created lazily by status"),
                "no _migrations table",
            ));
        }
        let up = migrate(cx, &project, &attached, &["up"]).await?;
        expect_success(&format!("migrate up on {}", db.name()), &up)?;
        let what = format!("migrate status after up on {}", db.name());
        let run = migrate(cx, &project, &attached, &["status"]).await?;
        expect_success(&what, &run)?;
        for needle in ["Applied: 2", "Pending: 0"] {
            expect_text(&what, &run, needle)?;
        }
    }
    Ok(())
}

/// GF-CLI-6 on each database.
pub(super) async fn failed_migration_leaves_no_trace(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let project = Project::new(cx).await?;
        project.migration(
            "0001_half.sql",
            &Migration::new(
                1,
                "half",
                "CREATE TABLE cli_half (id INTEGER);\nINSERT INTO cli_nowhere (id) VALUES (1);",
                "DROP TABLE cli_half;",
            ),
        )?;
        let what = format!("migrate up of a failing transactional migration on {}", db.name());
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_refusal(&what, &run)?;
        let got = rows(&attached).await?;
        cx.note(format!("_migrations on {}", db.name()), show(&got));
        if !got.is_empty() {
            return Err(Failure::violation(format!("{what}: no _migrations row"), show(&got)));
        }
        expect_table(
            &format!("{what} (partial DDL rolled back)"),
            &attached,
            "cli_half",
            false,
        )
        .await?;
    }
    Ok(())
}
