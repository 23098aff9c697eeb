//! BIN and DB: GoFastr's single static binary (gofastr.md §J) and its two databases chosen by
//! `DATABASE_URL` (§K).
//!
//! "Static" is read from the executable's own ELF program headers (no `PT_INTERP`: no loader
//! named, nothing to find at run time), not from `ldd`'s output. "Runs from an empty directory"
//! copies only the executable into a fresh working directory and serves the embedded UI runtime
//! from there. The database clauses boot the same binary on each database the deploy docs name,
//! drive the entity's REST routes, and read the resulting rows and DDL back with the harness's
//! own client. Under the docker provider GF-BIN-2 also runs the binary the way it ships: alone in
//! its `FROM scratch` image as a non-root user (`harness::service::scratch_image`), host network.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use harness::elf;
use harness::poll::{self, Poll};
use harness::service::{Provider, scratch_image};
use harness::timeouts;
use harness::verdict::{Failure, Level};
use serde_json::{Value, json};

use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs, Service};
use engine::cx::{App, Attached, Cx, Db};

/// The go directive of the pinned GoFastr module (deploy.md › The single-binary model: "go.mod
/// declares go 1.26.6").
const GOFASTR_GO_FLOOR: (u32, u32, u32) = (1, 26, 6);

/// The embedded UI runtime the scaffold's uihost serves (framework/uihost).
const RUNTIME_JS: &str = "/__gofastr/runtime.js";

/// GoFastr's BIN and DB clauses.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-BIN-1",
            level: Level::Must,
            promise: "A CGO_ENABLED=0 build is a single static executable.",
            doc: DocRef::at("deploy.md", "The single-binary model"),
            method: "Read the candidate executable's ELF program headers: no PT_INTERP (no dynamic loader named).",
            needs: Needs::NONE,
            check: check!(statically_linked),
        },
        Clause {
            id: "GF-BIN-2",
            level: Level::Must,
            promise: "The binary runs from an empty directory with nothing beside it and serves its embedded assets.",
            doc: DocRef::at("deploy.md", "The single-binary model"),
            method: "Copy only the executable into an empty working directory, boot it there on an absolute SQLite path, GET liveness, the UI runtime JS and the home page; under --provider docker, the same again with the executable alone in a FROM scratch image run as a non-root user.",
            needs: Needs::NONE,
            check: check!(runs_alone),
        },
        Clause {
            id: "GF-BIN-3",
            level: Level::Info,
            promise: "Building against v0.67.0 needs Go 1.26.6 or newer.",
            doc: DocRef::at("deploy.md", "The single-binary model (Go version)"),
            method: "Read the toolchain version and framework version from the executable's embedded Go build info and compare with the 1.26.6 floor.",
            needs: Needs::NONE,
            check: check!(toolchain_floor),
        },
        Clause {
            id: "GF-DB-1",
            level: Level::Must,
            promise: "A SQLite DATABASE_URL works through the shipped pure-Go driver; timestamps are stored in a layout GoFastr reads back, so sessions are not read as expired.",
            doc: DocRef::at("sqlite-driver.md", "What the DSN rewrite adds"),
            method: "Boot with DATABASE_URL=file:<path>; create and read an item over REST; log in and use the session on /auth/me; read the stored timestamps from the file.",
            needs: Needs {
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(sqlite_from_database_url),
        },
        Clause {
            id: "GF-DB-2",
            level: Level::Must,
            promise: "A postgres:// DATABASE_URL works: the entity table is created and CRUD round-trips.",
            doc: DocRef::at("deploy.md", "The single-binary model (SQLite vs Postgres)"),
            method: "Boot with a Postgres DATABASE_URL; create and read an item over REST; record the id default and column types from information_schema.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(postgres_from_database_url),
        },
        Clause {
            id: "GF-DB-3",
            level: Level::Info,
            promise: "The driver is inferred from DATABASE_URL: postgresql:// is Postgres, a bare *.db path is SQLite in the working directory.",
            doc: DocRef::at("cmd/gofastr/init.go", "scaffold main.go; isolation.inferDriver"),
            method: "Boot with a postgresql:// URL and with a relative `conform.db`; record whether each serves CRUD and where the SQLite file appears.",
            needs: Needs {
                services: &[Service::Postgres],
                knobs: &[Knob::EntityTable],
                ..Needs::NONE
            },
            check: check!(driver_inference),
        },
    ]
}

