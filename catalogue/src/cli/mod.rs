//! CLI: GoFastr's `gofastr migrate` command (gofastr.md §E): `up`, `status`, `down`, `force` and
//! `generate`, with checksums, dirty state, the advisory lock shared with app boot, the
//! destructive-change gate and `--create-db`, on SQLite and Postgres.
//!
//! The CLI is not the candidate: it is the `cmd/gofastr` program of the very framework module the
//! candidate pins, built once per run by [`harness::tool`] and cached with the candidate builds.
//! Each scenario works in a project directory of its own (`migrations/*.sql` written by the
//! scenario, as an operator would commit them) and runs the CLI there with a cleared, recorded
//! environment; what the CLI did is then read back from the database itself (`_migrations` and the
//! tables the migrations create, through sqlx), never inferred from its messages alone. Messages
//! are matched on substrings (catalogue note D11: punctuation changed between releases).
//!
//! `mod.rs` holds the clause table and the shared machinery (project directory, one CLI run,
//! reading the tracking table); `apply.rs` has `up`/`status`/URL resolution/rollback, `state.rs`
//! checksums and dirty state, `postgres.rs` the lock and `--create-db`, `generate.rs` the
//! offline generator.

mod apply;
mod generate;
mod postgres;
mod state;

use harness::timeouts::CLI_RUN;
use harness::tool::{self, ToolRun};
use harness::verdict::{Failure, Level};
use harness::workdir::Workdir;
use sqlx::Connection;

use engine::check;
use engine::clause::{Clause, DocRef, Needs};
use engine::cx::{Attached, Cx};

/// The CLI's package inside the framework module.
const CLI_PACKAGE: &str = "cmd/gofastr";

/// The tracking table the docs name (migrations.md › Tracking table).
const TRACKING_TABLE: &str = "_migrations";

/// The CLI clauses (GoFastr only: GoFr ships no migration CLI).
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-CLI-1",
            level: Level::Must,
            promise: "`gofastr migrate up` applies pending migrations in version order, records each in `_migrations` with the SHA-256 of its Up SQL and dirty=false, and applies nothing twice.",
            doc: DocRef::at("migrations.md", "CLI; Tracking table; deploy.md › Migrations"),
            method: "Two files whose filename order is the reverse of their version order (version 2 needs version 1's table); `migrate up` on SQLite and on Postgres (`--driver=postgres`); read `_migrations` and the table; run `up` again.",
            needs: Needs::POSTGRES,
            check: check!(apply::up_applies_in_order),
        },
        Clause {
            id: "GF-CLI-2",
            level: Level::Must,
            promise: "The database comes from `--db-url`, else the DATABASE_URL variable, else DATABASE_URL in a `.env` in the working directory; deploy.md's `gofastr migrate up --db-url=\"$DATABASE_URL\"` migrates a Postgres DATABASE_URL.",
            doc: DocRef::at("migrations.md", "CLI › Flags & inputs; deploy.md › Migrations"),
            method: "Three SQLite files named by the flag, the variable and `.env`; remove one source at a time and see which file gets `_migrations`; then run deploy.md's command verbatim with a Postgres URL.",
            needs: Needs::POSTGRES,
            check: check!(apply::url_sources),
        },
        Clause {
            id: "GF-CLI-3",
            level: Level::Must,
            promise: "`gofastr migrate status` prints the applied count and each pending version, exits 0, and creates `_migrations` lazily.",
            doc: DocRef::at("migrations.md", "CLI; Tracking table"),
            method: "`status` on a fresh database with two files, then `up`, then `status` again, on SQLite and Postgres.",
            needs: Needs::POSTGRES,
            check: check!(apply::status_reports),
        },
        Clause {
            id: "GF-CLI-4",
            level: Level::Must,
            promise: "Editing an applied migration's Up is caught on the next `up` (ChecksumMismatchError): nothing more is applied.",
            doc: DocRef::at("migrations.md", "Production safety › Checksum drift detection"),
            method: "`up` one file; append a statement to its Up and add a second file; `up` again must fail and leave both the edit and the new file unapplied, on SQLite and Postgres.",
            needs: Needs::POSTGRES,
            check: check!(state::drift_refused),
        },
        Clause {
            id: "GF-CLI-5",
            level: Level::Must,
            promise: "A failed NoTransaction migration stays dirty; every later `up`/`down` refuses until `migrate force`, which clears it (`--not-applied` removes the row).",
            doc: DocRef::at("migrations.md", "Non-transactional migrations; CLI"),
            method: "A NoTransaction migration whose second statement fails; `up`, `up`, `down`, `status`, `force 2`, `up`, `force 3 --not-applied`, reading `_migrations` after each, on SQLite and Postgres.",
            needs: Needs::POSTGRES,
            check: check!(state::dirty_until_forced),
        },
        Clause {
            id: "GF-CLI-6",
            level: Level::Must,
            promise: "A failing transactional migration rolls back: no `_migrations` row, no partial DDL.",
            doc: DocRef::at("migrations.md", "Common mistakes; Production safety › Atomicity"),
            method: "One migration creating a table and then failing; `up` must fail and leave neither the table nor a tracking row, on SQLite and Postgres.",
            needs: Needs::POSTGRES,
            check: check!(apply::failed_migration_leaves_no_trace),
        },
        Clause {
            id: "GF-CLI-7",
            level: Level::Must,
            promise: "The CLI and app boot share the Postgres advisory lock: an app booting while `migrate up` runs does not serve until the CLI is done.",
            doc: DocRef::at("migrations.md", "Production safety › Advisory locking"),
            method: "`migrate up` of a migration that sleeps 3 s in Postgres; once the sleep holds the lock, boot the candidate on the same database; the candidate must not listen before the CLI exits, then must become live.",
            needs: Needs::POSTGRES,
            check: check!(postgres::lock_shared_with_boot),
        },
        Clause {
            id: "GF-CLI-8",
            level: Level::Must,
            promise: "`gofastr migrate generate <name> --from=<blueprint>` writes a numbered Up/Down file and the snapshot offline, says when nothing changed, needs `--from`, and refuses a column type change unless destructive changes are allowed.",
            doc: DocRef::at("migrations.md", "Generating migrations from entity changes"),
            method: "Generate from a one-entity blueprint with DATABASE_URL naming a file that must stay absent; generate again; generate without --from; apply with `up`; then change a field's type and generate for SQLite and Postgres.",
            needs: Needs::NONE,
            check: check!(generate::generate_offline),
        },
        Clause {
            id: "GF-CLI-9",
            level: Level::Must,
            promise: "`migrate up --create-db` creates a missing Postgres database (and is a no-op when it exists, and on SQLite).",
            doc: DocRef::at("migrations.md", "Creating the database; CLI › Flags & inputs"),
            method: "`up --create-db --driver=postgres` against a database name that does not exist; check it exists with `_migrations`; run again; then `up --create-db` on SQLite.",
            needs: Needs::POSTGRES,
            check: check!(postgres::create_db),
        },
    ]
}

