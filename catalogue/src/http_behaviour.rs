//! HTTP: the response behaviour a GoFr deploy engineer relies on (gofr.md §1.11): the `data` /
//! `error` envelope and status codes, `REQUEST_TIMEOUT`, contained panics, unknown routes, and
//! the default CORS headers.
//!
//! Each clause boots the reference candidate once on SQLite and checks a table of requests
//! against what the responder documentation promises, in one loop. Two requests need a path the
//! HTTP client would normalise before sending (`//hello`, `/x/../hello`); those go over a raw
//! TCP connection so the candidate sees them byte for byte.

use std::net::SocketAddr;
use std::time::Duration;

use harness::probe::Exchange;
use harness::timeouts;
use harness::timeouts::LOG_LINE;
use harness::verdict::{Failure, Level};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use engine::check;
use engine::clause::{Clause, DocRef, Knob, Needs};
use engine::cx::{App, Attached, Cx, Db};

/// The `REQUEST_TIMEOUT` the scenario sets, in seconds.
const REQUEST_TIMEOUT_SECS: u64 = 1;

/// How long the slow request asks to take: well beyond the timeout.
const SLOW_MS: u64 = 3000;

/// When the timed-out request must have been answered by: the timeout plus a margin for a loaded
/// machine, still clearly short of the handler's own [`SLOW_MS`].
const TIMEOUT_ANSWER_BY: Duration = Duration::from_millis(2500);

/// The headers GoFr documents as its default `Access-Control-Allow-Headers`.
const CORS_ALLOW_HEADERS: &str =
    "Authorization, Content-Type, x-requested-with, origin, true-client-ip, X-Correlation-ID";

/// GoFr's HTTP clauses.
pub fn clauses() -> Vec<Clause> {
    vec![
        Clause {
            id: "GR-HTTP-1",
            level: Level::Must,
            promise: "Handlers' results are wrapped as {\"data\":...}: GET 200, POST 201, DELETE 204; a returned error is 500 {\"error\":{\"message\":...}}.",
            doc: DocRef::at(
                "quick-start/introduction",
                "responder behaviour; advanced-guide/gofr-errors",
            ),
            method: "On SQLite: GET /hello, POST /items, DELETE /items/{id}, GET the error endpoint; check statuses and JSON envelopes.",
            needs: Needs {
                knobs: &[Knob::ErrorEndpoint],
                ..Needs::NONE
            },
            check: check!(envelope_and_status),
        },
        Clause {
            id: "GR-HTTP-2",
            level: Level::Must,
            promise: "REQUEST_TIMEOUT (seconds) bounds a request: a slower handler is answered 408 at the timeout.",
            doc: DocRef::at(
                "references/configs",
                "HTTP: REQUEST_TIMEOUT; advanced-guide/gofr-errors (408)",
            ),
            method: "Boot with REQUEST_TIMEOUT=1; GET the slow endpoint asking for 3 s; expect 408 well before 3 s. Record what an invalid value does.",
            needs: Needs {
                knobs: &[Knob::SlowEndpoint],
                ..Needs::NONE
            },
            check: check!(request_timeout),
        },
        Clause {
            id: "GR-HTTP-3",
            level: Level::Info,
            promise: "A panic in a handler is answered 500 and the process survives.",
            doc: DocRef::at("pkg/gofr/handler.go", "panic recovery"),
            method: "GET /panic; record status, body and the error log line; check liveness afterwards.",
            needs: Needs::NONE,
            check: check!(panic_contained),
        },
        Clause {
            id: "GR-HTTP-4",
            level: Level::Info,
            promise: "An unknown route or a wrong method is 404 `route not registered` (never 405); paths are cleaned before routing.",
            doc: DocRef::at("pkg/gofr/gofr.go", "catch-all route"),
            method: "GET /nope, POST /hello, and raw requests for //hello and /x/../hello; record each answer.",
            needs: Needs::NONE,
            check: check!(unknown_routes),
        },
        Clause {
            id: "GR-HTTP-5",
            level: Level::Must,
            promise: "Every response carries the default CORS headers (origin *, the documented allow-headers, the registered methods plus OPTIONS); OPTIONS on any path is 200 with an empty body.",
            doc: DocRef::at("references/configs", "CORS"),
            method: "GET /hello and OPTIONS on a route and on an unknown path; compare the Access-Control-* headers with the documented defaults.",
            needs: Needs::NONE,
            check: check!(cors_defaults),
        },
    ]
}

/// Boot on a fresh SQLite file with `extra` variables; the file lives as long as the returned
/// handle (dropping it deletes the file under the running app).
async fn boot(cx: &mut Cx, extra: &[(&str, &str)]) -> Result<(App, Attached), Failure> {
    let db = cx.database(Db::Sqlite).await?;
    let app = cx
        .boot_with(Some(&db), |spec| {
            for (k, v) in extra {
                spec.set(k, *v);
            }
            Ok(())
        })
        .await?;
    Ok((app, db))
}

