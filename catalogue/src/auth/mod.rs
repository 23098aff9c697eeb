//! AUTH: who may call the app, and what happens when the auth configuration is missing or wrong.
//!
//! The two frameworks share no auth model (GoFastr's auth battery issues its own JWTs and
//! sessions; GoFr checks credentials it is given: Basic, API keys, or RS256 tokens against a
//! JWKS URL), so each catalogue's clauses live in their own file. What is shared sits here:
//! refusing to boot as an observable (exit, message, port never bound), and small request helpers
//! that keep every credential out of the evidence (tokens the harness receives are registered as
//! secrets, so they are redacted wherever they reappear).

mod gofastr;
mod gofr;

use std::net::SocketAddr;

use harness::probe::{Connect, Exchange};
use harness::verdict::Failure;
use harness::{probe, redact, timeouts};

use engine::clause::{Clause, Knob};
use engine::cx::{App, Cx, Spec};

/// The AUTH clauses of both catalogues.
pub fn clauses() -> Vec<Clause> {
    let mut all = gofastr::clauses();
    all.extend(gofr::clauses());
    all
}

/// Start `spec` and expect the candidate to refuse to boot: a non-zero exit within
/// [`timeouts::REFUSE_TO_BOOT`], a line containing `message`, and its port never bound. When
/// the candidate names its ready line (`ready_line_prefix`, optional), that line must not appear.
async fn expect_refusal(cx: &mut Cx, spec: Spec, what: &str, message: &str) -> Result<(), Failure> {
    let port = spec.port.ok_or_else(|| Failure::harness("the spec sets no port"))?;
    let ready_prefix = cx.optional_knob(Knob::ReadyLinePrefix);
    let mut app = cx.start(spec)?;
    let exit = cx.wait_exit(&mut app, timeouts::REFUSE_TO_BOOT).await?;
    let line = app
        .running
        .output()
        .find(|l| l.plain().contains(message))
        .map(|l| l.plain());
    let ready = ready_prefix.and_then(|p| app.running.output().find(|l| l.plain().starts_with(&p)));
    let connect = probe::tcp_connect(SocketAddr::from(([127, 0, 0, 1], port)), timeouts::HTTP_REQUEST).await?;
    cx.note(
        "exit",
        exit.map_or("still running".to_string(), |e| e.status.to_string()),
    );
    cx.note("refusal line", line.as_deref().unwrap_or("(none)"));
    cx.note("connect to its port after the attempt", format!("{connect:?}"));
    let exited_nonzero = matches!(exit, Some(e) if e.status != harness::running::ExitStatus::Code(0));
    let mut wrong = Vec::new();
    if !exited_nonzero {
        wrong.push(match exit {
            Some(e) => format!("it ended with {}", e.status),
            None => format!("still running after {:?}", timeouts::REFUSE_TO_BOOT),
        });
    }
    if line.is_none() {
        wrong.push(format!("no output line mentions `{message}`"));
    }
    if let Some(ready) = ready {
        wrong.push(format!("it reported ready: {}", ready.plain()));
    }
    if connect == Connect::Accepted {
        wrong.push(format!("port {port} accepted a connection"));
    }
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(Failure::violation(
            format!("{what}: a non-zero exit with a message containing `{message}`, the port never bound"),
            wrong.join("; "),
        ))
    }
}

/// POST credentials as JSON to an auth endpoint (`/auth/login`, `/auth/register`), keeping what
/// comes back out of the evidence: a `token` in the JSON body and every `Set-Cookie` value are
/// registered as secrets *before* the exchange is recorded, so the recorded copy shows
/// `<redacted>` where they were. The caller gets the unredacted exchange.
pub(crate) async fn post_credentials(
    cx: &mut Cx,
    app: &App,
    path: &str,
    body: &serde_json::Value,
) -> Result<Exchange, Failure> {
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let http = harness::probe::Http::new()?;
    let ex = http
        .send(
            "POST",
            addr,
            path,
            &[("content-type", "application/json")],
            Some(body.to_string()),
        )
        .await?;
    if let Some(token) = serde_json::from_str::<serde_json::Value>(ex.body().unwrap_or_default())
        .ok()
        .and_then(|v| v.get("token").and_then(|t| t.as_str()).map(str::to_string))
    {
        keep_secret(&token);
    }
    // Joined Set-Cookie headers are separated by ", "; a piece starts a cookie when the text
    // before its first `=` has no space or `;` (an Expires date's tail does). Only each cookie's
    // own value is secret, not its attributes.
    for piece in ex.header("set-cookie").unwrap_or_default().split(", ") {
        let pair = piece.split(';').next().unwrap_or_default();
        if let Some((name, value)) = pair.split_once('=')
            && !name.contains(' ')
        {
            keep_secret(value.trim());
        }
    }
    let mut recorded = ex.clone();
    if let harness::probe::Outcome::Response { headers, body, .. } = &mut recorded.outcome {
        *body = redact::text(body);
        for value in headers.values_mut() {
            *value = redact::text(value);
        }
    }
    cx.record_exchanges([recorded]);
    Ok(ex)
}

/// GET with an `Authorization` header (the header is redacted in evidence).
async fn get_authorized(cx: &mut Cx, app: &App, path: &str, authorization: &str) -> Result<Exchange, Failure> {
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    cx.send("GET", addr, path, &[("authorization", authorization)], None)
        .await
}

/// Register a credential the harness made or received so it is redacted wherever it appears.
fn keep_secret(value: &str) {
    redact::register_secret(value);
}
