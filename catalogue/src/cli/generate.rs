//! `gofastr migrate generate`: offline migration files from a blueprint, and the documented
//! gate on destructive type changes.

use harness::verdict::Failure;

use super::*;
use engine::cx::{Cx, Db};

/// The blueprint before the change: one entity, `title` a string.
const BLUEPRINT_V1: &str = "app:\n  name: Gen\n  module: local/gen\nentities:\n  - name: posts\n    fields:\n      - name: title\n        type: string\n        required: true\n";

/// The same blueprint with `title` retyped to int: a type change, destructive per migrations.md.
const BLUEPRINT_V2: &str = "app:\n  name: Gen\n  module: local/gen\nentities:\n  - name: posts\n    fields:\n      - name: title\n        type: int\n        required: true\n";

/// The `.sql` files in a directory of the project, sorted.
fn sql_files(project: &Project, dir: &str) -> Result<Vec<String>, Failure> {
    let mut names: Vec<String> = std::fs::read_dir(project.path().join(dir))?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    names.sort();
    Ok(names)
}

/// GF-CLI-8.
pub(super) async fn generate_offline(cx: &mut Cx) -> Result<(), Failure> {
    let project = Project::new(cx).await?;
    project.write("v1.yml", BLUEPRINT_V1)?;
    project.write("v2.yml", BLUEPRINT_V2)?;
    // A database the generator must not touch: its file must still be absent afterwards.
    let untouched = cx.database(Db::Sqlite).await?;
    let untouched_url = database_url(cx, &untouched)?;
    let Attached::Sqlite(untouched_file) = &untouched else {
        return Err(Failure::harness("a SQLite database was asked for"));
    };
    let env = [("DATABASE_URL", untouched_url.as_str())];

    let what = "migrate generate init --from=v1.yml";
    let run = project
        .run(cx, &["migrate", "generate", "init", "--from=v1.yml"], &env)
        .await?;
    expect_success(what, &run)?;
    let files = sql_files(&project, "migrations")?;
    cx.note("migration files after the first generate", format!("{files:?}"));
    let [file] = files.as_slice() else {
        return Err(Failure::violation(
            format!("{what}: one numbered migration file"),
            format!("{files:?}"),
        ));
    };
    let text = std::fs::read_to_string(project.path().join("migrations").join(file))?;
    cx.note(format!("migrations/{file}"), &text);
    for needle in ["-- +migrate Version 1", "-- +migrate Up", "-- +migrate Down", "posts"] {
        if !text.contains(needle) {
            return Err(Failure::violation(
                format!("{what}: the file has {needle:?}"),
                text.clone(),
            ));
        }
    }
    if !project.path().join("migrations/schema.snapshot.json").is_file() {
        return Err(Failure::violation(
            format!("{what}: migrations/schema.snapshot.json written"),
            "no snapshot file",
        ));
    }
    if untouched_file.path().exists() {
        return Err(Failure::violation(
            format!("{what}: no database touched"),
            format!("the DATABASE_URL file {} was created", untouched_file.path().display()),
        ));
    }

    let what = "migrate generate again with no change";
    let run = project
        .run(cx, &["migrate", "generate", "again", "--from=v1.yml"], &env)
        .await?;
    expect_success(what, &run)?;
    expect_text(what, &run, "nothing to generate")?;
    if sql_files(&project, "migrations")?.len() != 1 {
        return Err(Failure::violation(format!("{what}: no new file"), run.summary()));
    }

    let what = "migrate generate without --from";
    let run = project.run(cx, &["migrate", "generate", "nofrom"], &env).await?;
    expect_refusal(what, &run)?;
    expect_text(what, &run, "--from")?;

    let target = cx.database(Db::Sqlite).await?;
    let what = "migrate up of the generated file";
    let run = migrate(cx, &project, &target, &["up"]).await?;
    expect_success(what, &run)?;
    expect_table(what, &target, "posts", true).await?;

    // migrations.md: "Type changes are DETECTED and surfaced as destructive changes (refused
    // unless AllowDestructive is set)". Both dialects, each with its own snapshot.
    let mut emitted = Vec::new();
    for (driver, dir) in [("sqlite3", "migrations"), ("postgres", "pg_migrations")] {
        let driver_flag = format!("--driver={driver}");
        let dir_flag = format!("--migrations={dir}");
        if dir != "migrations" {
            let run = project
                .run(
                    cx,
                    &["migrate", "generate", "init", "--from=v1.yml", &driver_flag, &dir_flag],
                    &env,
                )
                .await?;
            expect_success(&format!("migrate generate init for {driver}"), &run)?;
        }
        let before = sql_files(&project, dir)?;
        let run = project
            .run(
                cx,
                &[
                    "migrate",
                    "generate",
                    "retype",
                    "--from=v2.yml",
                    &driver_flag,
                    &dir_flag,
                ],
                &env,
            )
            .await?;
        let after = sql_files(&project, dir)?;
        let new: Vec<&String> = after.iter().filter(|f| !before.contains(f)).collect();
        let mut written = String::new();
        for f in &new {
            written.push_str(&std::fs::read_to_string(project.path().join(dir).join(f))?);
        }
        cx.note(
            format!("generate of a type change ({driver})"),
            format!("{}; wrote {new:?}: {written}", run.status),
        );
        if run.success() && !new.is_empty() {
            emitted.push(format!("{driver}: exit 0, wrote {new:?}:\n{}", written.trim()));
        }
    }
    if !emitted.is_empty() {
        return Err(Failure::violation(
            "a field type change (string to int) is refused as destructive unless AllowDestructive is set",
            format!("migrate generate emitted it unrefused: {}", emitted.join("\n")),
        ));
    }
    Ok(())
}
