//! GoFr's AUTH clauses (gofr.md §1.10): Basic, API-key and OAuth (RS256 against a JWKS URL)
//! middleware, their documented 401 messages, and the `/.well-known` exemption.
//!
//! Each mode is one boot of the reference candidate with `CONF_AUTH` (the `auth_mode_env` knob)
//! set, and each documented request/response row is one entry of a table checked in one loop.
//! For OAuth the harness is the identity provider: a loopback stub serves a JWKS for the
//! checked-in test key ([`harness::jwks`]) and the scenario signs its own tokens, valid and
//! broken in each documented way.

use std::time::{SystemTime, UNIX_EPOCH};

use harness::jwks::{RsaJwk, b64url};
use harness::poll::{self, Poll};
use harness::probe::{Exchange, Http};
use harness::redact;
use harness::service::stub::HttpStub;
use harness::timeouts::{JWKS_ACCEPT, LOG_LINE, TOKEN_POLL};
use harness::verdict::{Failure, Level};
use serde_json::{Value, json};

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::{Attached, Cx, Db};

/// Path of the JWKS document on the stub.
const JWKS_PATH: &str = "/jwks.json";

/// JWKS refresh interval handed to the candidate (seconds; `CONF_JWKS_REFRESH`). Short, so the
/// key-fetch scenarios see a refresh quickly.
const JWKS_REFRESH_SECS: u64 = 2;

// The JWKS wait ([`JWKS_ACCEPT`]) is three of these refresh periods plus a 5 s margin.
const _: () = assert!(JWKS_ACCEPT.as_secs() == 3 * JWKS_REFRESH_SECS + 5);

/// Key ID of the test key in the JWKS.
const KID: &str = "conform-test-key";

/// The documentation page of every GR-AUTH clause.
const GUIDE: &str = "advanced-guide/authentication";

/// GoFr's AUTH clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GR-AUTH-1",
            level: Level::Must,
            promise: "Basic auth: requests without, with malformed or with wrong credentials get 401 with the documented message; correct ones reach the handler with the username.",
            doc: DocRef::at(GUIDE, "1. Basic Auth"),
            method: "Boot with CONF_AUTH=basic; send no header, a Bearer header, base64 without a colon, wrong and right credentials to the protected endpoint.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::AuthModeEnv],
                ..Needs::NONE
            },
            check: check!(basic_auth),
        },
        Clause {
            id: "GR-AUTH-2",
            level: Level::Info,
            promise: "EnableBasicAuth() with no credentials logs an error and leaves every route unauthenticated (fails open).",
            doc: DocRef::at(GUIDE, "1. Basic Auth"),
            method: "Boot with CONF_AUTH=basic and CONF_BASIC_ARGS=none (EnableBasicAuth with no arguments); record the log line and what the protected endpoint answers without credentials.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::AuthModeEnv],
                ..Needs::NONE
            },
            check: check!(basic_auth_without_credentials),
        },
        Clause {
            id: "GR-AUTH-3",
            level: Level::Must,
            promise: "API-key auth: X-Api-Key (any case) missing or wrong gives 401 with the documented message; each configured key is accepted.",
            doc: DocRef::at(GUIDE, "2. API Keys Auth"),
            method: "Boot with CONF_AUTH=apikey and two keys; send no header, a wrong key, and each key (lower-case header name).",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::AuthModeEnv],
                ..Needs::NONE
            },
            check: check!(api_key_auth),
        },
        Clause {
            id: "GR-AUTH-4",
            level: Level::Must,
            promise: "OAuth: RS256 tokens are verified against the JWKS by kid; missing, non-Bearer, non-JWT, unknown-kid, badly signed, expired and future-iat tokens get 401, a valid one reaches the handler with its claims.",
            doc: DocRef::at(GUIDE, "3. OAuth 2.0"),
            method: "Serve a JWKS from a loopback stub, boot with CONF_AUTH=oauth pointing at it, wait until a valid token is accepted, then send each broken token.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::AuthModeEnv],
                ..Needs::NONE
            },
            check: check!(oauth),
        },
        Clause {
            id: "GR-AUTH-5",
            level: Level::Info,
            promise: "With the JWKS server down at boot, tokens are rejected until a later refresh fetches the keys; a refresh interval of 0 crashes the process.",
            doc: DocRef::at(GUIDE, "3. OAuth 2.0"),
            method: "Boot against a stub answering 503 for the JWKS; send a valid token; serve the JWKS and time until it is accepted. Boot with CONF_JWKS_REFRESH=0 and record the exit.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::AuthModeEnv],
                ..Needs::NONE
            },
            check: check!(oauth_key_fetch),
        },
        Clause {
            id: "GR-AUTH-6",
            level: Level::Must,
            promise: "Paths under /.well-known are exempt from authentication.",
            doc: DocRef::at(GUIDE, "Exempted Paths"),
            method: "With Basic and with API-key auth on, GET /.well-known/alive and /.well-known/health without credentials; also record an OPTIONS preflight and the metrics port.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::AuthModeEnv],
                ..Needs::NONE
            },
            check: check!(well_known_exempt),
        },
    ]
}

