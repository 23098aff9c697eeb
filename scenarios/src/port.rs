//! PORT: which address a candidate listens on, and how it reads its port configuration.
//!
//! "Listens on all interfaces" is judged from the bound address of the candidate's listening
//! socket (read from `/proc`), never by connecting to a non-loopback address; the liveness probe
//! on loopback proves the socket serves. Where a documented default port is checked (8080, 8000,
//! 2121), the port comes from the profile and a port already taken on the machine is a harness
//! error, not a verdict.

use std::net::TcpListener;
use std::time::Duration;

use harness::poll::Poll;
use harness::probe::Connect;
use harness::sockets::{ListenSocket, Reach};
use harness::verdict::{Failure, Level};
use harness::{ports, probe, timeouts};

use crate::check;
use crate::clause::{Clause, DocRef, Need};
use crate::cx::{App, Cx, Db};
use crate::profile::Framework;

/// The PORT clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
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
        Clause {
            id: "GR-PORT-1",
            framework: Framework::GoFr,
            area: "PORT",
            level: Level::Must,
            promise: "HTTP_PORT sets the listen port on every interface; unset, it is 8000.",
            doc: DocRef {
                page: "references/configs",
                heading: "App: HTTP_PORT (default 8000)",
            },
            method: "Boot with HTTP_PORT=<n> and with it unset; read bound addresses from /proc; probe liveness. Odd values (0, -5, abc, ' 8001') are recorded, not graded.",
            needs: &[],
            check: check!(gofr_http_port),
        },
        Clause {
            id: "GR-PORT-2",
            framework: Framework::GoFr,
            area: "PORT",
            level: Level::Must,
            promise: "Metrics are served on METRICS_PORT (default 2121); METRICS_PORT=0 disables the metrics server.",
            doc: DocRef {
                page: "quick-start/observability",
                heading: "Disabling the Metrics Server",
            },
            method: "Boot with METRICS_PORT unset (expect /metrics on 2121) and with METRICS_PORT=0 (expect the log line and no metrics listener).",
            needs: &[],
            check: check!(gofr_metrics_port),
        },
        Clause {
            id: "GR-PORT-5",
            framework: Framework::GoFr,
            area: "PORT",
            level: Level::Must,
            promise: "With CERT_FILE and KEY_FILE set, the server speaks TLS on HTTP_PORT with that certificate.",
            doc: DocRef {
                page: "references/configs",
                heading: "HTTP: CERT_FILE, KEY_FILE",
            },
            method: "Give the candidate a fresh self-signed certificate; complete a TLS handshake on HTTP_PORT trusting only that certificate and GET the liveness probe. A missing certificate file is recorded (log line, whether it exits).",
            needs: &[],
            check: check!(gofr_https),
        },
        Clause {
            id: "GR-PORT-3",
            framework: Framework::GoFr,
            area: "PORT",
            level: Level::Info,
            promise: "A busy HTTP or metrics port is fatal at boot (exit 1).",
            doc: DocRef {
                page: "pkg/gofr/factory.go",
                heading: "initMetricsServer",
            },
            method: "Hold the metrics port, then the HTTP port, on loopback; record exit status and the FATAL line.",
            needs: &[],
            check: check!(gofr_busy_ports),
        },
        Clause {
            id: "GR-PORT-4",
            framework: Framework::GoFr,
            area: "PORT",
            level: Level::Info,
            promise: "An HTTP_PORT that passes the busy check but cannot be bound leaves the process running.",
            doc: DocRef {
                page: "pkg/gofr/http_server.go",
                heading: "Run",
            },
            method: "Boot with HTTP_PORT=70000; wait for the listen error line; record whether the process still runs with only its metrics listener.",
            needs: &[],
            check: check!(gofr_unbindable_port),
        },
    ]
}