async fn statically_linked(cx: &mut Cx) -> Result<(), Failure> {
    let binary = cx.target().build.binary.clone();
    let linking = elf::inspect(&binary).map_err(|e| Failure::harness(e.to_string()))?;
    cx.note("executable", binary.display());
    cx.note(
        "ELF",
        format!(
            "{}-bit, machine {}, {} program headers, PT_DYNAMIC {}",
            if linking.class64 { 64 } else { 32 },
            linking.machine,
            linking.program_headers,
            linking.has_dynamic
        ),
    );
    match &linking.interpreter {
        None => Ok(()),
        Some(interp) => Err(Failure::violation(
            "a static executable: no PT_INTERP program header",
            format!("PT_INTERP names the loader {interp}"),
        )),
    }
}

async fn runs_alone(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let spec = cx.spec(Some(&db))?;
    let copy = spec.workdir.cwd().join("app");
    std::fs::copy(&cx.target().build.binary, &copy)
        .map_err(|e| Failure::harness(format!("copying the executable into the working directory: {e}")))?;
    cx.note("working directory before boot", list_dir(spec.workdir.cwd()));
    let mut app = cx.start_program(&copy, spec)?;
    cx.wait_live(&mut app).await?;
    cx.note("working directory after boot", list_dir(app.running.workdir().cwd()));
    let js = cx.get(&app, RUNTIME_JS).await?;
    cx.expect_status(&format!("the embedded {RUNTIME_JS}"), &js, 200)?;
    if js.body().is_none_or(|b| b.trim().is_empty()) {
        return Err(Failure::violation(
            format!("{RUNTIME_JS} serves the embedded runtime"),
            "an empty body",
        ));
    }
    cx.note(
        "runtime.js",
        format!("content-type {}", js.header("content-type").unwrap_or("(none)")),
    );
    let home = cx.get(&app, "/").await?;
    cx.expect_status("the home page", &home, 200)?;
    drop(app);
    if cx.services().provider() == Provider::Docker {
        runs_alone_in_its_image(cx).await?;
    }
    Ok(())
}

/// GF-BIN-2 the way the binary ships: alone in a `FROM scratch` image (no shell, no libc, a
/// non-root user, a tmpfs `/tmp` holding the SQLite file), serving the same paths.
async fn runs_alone_in_its_image(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let spec = cx.spec(Some(&db))?;
    let port = spec
        .port
        .ok_or_else(|| Failure::harness("the profile put no port in the candidate's environment"))?;
    // Host paths in the environment (the SQLite file, the working directory) point into the
    // container's /tmp instead.
    let mut host_paths = vec![spec.workdir.cwd().display().to_string()];
    if let Attached::Sqlite(file) = &db
        && let Some(dir) = file.path().parent()
    {
        host_paths.push(dir.display().to_string());
    }
    let env: BTreeMap<String, String> = spec
        .env
        .iter()
        .map(|(k, v)| {
            let v = host_paths
                .iter()
                .fold(v.clone(), |v, host| v.replace(host.as_str(), "/tmp"));
            (k.clone(), v)
        })
        .collect();
    let binary = cx.target().build.binary.clone();
    let name = cx.target().candidate.manifest.name.clone();
    let harness_error = |e: scratch_image::ScratchImageError| Failure::harness(e.to_string());
    let image = scratch_image::build(&binary, &name).await.map_err(harness_error)?;
    cx.note(
        "production image",
        format!("{image} (FROM scratch, user {})", scratch_image::UID),
    );
    let container = scratch_image::run(&image, &env).await.map_err(harness_error)?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let path = cx.profile().liveness;
    let http = harness::probe::Http::new().map_err(|e| Failure::harness(e.to_string()))?;
    let live = poll::wait_for(
        format!("GET {path} on {addr} (from the image) to answer 200"),
        timeouts::boot(),
        timeouts::POLL_INTERVAL,
        || async {
            if let Ok(false) = container.is_running().await {
                return Poll::Abort("the container exited".into());
            }
            match http.get(addr, path).await {
                Ok(ex) if ex.status() == Some(200) => Poll::Ready(()),
                Ok(ex) => Poll::NotYet(ex.summary()),
                Err(err) => Poll::NotYet(err.to_string()),
            }
        },
    )
    .await;
    if let Err(err) = live {
        let stderr = container.stderr_to_vec().await.unwrap_or_default();
        cx.note(
            "container stderr",
            harness::redact::text(&String::from_utf8_lossy(&stderr)),
        );
        return Err(Failure::violation(
            "the binary alone in its FROM scratch image, as a non-root user, answers liveness",
            err.to_string(),
        ));
    }
    let js = cx.get_at(addr, RUNTIME_JS).await?;
    cx.expect_status(&format!("the embedded {RUNTIME_JS} from the image"), &js, 200)?;
    let home = cx.get_at(addr, "/").await?;
    cx.expect_status("the home page from the image", &home, 200)?;
    Ok(())
}

