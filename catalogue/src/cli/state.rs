//! The runner's integrity state: checksum drift on edited migrations, and the dirty flag a failed
//! NoTransaction migration leaves until `migrate force`.

use harness::verdict::Failure;

use super::*;
use engine::cx::{Cx, Db};

/// GF-CLI-4 on each database.
pub(super) async fn drift_refused(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
        let project = Project::new(cx).await?;
        let first = Migration::new(
            1,
            "create_items",
            "CREATE TABLE cli_items (id INTEGER);",
            "DROP TABLE cli_items;",
        );
        project.migration("0001_create_items.sql", &first)?;
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_success(&format!("the first migrate up on {}", db.name()), &run)?;

        let edited = Migration::new(
            1,
            "create_items",
            "CREATE TABLE cli_items (id INTEGER);\nCREATE TABLE cli_drift (id INTEGER);",
            "DROP TABLE cli_items;",
        );
        project.migration("0001_create_items.sql", &edited)?;
        project.migration(
            "0002_later.sql",
            &Migration::new(
                2,
                "later",
                "CREATE TABLE cli_later (id INTEGER);",
                "DROP TABLE cli_later;",
            ),
        )?;
        let what = format!("migrate up after editing applied migration 1 on {}", db.name());
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_refusal(&what, &run)?;
        expect_text(&what, &run, "modified after it was applied")?;
        expect_table(&what, &attached, "cli_drift", false).await?;
        expect_table(
            &format!("{what} (pending migration 2 not applied)"),
            &attached,
            "cli_later",
            false,
        )
        .await?;

        // [CODE] only: what status says about the drift, and whether a whitespace-only edit is seen.
        let status = migrate(cx, &project, &attached, &["status"]).await?;
        cx.note(format!("status with drift on {}", db.name()), status.status);
        let mut padded = first;
        padded.up = format!("\n\n{}   \n", padded.up);
        project.migration("0001_create_items.sql", &padded)?;
        std::fs::remove_file(project.path().join("migrations/0002_later.sql"))?;
        let ws = migrate(cx, &project, &attached, &["up"]).await?;
        cx.note(format!("up after a whitespace-only edit on {}", db.name()), ws.status);
    }
    Ok(())
}

/// GF-CLI-5 on each database.
pub(super) async fn dirty_until_forced(cx: &mut Cx) -> Result<(), Failure> {
    for db in Db::BOTH {
        let attached = cx.database(db).await?;
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
        let mut broken = Migration::new(
            2,
            "broken",
            "CREATE TABLE cli_partial (id INTEGER);\nINSERT INTO cli_missing (id) VALUES (1);",
            "DROP TABLE cli_partial;",
        );
        broken.no_transaction = true;
        project.migration("0002_broken.sql", &broken)?;
        project.migration(
            "0003_after.sql",
            &Migration::new(
                3,
                "after",
                "CREATE TABLE cli_after (id INTEGER);",
                "DROP TABLE cli_after;",
            ),
        )?;
        let on = db.name();

        let what = format!("migrate up with a failing NoTransaction migration 2 on {on}");
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_refusal(&what, &run)?;
        expect_dirty(cx, &what, &attached, 2, true).await?;

        let what = format!("a second migrate up while migration 2 is dirty on {on}");
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_refusal(&what, &run)?;
        expect_text(&what, &run, "dirty")?;
        expect_table(&what, &attached, "cli_after", false).await?;

        let what = format!("migrate down 1 while migration 2 is dirty on {on}");
        let run = migrate(cx, &project, &attached, &["down", "1"]).await?;
        expect_refusal(&what, &run)?;
        expect_text(&what, &run, "dirty")?;
        expect_table(&what, &attached, "cli_items", true).await?;

        let what = format!("migrate status while migration 2 is dirty on {on}");
        let run = migrate(cx, &project, &attached, &["status"]).await?;
        expect_success(&what, &run)?;
        expect_text(&what, &run, "dirty")?;

        let what = format!("migrate force 2 on {on}");
        let run = migrate(cx, &project, &attached, &["force", "2"]).await?;
        expect_success(&what, &run)?;
        expect_dirty(cx, &what, &attached, 2, false).await?;

        let what = format!("migrate up after force on {on}");
        let run = migrate(cx, &project, &attached, &["up"]).await?;
        expect_success(&what, &run)?;
        expect_table(&what, &attached, "cli_after", true).await?;

        let what = format!("migrate force 3 --not-applied on {on}");
        let run = migrate(cx, &project, &attached, &["force", "3", "--not-applied"]).await?;
        expect_success(&what, &run)?;
        let got = rows(&attached).await?;
        cx.note(format!("_migrations after force --not-applied on {on}"), show(&got));
        if got.iter().any(|r| r.version == 3) {
            return Err(Failure::violation(
                format!("{what}: the row of version 3 is removed"),
                show(&got),
            ));
        }
    }
    Ok(())
}

/// Expect the `_migrations` row of `version` to exist with `dirty`.
async fn expect_dirty(cx: &mut Cx, what: &str, db: &Attached, version: i64, dirty: bool) -> Result<(), Failure> {
    let got = rows(db).await?;
    cx.note(format!("_migrations after: {what}"), show(&got));
    match got.iter().find(|r| r.version == version) {
        Some(row) if row.dirty == dirty => Ok(()),
        _ => Err(Failure::violation(
            format!("{what}: the row of version {version} has dirty={dirty}"),
            show(&got),
        )),
    }
}
