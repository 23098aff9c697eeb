//! GoFastr's PORT clauses (gofastr.md §A): `PORT` normalisation, the scaffold's default, the
//! listener binding last, and the worktree port remap.

use std::net::TcpListener;

use harness::verdict::{Failure, Level};
use harness::{ports, timeouts};

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::{Cx, Db};

/// GoFastr's PORT clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-PORT-1",
            level: Level::Must,
            promise: "A bare numeric PORT is normalised to listen on every interface.",
            doc: DocRef::at("deploy.md", "Configuration (env)"),
            method: "Boot with PORT=<n>; read the bound address of the listening socket from /proc; probe liveness on loopback.",
            needs: Needs::NONE,
            check: check!(bare_port_listens_everywhere),
        },
        Clause {
            id: "GF-PORT-2",
            level: Level::Must,
            promise: "With PORT unset, the app listens on :8080 (every interface).",
            doc: DocRef::at("deploy.md", "The single-binary model"),
            method: "Boot with PORT unset; expect a socket bound to the unspecified address on port 8080.",
            needs: Needs::NONE,
            check: check!(default_port_listens_everywhere),
        },
        Clause {
            id: "GF-PORT-3",
            level: Level::Must,
            promise: "An explicit host:port or :port in PORT is honoured verbatim.",
            doc: DocRef::at("deploy.md", "Configuration (env)"),
            method: "Boot with PORT=127.0.0.1:<n> (expect loopback only) and with PORT=:<n> (expect every interface).",
            needs: Needs::NONE,
            check: check!(explicit_address_is_verbatim),
        },
        Clause {
            id: "GF-PORT-4",
            level: Level::Should,
            promise: "The listener binds last: while boot migration waits, nothing listens.",
            doc: DocRef::at("framework/app.go", "OnReady: every earlier phase has already succeeded"),
            method: "Hold GoFastr's migration advisory lock in the candidate's Postgres database, boot, wait until the candidate is seen polling for the lock, check no socket is bound, release the lock, expect liveness.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(crate::migration::waits_for_held_lock),
        },
        Clause {
            id: "GF-PORT-5",
            level: Level::Info,
            promise: "A port already in use ends the process with an error (after migrations ran).",
            doc: DocRef::at("framework/app.go", "Start: listen and serve"),
            method: "Hold the port on loopback, boot on it, record exit status, the error line and whether the entity table was created.",
            needs: Needs::NONE,
            check: check!(port_in_use_gofastr),
        },
        Clause {
            id: "GF-PORT-6",
            level: Level::Info,
            promise: "PORT=0 binds an ephemeral port and the banner reports the real one.",
            doc: DocRef::at("framework/app.go", "printStartupBanner"),
            method: "Boot with PORT=0, read the bound port from /proc and compare with the banner's Listening line.",
            needs: Needs::NONE,
            check: check!(ephemeral_port_banner),
        },
        Clause {
            id: "GF-PORT-7",
            level: Level::Should,
            promise: "Inside a linked git worktree, Start remaps the requested port unless GOFASTR_ISOLATION=off.",
            doc: DocRef::at("isolation.md", "What is isolated"),
            method: "Run from a linked `git worktree` without GOFASTR_ISOLATION and expect a different port than requested; with GOFASTR_ISOLATION=off expect the requested one.",
            needs: Needs::NONE,
            check: check!(worktree_remaps_port),
        },
    ]
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
    if let engine::cx::Attached::Sqlite(file) = &db {
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
fn linked_worktree(root: &std::path::Path, cwd: &std::path::Path) -> Result<(), Failure> {
    let repo = root.join("repo");
    let git = |args: &[&str], dir: &std::path::Path| -> Result<(), Failure> {
        let mut git = harness::process::command("git");
        git.args([
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
        .env("HOME", root);
        let out = harness::process::output(&mut git, timeouts::LOCAL_TOOL)
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
