//! HDR: GoFastr's default security headers (gofastr.md §L), on every routed response.
//!
//! The documented defaults (security.md › SecurityHeaders) are one table, checked on a few
//! different kinds of routed response (an app route, an error response, a framework route) in
//! one loop; headers the middleware sets beyond the documented table are recorded, not graded.
//! HSTS is judged on plain HTTP (must be absent) and behind a TLS-terminating proxy, which the
//! documentation says is recognised by `X-Forwarded-Proto: https`.

use harness::probe::Exchange;
use harness::verdict::{Failure, Level};

use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::{App, Attached, Cx, Db};

/// security.md › SecurityHeaders: the documented default of each header.
const DOCUMENTED: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; object-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
    ("permissions-policy", "geolocation=(), microphone=(), camera=()"),
];

/// Headers the middleware sets that the documentation does not list (recorded only).
const UNDOCUMENTED: &[&str] = &[
    "cross-origin-resource-policy",
    "cross-origin-opener-policy",
    "x-xss-protection",
];

/// security.md: `Strict-Transport-Security: max-age=31536000` on HTTPS responses only.
const HSTS: &str = "max-age=31536000";

/// A request ID GoFastr must echo (printable, short).
const INBOUND_REQUEST_ID: &str = "conform-req.42_A";

/// GoFastr's HDR clauses.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-HDR-1",
            level: Level::Must,
            promise: "Every routed response carries the documented security headers, and an X-Request-ID (an inbound one echoed).",
            doc: DocRef::at("security.md", "SecurityHeaders; The default chain"),
            method: "GET an app route, an error route and a framework route; compare CSP, X-Content-Type-Options, Referrer-Policy, X-Frame-Options, Permissions-Policy with the documented defaults; send an X-Request-ID and expect it echoed.",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(default_security_headers),
        },
        Clause {
            id: "GF-HDR-2",
            level: Level::Must,
            promise: "Strict-Transport-Security is sent only on HTTPS responses (direct TLS or X-Forwarded-Proto: https), never on plain HTTP.",
            doc: DocRef::at("security.md", "SecurityHeaders (HSTS is on by default)"),
            method: "GET an app route over plain HTTP (expect no HSTS) and with X-Forwarded-Proto: https (expect max-age=31536000).",
            needs: Needs {
                knobs: &[Knob::EchoEnvEndpoint, Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(hsts_only_over_https),
        },
    ]
}

/// The routed paths checked: an app route, the app's error route, a framework route.
fn routes(cx: &Cx) -> Result<Vec<String>, Failure> {
    let echo = cx.knob(Knob::EchoEnvEndpoint)?.replace("{key}", "PORT");
    let error = cx.knob(Knob::ErrorEndpoint)?;
    Ok(vec![echo, error, cx.profile().metrics_path.to_string()])
}

/// Boot on a fresh SQLite file; the file lives as long as the returned handle.
async fn boot(cx: &mut Cx) -> Result<(App, Attached), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let app = cx.boot(Some(&db)).await?;
    Ok((app, db))
}

fn header_problems(ex: &Exchange) -> Vec<String> {
    DOCUMENTED
        .iter()
        .filter_map(|(name, value)| match ex.header(name) {
            Some(v) if v == *value => None,
            other => Some(format!("{name}: {}", other.unwrap_or("(absent)"))),
        })
        .collect()
}

async fn default_security_headers(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot(cx).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    for path in routes(cx)? {
        let ex = cx.get(&app, &path).await?;
        let problems = header_problems(&ex);
        if !problems.is_empty() {
            return Err(Failure::violation(
                format!("GET {path}: the documented default security headers"),
                problems.join("; "),
            ));
        }
        if ex.header("x-request-id").is_none_or(str::is_empty) {
            return Err(Failure::violation(
                format!("GET {path}: an X-Request-ID is generated"),
                "no X-Request-ID header",
            ));
        }
        for name in UNDOCUMENTED {
            cx.note(format!("GET {path}: {name}"), ex.header(name).unwrap_or("(absent)"));
        }
    }
    let path = routes(cx)?.remove(0);
    let ex = cx
        .send("GET", addr, &path, &[("x-request-id", INBOUND_REQUEST_ID)], None)
        .await?;
    if ex.header("x-request-id") != Some(INBOUND_REQUEST_ID) {
        return Err(Failure::violation(
            format!("an inbound X-Request-ID `{INBOUND_REQUEST_ID}` is echoed"),
            format!("X-Request-ID: {}", ex.header("x-request-id").unwrap_or("(absent)")),
        ));
    }
    let invalid = "not valid; has spaces";
    let ex = cx.send("GET", addr, &path, &[("x-request-id", invalid)], None).await?;
    cx.note(
        "an invalid inbound X-Request-ID is replaced by",
        ex.header("x-request-id").unwrap_or("(absent)"),
    );
    Ok(())
}

async fn hsts_only_over_https(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot(cx).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let path = routes(cx)?.remove(0);
    let plain = cx.get(&app, &path).await?;
    if let Some(v) = plain.header("strict-transport-security") {
        return Err(Failure::violation(
            "no Strict-Transport-Security on plain HTTP",
            format!("Strict-Transport-Security: {v}"),
        ));
    }
    let proxied = cx
        .send("GET", addr, &path, &[("x-forwarded-proto", "https")], None)
        .await?;
    match proxied.header("strict-transport-security") {
        Some(v) if v == HSTS => Ok(()),
        other => Err(Failure::violation(
            format!("behind a TLS-terminating proxy (X-Forwarded-Proto: https): Strict-Transport-Security: {HSTS}"),
            format!("Strict-Transport-Security: {}", other.unwrap_or("(absent)")),
        )),
    }
}
