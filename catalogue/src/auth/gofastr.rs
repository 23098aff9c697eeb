//! GoFastr's AUTH clauses (gofastr.md §C): the auth battery fails closed without a secret or a
//! durable session store in production, mints a per-process secret in dev mode, keeps tokens
//! valid across restarts and rotations when the secret is set, sets the documented cookie
//! posture, and rate-limits login and register by default.
//!
//! Tokens come from the battery itself (`POST /auth/register`, `POST /auth/login`) and are
//! checked on the candidate's protected endpoint, which validates them with the running
//! process's own JWT key; "survives a restart" is the same token checked by the next process on
//! the same database.

use harness::probe::Exchange;
use harness::redact;
use harness::running::Signal;
use harness::verdict::{Failure, Level};
use serde_json::{Value, json};

use super::*;
use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::{Attached, Cx, Db};

/// The candidate variable that leaves out the durable session store (conform.go).
const MEMORY_SESSIONS_ENV: &str = "HARNESS_MEMORY_SESSIONS";

/// The most requests sent while looking for a rate limit. The documented defaults exist but
/// their sizes are code (10 per account, 30 per IP, 10 registers, per minute): 45 is above each.
const RATE_PROBE_MAX: usize = 45;

/// A password the battery accepts (at least 8 characters); never a real credential.
const PASSWORD: &str = "conform-password-1";

/// GoFastr's AUTH clauses.
pub(super) fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GF-AUTH-1",
            level: Level::Must,
            promise: "In production mode without a JWT secret the app refuses to start: non-zero exit, a message, the port never bound.",
            doc: DocRef::at("deploy.md", "Secrets; auth.md › Quickstart"),
            method: "Boot on SQLite with the secret variable removed and dev mode off; expect a non-zero exit naming AuthConfig.JWTSecret, no ready line, and the port refusing connections.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::JwtSecretEnv, Knob::AuthDevModeEnv],
                ..Needs::NONE
            },
            check: check!(production_without_secret_refuses),
        },
        Clause {
            id: "GF-AUTH-2",
            level: Level::Must,
            promise: "In production mode the auth battery refuses the default in-memory session store.",
            doc: DocRef::at("scaling.md", "What is process-local"),
            method: "Boot with the secret set but no durable session store (HARNESS_MEMORY_SESSIONS=1); expect a non-zero exit naming the in-memory session store and the port never bound.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::JwtSecretEnv, Knob::AuthDevModeEnv],
                ..Needs::NONE
            },
            check: check!(production_refuses_memory_sessions),
        },
        Clause {
            id: "GF-AUTH-3",
            level: Level::Must,
            promise: "Dev mode without a secret mints a per-process secret with a WARN, so a token from one process is rejected by the next.",
            doc: DocRef::at("deploy.md", "Secrets; auth.md › Quickstart"),
            method: "Boot in dev mode without a secret; expect the WARN; register, log in, check the token on the protected endpoint; restart on the same database and expect 401 for it.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::JwtSecretEnv, Knob::AuthDevModeEnv],
                ..Needs::NONE
            },
            check: check!(dev_mode_secret_is_per_process),
        },
        Clause {
            id: "GF-AUTH-4",
            level: Level::Must,
            promise: "With a secret set, tokens survive a restart; during a rotation (new secret + previous) old tokens still verify, and without the previous secret they do not.",
            doc: DocRef::at(
                "deploy.md",
                "Rotating secrets without a mass logout; auth.md › Rotating JWTSecret",
            ),
            method: "Log in under secret A; restart with A (token valid); restart with B and previous A (old valid, new login valid); restart with B alone (old 401, new valid).",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::JwtSecretEnv, Knob::AuthDevModeEnv],
                ..Needs::NONE
            },
            check: check!(secret_survives_restart_and_rotation),
        },
        Clause {
            id: "GF-AUTH-5",
            level: Level::Must,
            promise: "Login sets `__Host-session` (Path=/, HttpOnly, Secure, SameSite=Strict) in production and `session_id` without Secure in dev mode; register answers 201, login 200 with a token.",
            doc: DocRef::at("auth.md", "Cookie defaults"),
            method: "In each mode: POST /auth/register and /auth/login (JSON); check statuses, JSON shapes and the session cookie's name and attributes.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::JwtSecretEnv, Knob::AuthDevModeEnv],
                ..Needs::NONE
            },
            check: check!(cookie_posture),
        },
        Clause {
            id: "GF-AUTH-6",
            level: Level::Must,
            promise: "Login (per IP and per account) and register (per IP) are rate-limited by default; dev mode relaxes only the per-IP login limit.",
            doc: DocRef::at("auth.md", "Rate limiting"),
            method: "Send registers, failed logins for one account and failed logins for distinct accounts until a 429 `rate limit exceeded`, in production and in dev mode; record where each limit bites.",
            needs: Needs {
                knobs: &[Knob::ProtectedEndpoint, Knob::JwtSecretEnv, Knob::AuthDevModeEnv],
                ..Needs::NONE
            },
            check: check!(default_rate_limits),
        },
    ]
}

