//! PORT: which address a candidate listens on, and how it reads its port configuration.
//!
//! "Listens on all interfaces" is judged from the bound address of the candidate's listening
//! socket (read from `/proc`), never by connecting to a non-loopback address; the liveness probe
//! on loopback proves the socket serves. Where a documented default port is checked (8080, 8000,
//! 2121), the port comes from the profile and a port already taken on the machine is a harness
//! error, not a verdict.
//!
//! `mod.rs` holds what both frameworks share (socket inspection, the generic "listens on every
//! interface" and "documented default" scenarios); `gofastr.rs` and `gofr.rs` hold each
//! catalogue's own clauses.

mod gofastr;
mod gofr;

use std::net::TcpListener;

use harness::poll::Poll;
use harness::ready::{Condition, Ready};
use harness::sockets::{ListenSocket, Reach};
use harness::timeouts;
use harness::verdict::Failure;

use engine::clause::Clause;
use engine::cx::{App, Cx, Db};

/// The PORT clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    let mut all = gofastr::clauses();
    all.extend(gofr::clauses());
    all
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
    let ready =
        Ready::new(Condition::ListeningOn(port), timeouts::boot()).described(format!("a listener on port {port}"));
    match app.running.wait_ready(&ready).await {
        Ok(reached) => format!("listening on {}", fmt_sockets(&reached.sockets)),
        Err(err) => err.to_string(),
    }
}

/// "exited: <status>" or "still running, listening on [...]", for notes.
fn process_state(app: &mut App) -> Result<String, Failure> {
    Ok(match app.running.try_exit()? {
        Some(exit) => format!("exited: {}", exit.status),
        None => format!(
            "still running, listening on [{}]",
            fmt_sockets(&app.running.listening().unwrap_or_default())
        ),
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

/// How many times a boot on a default port is retried after losing the port to another process.
const DEFAULT_PORT_RETRIES: usize = 3;

/// Take this process's turn on the documented default `port` (see
/// [`harness::ports::claim_default`]: other conform processes on this machine boot candidates on
/// it too), then wait until nothing else holds it: a documented default port must be free on
/// this machine for the check to mean anything. Keep the claim while the port is in use.
async fn claim_default(port: u16) -> Result<harness::ports::DefaultPortClaim, Failure> {
    let claim = harness::ports::claim_default(port, timeouts::DEFAULT_PORT_CLAIM)
        .await
        .map_err(|e| Failure::harness(format!("port {port} (the documented default): {e}")))?;
    wait_free(port).await?;
    Ok(claim)
}

/// Wait (polled, bounded) until `port` can be bound on every interface: a process that does not
/// take the claim (a conform built before it, anything else on the machine) may hold it a while.
async fn wait_free(port: u16) -> Result<(), Failure> {
    harness::poll::wait_for(
        format!("port {port} (the documented default) to be free on this machine"),
        timeouts::DEFAULT_PORT_CLAIM,
        timeouts::POLL_INTERVAL,
        || async move {
            match TcpListener::bind(("0.0.0.0", port)) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::NotYet(e.to_string()),
            }
        },
    )
    .await
    .map_err(|e| Failure::harness(format!("{e}; cannot check the default")))
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
    let _turn = claim_default(cx.profile().default_port).await?;
    on_default_port_everywhere(cx).await
}

/// [`default_port_listens_everywhere`] for a caller already holding the default port's claim.
async fn on_default_port_everywhere(cx: &mut Cx) -> Result<(), Failure> {
    let default = cx.profile().default_port;
    let db = cx.database(Db::Sqlite).await?;
    let port_env = cx.profile().port_env;
    // Free a moment ago, the port can still be taken before the candidate binds it by a process
    // that does not take the claim: the candidate then says so, and boots again once it is free.
    let mut attempt = 0;
    let mut app = loop {
        attempt += 1;
        let mut spec = cx.spec(Some(&db))?;
        spec.unset(port_env);
        spec.port = Some(default);
        let mut app = cx.start(spec)?;
        match cx.wait_live(&mut app).await {
            Ok(()) => break app,
            Err(_) if attempt <= DEFAULT_PORT_RETRIES && engine::cx::lost_port_race(&app, cx.profile()) => {
                cx.note_sample(
                    "retry",
                    format!("default port {default} was taken by another process before the candidate bound it"),
                );
                wait_free(default).await?;
            }
            Err(failure) => return Err(failure),
        }
    };
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
