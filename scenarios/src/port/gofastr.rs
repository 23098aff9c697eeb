//! GoFastr's PORT clauses (gofastr.md §A): `PORT` normalisation, the scaffold's default, the
//! listener binding last, and the worktree port remap.

use std::net::TcpListener;
use std::time::Duration;

use harness::poll::Poll;
use harness::probe::Connect;
use harness::verdict::{Failure, Level};
use harness::{ports, probe, timeouts};

use super::*;
use crate::check;
use crate::clause::{Clause, DocRef, Need};
use crate::cx::{Cx, Db};
use crate::profile::Framework;

/// GoFastr's PORT clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-PORT-1",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Must,
            promise: "A bare numeric PORT is normalised to listen on every interface.",
            doc: DocRef {
                page: "deploy.md",
                heading: "Configuration (env)",
            },
            method: "Boot with PORT=<n>; read the bound address of the listening socket from /proc; probe liveness on loopback.",
            needs: &[],
            check: check!(bare_port_listens_everywhere),
        },
        Clause {
            id: "GF-PORT-2",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Must,
            promise: "With PORT unset, the app listens on :8080 (every interface).",
            doc: DocRef {
                page: "deploy.md",
                heading: "The single-binary model",
            },
            method: "Boot with PORT unset; expect a socket bound to the unspecified address on port 8080.",
            needs: &[],
            check: check!(default_port_listens_everywhere),
        },
        Clause {
            id: "GF-PORT-3",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Must,
            promise: "An explicit host:port or :port in PORT is honoured verbatim.",
            doc: DocRef {
                page: "deploy.md",
                heading: "Configuration (env)",
            },
            method: "Boot with PORT=127.0.0.1:<n> (expect loopback only) and with PORT=:<n> (expect every interface).",
            needs: &[],
            check: check!(explicit_address_is_verbatim),
        },
        Clause {
            id: "GF-PORT-4",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Should,
            promise: "The listener binds last: while boot migration waits, nothing listens.",
            doc: DocRef {
                page: "framework/app.go",
                heading: "OnReady: every earlier phase has already succeeded",
            },
            method: "Hold GoFastr's migration advisory lock in the candidate's Postgres database, boot, wait until the candidate is seen polling for the lock, check no socket is bound, release the lock, expect liveness.",
            needs: &[Need::Postgres],
            check: check!(binds_after_migration_lock),
        },
        Clause {
            id: "GF-PORT-5",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Info,
            promise: "A port already in use ends the process with an error (after migrations ran).",
            doc: DocRef {
                page: "framework/app.go",
                heading: "Start: listen and serve",
            },
            method: "Hold the port on loopback, boot on it, record exit status, the error line and whether the entity table was created.",
            needs: &[],
            check: check!(port_in_use_gofastr),
        },
        Clause {
            id: "GF-PORT-6",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Info,
            promise: "PORT=0 binds an ephemeral port and the banner reports the real one.",
            doc: DocRef {
                page: "framework/app.go",
                heading: "printStartupBanner",
            },
            method: "Boot with PORT=0, read the bound port from /proc and compare with the banner's Listening line.",
            needs: &[],
            check: check!(ephemeral_port_banner),
        },
        Clause {
            id: "GF-PORT-7",
            framework: Framework::GoFastr,
            area: "PORT",
            level: Level::Should,
            promise: "Inside a linked git worktree, Start remaps the requested port unless GOFASTR_ISOLATION=off.",
            doc: DocRef {
                page: "isolation.md",
                heading: "What is isolated",
            },
            method: "Run from a linked `git worktree` without GOFASTR_ISOLATION and expect a different port than requested; with GOFASTR_ISOLATION=off expect the requested one.",
            needs: &[],
            check: check!(worktree_remaps_port),
        },
    ]
}

/// GoFastr's boot-migration advisory lock key (framework/migrate: AdvisoryLockKey).
const GOFASTR_MIGRATION_LOCK: i64 = 6724469554113028193;

async fn binds_after_migration_lock(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Postgres).await?;
    let crate::cx::Attached::Postgres { db: database, .. } = &db else {
        unreachable!("asked for Postgres")
    };
    let mut holder = database.connect().await?;
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(GOFASTR_MIGRATION_LOCK)
        .execute(&mut holder)
        .await?;
    cx.note(
        "advisory lock",
        format!("held by the harness in database {}", database.name),
    );
    let spec = cx.spec(Some(&db))?;
    let mut app = cx.start(spec)?;
    let port = app.port.expect("spec sets a port");

    // The condition: the candidate has asked for the lock at least once (its backend's last
    // query is the try-lock), so it is now inside the wait.
    let watcher = std::sync::Arc::new(tokio::sync::Mutex::new(database.connect().await?));
    let dbname = database.name.clone();
    let seen = app
        .running
        .wait_until("the candidate to poll for the migration advisory lock", timeouts::boot(), || {
            let (watcher, dbname) = (watcher.clone(), dbname.clone());
            async move {
                let mut conn = watcher.lock().await;
                let query = sqlx::query_scalar::<_, String>(
                    "SELECT query FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() AND query ILIKE '%advisory%lock%' LIMIT 1",
                )
                .bind(dbname)
                .fetch_optional(&mut *conn)
                .await;
                match query {
                    Ok(Some(q)) => Poll::Ready(q),
                    Ok(None) => Poll::NotYet("no backend of the candidate has asked for the lock yet".into()),
                    Err(e) => Poll::NotYet(format!("pg_stat_activity: {e}")),
                }
            }
        })
        .await;
    let seen = match seen {
        Ok(q) => q,
        Err(err) => {
            return Err(Failure::harness(format!(
                "could not see the candidate wait for the lock: {err}"
            )));
        }
    };
    cx.note("candidate waiting", seen.trim());
    let sockets = app.running.listening()?;
    let connect = probe::tcp_connect(app.addr().expect("port"), Duration::from_secs(2)).await?;
    cx.note(
        "while waiting",
        format!(
            "sockets [{}], connect to port {port}: {connect:?}",
            fmt_sockets(&sockets)
        ),
    );
    if !sockets.is_empty() || connect != Connect::Refused {
        return Err(Failure::violation(
            "nothing listens while boot migration waits for its lock",
            format!("listening on [{}]; connect {connect:?}", fmt_sockets(&sockets)),
        ));
    }
    sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(GOFASTR_MIGRATION_LOCK)
        .execute(&mut holder)
        .await?;
    cx.note("advisory lock", "released");
    cx.wait_live(&mut app).await
}