fn json_body(what: &str, ex: &Exchange) -> Result<Value, Failure> {
    serde_json::from_str(ex.body().unwrap_or_default())
        .map_err(|e| Failure::violation(format!("{what}: a JSON body"), format!("{e}: {}", ex.summary())))
}

/// Expect `status` and, when `envelope` is given, a JSON body whose `envelope` key holds
/// `inner` (a fragment compared with `==` on that key when it is not null).
fn expect_envelope(what: &str, ex: &Exchange, status: u16, envelope: Option<(&str, Value)>) -> Result<(), Failure> {
    if ex.status() != Some(status) {
        return Err(Failure::violation(format!("{what}: HTTP {status}"), ex.summary()));
    }
    if let Some((key, inner)) = envelope {
        let body = json_body(what, ex)?;
        let got = body.get(key);
        let ok = match (&inner, got) {
            (Value::Null, Some(_)) => true,
            (expected, Some(got)) => got == expected,
            (_, None) => false,
        };
        if !ok {
            return Err(Failure::violation(
                format!("{what}: {{\"{key}\": {inner}}}"),
                body.to_string(),
            ));
        }
    }
    Ok(())
}

async fn envelope_and_status(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot(cx, &[]).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let ex = cx.get(&app, "/hello").await?;
    expect_envelope("GET /hello", &ex, 200, Some(("data", json!("hello"))))?;

    let item = json!({"id": 7, "name": "conform"});
    let ex = cx
        .send(
            "POST",
            addr,
            "/items",
            &[("content-type", "application/json")],
            Some(item.to_string()),
        )
        .await?;
    expect_envelope("POST /items", &ex, 201, Some(("data", Value::Null)))?;

    let ex = cx.send("DELETE", addr, "/items/7", &[], None).await?;
    expect_envelope("DELETE /items/7", &ex, 204, None)?;

    let error = cx.knob(Knob::ErrorEndpoint)?;
    let ex = cx.get(&app, &error).await?;
    expect_envelope(&format!("GET {error}"), &ex, 500, Some(("error", Value::Null)))?;
    let body = json_body("the error response", &ex)?;
    if body.pointer("/error/message").and_then(Value::as_str).is_none() {
        return Err(Failure::violation(
            "the error response is {\"error\":{\"message\":...}}",
            body.to_string(),
        ));
    }
    Ok(())
}

fn slow_path(cx: &Cx, ms: u64) -> Result<String, Failure> {
    let slow = cx.knob(Knob::SlowEndpoint)?;
    Ok(slow.replace("{ms}", &ms.to_string()))
}

/// How many times the cancellation-honouring handler is timed out, to record how often the
/// framework's 408 wins the race against the handler's own error.
const HONOURING_SAMPLES: usize = 5;

async fn request_timeout(cx: &mut Cx) -> Result<(), Failure> {
    // The graded request sleeps through cancellation, so only the framework decides its answer.
    let path = format!("{}&ignore_ctx=1", slow_path(cx, SLOW_MS)?);
    let (app, _db) = boot(cx, &[("REQUEST_TIMEOUT", &REQUEST_TIMEOUT_SECS.to_string())]).await?;
    let honouring = slow_path(cx, SLOW_MS)?;
    let mut statuses = Vec::new();
    for _ in 0..HONOURING_SAMPLES {
        let ex = cx.get(&app, &honouring).await?;
        statuses.push(
            ex.status()
                .map(|s| s.to_string())
                .unwrap_or_else(|| "no response".into()),
        );
    }
    // The handler's own 500 and the framework's 408 race at the timeout: which wins varies.
    cx.note_sample(
        "a handler that returns ctx.Err() at the timeout (recorded, not graded)",
        format!("statuses of {HONOURING_SAMPLES} requests: {}", statuses.join(", ")),
    );
    let ex = cx.get(&app, &path).await?;
    cx.note("slow request with REQUEST_TIMEOUT=1", ex.summary());
    if ex.status() != Some(408) || ex.elapsed > TIMEOUT_ANSWER_BY {
        return Err(Failure::violation(
            format!("GET {path} with REQUEST_TIMEOUT={REQUEST_TIMEOUT_SECS}: HTTP 408 within {TIMEOUT_ANSWER_BY:?}"),
            ex.summary(),
        ));
    }

    let (app, _db) = boot(cx, &[("REQUEST_TIMEOUT", "-1")]).await?;
    let short = slow_path(cx, 1500)?;
    let ex = cx.get(&app, &short).await?;
    cx.note("REQUEST_TIMEOUT=-1: a 1.5 s request", ex.summary());
    let line = app
        .running
        .output()
        .find(|l| l.plain().contains("REQUEST_TIMEOUT"))
        .map(|l| l.plain());
    cx.note("REQUEST_TIMEOUT=-1: log line", line.as_deref().unwrap_or("(none)"));
    Ok(())
}