/// One request of an auth table: its `Authorization`-style header (if any), the status
/// expected, and a fragment the body must contain.
struct Row {
    name: &'static str,
    header: Option<(&'static str, String)>,
    status: u16,
    body: String,
}

impl Row {
    fn new(name: &'static str, header: Option<(&'static str, String)>, status: u16, body: impl Into<String>) -> Row {
        Row {
            name,
            header,
            status,
            body: body.into(),
        }
    }
}

/// Boot on a fresh SQLite file with the auth mode `mode` plus `extra` variables; the file
/// lives as long as the returned handle.
async fn boot_mode(cx: &mut Cx, mode: &str, extra: &[(&str, String)]) -> Result<(App, Attached), Failure> {
    let var = cx.knob(Knob::AuthModeEnv)?;
    let db = cx.database(Db::Sqlite).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            spec.set(&var, mode);
            for (k, v) in extra {
                spec.set(k, v.clone());
            }
            Ok(())
        })
        .await?;
    Ok((app, db))
}

/// The protected endpoint (`protected_endpoint` knob, declared by every GR-AUTH clause).
fn protected(cx: &Cx) -> Result<String, Failure> {
    cx.knob(Knob::ProtectedEndpoint)
}

/// Send every row to the protected endpoint and check status and body.
async fn check_rows(cx: &mut Cx, app: &App, rows: &[Row]) -> Result<Vec<Exchange>, Failure> {
    let path = protected(cx)?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let mut seen = Vec::new();
    for row in rows {
        let headers: Vec<(&str, &str)> = row.header.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let ex = cx.send("GET", addr, &path, &headers, None).await?;
        // Error bodies are compared on the decoded message (Go escapes `<` and `>` in JSON).
        let raw = ex.body().unwrap_or_default();
        let body = serde_json::from_str::<Value>(raw)
            .ok()
            .and_then(|v| v.pointer("/error/message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| raw.to_string());
        if ex.status() != Some(row.status) || !body.contains(&row.body) {
            return Err(Failure::violation(
                format!(
                    "{}: HTTP {} with a body containing `{}`",
                    row.name, row.status, row.body
                ),
                ex.summary(),
            ));
        }
        if row.status == 401 {
            cx.note(
                format!("{}: WWW-Authenticate", row.name),
                ex.header("www-authenticate").unwrap_or("(absent)"),
            );
        }
        seen.push(ex);
    }
    Ok(seen)
}

/// Standard base64 with padding, for Basic credentials.
fn b64(bytes: &[u8]) -> String {
    let mut s = b64url(bytes).replace('-', "+").replace('_', "/");
    while !s.len().is_multiple_of(4) {
        s.push('=');
    }
    s
}

const MISSING_AUTHORIZATION: &str = "missing auth header in key 'Authorization'";
const INVALID_AUTHORIZATION: &str = "invalid auth header in key 'Authorization'";

async fn basic_auth(cx: &mut Cx) -> Result<(), Failure> {
    let user = "conform-user";
    let password = redact::new_secret(24)?;
    let (app, _db) = boot_mode(
        cx,
        "basic",
        &[
            ("CONF_BASIC_USER", user.to_string()),
            ("CONF_BASIC_PASSWORD", password.clone()),
        ],
    )
    .await?;
    let auth = |v: String| Some(("authorization", v));
    let rows = [
        Row::new("no Authorization header", None, 401, MISSING_AUTHORIZATION),
        Row::new(
            "a Bearer header",
            auth("Bearer x".into()),
            401,
            "header should be `Basic <value>`",
        ),
        Row::new(
            "base64 without a colon",
            auth(format!("Basic {}", b64(b"nocolon"))),
            401,
            "credentials should be in the format base64(username:password)",
        ),
        Row::new(
            "wrong password",
            auth(format!("Basic {}", b64(format!("{user}:wrong-password").as_bytes()))),
            401,
            INVALID_AUTHORIZATION,
        ),
        Row::new(
            "correct credentials",
            auth(format!("Basic {}", b64(format!("{user}:{password}").as_bytes()))),
            200,
            format!("\"username\":\"{user}\""),
        ),
    ];
    check_rows(cx, &app, &rows).await?;
    Ok(())
}

async fn basic_auth_without_credentials(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot_mode(cx, "basic", &[("CONF_BASIC_ARGS", "none".into())]).await?;
    let path = protected(cx)?;
    let ex = cx.get(&app, &path).await?;
    cx.note("protected endpoint without credentials", ex.summary());
    // Logged at boot on stderr, which may not have been read yet when liveness answers: waited
    // for (bounded; recorded, not graded, so a line that never comes is noted as "(none)").
    let line = app
        .running
        .output()
        .wait_for_line("saying it proceeds without authentication", LOG_LINE, |l| {
            l.plain().contains("Proceeding without Authentication")
        })
        .await
        .ok()
        .map(|l| l.plain());
    cx.note("log line", line.as_deref().unwrap_or("(none)"));
    Ok(())
}

async fn api_key_auth(cx: &mut Cx) -> Result<(), Failure> {
    let (k1, k2) = (redact::new_secret(24)?, redact::new_secret(24)?);
    let (app, _db) = boot_mode(cx, "apikey", &[("CONF_API_KEYS", format!("{k1},{k2}"))]).await?;
    let key = |v: String| Some(("x-api-key", v));
    let rows = [
        Row::new(
            "no X-Api-Key header",
            None,
            401,
            "missing auth header in key 'X-Api-Key'",
        ),
        Row::new(
            "a wrong key",
            key("not-a-configured-key".into()),
            401,
            "invalid auth header in key 'X-Api-Key'",
        ),
        Row::new("the first key", key(k1.clone()), 200, "\"api_key\""),
        Row::new("the second key", key(k2.clone()), 200, "\"api_key\""),
    ];
    check_rows(cx, &app, &rows).await?;
    Ok(())
}

fn jwks_error(e: harness::jwks::JwksError) -> Failure {
    Failure::harness(e.to_string())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Claims of a token valid for an hour, issued a minute ago.
fn valid_claims() -> Value {
    let t = now();
    json!({"sub": "conform-subject", "iss": "conform", "iat": t - 60, "exp": t + 3600})
}

/// A stub serving the test key's JWKS (or `status` with no body), and the candidate's variables.
async fn jwks_stub(key: &RsaJwk, status: u16) -> Result<(HttpStub, Vec<(&'static str, String)>), Failure> {
    let stub = HttpStub::start().await?;
    if status == 200 {
        stub.set(JWKS_PATH, 200, &key.jwks());
    } else {
        stub.set(JWKS_PATH, status, "");
    }
    let env = vec![
        ("CONF_JWKS_URL", format!("{}{JWKS_PATH}", stub.url())),
        ("CONF_JWKS_REFRESH", JWKS_REFRESH_SECS.to_string()),
    ];
    Ok((stub, env))
}

/// Poll the protected endpoint with `token` until it answers 200 (the JWKS has been fetched).
async fn wait_accepted(cx: &mut Cx, app: &App, token: &str) -> Result<Result<Exchange, String>, Failure> {
    let path = protected(cx)?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let http = Http::new()?;
    let bearer = format!("Bearer {token}");
    let waited = poll::wait_for("a valid token to be accepted", JWKS_ACCEPT, TOKEN_POLL, || {
        let (http, path, bearer) = (http.clone(), path.clone(), bearer.clone());
        async move {
            match http.send("GET", addr, &path, &[("authorization", &bearer)], None).await {
                Ok(ex) if ex.status() == Some(200) => Poll::Ready(ex),
                Ok(ex) => Poll::NotYet(ex.summary()),
                Err(e) => Poll::Abort(e.to_string()),
            }
        }
    })
    .await;
    match waited {
        Ok(ex) => {
            cx.record_exchanges([ex.clone()]);
            Ok(Ok(ex))
        }
        Err(e @ poll::PollError::TimedOut { .. }) => Ok(Err(e.to_string())),
        Err(e) => Err(Failure::harness(e.to_string())),
    }
}

async fn oauth(cx: &mut Cx) -> Result<(), Failure> {
    let key = RsaJwk::test_key(KID).map_err(jwks_error)?;
    let (stub, env) = jwks_stub(&key, 200).await?;
    let (app, _db) = boot_mode(cx, "oauth", &env).await?;
    let valid = key.sign(KID, &valid_claims()).map_err(jwks_error)?;
    redact::register_secret(valid.clone());
    match wait_accepted(cx, &app, &valid).await? {
        Ok(ex) => cx.note("valid token", ex.summary()),
        Err(why) => {
            cx.note("JWKS requests", stub.hits().join(", "));
            return Err(Failure::violation(
                format!("a valid RS256 token is accepted within {JWKS_ACCEPT:?} of boot"),
                why,
            ));
        }
    }
    cx.note("JWKS requests", stub.hits().join(", "));
    let t = now();
    let unknown_kid = key.sign("not-in-the-jwks", &valid_claims()).map_err(jwks_error)?;
    let expired = key
        .sign(
            KID,
            &json!({"sub": "conform-subject", "iat": t - 7200, "exp": t - 3600}),
        )
        .map_err(jwks_error)?;
    let future_iat = key
        .sign(
            KID,
            &json!({"sub": "conform-subject", "iat": t + 3600, "exp": t + 7200}),
        )
        .map_err(jwks_error)?;
    // A signature made over other claims: well-formed, but not this token's.
    let other = key
        .sign(KID, &json!({"sub": "someone-else", "iat": t - 60, "exp": t + 3600}))
        .map_err(jwks_error)?;
    let mut parts: Vec<&str> = valid.split('.').collect();
    parts[2] = other.rsplit('.').next().unwrap_or_default();
    let bad_signature = parts.join(".");
    let bearer = |v: &str| Some(("authorization", format!("Bearer {v}")));
    let rows = [
        Row::new("no Authorization header", None, 401, MISSING_AUTHORIZATION),
        Row::new(
            "a Basic header",
            Some(("authorization", "Basic abc".to_string())),
            401,
            "header should be `Bearer <value>`",
        ),
        Row::new(
            "a Bearer value that is not a JWT",
            bearer("not-a-jwt"),
            401,
            "jwt expected",
        ),
        Row::new("an unknown kid", bearer(&unknown_kid), 401, INVALID_AUTHORIZATION),
        Row::new("a bad signature", bearer(&bad_signature), 401, INVALID_AUTHORIZATION),
        Row::new("an expired token", bearer(&expired), 401, INVALID_AUTHORIZATION),
        Row::new("an iat in the future", bearer(&future_iat), 401, INVALID_AUTHORIZATION),
        Row::new("the valid token", bearer(&valid), 200, "\"sub\":\"conform-subject\""),
    ];
    check_rows(cx, &app, &rows).await?;
    Ok(())
}

async fn oauth_key_fetch(cx: &mut Cx) -> Result<(), Failure> {
    let key = RsaJwk::test_key(KID).map_err(jwks_error)?;
    let (stub, env) = jwks_stub(&key, 503).await?;
    let (app, _db) = boot_mode(cx, "oauth", &env).await?;
    let valid = key.sign(KID, &valid_claims()).map_err(jwks_error)?;
    redact::register_secret(valid.clone());
    let path = protected(cx)?;
    let before = get_authorized(cx, &app, &path, &format!("Bearer {valid}")).await?;
    cx.note("valid token while the JWKS answers 503", before.summary());
    stub.set(JWKS_PATH, 200, &key.jwks());
    let served = std::time::Instant::now();
    match wait_accepted(cx, &app, &valid).await? {
        Ok(_) => cx.note("accepted after the JWKS was served", format!("{:?}", served.elapsed())),
        Err(why) => cx.note("never accepted after the JWKS was served", why),
    }
    cx.note("JWKS requests", stub.hits().join(", "));

    let var = cx.knob(Knob::AuthModeEnv)?;
    let db = cx.database(Db::Sqlite).await?;
    let mut spec = cx.spec(Some(&db))?;
    spec.set(&var, "oauth");
    for (k, v) in &env {
        spec.set(k, v.clone());
    }
    spec.set("CONF_JWKS_REFRESH", "0");
    let mut app = cx.start(spec)?;
    let exit = cx.wait_exit(&mut app, harness::timeouts::REFUSE_TO_BOOT).await?;
    cx.note(
        "CONF_JWKS_REFRESH=0",
        exit.map_or("still running".to_string(), |e| e.status.to_string()),
    );
    if let Some(line) = app.running.output().find(|l| l.plain().contains("panic")) {
        cx.note("panic line", line.plain());
    }
    Ok(())
}

async fn well_known_exempt(cx: &mut Cx) -> Result<(), Failure> {
    let profile = cx.profile();
    let modes = [
        ("basic", Vec::new()),
        ("apikey", vec![("CONF_API_KEYS", redact::new_secret(24)?)]),
    ];
    for (mode, extra) in modes {
        let (app, _db) = boot_mode(cx, mode, &extra).await?;
        let path = protected(cx)?;
        let guarded = cx.get(&app, &path).await?;
        cx.expect_status(
            &format!("{mode}: the protected endpoint without credentials"),
            &guarded,
            401,
        )?;
        for probe in [profile.liveness, profile.readiness] {
            let ex = cx.get(&app, probe).await?;
            cx.expect_status(&format!("{mode}: GET {probe} without credentials"), &ex, 200)?;
        }
        let addr = app
            .addr()
            .ok_or_else(|| Failure::harness("the app has no known port"))?;
        let preflight = cx
            .send(
                "OPTIONS",
                addr,
                &path,
                &[
                    ("origin", "http://conform.test"),
                    ("access-control-request-method", "GET"),
                ],
                None,
            )
            .await?;
        cx.note(
            format!("{mode}: OPTIONS preflight without credentials"),
            preflight.summary(),
        );
        let metrics = cx.metrics_addr(&app)?;
        let scraped = cx.get_at(metrics, profile.metrics_path).await?;
        cx.note(
            format!("{mode}: metrics port without credentials"),
            format!("HTTP {:?}", scraped.status()),
        );
    }
    Ok(())
}