/// Start the app and wait until it listens, returning its sockets (or the boot failure).
async fn listening_sockets(cx: &mut Cx, app: &mut App) -> Result<Vec<ListenSocket>, Failure> {
    match app.running.wait_listening(timeouts::boot()).await {
        Ok(sockets) => {
            cx.note("listening", fmt_sockets(&sockets));
            Ok(sockets)
        }
        Err(err) => Err(Failure::violation("the candidate boots and listens", err.to_string())),
    }
}

/// Wait until the app listens on `port`; describe what it listens on either way (for notes).
async fn wait_port(app: &mut App, port: u16) -> String {
    let pid = app.running.pid();
    let waited = app
        .running
        .wait_until(&format!("a listener on port {port}"), timeouts::boot(), || async move {
            match harness::sockets::listening(pid) {
                Ok(s) if s.iter().any(|s| s.port() == port) => Poll::Ready(s),
                Ok(s) => Poll::NotYet(format!("listening on [{}]", fmt_sockets(&s))),
                Err(e) => Poll::NotYet(e.to_string()),
            }
        })
        .await;
    match waited {
        Ok(sockets) => format!("listening on {}", fmt_sockets(&sockets)),
        Err(err) => err.to_string(),
    }
}

/// "exited: <status>" or "still running, listening on [...]", for notes.
fn process_state(app: &mut App) -> Result<String, Failure> {
    Ok(match app.running.try_exit()? {
        Some(exit) => format!("exited: {}", exit.status),
        None => format!("still running, listening on [{}]", fmt_sockets(&app.running.listening().unwrap_or_default())),
    })
}

fn fmt_sockets(sockets: &[ListenSocket]) -> String {
    sockets.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
}

/// Expect a socket on `port` with `reach`.
fn expect_reach(sockets: &[ListenSocket], port: u16, reach: Reach, why: &str) -> Result<(), Failure> {
    let on_port: Vec<&ListenSocket> = sockets.iter().filter(|s| s.port() == port).collect();
    let expected = match reach {
        Reach::AllInterfaces => format!("{why}: a socket on port {port} bound to every interface (0.0.0.0 or [::])"),
        Reach::LoopbackOnly => format!("{why}: a socket on port {port} bound to loopback only"),
        Reach::Specific => format!("{why}: a socket on port {port} bound to one address"),
    };
    if on_port.is_empty() {
        return Err(Failure::violation(
            expected,
            format!("nothing on port {port}; listening on {}", fmt_sockets(sockets)),
        ));
    }
    if on_port.iter().all(|s| s.reach() == reach) {
        Ok(())
    } else {
        Err(Failure::violation(
            expected,
            format!(
                "bound to {}",
                on_port.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            ),
        ))
    }
}

/// A documented default port must be free on this machine for the check to mean anything.
fn require_free(port: u16) -> Result<(), Failure> {
    TcpListener::bind(("0.0.0.0", port)).map(drop).map_err(|e| {
        Failure::harness(format!(
            "port {port} (the documented default) is not free on this machine ({e}); cannot check the default"
        ))
    })
}

async fn bare_port_listens_everywhere(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let mut app = cx.boot(Some(&db)).await?;
    let port = app.port.expect("spec sets a port");
    cx.note(cx.profile().port_env, port);
    let sockets = listening_sockets(cx, &mut app).await?;
    expect_reach(
        &sockets,
        port,
        Reach::AllInterfaces,
        &format!("{}={port}", cx.profile().port_env),
    )
}

async fn default_port_listens_everywhere(cx: &mut Cx) -> Result<(), Failure> {
    let default = cx.profile().default_port;
    require_free(default)?;
    let db = cx.database(Db::Sqlite).await?;
    let port_env = cx.profile().port_env;
    let mut spec = cx.spec(Some(&db))?;
    spec.unset(port_env);
    spec.port = Some(default);
    let mut app = cx.start(spec)?;
    cx.wait_live(&mut app).await?;
    let sockets = listening_sockets(cx, &mut app).await?;
    // The default port is reused by the next boot of the same clause: wait until it is free.
    cx.kill(&mut app).await?;
    expect_reach(&sockets, default, Reach::AllInterfaces, &format!("{port_env} unset"))
}