/// A project directory the CLI runs in, and the CLI binary.
struct Project {
    dir: Workdir,
    cli: std::path::PathBuf,
}

impl Project {
    /// Build (or reuse) the CLI of the candidate's framework version and make an empty project.
    async fn new(cx: &mut Cx) -> Result<Project, Failure> {
        let cli = cx.framework_tool(CLI_PACKAGE).await?;
        cx.note("gofastr CLI", &cli.source);
        // Whether this run built the CLI or found it in the build cache is the cache's state,
        // not the candidate's behaviour: a sample.
        cx.note_sample(
            "gofastr CLI build",
            format!("{} in {:?}", if cli.cached { "cached" } else { "built" }, cli.took),
        );
        let dir = Workdir::new("gofastr-cli")?;
        std::fs::create_dir(dir.cwd().join("migrations"))?;
        Ok(Project { dir, cli: cli.binary })
    }

    /// Write a file relative to the project directory.
    fn write(&self, relative: &str, contents: &str) -> Result<(), Failure> {
        self.dir.write(relative, contents)?;
        Ok(())
    }

    /// Write `migrations/<file>` in the documented directive format.
    fn migration(&self, file: &str, m: &Migration) -> Result<(), Failure> {
        self.write(&format!("migrations/{file}"), &m.render())
    }

    /// The project directory.
    fn path(&self) -> &std::path::Path {
        self.dir.cwd()
    }

    /// Run `gofastr <args>` here with exactly `env`, recorded.
    async fn run(&self, cx: &mut Cx, args: &[&str], env: &[(&str, &str)]) -> Result<ToolRun, Failure> {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let launch = tool::launch(&self.cli, self.path(), args, env);
        cx.run_tool(&launch, CLI_RUN).await
    }
}

/// One migration file's content.
struct Migration {
    version: u64,
    name: &'static str,
    no_transaction: bool,
    up: String,
    down: String,
}

impl Migration {
    /// A transactional migration.
    fn new(version: u64, name: &'static str, up: &str, down: &str) -> Migration {
        Migration {
            version,
            name,
            no_transaction: false,
            up: up.to_string(),
            down: down.to_string(),
        }
    }

    /// The file text, directives as migrations.md › SQL file format shows them.
    fn render(&self) -> String {
        let mut text = format!("-- +migrate Version {}\n-- +migrate Name {}\n", self.version, self.name);
        if self.no_transaction {
            text.push_str("-- +migrate NoTransaction\n");
        }
        text.push_str(&format!(
            "-- +migrate Up\n{}\n-- +migrate Down\n{}\n",
            self.up, self.down
        ));
        text
    }

    /// The checksum the docs promise: the SHA-256 of the Up SQL (as the file holds it, trimmed).
    fn checksum(&self) -> String {
        tool::sha256_hex(self.up.trim().as_bytes())
    }
}

/// One row of `_migrations`.
#[derive(Debug, Clone, PartialEq)]
struct Tracked {
    version: i64,
    name: String,
    checksum: String,
    dirty: bool,
}