fn list_dir(dir: &std::path::Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    if names.is_empty() {
        "(empty)".into()
    } else {
        names.join(", ")
    }
}

/// `go1.26.8` -> (1, 26, 8); a missing patch is 0.
fn parse_go_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut parts = v.trim_start_matches("go").split(['.', '-', ' ']);
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    Some((major, minor, patch))
}

async fn toolchain_floor(cx: &mut Cx) -> Result<(), Failure> {
    let binary = cx.target().build.binary.clone();
    let bytes = std::fs::read(&binary)?;
    let Some(info) = elf::go_build_info(&bytes) else {
        cx.note("Go build info", "(absent)");
        return Ok(());
    };
    let module = cx.target().candidate.manifest.framework_module.clone();
    cx.note("built with", &info.go_version);
    cx.note(
        format!("{module} in the build info"),
        info.dependency(&module).unwrap_or("(not listed)"),
    );
    let floor = GOFASTR_GO_FLOOR;
    cx.note(
        format!("meets the go {}.{}.{} floor", floor.0, floor.1, floor.2),
        parse_go_version(&info.go_version).map_or("unknown".to_string(), |v| (v >= floor).to_string()),
    );
    Ok(())
}

/// Create an item over REST and read it back; returns the created item.
async fn crud_round_trip(cx: &mut Cx, app: &App, what: &str) -> Result<Value, Failure> {
    let table = cx.knob(Knob::EntityTable)?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let created = cx
        .send(
            "POST",
            addr,
            &format!("/{table}"),
            &[("content-type", "application/json")],
            Some(json!({"name": "conform", "qty": 3}).to_string()),
        )
        .await?;
    if !matches!(created.status(), Some(200 | 201)) {
        return Err(Failure::violation(
            format!("{what}: POST /{table} creates an item"),
            created.summary(),
        ));
    }
    let body: Value = serde_json::from_str(created.body().unwrap_or_default()).unwrap_or(Value::Null);
    let item = body.get("data").cloned().unwrap_or(body);
    let id = item
        .get("id")
        .map(|v| v.as_str().map_or(v.to_string(), str::to_string))
        .ok_or_else(|| Failure::violation(format!("{what}: the created item has an id"), created.summary()))?;
    let read = cx.get(app, &format!("/{table}/{id}")).await?;
    cx.expect_status(&format!("{what}: GET /{table}/{{id}} of the created item"), &read, 200)?;
    if !read.body().unwrap_or_default().contains("conform") {
        return Err(Failure::violation(
            format!("{what}: the item reads back"),
            read.summary(),
        ));
    }
    Ok(item)
}

/// Go's `time.Time.String()` layout (`2026-07-20 23:59:59.123456789 +0000 UTC`), which
/// sqlite-driver.md says modernc writes without the rewrite and nothing in GoFastr parses back.
fn go_string_layout(v: &str) -> bool {
    let mut words = v.split(' ');
    words.nth(2).is_some_and(|zone| zone.starts_with(['+', '-'])) && words.next().is_some()
}

/// Register and log in over JSON; returns the session cookie as `name=value` (a secret).
async fn session_cookie(cx: &mut Cx, app: &App) -> Result<String, Failure> {
    let credentials = json!({"email": "db@conform.test", "password": "conform-password-1"});
    let reg = crate::auth::post_credentials(cx, app, "/auth/register", &credentials).await?;
    cx.expect_status("POST /auth/register", &reg, 201)?;
    let login = crate::auth::post_credentials(cx, app, "/auth/login", &credentials).await?;
    cx.expect_status("POST /auth/login", &login, 200)?;
    let cookie = login
        .header("set-cookie")
        .and_then(|c| c.split(';').next())
        .filter(|c| c.contains('='))
        .ok_or_else(|| Failure::violation("login sets a session cookie", login.summary()))?
        .to_string();
    Ok(cookie)
}