async fn panic_contained(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot(cx, &[]).await?;
    let ex = cx.get(&app, "/panic").await?;
    cx.note("GET /panic", ex.summary());
    // The recovery's log line may reach the harness after the response: wait for it (recorded,
    // not graded, so a line that never comes is noted as "(none)").
    let line = app
        .running
        .output()
        .wait_for_line("the panic's log line", LOG_LINE, |l| l.plain().contains("stack_trace"))
        .await
        .ok()
        // What varies on every run (the time, the goroutine number) is normalised before the
        // line is cut, so the cut falls at the same place of the same text every run.
        .map(|l| {
            harness::report::diff::normalise(&l.plain())
                .chars()
                .take(200)
                .collect::<String>()
        });
    cx.note(
        "panic log line (normalised, first 200 characters)",
        line.as_deref().unwrap_or("(none)"),
    );
    let live = cx.get(&app, cx.profile().liveness).await?;
    cx.note("liveness after the panic", live.summary());
    Ok(())
}

/// A raw HTTP/1.1 GET of `target` exactly as written; returns the status line.
async fn raw_get(addr: SocketAddr, target: &str) -> Result<String, Failure> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!("GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(timeouts::HTTP_REQUEST, exchange)
        .await
        .map_err(|_| {
            Failure::harness(format!(
                "raw GET {target}: no answer within {:?}",
                timeouts::HTTP_REQUEST
            ))
        })??;
    let text = String::from_utf8_lossy(&response);
    let status = text.lines().next().unwrap_or_default().to_string();
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default().trim().to_string();
    Ok(format!("{status} {body}"))
}

async fn unknown_routes(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot(cx, &[]).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let ex = cx.get(&app, "/nope").await?;
    cx.note("GET /nope", ex.summary());
    let ex = cx.send("POST", addr, "/hello", &[], None).await?;
    cx.note("POST /hello (a GET-only route)", ex.summary());
    for target in ["//hello", "/x/../hello"] {
        let answer = raw_get(addr, target).await?;
        cx.note(format!("raw GET {target}"), answer);
    }
    Ok(())
}

async fn cors_defaults(cx: &mut Cx) -> Result<(), Failure> {
    let (app, _db) = boot(cx, &[]).await?;
    let addr = app
        .addr()
        .ok_or_else(|| Failure::harness("the app has no known port"))?;
    let origin = [("origin", "http://conform.test")];
    let get = cx.send("GET", addr, "/hello", &origin, None).await?;
    let options = cx.send("OPTIONS", addr, "/hello", &origin, None).await?;
    let unknown = cx.send("OPTIONS", addr, "/no-such-route", &origin, None).await?;
    for (what, ex) in [
        ("GET /hello", &get),
        ("OPTIONS /hello", &options),
        ("OPTIONS /no-such-route", &unknown),
    ] {
        let header = |name: &str| ex.header(name).unwrap_or("(absent)").to_string();
        let mut wrong = Vec::new();
        if header("access-control-allow-origin") != "*" {
            wrong.push(format!(
                "Access-Control-Allow-Origin: {}",
                header("access-control-allow-origin")
            ));
        }
        if header("access-control-allow-headers") != CORS_ALLOW_HEADERS {
            wrong.push(format!(
                "Access-Control-Allow-Headers: {}",
                header("access-control-allow-headers")
            ));
        }
        let methods = header("access-control-allow-methods");
        let listed: Vec<&str> = methods.split(',').map(str::trim).collect();
        for m in ["GET", "POST", "DELETE", "OPTIONS"] {
            if !listed.contains(&m) {
                wrong.push(format!("Access-Control-Allow-Methods lacks {m}: {methods}"));
            }
        }
        if what.starts_with("OPTIONS") && (ex.status() != Some(200) || !ex.body().unwrap_or("x").is_empty()) {
            wrong.push(format!("OPTIONS answered {}", ex.summary()));
        }
        if !wrong.is_empty() {
            return Err(Failure::violation(
                format!(
                    "{what}: origin *, allow-headers `{CORS_ALLOW_HEADERS}`, the registered methods plus OPTIONS; OPTIONS 200 with an empty body"
                ),
                wrong.join("; "),
            ));
        }
        cx.note(format!("{what}: Access-Control-Allow-Methods"), methods);
    }
    Ok(())
}