async fn explicit_address_is_verbatim(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let port_env = cx.profile().port_env;
    for (template, reach) in [
        ("127.0.0.1:{port}", Reach::LoopbackOnly),
        (":{port}", Reach::AllInterfaces),
    ] {
        let mut app = cx
            .boot_with(Some(&db), |spec| {
                let port = spec.port.expect("spec sets a port");
                spec.set(port_env, template.replace("{port}", &port.to_string()));
                Ok(())
            })
            .await?;
        let port = app.port.expect("spec sets a port");
        cx.note(port_env, template.replace("{port}", &port.to_string()));
        let sockets = listening_sockets(cx, &mut app).await?;
        expect_reach(&sockets, port, reach, &format!("{port_env}={template}"))?;
    }
    Ok(())
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
#[expect(clippy::disallowed_methods, reason = "git prepares the worktree fixture; it is not a candidate")]
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

async fn gofr_http_port(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    // HTTP_PORT=<n>: listens on n, every interface.
    let mut app = cx.boot(Some(&db)).await?;
    let port = app.port.expect("spec sets a port");
    let sockets = listening_sockets(cx, &mut app).await?;
    expect_reach(&sockets, port, Reach::AllInterfaces, &format!("HTTP_PORT={port}"))?;
    drop(app);
    // Unset: the documented default.
    default_port_listens_everywhere(cx).await?;
    // Odd values, recorded: the docs give only the default.
    let default = cx.profile().default_port;
    for odd in ["0", "-5", "abc", " 8001"] {
        let mut spec = cx.spec(Some(&db))?;
        spec.set("HTTP_PORT", odd);
        spec.port = Some(default);
        let mut app = cx.start(spec)?;
        let seen = wait_port(&mut app, default).await;
        cx.note(format!("HTTP_PORT={odd:?}"), seen);
        cx.kill(&mut app).await?;
    }
    Ok(())
}

async fn gofr_metrics_port(cx: &mut Cx) -> Result<(), Failure> {
    let default = cx.profile().default_metrics_port.expect("gofr has a metrics port");
    require_free(default)?;
    let db = cx.database(Db::Sqlite).await?;
    let mut app = cx
        .boot_with(Some(&db), |spec| {
            spec.unset("METRICS_PORT");
            Ok(())
        })
        .await?;
    let sockets = listening_sockets(cx, &mut app).await?;
    expect_reach(&sockets, default, Reach::AllInterfaces, "METRICS_PORT unset")?;
    let metrics = cx
        .get_at(std::net::SocketAddr::from(([127, 0, 0, 1], default)), "/metrics")
        .await?;
    cx.expect_status("GET /metrics on the default metrics port", &metrics, 200)?;
    cx.kill(&mut app).await?;

    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set("METRICS_PORT", "0");
            Ok(())
        })
        .await?;
    let http_port = app.port.expect("spec sets a port");
    let disabled = app
        .running
        .output()
        .wait_for_line("saying the metrics server is disabled", Duration::from_secs(5), |l| {
            l.text.contains("Metrics server is disabled")
        })
        .await;
    let sockets = app.running.listening()?;
    cx.note("METRICS_PORT=0", format!("listening on {}", fmt_sockets(&sockets)));
    let others: Vec<&ListenSocket> = sockets.iter().filter(|s| s.port() != http_port).collect();
    if !others.is_empty() {
        return Err(Failure::violation(
            "METRICS_PORT=0: no metrics listener",
            format!(
                "also listening on {}",
                others.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    match disabled {
        Ok(line) => cx.note("log", line.plain()),
        Err(err) => {
            return Err(Failure::violation(
                "METRICS_PORT=0 logs that the metrics server is disabled",
                err.to_string(),
            ));
        }
    }
    for odd in ["-1", "abc"] {
        let mut spec = cx.spec(Some(&db))?;
        spec.set("METRICS_PORT", odd);
        let mut app = cx.start(spec)?;
        let seen = wait_port(&mut app, default).await;
        cx.note(format!("METRICS_PORT={odd:?}"), seen);
        cx.kill(&mut app).await?;
    }
    Ok(())
}

async fn gofr_https(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let cert = harness::tls::SelfSigned::generate()?;
    harness::redact::register_secret(cert.key_pem.trim());
    let mut spec = cx.spec(Some(&db))?;
    let port = spec.port.expect("spec sets a port");
    let cert_file = spec.workdir.write("tls/cert.pem", &cert.cert_pem)?;
    let key_file = spec.workdir.write("tls/key.pem", &cert.key_pem)?;
    spec.set("CERT_FILE", cert_file.display().to_string());
    spec.set("KEY_FILE", key_file.display().to_string());
    let mut app = cx.start(spec)?;
    let listening = wait_port(&mut app, port).await;
    cx.note("with CERT_FILE and KEY_FILE", &listening);
    let addr = app.addr().expect("port");
    let liveness = cx.profile().liveness;
    match harness::tls::get(addr, &cert, liveness, Duration::from_secs(5)).await? {
        harness::tls::Handshake::Completed { protocol, status_line } => {
            cx.note("TLS", format!("{protocol}, GET {liveness}: {status_line}"));
            if !status_line.contains(" 200") {
                return Err(Failure::violation(
                    format!("GET {liveness} over TLS answers 200"),
                    status_line,
                ));
            }
        }
        harness::tls::Handshake::Failed(why) => {
            return Err(Failure::violation(
                format!("a TLS handshake on HTTP_PORT {port} with the given certificate"),
                why,
            ));
        }
    }
    let plain = cx.get(&app, liveness).await?;
    cx.note("plain HTTP on the TLS port", plain.summary());
    cx.kill(&mut app).await?;

    // A certificate file that does not exist: recorded, not graded (the docs say nothing).
    let mut spec = cx.spec(Some(&db))?;
    spec.set("CERT_FILE", "/nonexistent/conform/cert.pem");
    spec.set("KEY_FILE", "/nonexistent/conform/key.pem");
    let mut app = cx.start(spec)?;
    let line = app
        .running
        .output()
        .wait_for_line(
            "on stderr (the app reporting the missing file)",
            Duration::from_secs(10),
            |l| l.stream == harness::output::Stream::Stderr,
        )
        .await;
    cx.note(
        "missing CERT_FILE: first stderr line",
        line.map(|l| l.plain()).unwrap_or_else(|e| e.to_string()),
    );
    cx.note("missing CERT_FILE: afterwards", process_state(&mut app)?);
    Ok(())
}

async fn gofr_busy_ports(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    for var in ["METRICS_PORT", "HTTP_PORT"] {
        let spec = cx.spec(Some(&db))?;
        let port: u16 = spec
            .env
            .get(var)
            .and_then(|v| v.parse().ok())
            .expect("spec sets both ports");
        let _held = TcpListener::bind(("127.0.0.1", port))?;
        let mut app = cx.start(spec)?;
        let exit = cx.wait_exit(&mut app, timeouts::REFUSE_TO_BOOT).await?;
        let line = app
            .running
            .output()
            .find(|l| l.text.contains("blocked or unreachable"))
            .map(|l| l.plain());
        cx.note(
            format!("{var} held by the harness"),
            format!(
                "{}; {}",
                exit.map(|e| e.status.to_string())
                    .unwrap_or_else(|| "still running".into()),
                line.unwrap_or_else(|| "(no 'blocked or unreachable' line)".into())
            ),
        );
    }
    Ok(())
}

async fn gofr_unbindable_port(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let mut spec = cx.spec(Some(&db))?;
    spec.set("HTTP_PORT", "70000");
    let mut app = cx.start(spec)?;
    let line = app
        .running
        .output()
        .wait_for_line("about the HTTP listen error", timeouts::boot(), |l| {
            l.text.contains("error while listening")
        })
        .await;
    cx.note("log", line.map(|l| l.plain()).unwrap_or_else(|e| e.to_string()));
    cx.note("afterwards", process_state(&mut app)?);
    Ok(())
}