/// The candidate's auth knobs.
struct Knobs {
    secret_env: String,
    dev_env: String,
    protected: String,
}

/// All three auth knobs at once: every GF-AUTH clause reads them through here, so each declares
/// all three (`protected_endpoint`, `jwt_secret_env`, `auth_dev_mode_env`).
fn knobs(cx: &Cx) -> Result<Knobs, Failure> {
    Ok(Knobs {
        secret_env: cx.knob(Knob::JwtSecretEnv)?,
        dev_env: cx.knob(Knob::AuthDevModeEnv)?,
        protected: cx.knob(Knob::ProtectedEndpoint)?,
    })
}

/// The modes the battery is booted in.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    /// Production, with `secret` as the JWT secret and `previous` verify-only secrets.
    Production,
    /// Dev mode, no secret.
    Dev,
}

/// Boot on `db` in `mode`; `secret` and `previous` override the run's secret in production.
async fn boot(
    cx: &mut Cx,
    db: &Attached,
    mode: Mode,
    secret: Option<&str>,
    previous: Option<&str>,
) -> Result<App, Failure> {
    let k = knobs(cx)?;
    cx.boot_with(Some(db), |spec| {
        match mode {
            Mode::Production => {
                if let Some(s) = secret {
                    spec.set(&k.secret_env, s);
                }
                if let Some(p) = previous {
                    spec.set("JWT_PREVIOUS_SECRETS", p);
                }
            }
            Mode::Dev => {
                spec.unset(&k.secret_env);
                spec.set(&k.dev_env, "1");
            }
        }
        Ok(())
    })
    .await
}

async fn production_without_secret_refuses(cx: &mut Cx) -> Result<(), Failure> {
    let k = knobs(cx)?;
    let db = cx.database(Db::Sqlite).await?;
    let mut spec = cx.spec(Some(&db))?;
    spec.unset(&k.secret_env);
    spec.unset(&k.dev_env);
    expect_refusal(
        cx,
        spec,
        "production mode without a JWT secret",
        "production mode requires AuthConfig.JWTSecret",
    )
    .await?;
    note_tables(cx, &db).await
}

async fn production_refuses_memory_sessions(cx: &mut Cx) -> Result<(), Failure> {
    let k = knobs(cx)?;
    let db = cx.database(Db::Sqlite).await?;
    let mut spec = cx.spec(Some(&db))?;
    spec.unset(&k.dev_env);
    spec.set(MEMORY_SESSIONS_ENV, "1");
    expect_refusal(
        cx,
        spec,
        "production mode on the in-memory session store",
        "in-memory session store",
    )
    .await
}