impl std::fmt::Display for Tracked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let short: String = self.checksum.chars().take(12).collect();
        write!(
            f,
            "{} {} checksum={short} dirty={}",
            self.version, self.name, self.dirty
        )
    }
}

fn show(rows: &[Tracked]) -> String {
    if rows.is_empty() {
        return "(no rows)".into();
    }
    rows.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; ")
}

/// The value of DATABASE_URL that points the CLI (and the candidate) at `db`.
fn database_url(cx: &Cx, db: &Attached) -> Result<String, Failure> {
    cx.profile()
        .db_env(&db.target())
        .remove("DATABASE_URL")
        .ok_or_else(|| Failure::harness("the profile gives no DATABASE_URL for this database"))
}

/// The CLI flags that select `db`'s driver (migrations.md: `--driver` defaults to `sqlite3`).
fn driver_args(db: &Attached) -> Vec<&'static str> {
    match db {
        Attached::Sqlite(_) => vec![],
        Attached::Postgres { .. } => vec!["--driver=postgres"],
    }
}

/// Run `gofastr migrate <args>` in `project` against `db` (DATABASE_URL in the environment, the
/// driver flag for Postgres).
async fn migrate(cx: &mut Cx, project: &Project, db: &Attached, args: &[&str]) -> Result<ToolRun, Failure> {
    let url = database_url(cx, db)?;
    let mut all = vec!["migrate"];
    all.extend_from_slice(args);
    all.extend(driver_args(db));
    project.run(cx, &all, &[("DATABASE_URL", &url)]).await
}

/// The rows of `_migrations`, or `None` when the table does not exist.
async fn tracking_rows(db: &Attached) -> Result<Option<Vec<Tracked>>, Failure> {
    if !table_exists(db, TRACKING_TABLE).await? {
        return Ok(None);
    }
    let sql = format!("SELECT version, name, checksum, dirty FROM {TRACKING_TABLE} ORDER BY version");
    let rows: Vec<(i64, String, String, bool)> = match db {
        Attached::Sqlite(file) => {
            let mut conn = file.connect().await?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await?;
            conn.close().await?;
            rows
        }
        Attached::Postgres { db, .. } => {
            let mut conn = db.connect().await?;
            let rows = sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await?;
            conn.close().await?;
            rows
        }
    };
    Ok(Some(
        rows.into_iter()
            .map(|(version, name, checksum, dirty)| Tracked {
                version,
                name,
                checksum,
                dirty,
            })
            .collect(),
    ))
}

/// The rows of `_migrations`, none when the table does not exist.
async fn rows(db: &Attached) -> Result<Vec<Tracked>, Failure> {
    Ok(tracking_rows(db).await?.unwrap_or_default())
}

/// True when `table` exists in `db` (a SQLite file that was never created has no tables).
async fn table_exists(db: &Attached, table: &str) -> Result<bool, Failure> {
    let n: i64 = match db {
        Attached::Sqlite(file) => {
            if !file.path().exists() {
                return Ok(false);
            }
            let mut conn = file.connect().await?;
            let n = sqlx::query_scalar("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?")
                .bind(table)
                .fetch_one(&mut conn)
                .await?;
            conn.close().await?;
            n
        }
        Attached::Postgres { db, .. } => {
            let mut conn = db.connect().await?;
            let n = sqlx::query_scalar(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(table)
            .fetch_one(&mut conn)
            .await?;
            conn.close().await?;
            n
        }
    };
    Ok(n > 0)
}

/// Expect a zero exit, or fail naming `what` with the run as the actual.
fn expect_success(what: &str, run: &ToolRun) -> Result<(), Failure> {
    if run.success() {
        Ok(())
    } else {
        Err(Failure::violation(format!("{what}: exit 0"), run.summary()))
    }
}

/// Expect a non-zero exit, or fail naming `what`.
fn expect_refusal(what: &str, run: &ToolRun) -> Result<(), Failure> {
    if run.success() {
        Err(Failure::violation(format!("{what}: a non-zero exit"), run.summary()))
    } else {
        Ok(())
    }
}

/// Expect `needle` (case-insensitive) in the run's output.
fn expect_text(what: &str, run: &ToolRun, needle: &str) -> Result<(), Failure> {
    if run.text().to_lowercase().contains(&needle.to_lowercase()) {
        Ok(())
    } else {
        Err(Failure::violation(
            format!("{what}: output mentioning {needle:?}"),
            run.summary(),
        ))
    }
}

/// Expect `table` to exist (or not) in `db`.
async fn expect_table(what: &str, db: &Attached, table: &str, present: bool) -> Result<(), Failure> {
    let exists = table_exists(db, table).await?;
    if exists == present {
        return Ok(());
    }
    let (want, got) = if present {
        ("exists", "absent")
    } else {
        ("is absent", "exists")
    };
    Err(Failure::violation(
        format!("{what}: table {table} {want}"),
        format!("table {table} {got}"),
    ))
}
