//! GoFr's PORT clauses (gofr.md §1.1): `HTTP_PORT` and `METRICS_PORT` defaults and odd values,
//! busy ports, and HTTPS on the HTTP port.

use std::net::TcpListener;

use harness::sockets::{ListenSocket, Reach};
use harness::timeouts;
use harness::verdict::{Failure, Level};

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Needs};
use engine::cx::{Cx, Db};

/// GoFr's PORT clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GR-PORT-1",
            level: Level::Must,
            promise: "HTTP_PORT sets the listen port on every interface; unset, it is 8000.",
            doc: DocRef::at("references/configs", "App: HTTP_PORT (default 8000)"),
            method: "Boot with HTTP_PORT=<n> and with it unset; read bound addresses from /proc; probe liveness. Odd values (0, -5, abc, ' 8001') are recorded, not graded.",
            needs: Needs::NONE,
            check: check!(gofr_http_port),
        },
        Clause {
            id: "GR-PORT-2",
            level: Level::Must,
            promise: "Metrics are served on METRICS_PORT (default 2121); METRICS_PORT=0 disables the metrics server.",
            doc: DocRef::at("quick-start/observability", "Disabling the Metrics Server"),
            method: "Boot with METRICS_PORT unset (expect /metrics on 2121) and with METRICS_PORT=0 (expect the log line and no metrics listener).",
            needs: Needs::NONE,
            check: check!(gofr_metrics_port),
        },
        Clause {
            id: "GR-PORT-5",
            level: Level::Must,
            promise: "With CERT_FILE and KEY_FILE set, the server speaks TLS on HTTP_PORT with that certificate.",
            doc: DocRef::at("references/configs", "HTTP: CERT_FILE, KEY_FILE"),
            method: "Give the candidate a fresh self-signed certificate; complete a TLS handshake on HTTP_PORT trusting only that certificate and GET the liveness probe. A missing certificate file is recorded (log line, whether it exits).",
            needs: Needs::NONE,
            check: check!(gofr_https),
        },
        Clause {
            id: "GR-PORT-3",
            level: Level::Info,
            promise: "A busy HTTP or metrics port is fatal at boot (exit 1).",
            doc: DocRef::at("pkg/gofr/factory.go", "initMetricsServer"),
            method: "Hold the metrics port, then the HTTP port, on loopback; record exit status and the FATAL line.",
            needs: Needs::NONE,
            check: check!(gofr_busy_ports),
        },
        Clause {
            id: "GR-PORT-4",
            level: Level::Info,
            promise: "An HTTP_PORT that passes the busy check but cannot be bound leaves the process running.",
            doc: DocRef::at("pkg/gofr/http_server.go", "Run"),
            method: "Boot with HTTP_PORT=70000; wait for the listen error line; record whether the process still runs with only its metrics listener.",
            needs: Needs::NONE,
            check: check!(gofr_unbindable_port),
        },
    ]
}

async fn gofr_http_port(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    // HTTP_PORT=<n>: listens on n, every interface.
    let mut app = cx.boot(Some(&db)).await?;
    let port = app.port.expect("spec sets a port");
    let sockets = listening_sockets(cx, &mut app).await?;
    expect_reach(&sockets, port, Reach::AllInterfaces, &format!("HTTP_PORT={port}"))?;
    drop(app);
    // Unset: the documented default (claimed for the odd values after it, which fall back to it).
    let default = cx.profile().default_port;
    let _turn = claim_default(default).await?;
    on_default_port_everywhere(cx).await?;
    // Odd values, recorded: the docs give only the default.
    for odd in ["0", "-5", "abc", " 8001"] {
        let mut spec = cx.spec(Some(&db))?;
        spec.set("HTTP_PORT", odd);
        spec.port = Some(default);
        wait_free(default).await?;
        let mut app = cx.start(spec)?;
        let seen = wait_port(&mut app, default).await;
        cx.note(format!("HTTP_PORT={odd:?}"), seen);
        cx.kill(&mut app).await?;
    }
    Ok(())
}

async fn gofr_metrics_port(cx: &mut Cx) -> Result<(), Failure> {
    let default = cx.profile().default_metrics_port.expect("gofr has a metrics port");
    let _turn = claim_default(default).await?;
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
        .wait_for_line("saying the metrics server is disabled", timeouts::LOG_LINE, |l| {
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
    match harness::tls::get(addr, &cert, liveness, timeouts::TLS_REQUEST).await? {
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
            timeouts::STARTUP_ERROR_LINE,
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