async fn port_in_use_gofastr(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let spec = cx.spec(Some(&db))?;
    let port = spec.port.expect("spec sets a port");
    let _held = TcpListener::bind(("127.0.0.1", port))?;
    cx.note("held by the harness", format!("127.0.0.1:{port}"));
    let mut app = cx.start(spec)?;
    let exit = cx.wait_exit(&mut app, timeouts::REFUSE_TO_BOOT).await?;
    match exit {
        Some(exit) => cx.note("exit", exit.status),
        None => cx.note("exit", format!("still running after {:?}", timeouts::REFUSE_TO_BOOT)),
    }
    if let Some(line) = app.running.output().find(|l| l.text.contains("address already in use")) {
        cx.note("error line", line.plain());
    }
    if let crate::cx::Attached::Sqlite(file) = &db {
        if file.path().exists() {
            let mut conn = file.connect().await?;
            let tables: Vec<String> =
                sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
                    .fetch_all(&mut conn)
                    .await?;
            cx.note("tables after the failed boot", tables.join(", "));
        } else {
            cx.note("tables after the failed boot", "(database file never created)");
        }
    }
    Ok(())
}

async fn ephemeral_port_banner(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let port_env = cx.profile().port_env;
    let mut spec = cx.spec(Some(&db))?;
    spec.set(port_env, "0");
    spec.port = None;
    let mut app = cx.start(spec)?;
    let sockets = listening_sockets(cx, &mut app).await?;
    let banner = app
        .running
        .output()
        .wait_for_line("with `Listening:`", timeouts::boot(), |l| {
            l.plain().contains("Listening:")
        })
        .await;
    match banner {
        Ok(line) => {
            let text = line.plain();
            cx.note("banner", text.trim());
            let port = text.rsplit(':').next().and_then(|p| p.trim().parse::<u16>().ok());
            let matches = port.is_some_and(|p| sockets.iter().any(|s| s.port() == p));
            cx.note("banner port matches the bound port", matches);
        }
        Err(err) => cx.note("banner", err),
    }
    Ok(())
}

async fn worktree_remaps_port(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let port_env = cx.profile().port_env;
    for isolation_off in [false, true] {
        let mut spec = cx.spec(Some(&db))?;
        let requested = spec.port.expect("spec sets a port");
        if !isolation_off {
            spec.unset("GOFASTR_ISOLATION");
        }
        linked_worktree(spec.workdir.root(), spec.workdir.cwd())?;
        let mut app = cx.start(spec)?;
        let sockets = listening_sockets(cx, &mut app).await?;
        let case = if isolation_off {
            "GOFASTR_ISOLATION=off"
        } else {
            "GOFASTR_ISOLATION unset"
        };
        cx.note(
            case,
            format!("{port_env}={requested}, listening on {}", fmt_sockets(&sockets)),
        );
        let on_requested = sockets.iter().any(|s| s.port() == requested);
        match (isolation_off, on_requested) {
            (false, true) => {
                return Err(Failure::violation(
                    "in a linked worktree the requested port is remapped",
                    format!("listening on the requested port {requested}"),
                ));
            }
            (true, false) => {
                return Err(Failure::violation(
                    "with GOFASTR_ISOLATION=off the requested port is used",
                    format!("requested {requested}, listening on {}", fmt_sockets(&sockets)),
                ));
            }
            _ => {}
        }
        let actual = sockets.first().map(|s| s.port()).unwrap_or(requested);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], actual));
        let live = cx.get_at(addr, cx.profile().liveness).await?;
        cx.expect_status("liveness on the port actually bound", &live, 200)?;
    }
    Ok(())
}

/// Make `cwd` a linked worktree of a fresh repository created beside it.
#[expect(
    clippy::disallowed_methods,
    reason = "git prepares the worktree fixture; it is not a candidate"
)]
fn linked_worktree(root: &std::path::Path, cwd: &std::path::Path) -> Result<(), Failure> {
    let repo = root.join("repo");
    let git = |args: &[&str], dir: &std::path::Path| -> Result<(), Failure> {
        let out = std::process::Command::new("git")
            .args([
                "-c",
                "user.name=conform",
                "-c",
                "user.email=conform@localhost",
                "-c",
                "init.defaultBranch=main",
            ])
            .args(args)
            .current_dir(dir)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", root)
            .output()
            .map_err(|e| Failure::harness(format!("running git: {e} (git is needed for GF-PORT-7)")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(Failure::harness(format!(
                "git {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        }
    };
    if !repo.exists() {
        std::fs::create_dir(&repo)?;
        git(&["init", "-q"], &repo)?;
        git(&["commit", "-q", "--allow-empty", "-m", "conform"], &repo)?;
    }
    std::fs::remove_dir(cwd)?;
    let name = format!("wt-{}", ports::free_port()?);
    git(
        &["worktree", "add", "-q", "-b", &name, &cwd.display().to_string()],
        &repo,
    )
}