/// Which tables a refused boot left behind (the catalogue says auto-migrate already ran).
async fn note_tables(cx: &mut Cx, db: &Attached) -> Result<(), Failure> {
    if let Attached::Sqlite(file) = db
        && file.path().exists()
    {
        let mut conn = file.connect().await?;
        let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type='table' ORDER BY name")
            .fetch_all(&mut conn)
            .await?;
        cx.note("tables after the refused boot", tables.join(", "));
    }
    Ok(())
}

/// Register `email` and log in; returns the login exchange and its token (registered as a
/// secret). Registration and login must succeed: every clause here depends on it.
async fn register_and_login(cx: &mut Cx, app: &App, email: &str) -> Result<(Exchange, Exchange, String), Failure> {
    let credentials = json!({"email": email, "password": PASSWORD});
    let registered = post_credentials(cx, app, "/auth/register", &credentials).await?;
    cx.expect_status("POST /auth/register (JSON)", &registered, 201)?;
    let login = post_credentials(cx, app, "/auth/login", &credentials).await?;
    cx.expect_status("POST /auth/login (JSON) with the registered credentials", &login, 200)?;
    let token = token_of(&login)?;
    Ok((registered, login, token))
}

fn token_of(login: &Exchange) -> Result<String, Failure> {
    let body: Value = serde_json::from_str(login.body().unwrap_or_default())
        .map_err(|e| Failure::violation("the login body is JSON", format!("{e}: {}", login.summary())))?;
    let token = body
        .get("token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Failure::violation("the login body carries a `token`", login.summary()))?;
    keep_secret(token);
    Ok(token.to_string())
}

/// The protected endpoint's status for `token`.
async fn token_status(cx: &mut Cx, app: &App, token: &str) -> Result<u16, Failure> {
    let protected = knobs(cx)?.protected;
    let ex = get_authorized(cx, app, &protected, &format!("Bearer {token}")).await?;
    ex.status()
        .ok_or_else(|| Failure::harness(format!("no response from the protected endpoint: {}", ex.summary())))
}

/// Expect the protected endpoint to answer `expected` for `token`.
async fn expect_token(cx: &mut Cx, app: &App, token: &str, expected: u16, when: &str) -> Result<(), Failure> {
    let status = token_status(cx, app, token).await?;
    cx.note(when, format!("protected endpoint -> {status}"));
    if status == expected {
        Ok(())
    } else {
        Err(Failure::violation(
            format!("{when}: the protected endpoint answers {expected}"),
            format!("it answered {status}"),
        ))
    }
}

async fn stop(cx: &mut Cx, mut app: App) -> Result<(), Failure> {
    cx.stop(&mut app, Signal::SIGTERM, cx.profile().default_shutdown_timeout)
        .await?;
    Ok(())
}

async fn dev_mode_secret_is_per_process(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let first = boot(cx, &db, Mode::Dev, None, None).await?;
    let warn = first
        .running
        .output()
        .find(|l| l.plain().contains("DevMode minted a random per-process JWTSecret"))
        .map(|l| l.plain());
    cx.note("dev-mode warning", warn.as_deref().unwrap_or("(none)"));
    let Some(warn) = warn else {
        return Err(Failure::violation(
            "a WARN line saying dev mode minted a per-process JWT secret",
            "no such line in the output",
        ));
    };
    if !warn.contains("WARN") {
        return Err(Failure::violation("the dev-secret line is a WARN", warn));
    }
    let (_, _, token) = register_and_login(cx, &first, "dev@conform.test").await?;
    expect_token(cx, &first, &token, 200, "first process, its own token").await?;
    stop(cx, first).await?;
    let second = boot(cx, &db, Mode::Dev, None, None).await?;
    expect_token(cx, &second, &token, 401, "second process, the first one's token").await
}

async fn secret_survives_restart_and_rotation(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let a = cx.services().jwt_secret().to_string();
    let b = redact::new_secret(48)?;
    let app = boot(cx, &db, Mode::Production, Some(&a), None).await?;
    let (_, _, token_a) = register_and_login(cx, &app, "rotate@conform.test").await?;
    expect_token(cx, &app, &token_a, 200, "secret A, its own token").await?;
    stop(cx, app).await?;

    let app = boot(cx, &db, Mode::Production, Some(&a), None).await?;
    expect_token(cx, &app, &token_a, 200, "restarted with secret A, token from before").await?;
    stop(cx, app).await?;

    let app = boot(cx, &db, Mode::Production, Some(&b), Some(&a)).await?;
    expect_token(
        cx,
        &app,
        &token_a,
        200,
        "secret B with previous A, token signed under A",
    )
    .await?;
    let login = post_credentials(
        cx,
        &app,
        "/auth/login",
        &json!({"email": "rotate@conform.test", "password": PASSWORD}),
    )
    .await?;
    cx.expect_status("login during the rotation", &login, 200)?;
    let token_b = token_of(&login)?;
    expect_token(cx, &app, &token_b, 200, "secret B with previous A, new token").await?;
    stop(cx, app).await?;

    let app = boot(cx, &db, Mode::Production, Some(&b), None).await?;
    expect_token(cx, &app, &token_b, 200, "secret B alone, token signed under B").await?;
    expect_token(cx, &app, &token_a, 401, "secret B alone, token signed under A").await
}

/// One `Set-Cookie` value split out of the joined header, by cookie name.
fn cookie(set_cookie: &str, name: &str) -> Option<Vec<String>> {
    // Joined Set-Cookie headers are separated by ", ", which also appears inside Expires dates;
    // a new cookie starts where the text before its first `=` has no space or `;`.
    let mut cookies: Vec<Vec<&str>> = Vec::new();
    for piece in set_cookie.split(", ") {
        let starts_cookie = piece.split('=').next().is_some_and(|n| !n.contains([' ', ';']));
        match cookies.last_mut() {
            Some(last) if !starts_cookie => last.push(piece),
            _ => cookies.push(vec![piece]),
        }
    }
    cookies
        .into_iter()
        .find(|c| c[0].starts_with(&format!("{name}=")))
        .map(|c| c.join(", ").split("; ").map(|a| a.trim().to_string()).collect())
}

async fn cookie_posture(cx: &mut Cx) -> Result<(), Failure> {
    // (mode, cookie name, must carry Secure)
    let cases = [
        (Mode::Production, "__Host-session", true),
        (Mode::Dev, "session_id", false),
    ];
    for (mode, name, secure) in cases {
        let db = cx.database(Db::Sqlite).await?;
        let app = boot(cx, &db, mode, None, None).await?;
        let (registered, login, _) = register_and_login(cx, &app, "cookie@conform.test").await?;
        let what = format!("{mode:?} mode");
        let reg: Value = serde_json::from_str(registered.body().unwrap_or_default()).unwrap_or(Value::Null);
        if !reg.get("user").is_some_and(Value::is_object) {
            return Err(Failure::violation(
                format!("{what}: register answers {{\"user\":{{...}}}}"),
                registered.summary(),
            ));
        }
        let body: Value = serde_json::from_str(login.body().unwrap_or_default()).unwrap_or(Value::Null);
        if !body.get("user").is_some_and(Value::is_object) {
            return Err(Failure::violation(
                format!("{what}: login answers {{\"user\":{{...}},\"token\":...}}"),
                login.summary(),
            ));
        }
        let header = login.header("set-cookie").unwrap_or("");
        let Some(attrs) = cookie(header, name) else {
            return Err(Failure::violation(
                format!("{what}: login sets the `{name}` cookie"),
                format!("Set-Cookie: {}", redact::text(header)),
            ));
        };
        let shown = format!("{name}=<value>; {}", attrs[1..].join("; "));
        cx.note(format!("{what} session cookie"), &shown);
        let has = |attr: &str| attrs[1..].iter().any(|a| a.eq_ignore_ascii_case(attr));
        let mut wrong = Vec::new();
        for attr in ["Path=/", "HttpOnly", "SameSite=Strict"] {
            if !has(attr) {
                wrong.push(format!("no {attr}"));
            }
        }
        match (secure, has("Secure")) {
            (true, false) => wrong.push("no Secure".into()),
            (false, true) => wrong.push("Secure set in dev mode".into()),
            _ => {}
        }
        if !wrong.is_empty() {
            let expected = if secure {
                format!("{what}: {name} with Path=/, HttpOnly, Secure, SameSite=Strict")
            } else {
                format!("{what}: {name} with Path=/, HttpOnly, SameSite=Strict, without Secure")
            };
            return Err(Failure::violation(expected, format!("{shown} ({})", wrong.join(", "))));
        }
        stop(cx, app).await?;
    }
    Ok(())
}

/// One rate-limit probe: which endpoint, whether the email varies per request, in which mode,
/// and whether a 429 must appear within [`RATE_PROBE_MAX`] requests.
struct RateCase {
    name: &'static str,
    path: &'static str,
    distinct_emails: bool,
    mode: Mode,
    limited: bool,
}

const RATE_CASES: &[RateCase] = &[
    RateCase {
        name: "register per IP (production)",
        path: "/auth/register",
        distinct_emails: true,
        mode: Mode::Production,
        limited: true,
    },
    RateCase {
        name: "login per account (production)",
        path: "/auth/login",
        distinct_emails: false,
        mode: Mode::Production,
        limited: true,
    },
    RateCase {
        name: "login per IP (production)",
        path: "/auth/login",
        distinct_emails: true,
        mode: Mode::Production,
        limited: true,
    },
    RateCase {
        name: "login per account (dev mode)",
        path: "/auth/login",
        distinct_emails: false,
        mode: Mode::Dev,
        limited: true,
    },
    RateCase {
        name: "login per IP (dev mode, relaxed)",
        path: "/auth/login",
        distinct_emails: true,
        mode: Mode::Dev,
        limited: false,
    },
];

async fn default_rate_limits(cx: &mut Cx) -> Result<(), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    for case in RATE_CASES {
        // A fresh process per case: the limiters are per-process and in memory by default.
        let app = boot(cx, &db, case.mode, None, None).await?;
        let addr = app
            .addr()
            .ok_or_else(|| Failure::harness("the app has no known port"))?;
        let http = harness::probe::Http::new()?;
        let mut first_limited = None;
        let mut last = None;
        for i in 1..=RATE_PROBE_MAX {
            let email = if case.distinct_emails {
                format!("rate{i}@conform.test")
            } else {
                "target@conform.test".to_string()
            };
            let body = json!({"email": email, "password": "wrong-password-1"}).to_string();
            let ex = http
                .send(
                    "POST",
                    addr,
                    case.path,
                    &[("content-type", "application/json")],
                    Some(body),
                )
                .await?;
            let limited = ex.status() == Some(429);
            last = Some(ex);
            if limited {
                first_limited = Some(i);
                break;
            }
        }
        let last = last.expect("at least one request");
        cx.note(
            case.name,
            match first_limited {
                Some(i) => format!("429 at request {i}: {}", last.summary()),
                None => format!("no 429 in {RATE_PROBE_MAX} requests; last {}", last.summary()),
            },
        );
        cx.record_exchanges([last.clone()]);
        match (case.limited, first_limited) {
            (true, None) => {
                return Err(Failure::violation(
                    format!("{}: a default limit answers 429", case.name),
                    format!("{RATE_PROBE_MAX} requests, none limited; last {}", last.summary()),
                ));
            }
            (true, Some(_)) if !last.body().unwrap_or_default().contains("rate limit exceeded") => {
                return Err(Failure::violation(
                    format!("{}: the 429 body says `rate limit exceeded`", case.name),
                    last.summary(),
                ));
            }
            (false, Some(i)) => {
                return Err(Failure::violation(
                    format!("{}: dev mode admits every attempt", case.name),
                    format!("429 at request {i}: {}", last.summary()),
                ));
            }
            _ => {}
        }
        stop(cx, app).await?;
    }
    Ok(())
}