async fn sqlite_from_database_url(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    crud_round_trip(cx, &app, "SQLite").await?;
    // sqlite-driver.md: without the rewrite, timestamps were written in a layout nothing reads
    // back, "and every session looked expired": a fresh session must be accepted.
    let cookie = session_cookie(cx, &app).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let me = cx.send("GET", addr, "/auth/me", &[("cookie", &cookie)], None).await?;
    cx.expect_status(
        "GET /auth/me with the fresh session cookie (the session is not read as expired)",
        &me,
        200,
    )?;
    let Attached::Sqlite(file) = &db else {
        unreachable!("asked for SQLite")
    };
    let mut conn = file.connect().await?;
    let mut stored = Vec::new();
    let queries = [
        ("items.created_at", "SELECT CAST(created_at AS TEXT) FROM items LIMIT 1"),
        (
            "auth_sessions.expires_at",
            "SELECT CAST(expires_at AS TEXT) FROM auth_sessions LIMIT 1",
        ),
    ];
    for (column, query) in queries {
        let value: Option<Option<String>> = sqlx::query_scalar(query)
            .fetch_optional(&mut conn)
            .await
            .unwrap_or(None);
        let value = value.flatten();
        cx.note(format!("{column} as stored"), value.as_deref().unwrap_or("(none)"));
        stored.extend(value.map(|v| (column, v)));
    }
    for (column, value) in stored {
        if go_string_layout(&value) {
            return Err(Failure::violation(
                format!("{column} stored in SQLite's layout or RFC 3339 (the layouts GoFastr reads back)"),
                value,
            ));
        }
    }
    Ok(())
}

async fn postgres_from_database_url(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Postgres).await?;
    let app = cx.boot(Some(&db)).await?;
    crud_round_trip(cx, &app, "Postgres").await?;
    let Attached::Postgres { db: database, .. } = &db else {
        unreachable!("asked for Postgres")
    };
    let mut conn = database.connect().await?;
    let columns: Vec<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text, column_default::text FROM information_schema.columns \
         WHERE table_schema = current_schema() AND table_name = 'items' ORDER BY ordinal_position",
    )
    .fetch_all(&mut conn)
    .await?;
    if columns.is_empty() {
        return Err(Failure::violation(
            "the entity table `items` exists in the current schema",
            "no such table",
        ));
    }
    for (name, ty, default) in &columns {
        cx.note(
            format!("items.{name}"),
            format!(
                "{ty}{}",
                default.as_deref().map(|d| format!(" DEFAULT {d}")).unwrap_or_default()
            ),
        );
    }
    Ok(())
}

async fn driver_inference(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Postgres).await?;
    let spec = cx.spec(Some(&db))?;
    let url = spec.env.get("DATABASE_URL").cloned().unwrap_or_default();
    let alt = url.replacen("postgres://", "postgresql://", 1);
    for (case, value) in [
        ("postgresql:// URL", alt),
        ("relative conform.db", "conform.db".to_string()),
    ] {
        let mut spec = cx.spec(Some(&db))?;
        spec.set("DATABASE_URL", value);
        let cwd = spec.workdir.cwd().to_path_buf();
        let mut app = cx.start(spec)?;
        match app.running.wait_listening(harness::timeouts::boot()).await {
            Ok(_) => match cx.wait_live(&mut app).await {
                Ok(()) => {
                    let outcome = crud_round_trip(cx, &app, case).await;
                    cx.note(
                        format!("{case}: CRUD"),
                        match outcome {
                            Ok(_) => "works".to_string(),
                            Err(Failure::Violation(v)) => v.actual,
                            Err(Failure::Harness(h)) => return Err(Failure::Harness(h)),
                        },
                    );
                }
                Err(e) => cx.note(format!("{case}: boot"), format!("{e:?}")),
            },
            Err(e) => cx.note(format!("{case}: boot"), e),
        }
        cx.note(format!("{case}: working directory"), list_dir(&cwd));
    }
    Ok(())
}
